//! The reference-data file as it is written upstream (server.md, "Reference
//! data (JSON)"). Identifiers deserialize straight into the domain newtypes so
//! a malformed value is refused where it stands, with its JSON path.

use std::fmt;

use access_domain::identifiers::{ApmEntityId, Npi, Ptan, Ssn, Tin, VendorId, VirtualGroupId};
use access_domain::proof::ApmModel;
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The whole file. Unknown keys are refused so a misspelt key is reported
/// rather than silently read as absent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReferenceFile {
    pub version: String,
    #[serde(default)]
    pub practices: Vec<PracticeEntry>,
    #[serde(default)]
    pub registries: Vec<RegistryEntry>,
    #[serde(default)]
    pub virtual_groups: Vec<VirtualGroupEntry>,
    #[serde(default)]
    pub apm_entities: Vec<ApmEntityEntry>,
    #[serde(default)]
    pub clinicians: Vec<ClinicianEntry>,
}

impl ReferenceFile {
    /// One record per line block, so a regenerated demo file diffs readably.
    pub fn to_json_pretty(&self) -> String {
        let mut json = serde_json::to_string_pretty(self).expect("reference file serializes");
        json.push('\n');
        json
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PracticeEntry {
    pub tin: Tin,
    pub legal_business_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegistryEntry {
    pub tin: Tin,
    pub legal_business_name: String,
    pub vendor_id: VendorId,
    /// Required rather than defaulted: whether a registry can be connected at
    /// all should never depend on a key being forgotten.
    pub approved: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VirtualGroupEntry {
    pub virtual_group_id: VirtualGroupId,
    pub legal_business_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    pub participant_tins: Vec<Tin>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApmEntityEntry {
    pub apm_entity_id: ApmEntityId,
    pub model: ApmModel,
    pub legal_business_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default)]
    pub single_tin: bool,
    pub participant_tins: Vec<Tin>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClinicianEntry {
    pub npi: Npi,
    pub first_name: String,
    pub last_name: String,
    pub ssn: FileSsn,
    pub enrollments: Vec<EnrollmentEntry>,
    #[serde(default)]
    pub apm_entities: Vec<ApmEntityId>,
    #[serde(default)]
    pub virtual_groups: Vec<VirtualGroupId>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnrollmentEntry {
    pub tin: Tin,
    pub ptan: Ptan,
}

/// The upstream SSN, only while the file is being read or written.
///
/// It has its own deserializer because serde's stock messages quote the
/// offending value (`invalid type: integer 123456789`), and an SSN must never
/// reach an error message or a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSsn(pub Ssn);

impl Serialize for FileSsn {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0.expose_digits())
    }
}

impl<'de> Deserialize<'de> for FileSsn {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SsnVisitor)
    }
}

struct SsnVisitor;

impl SsnVisitor {
    fn refuse<E: de::Error>() -> E {
        E::custom(Ssn::EXPECTED)
    }
}

/// Every non-string shape is refused with the same value-free message.
impl<'de> Visitor<'de> for SsnVisitor {
    type Value = FileSsn;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("an SSN of 9 digits as a string")
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<FileSsn, E> {
        Ssn::parse(value).map(FileSsn).map_err(|_| Self::refuse())
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<FileSsn, E> {
        Err(Self::refuse())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<FileSsn, E> {
        Err(Self::refuse())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<FileSsn, E> {
        Err(Self::refuse())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<FileSsn, E> {
        Err(Self::refuse())
    }

    fn visit_unit<E: de::Error>(self) -> Result<FileSsn, E> {
        Err(Self::refuse())
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<FileSsn, A::Error> {
        while seq.next_element::<de::IgnoredAny>()?.is_some() {}
        Err(Self::refuse())
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<FileSsn, A::Error> {
        while map
            .next_entry::<de::IgnoredAny, de::IgnoredAny>()?
            .is_some()
        {}
        Err(Self::refuse())
    }
}
