//! Connect as a Clinician, over HTTP (seed: connect-as-a-clinician-2021).

use serde_json::{json, Value};

use crate::helpers::*;

const CONNECT: &str = "mutation($manual: ClinicianManualInput) {
    connectAsClinician(manual: $manual) { npi grants { organization { id } role capabilities } }
}";

/// The demo's second clinician, verified by hand: NPI, SSN (as typed, with
/// dashes) and the PTAN of his enrollment at Riverside Family Practice.
fn marcus(ssn: &str) -> Value {
    json!({ "manual": { "npi": "1245319599", "ssn": ssn, "ptan": "RF5678" } })
}

fn granted_organizations(response: &Response) -> Vec<String> {
    let mut organizations: Vec<String> = response
        .data("connectAsClinician.grants")
        .as_array()
        .unwrap()
        .iter()
        .map(|grant| {
            assert_eq!(grant["role"], "CLINICIAN");
            grant["organization"]["id"].as_str().unwrap().to_string()
        })
        .collect();
    organizations.sort();
    organizations
}

#[tokio::test]
async fn a_clinician_whose_name_matches_uniquely_is_shown_and_connected_to_every_organization_at_once(
) {
    for app in spawn_apps().await {
        let laura = named_token("laura", "  laura   COLBURN ");
        let matched = app
            .graphql(
                Some(&laura),
                "{ clinicianMatch { npi displayName organizations { id } } }",
                json!({}),
            )
            .await;
        assert_eq!(
            matched.data("clinicianMatch.npi"),
            "1234567893",
            "{}",
            app.label
        );
        assert_eq!(
            matched.data("clinicianMatch.displayName"),
            "Laura Colburn",
            "{}",
            app.label
        );

        let connected = app.graphql(Some(&laura), CONNECT, json!({})).await;
        assert_eq!(
            connected.data("connectAsClinician.npi"),
            "1234567893",
            "{}",
            app.label
        );
        assert_eq!(
            granted_organizations(&connected),
            vec![
                "apm-entity:A1234",
                "practice:123456789",
                "virtual-group:VG-00123"
            ],
            "{}",
            app.label
        );
        let capabilities = &connected.data("connectAsClinician.grants")[0]["capabilities"];
        assert!(
            !capabilities
                .as_array()
                .unwrap()
                .contains(&json!("SUBMIT_DATA")),
            "{}",
            app.label
        );

        let again = app.graphql(Some(&laura), CONNECT, json!({})).await;
        assert_eq!(
            granted_organizations(&again).len(),
            3,
            "{}: connecting again is harmless",
            app.label
        );
    }
}

#[tokio::test]
async fn a_name_without_a_unique_match_finds_no_clinician() {
    for app in spawn_apps().await {
        let stranger = named_token("zed", "Zed Nobody");
        let matched = app
            .graphql(Some(&stranger), "{ clinicianMatch { npi } }", json!({}))
            .await;
        assert_eq!(
            matched.data("clinicianMatch"),
            &Value::Null,
            "{}",
            app.label
        );
        let connected = app.graphql(Some(&stranger), CONNECT, json!({})).await;
        assert_eq!(connected.code(), "CLINICIAN_NOT_FOUND", "{}", app.label);
        assert_eq!(
            connected.error()["message"],
            "No unique clinician with this name was found in eligibility",
            "{}",
            app.label
        );
    }
}

#[tokio::test]
async fn manual_verification_with_npi_ssn_and_ptan_connects_the_clinician() {
    for app in spawn_apps().await {
        let connected = app
            .graphql(Some(&token("marcus", &[])), CONNECT, marcus("987-65-4321"))
            .await;
        assert_eq!(
            connected.data("connectAsClinician.npi"),
            "1245319599",
            "{}",
            app.label
        );
        assert!(
            granted_organizations(&connected).contains(&"practice:345678912".to_string()),
            "{}",
            app.label
        );
    }
}

#[tokio::test]
async fn manual_verification_refuses_missing_and_wrong_information_with_the_guides_words() {
    for app in spawn_apps().await {
        let marcus_token = token("marcus", &[]);
        let missing = app
            .graphql(
                Some(&marcus_token),
                CONNECT,
                json!({ "manual": { "npi": "1245319599", "ptan": "RF5678" } }),
            )
            .await;
        assert_eq!(missing.code(), "CLINICIAN_INFO_MISSING", "{}", app.label);
        assert_eq!(
            missing.error()["message"],
            "You must provide all required information to complete this request.",
            "{}",
            app.label
        );

        let wrong = app
            .graphql(Some(&marcus_token), CONNECT, marcus("987-65-4320"))
            .await;
        assert_eq!(wrong.code(), "CLINICIAN_NOT_VERIFIED", "{}", app.label);
        assert_eq!(
            wrong.error()["message"],
            "We couldn't verify the information you provided. Please try again.",
            "{}",
            app.label
        );
    }
}

#[tokio::test]
async fn repeated_manual_failures_are_limited_per_person() {
    for app in spawn_apps().await {
        let guesser = token("guesser", &[]);
        for attempt in 0..5 {
            let wrong = app
                .graphql(
                    Some(&guesser),
                    CONNECT,
                    marcus(&format!("98765430{attempt}")),
                )
                .await;
            assert_eq!(
                wrong.code(),
                "CLINICIAN_NOT_VERIFIED",
                "{}: attempt {attempt}",
                app.label
            );
        }
        let limited = app
            .graphql(Some(&guesser), CONNECT, marcus("987-65-4321"))
            .await;
        assert_eq!(limited.code(), "RATE_LIMITED", "{}", app.label);
        assert!(
            limited.error()["message"]
                .as_str()
                .unwrap()
                .contains("try again in"),
            "{}",
            app.label
        );

        let someone_else = app
            .graphql(Some(&token("marcus", &[])), CONNECT, marcus("987-65-4321"))
            .await;
        assert_eq!(
            someone_else.data("connectAsClinician.npi"),
            "1245319599",
            "{}",
            app.label
        );
    }
}

#[tokio::test]
async fn an_npi_already_connected_to_one_person_is_refused_to_another_and_recorded() {
    for app in spawn_apps().await {
        app.graphql(Some(&token("marcus", &[])), CONNECT, marcus("987-65-4321"))
            .await
            .data("connectAsClinician");
        let impostor = app
            .graphql(
                Some(&token("impostor", &[])),
                CONNECT,
                marcus("987-65-4321"),
            )
            .await;
        assert_eq!(impostor.code(), "CLINICIAN_NOT_VERIFIED", "{}", app.label);
        let recorded = app
            .stored_events()
            .await
            .iter()
            .filter(|event| event.event_type == "ClinicianClaimRefused")
            .count();
        assert_eq!(recorded, 1, "{}", app.label);
    }
}

#[tokio::test]
async fn the_ssn_never_reaches_the_database_the_logs_or_an_error() {
    for app in spawn_apps().await {
        let wrong = app
            .graphql(Some(&token("marcus", &[])), CONNECT, marcus("987-65-4320"))
            .await;
        assert!(
            !wrong.0.to_string().contains("987"),
            "{}: {}",
            app.label,
            wrong.0
        );
        let malformed = app
            .graphql(Some(&token("marcus", &[])), CONNECT, marcus("98765432X"))
            .await;
        assert_eq!(
            malformed.error()["extensions"]["field"],
            "manual.ssn",
            "{}",
            app.label
        );
        assert!(
            !malformed.0.to_string().contains("98765432X"),
            "{}: {}",
            app.label,
            malformed.0
        );
        app.graphql(Some(&token("marcus", &[])), CONNECT, marcus("987-65-4321"))
            .await
            .data("connectAsClinician");

        let dump = app.database_dump().await;
        let logs = captured_logs();
        for ssn in ["987654321", "987-65-4321", "987654320", "987-65-4320"] {
            assert!(
                !dump.contains(ssn),
                "{}: the SSN {ssn} is in the database",
                app.label
            );
            assert!(
                !logs.contains(ssn),
                "{}: the SSN {ssn} is in the logs",
                app.label
            );
        }
        assert!(
            dump.contains("ClinicianRoleGranted"),
            "{}: the dump must see the events",
            app.label
        );
        assert!(
            logs.contains("DEBUG"),
            "{}: the logs must be captured",
            app.label
        );
    }
}
