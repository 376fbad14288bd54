//! A small hand-written data set for the unit tests: one organization per
//! rule worth testing, and clinicians placed to exercise each proof branch.

use access_domain::identifiers::Npi;
use serde_json::{json, Value};

use crate::ReferenceData;

/// A valid NPI from its first nine digits.
pub fn npi(body: &str) -> String {
    format!("{body}{}", Npi::check_digit(body))
}

pub const LAURA: &str = "1234567893";

pub fn marcus() -> String {
    npi("124531959")
}

pub fn priya() -> String {
    npi("130000001")
}

pub fn john_at_greenville() -> String {
    npi("130000002")
}

pub fn json() -> Value {
    json!({
        "version": "2026-11-01",
        "practices": [
            {"tin": "123456789", "legalBusinessName": "Greenville Medical Clinic",
             "address": "5200 Manchester Ln, Greenville, OH 01234"},
            {"tin": "345678912", "legalBusinessName": "Riverside Family Practice"},
            {"tin": "456789123", "legalBusinessName": "St. Mary's Medical Center"},
            {"tin": "567891234", "legalBusinessName": "Green Valley Pediatrics"},
            {"tin": "678912345", "legalBusinessName": "Lakeside Family Practice"},
            {"tin": "789123456", "legalBusinessName": "Greenville Medical Clinic"}
        ],
        "registries": [
            {"tin": "234567891", "legalBusinessName": "American College of Medical Standards Registry",
             "vendorId": "V000123", "approved": true},
            {"tin": "891234567", "legalBusinessName": "Heartland Outcomes QCDR",
             "vendorId": "V000456", "approved": false}
        ],
        "virtualGroups": [
            {"virtualGroupId": "VG-00123", "legalBusinessName": "Ohio Valley Virtual Group",
             "participantTins": ["123456789", "345678912"]}
        ],
        "apmEntities": [
            {"apmEntityId": "A1234", "model": "SHARED_SAVINGS_PROGRAM",
             "legalBusinessName": "Buckeye ACO", "singleTin": false,
             "participantTins": ["123456789", "345678912"]},
            {"apmEntityId": "A5678", "model": "SHARED_SAVINGS_PROGRAM",
             "legalBusinessName": "Lakeside Family Practice ACO", "singleTin": true,
             "participantTins": ["678912345"]},
            {"apmEntityId": "V123", "model": "NEXT_GENERATION_ACO",
             "legalBusinessName": "Heartland Next Generation ACO",
             "participantTins": ["456789123", "567891234"]},
            {"apmEntityId": "T100001", "model": "CPC_PLUS",
             "legalBusinessName": "Greenville Primary Care Practice Site",
             "participantTins": ["123456789", "456789123"]},
            {"apmEntityId": "E1234", "model": "COMPREHENSIVE_ESRD_CARE",
             "legalBusinessName": "Buckeye Kidney Care ESCO", "participantTins": ["345678912"]},
            {"apmEntityId": "OCM-1234", "model": "ONCOLOGY_CARE_MODEL",
             "legalBusinessName": "Riverside Oncology Practice Site", "participantTins": ["345678912"]},
            {"apmEntityId": "PCF00001", "model": "PRIMARY_CARE_FIRST",
             "legalBusinessName": "Greenville Primary Care First Practice",
             "participantTins": ["123456789"]}
        ],
        "clinicians": [
            {"npi": LAURA, "firstName": "Laura", "lastName": "Colburn", "ssn": "123456789",
             "enrollments": [{"tin": "123456789", "ptan": "AB1234"}],
             "apmEntities": ["A1234", "T100001", "PCF00001"], "virtualGroups": ["VG-00123"]},
            {"npi": marcus(), "firstName": "Marcus", "lastName": "Okafor", "ssn": "987-65-4321",
             "enrollments": [{"tin": "345678912", "ptan": "RF5678"}],
             "apmEntities": ["A1234", "E1234", "OCM-1234"], "virtualGroups": ["VG-00123"]},
            {"npi": priya(), "firstName": "Priya", "lastName": "Shah", "ssn": "111223333",
             "enrollments": [{"tin": "456789123", "ptan": "PS0001"}, {"tin": "123456789", "ptan": "PS0002"}],
             "apmEntities": ["T100001", "V123"]},
            {"npi": john_at_greenville(), "firstName": "John", "lastName": "Smith", "ssn": "222334444",
             "enrollments": [{"tin": "123456789", "ptan": "JS0001"}],
             "apmEntities": ["A1234"]},
            {"npi": npi("130000003"), "firstName": "John", "lastName": "Smith", "ssn": "333445555",
             "enrollments": [{"tin": "567891234", "ptan": "JS0002"}]},
            {"npi": npi("130000004"), "firstName": "Lena", "lastName": "Park", "ssn": "444556666",
             "enrollments": [{"tin": "678912345", "ptan": "LP0001"}], "apmEntities": ["A5678"]}
        ]
    })
}

pub fn data() -> ReferenceData {
    ReferenceData::from_json_str(&json().to_string()).expect("the fixture is valid")
}
