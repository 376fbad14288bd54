//! The first Security Official of every organization type and every APM
//! model proves the connection as domain.md says and is approved at once;
//! the proofs are taken from the shipped demo data.

use serde_json::{json, Value};

use crate::helpers::*;

fn demo() -> Value {
    serde_json::from_str(access_reference::DEMO_JSON).unwrap()
}

fn tins(entity: &Value, count: usize) -> Value {
    json!(entity["participantTins"].as_array().unwrap()[..count])
}

/// A clinician of one of the entity's participant TINs who belongs to the
/// entity: the TIN/NPI pair CPC+, CEC and OCM sites are proved with.
fn site_pair(demo: &Value, entity: &Value) -> (String, String) {
    let id = &entity["apmEntityId"];
    demo["clinicians"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|clinician| clinician["apmEntities"].as_array().unwrap().contains(id))
        .find_map(|clinician| {
            clinician["enrollments"]
                .as_array()
                .unwrap()
                .iter()
                .find_map(|enrollment| {
                    entity["participantTins"]
                        .as_array()
                        .unwrap()
                        .contains(&enrollment["tin"])
                        .then(|| {
                            (
                                enrollment["tin"].as_str().unwrap().to_string(),
                                clinician["npi"].as_str().unwrap().to_string(),
                            )
                        })
                })
        })
        .unwrap_or_else(|| panic!("the demo data has a clinician of site {id}"))
}

/// One organization id and valid first-Security-Official proof per APM model.
fn apm_proofs() -> Vec<(String, String, Value)> {
    let demo = demo();
    let mut proofs = Vec::new();
    let mut seen = Vec::new();
    for entity in demo["apmEntities"].as_array().unwrap() {
        let model = entity["model"].as_str().unwrap().to_string();
        if seen.contains(&model) {
            continue;
        }
        seen.push(model.clone());
        let id = entity["apmEntityId"].as_str().unwrap();
        let proof = match model.as_str() {
            "SHARED_SAVINGS_PROGRAM" | "NEXT_GENERATION_ACO" => {
                let count = if entity["singleTin"] == true { 1 } else { 2 };
                json!({ "apmEntityId": id, "participantTins": tins(entity, count) })
            }
            "CPC_PLUS" | "COMPREHENSIVE_ESRD_CARE" | "ONCOLOGY_CARE_MODEL" => {
                let (tin, npi) = site_pair(&demo, entity);
                json!({ "apmEntityId": id, "tin": tin, "npi": npi })
            }
            _ => json!({ "apmEntityId": id, "participantTins": tins(entity, 1) }),
        };
        proofs.push((model, format!("apm-entity:{id}"), proof));
    }
    assert_eq!(proofs.len(), 12, "the demo data covers every APM model");
    proofs
}

#[tokio::test]
async fn the_first_security_official_of_each_organization_type_and_apm_model_is_approved_with_its_proof(
) {
    let mut cases = vec![
        (
            "practice".to_string(),
            GREENVILLE.to_string(),
            greenville_proof(),
        ),
        (
            "registry".into(),
            "registry:234567891".into(),
            json!({ "tin": "234567891", "vendorId": "V000123" }),
        ),
        (
            "virtual group".into(),
            "virtual-group:VG-00123".into(),
            json!({ "participantTins": ["123456789", "345678912"] }),
        ),
    ];
    cases.extend(apm_proofs());
    for app in spawn_apps().await {
        for (index, (kind, organization, proof)) in cases.iter().enumerate() {
            let person = format!("first-{index}");
            let response = app
                .request_role(&person, organization, "SECURITY_OFFICIAL", proof.clone())
                .await;
            assert_eq!(
                response.data("requestRole.request.state"),
                "APPROVED",
                "{}: {kind} {organization} with {proof}",
                app.label
            );
            let wrong = app
                .request_role("second", organization, "STAFF_USER", Value::Null)
                .await;
            assert_eq!(
                wrong.data("requestRole.request.state"),
                "PENDING",
                "{}: {kind}",
                app.label
            );
        }
    }
}

#[tokio::test]
async fn a_wrong_proof_for_an_apm_entity_is_a_recorded_failure_and_an_incomplete_one_is_refused() {
    for app in spawn_apps().await {
        let wrong = app
            .request_role(
                "erin",
                "apm-entity:A1234",
                "SECURITY_OFFICIAL",
                json!({ "apmEntityId": "A1234", "participantTins": ["123456789", "999999999"] }),
            )
            .await;
        assert_eq!(
            wrong.data("requestRole.proofRejected"),
            true,
            "{}",
            app.label
        );
        let incomplete = app
            .request_role(
                "frank",
                "apm-entity:A1234",
                "SECURITY_OFFICIAL",
                json!({ "apmEntityId": "A1234" }),
            )
            .await;
        assert_eq!(incomplete.code(), "PROOF_REQUIRED", "{}", app.label);
        assert_eq!(
            incomplete.error()["extensions"]["missing"],
            json!(["participantTins"]),
            "{}",
            app.label
        );
    }
}
