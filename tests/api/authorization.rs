//! `authorize` for every role × organization type × capability, generated
//! from the capability matrix and checked against the hand-written copy of the
//! seeds' role tables.

use serde_json::{json, Value};

use crate::helpers::*;

const SEED_TABLE: &str = include_str!("../../crates/domain/tests/fixtures/seed_role_table.txt");

/// One organization of each type, with the proof its first Security Official gives.
fn organizations() -> [(&'static str, &'static str, Value); 4] {
    [
        ("PRACTICE", GREENVILLE, greenville_proof()),
        (
            "REGISTRY",
            "registry:234567891",
            json!({ "tin": "234567891", "vendorId": "V000123" }),
        ),
        (
            "VIRTUAL_GROUP",
            "virtual-group:VG-00123",
            json!({ "participantTins": ["123456789", "345678912"] }),
        ),
        (
            "APM_ENTITY",
            "apm-entity:A1234",
            json!({ "apmEntityId": "A1234", "participantTins": ["123456789", "345678912"] }),
        ),
    ]
}

#[tokio::test]
async fn authorize_answers_every_role_organization_type_and_capability_as_the_seeds_say() {
    for app in spawn_apps().await {
        for (_, organization, proof) in organizations() {
            let first = app
                .request_role("so", organization, "SECURITY_OFFICIAL", proof)
                .await;
            assert_eq!(
                first.data("requestRole.request.state"),
                "APPROVED",
                "{}: {organization}",
                app.label
            );
            let staff = app
                .request_role("staff", organization, "STAFF_USER", Value::Null)
                .await;
            let request = staff
                .data("requestRole.request.id")
                .as_str()
                .unwrap()
                .to_string();
            app.decide("so", &request, true)
                .await
                .data("approveRoleRequest");
        }
        let laura = named_token("clinician", "Laura Colburn");
        app.graphql(
            Some(&laura),
            "mutation { connectAsClinician { npi } }",
            json!({}),
        )
        .await
        .data("connectAsClinician");

        let mut checked = 0;
        for line in SEED_TABLE
            .lines()
            .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        {
            let cells: Vec<&str> = line.split_whitespace().collect();
            let organization = organizations()
                .into_iter()
                .find(|(kind, _, _)| *kind == cells[0])
                .map(|(_, id, _)| id)
                .unwrap();
            for (person, expected) in [
                ("staff", cells[2]),
                ("so", cells[3]),
                ("clinician", cells[4]),
            ] {
                let decision = app
                    .graphql(
                        Some(&token(person, &[])),
                        &format!(
                            "{{ authorize(organizationId: \"{organization}\", capability: {}) {{ allowed role reason }} }}",
                            cells[1]
                        ),
                        json!({}),
                    )
                    .await;
                let allowed = decision.data("authorize.allowed");
                assert_eq!(
                    allowed,
                    &json!(expected == "y"),
                    "{}: {person} {line} {}",
                    app.label,
                    decision.0
                );
                checked += 1;
            }
        }
        assert_eq!(checked, 4 * 13 * 3, "{}", app.label);
    }
}

#[tokio::test]
async fn authorize_says_why() {
    for app in spawn_apps().await {
        app.first_security_official_of_greenville("alice").await;
        let ask = |person: &'static str,
                   roles: &'static [&'static str],
                   about: &'static str,
                   capability: &'static str| {
            let app = &app;
            async move {
                app.graphql(
                    Some(&token(person, roles)),
                    &format!(
                        "{{ authorize(personId: \"{about}\", organizationId: \"{GREENVILLE}\", capability: {capability}) {{ allowed role reason }} }}"
                    ),
                    json!({}),
                )
                .await
            }
        };
        let own = ask("alice", &[], "alice", "SUBMIT_DATA").await;
        assert_eq!(
            own.data("authorize"),
            &json!({ "allowed": true, "role": "SECURITY_OFFICIAL", "reason": "Security Official of Practice 123456789 may SUBMIT_DATA" }),
            "{}",
            app.label
        );
        let nobody = ask("bob", &[], "bob", "SUBMIT_DATA").await;
        assert_eq!(
            nobody.data("authorize.reason"),
            "no role in this organization",
            "{}",
            app.label
        );

        let about_someone_else = ask("bob", &[], "alice", "SUBMIT_DATA").await;
        assert_eq!(about_someone_else.code(), "FORBIDDEN", "{}", app.label);
        for staff in ["support", "auditor"] {
            let roles: &'static [&'static str] = if staff == "support" {
                &["support"]
            } else {
                &["auditor"]
            };
            let answer = ask("sam", roles, "alice", "MANAGE_ACCESS").await;
            assert_eq!(
                answer.data("authorize.allowed"),
                true,
                "{}: {staff}",
                app.label
            );
        }

        let laura = named_token("laura", "Laura Colburn");
        app.graphql(
            Some(&laura),
            "mutation { connectAsClinician { npi } }",
            json!({}),
        )
        .await
        .data("connectAsClinician");
        let view_only = ask("laura", &[], "laura", "SUBMIT_DATA").await;
        assert_eq!(
            view_only.data("authorize.reason"),
            "Clinician role is view-only: Clinician of Practice 123456789 may not SUBMIT_DATA",
            "{}",
            app.label
        );
    }
}
