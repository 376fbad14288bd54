//! The seeds' journeys, over HTTP.

use serde_json::{json, Value};

use crate::helpers::*;

#[tokio::test]
async fn the_first_security_official_of_a_practice_is_approved_automatically_with_a_valid_proof() {
    for app in spawn_apps().await {
        let response = app
            .request_role("alice", GREENVILLE, "SECURITY_OFFICIAL", greenville_proof())
            .await;
        assert_eq!(
            response.data("requestRole.proofRejected"),
            false,
            "{}",
            app.label
        );
        assert_eq!(
            response.data("requestRole.attemptsRemaining"),
            &Value::Null,
            "{}",
            app.label
        );
        assert_eq!(
            response.data("requestRole.request.state"),
            "APPROVED",
            "{}",
            app.label
        );

        let search = app
            .graphql(
                None,
                "{ organizations(search: {type: PRACTICE, query: \"123456789\"}) { id hasSecurityOfficial } }",
                json!({}),
            )
            .await;
        assert_eq!(
            search.data("organizations"),
            &json!([{ "id": GREENVILLE, "hasSecurityOfficial": true }]),
            "{}",
            app.label
        );
    }
}

#[tokio::test]
async fn three_failed_proofs_block_the_requester_under_a_help_desk_ticket() {
    for app in spawn_apps().await {
        for remaining in [2, 1] {
            let response = app
                .request_role(
                    "carol",
                    GREENVILLE,
                    "SECURITY_OFFICIAL",
                    wrong_greenville_proof(),
                )
                .await;
            assert_eq!(
                response.data("requestRole.proofRejected"),
                true,
                "{}",
                app.label
            );
            assert_eq!(
                response.data("requestRole.attemptsRemaining"),
                remaining,
                "{}",
                app.label
            );
            assert_eq!(
                response.data("requestRole.request.state"),
                "PROOF_REJECTED",
                "{}",
                app.label
            );
        }
        let third = app
            .request_role(
                "carol",
                GREENVILLE,
                "SECURITY_OFFICIAL",
                wrong_greenville_proof(),
            )
            .await;
        assert_eq!(
            third.data("requestRole.attemptsRemaining"),
            0,
            "{}",
            app.label
        );
        assert_eq!(
            third.data("requestRole.request.state"),
            "MANUAL_REVIEW",
            "{}",
            app.label
        );
        assert_eq!(
            third.data("requestRole.request.failedAttempts"),
            3,
            "{}",
            app.label
        );
        let ticket = third.data("requestRole.request.ticket");
        let number = ticket["number"].as_str().unwrap();
        assert!(
            number.len() == 10
                && number.starts_with("CS")
                && number[2..].bytes().all(|b| b.is_ascii_digit()),
            "{}: ticket {number}",
            app.label
        );
        assert_eq!(ticket["state"], "OPEN", "{}", app.label);
        assert_eq!(
            ticket["attempts"].as_array().unwrap().len(),
            3,
            "{}",
            app.label
        );
        assert_eq!(
            ticket["attempts"][0]["maskedProof"],
            "tin *****6789, npi ******7893, ptan ****99"
        );

        let fourth = app
            .request_role("carol", GREENVILLE, "SECURITY_OFFICIAL", greenville_proof())
            .await;
        assert_eq!(fourth.code(), "ACCOUNT_BLOCKED", "{}", app.label);
        assert_eq!(
            fourth.error()["extensions"]["ticket"],
            number,
            "{}",
            app.label
        );
    }
}

#[tokio::test]
async fn proof_values_as_typed_never_reach_the_event_store() {
    for app in spawn_apps().await {
        app.request_role(
            "carol",
            GREENVILLE,
            "SECURITY_OFFICIAL",
            wrong_greenville_proof(),
        )
        .await;
        app.first_security_official_of_greenville("alice").await;
        for event in app.stored_events().await {
            let stored = format!("{} {}", event.payload, event.metadata);
            for secret in ["1234567893", "AB1234", "ab1234", "ZZ9999", "12-3456789"] {
                assert!(
                    !stored.contains(secret),
                    "{}: {secret} stored in {stored}",
                    app.label
                );
            }
        }
    }
}

#[tokio::test]
async fn a_staff_request_waits_for_a_security_official_who_approves_it() {
    for app in spawn_apps().await {
        app.first_security_official_of_greenville("alice").await;
        let request_id = app.pending_staff_request("bob").await;

        let own = app.decide("bob", &request_id, true).await;
        assert_eq!(own.code(), "SELF_DECISION", "{}", app.label);

        let approved = app.decide("alice", &request_id, true).await;
        assert_eq!(
            approved.data("approveRoleRequest.state"),
            "APPROVED",
            "{}",
            app.label
        );
        assert_eq!(
            approved.data("approveRoleRequest.decidedBy.id"),
            "alice",
            "{}",
            app.label
        );

        let second = app.decide("alice", &request_id, false).await;
        assert_eq!(second.code(), "REQUEST_NOT_PENDING", "{}", app.label);

        let again = app
            .request_role("bob", GREENVILLE, "STAFF_USER", Value::Null)
            .await;
        assert_eq!(again.code(), "ALREADY_CONNECTED", "{}", app.label);

        let users = app
            .graphql(
                Some(&token("alice", &[])),
                "query($org: ID!) { organizationUsers(organizationId: $org) { person { id } role } }",
                json!({ "org": GREENVILLE }),
            )
            .await;
        let mut roles: Vec<(String, String)> = users
            .data("organizationUsers")
            .as_array()
            .unwrap()
            .iter()
            .map(|grant| {
                (
                    grant["person"]["id"].as_str().unwrap().into(),
                    grant["role"].as_str().unwrap().into(),
                )
            })
            .collect();
        roles.sort();
        assert_eq!(
            roles,
            vec![
                ("alice".into(), "SECURITY_OFFICIAL".into()),
                ("bob".into(), "STAFF_USER".into())
            ],
            "{}",
            app.label
        );
    }
}

#[tokio::test]
async fn a_denied_requester_may_ask_again_and_then_withdraw() {
    for app in spawn_apps().await {
        app.first_security_official_of_greenville("alice").await;
        let first = app.pending_staff_request("bob").await;
        let denied = app.decide("alice", &first, false).await;
        assert_eq!(
            denied.data("denyRoleRequest.state"),
            "DENIED",
            "{}",
            app.label
        );
        assert_eq!(
            denied.data("denyRoleRequest.reason"),
            "not our staff",
            "{}",
            app.label
        );

        let second = app.pending_staff_request("bob").await;
        assert_ne!(first, second, "{}", app.label);
        let duplicate = app
            .request_role("bob", GREENVILLE, "STAFF_USER", Value::Null)
            .await;
        assert_eq!(duplicate.code(), "DUPLICATE_REQUEST", "{}", app.label);

        let by_someone_else = app
            .graphql(
                Some(&token("alice", &[])),
                "mutation($id: ID!) { withdrawRoleRequest(requestId: $id) { state } }",
                json!({ "id": second }),
            )
            .await;
        assert_eq!(by_someone_else.code(), "FORBIDDEN", "{}", app.label);

        let withdrawn = app
            .graphql(
                Some(&token("bob", &[])),
                "mutation($id: ID!) { withdrawRoleRequest(requestId: $id) { state } }",
                json!({ "id": second }),
            )
            .await;
        assert_eq!(
            withdrawn.data("withdrawRoleRequest.state"),
            "WITHDRAWN",
            "{}",
            app.label
        );

        let read_back = app
            .graphql(
                Some(&token("bob", &[])),
                "query($id: ID!) { roleRequest(id: $id) { state requester { id } organization { id } } }",
                json!({ "id": second }),
            )
            .await;
        assert_eq!(
            read_back.data("roleRequest"),
            &json!({ "state": "WITHDRAWN", "requester": { "id": "bob" }, "organization": { "id": GREENVILLE } }),
            "{}",
            app.label
        );
    }
}

#[tokio::test]
async fn a_refused_command_writes_nothing_and_says_why() {
    for app in spawn_apps().await {
        let staff_first = app
            .request_role("bob", GREENVILLE, "STAFF_USER", Value::Null)
            .await;
        assert_eq!(
            staff_first.code(),
            "SECURITY_OFFICIAL_REQUIRED",
            "{}",
            app.label
        );

        let no_proof = app
            .request_role("alice", GREENVILLE, "SECURITY_OFFICIAL", Value::Null)
            .await;
        assert_eq!(no_proof.code(), "PROOF_REQUIRED", "{}", app.label);
        assert_eq!(
            no_proof.error()["extensions"]["missing"],
            json!(["tin", "npi", "ptan"]),
            "{}",
            app.label
        );

        assert!(app.stored_events().await.is_empty(), "{}", app.label);
    }
}

#[tokio::test]
async fn malformed_input_is_refused_naming_the_field_without_echoing_it() {
    for app in spawn_apps().await {
        let bad_tin = app
            .request_role(
                "alice",
                GREENVILLE,
                "SECURITY_OFFICIAL",
                json!({ "tin": "12345", "npi": "1234567893", "ptan": "AB1234" }),
            )
            .await;
        assert_eq!(bad_tin.code(), "INVALID_INPUT", "{}", app.label);
        assert_eq!(
            bad_tin.error()["extensions"]["field"],
            "input.proof.tin",
            "{}",
            app.label
        );
        assert!(
            !bad_tin.error()["message"]
                .as_str()
                .unwrap()
                .contains("12345"),
            "{}",
            app.label
        );

        let bad_npi = app
            .request_role(
                "alice",
                GREENVILLE,
                "SECURITY_OFFICIAL",
                json!({ "tin": "123456789", "npi": "1234567890", "ptan": "AB1234" }),
            )
            .await;
        assert_eq!(
            bad_npi.error()["extensions"]["field"],
            "input.proof.npi",
            "{}",
            app.label
        );

        let bad_organization = app
            .request_role("alice", "clinic:42", "STAFF_USER", Value::Null)
            .await;
        assert_eq!(
            bad_organization.error()["extensions"]["field"],
            "input.organizationId",
            "{}",
            app.label
        );

        let unknown_organization = app
            .request_role("alice", "practice:111111111", "STAFF_USER", Value::Null)
            .await;
        assert_eq!(unknown_organization.code(), "NOT_FOUND", "{}", app.label);

        let clinician = app
            .request_role("alice", GREENVILLE, "CLINICIAN", Value::Null)
            .await;
        assert_eq!(clinician.code(), "INVALID_INPUT", "{}", app.label);

        let partial_tin = app
            .graphql(
                None,
                "{ organizations(search: {type: PRACTICE, query: \"12345\"}) { id } }",
                json!({}),
            )
            .await;
        assert_eq!(
            partial_tin.data("organizations"),
            &json!([]),
            "{}",
            app.label
        );

        let virtual_group = app
            .graphql(
                None,
                "{ organizations(search: {type: VIRTUAL_GROUP, query: \"VG-99999\"}) { id } }",
                json!({}),
            )
            .await;
        assert_eq!(
            virtual_group.error()["message"],
            "search.query: Your Virtual Group ID is invalid",
            "{}",
            app.label
        );

        assert!(app.stored_events().await.is_empty(), "{}", app.label);
    }
}

#[tokio::test]
async fn support_removes_the_last_security_official_and_the_organization_needs_one_again() {
    for app in spawn_apps().await {
        app.first_security_official_of_greenville("alice").await;
        let not_support = app
            .graphql(
                Some(&token("alice", &[])),
                "mutation { removeSecurityOfficial(organizationId: \"practice:123456789\", personId: \"alice\") }",
                json!({}),
            )
            .await;
        assert_eq!(not_support.code(), "FORBIDDEN", "{}", app.label);

        let removed = app
            .graphql(
                Some(&token("sam", &["support"])),
                "mutation { removeSecurityOfficial(organizationId: \"practice:123456789\", personId: \"alice\", note: \"left the practice\") }",
                json!({}),
            )
            .await;
        assert_eq!(
            removed.data("removeSecurityOfficial"),
            true,
            "{}",
            app.label
        );

        let staff = app
            .request_role("bob", GREENVILLE, "STAFF_USER", Value::Null)
            .await;
        assert_eq!(staff.code(), "SECURITY_OFFICIAL_REQUIRED", "{}", app.label);
        app.first_security_official_of_greenville("dave").await;
    }
}

#[tokio::test]
async fn a_security_official_revokes_a_staff_user_and_support_changes_roles() {
    for app in spawn_apps().await {
        app.first_security_official_of_greenville("alice").await;
        for person in ["bob", "erin"] {
            let request = app.pending_staff_request(person).await;
            app.decide("alice", &request, true)
                .await
                .data("approveRoleRequest");
        }
        let revoked = app
            .graphql(
                Some(&token("alice", &[])),
                "mutation { revokeAccess(organizationId: \"practice:123456789\", personId: \"bob\", reason: \"left\") }",
                json!({}),
            )
            .await;
        assert_eq!(revoked.data("revokeAccess"), true, "{}", app.label);

        let promoted = app
            .graphql(
                Some(&token("sam", &["support"])),
                "mutation { changeRole(organizationId: \"practice:123456789\", personId: \"erin\", role: SECURITY_OFFICIAL) { role person { id } } }",
                json!({}),
            )
            .await;
        assert_eq!(
            promoted.data("changeRole.role"),
            "SECURITY_OFFICIAL",
            "{}",
            app.label
        );

        let cannot_revoke_security_official = app
            .graphql(
                Some(&token("alice", &[])),
                "mutation { revokeAccess(organizationId: \"practice:123456789\", personId: \"erin\") }",
                json!({}),
            )
            .await;
        assert_eq!(
            cannot_revoke_security_official.code(),
            "FORBIDDEN",
            "{}",
            app.label
        );
    }
}

#[tokio::test]
async fn a_role_request_is_invisible_to_strangers() {
    for app in spawn_apps().await {
        app.first_security_official_of_greenville("alice").await;
        let request = app.pending_staff_request("bob").await;
        let query = "query($id: ID!) { roleRequest(id: $id) { state } }";
        for (viewer, roles, visible) in [
            ("bob", &[][..], true),
            ("alice", &[][..], true),
            ("sam", &["support"][..], true),
            ("audrey", &["auditor"][..], true),
            ("mallory", &[][..], false),
        ] {
            let response = app
                .graphql(Some(&token(viewer, roles)), query, json!({ "id": request }))
                .await;
            let seen = response.data("roleRequest") != &Value::Null;
            assert_eq!(seen, visible, "{}: {viewer}", app.label);
        }
    }
}
