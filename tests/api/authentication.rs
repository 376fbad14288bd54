//! Bearer tokens per server.md: no token answers only the search.

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn without_a_token_only_the_organization_search_answers() {
    for app in spawn_apps().await {
        let me = app.graphql(None, "{ me { id } }", json!({})).await;
        assert_eq!(me.code(), "UNAUTHENTICATED", "{}", app.label);

        let mutation = app
            .graphql(
                None,
                "mutation { approveRoleRequest(requestId: \"x\") { state } }",
                json!({}),
            )
            .await;
        assert_eq!(mutation.code(), "UNAUTHENTICATED", "{}", app.label);

        let search = app
            .graphql(None, "{ organizations(search: {type: PRACTICE, query: \"greenville\"}) { legalBusinessName } }", json!({}))
            .await;
        assert_eq!(
            search.data("organizations"),
            &json!([{ "legalBusinessName": "Greenville Medical Clinic" }]),
            "{}",
            app.label
        );
    }
}

#[tokio::test]
async fn a_token_with_a_wrong_signature_or_past_its_expiry_is_refused_with_the_reason() {
    for app in spawn_apps().await {
        let forged = token_with("another-secret", "alice", &[], chrono::Duration::hours(1));
        let response = app.graphql(Some(&forged), "{ me { id } }", json!({})).await;
        assert_eq!(response.code(), "UNAUTHENTICATED", "{}", app.label);
        assert!(
            response.error()["message"]
                .as_str()
                .unwrap()
                .contains("bad signature"),
            "{}",
            app.label
        );

        let expired = token_with(SECRET, "alice", &[], chrono::Duration::hours(-2));
        let response = app
            .graphql(Some(&expired), "{ me { id } }", json!({}))
            .await;
        assert!(
            response.error()["message"]
                .as_str()
                .unwrap()
                .contains("expired"),
            "{}",
            app.label
        );
    }
}

#[tokio::test]
async fn a_valid_token_names_the_caller() {
    for app in spawn_apps().await {
        let response = app
            .graphql(
                Some(&token("alice", &[])),
                "{ me { id displayName } }",
                json!({}),
            )
            .await;
        assert_eq!(
            response.data("me"),
            &json!({ "id": "alice", "displayName": "alice" }),
            "{}",
            app.label
        );
    }
}

#[tokio::test]
async fn support_only_fields_refuse_everyone_else() {
    for app in spawn_apps().await {
        let response = app
            .graphql(
                Some(&token("alice", &["auditor"])),
                "mutation { unblockAccount(organizationId: \"practice:123456789\", personId: \"carol\") }",
                json!({}),
            )
            .await;
        assert_eq!(response.code(), "FORBIDDEN", "{}", app.label);
    }
}
