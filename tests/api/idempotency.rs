//! A client that lost a response retries with the same Idempotency-Key and
//! gets the first answer, without the command running again.

use serde_json::{json, Value};

use crate::helpers::*;

const REQUEST_ROLE: &str = "mutation($input: RequestRoleInput!) {
    requestRole(input: $input) { proofRejected attemptsRemaining request { id failedAttempts } }
}";

fn wrong_proof() -> Value {
    json!({ "input": { "organizationId": GREENVILLE, "role": "SECURITY_OFFICIAL", "proof": wrong_greenville_proof() } })
}

async fn rejections(app: &TestApp) -> usize {
    app.stored_events()
        .await
        .iter()
        .filter(|event| event.event_type == "ProofRejected")
        .count()
}

#[tokio::test]
async fn a_retried_failed_proof_gets_the_first_answer_and_does_not_count_again() {
    for app in spawn_apps().await {
        let carol = token("carol", &[]);
        let first = app
            .with_idempotency_key(&carol, "attempt-1", REQUEST_ROLE, wrong_proof())
            .await;
        assert!(
            first.headers().get("idempotent-replayed").is_none(),
            "{}",
            app.label
        );
        let first: Value = first.json().await.unwrap();
        assert_eq!(
            first["data"]["requestRole"]["attemptsRemaining"], 2,
            "{}",
            app.label
        );

        let retry = app
            .with_idempotency_key(&carol, "attempt-1", REQUEST_ROLE, wrong_proof())
            .await;
        assert_eq!(
            retry.headers()["idempotent-replayed"],
            "true",
            "{}",
            app.label
        );
        let retry: Value = retry.json().await.unwrap();
        assert_eq!(retry, first, "{}", app.label);

        assert_eq!(
            rejections(&app).await,
            1,
            "{}: the retry ran nothing",
            app.label
        );

        let next = app
            .with_idempotency_key(&carol, "attempt-2", REQUEST_ROLE, wrong_proof())
            .await;
        let next: Value = next.json().await.unwrap();
        assert_eq!(
            next["data"]["requestRole"]["attemptsRemaining"], 1,
            "{}",
            app.label
        );
    }
}

#[tokio::test]
async fn a_key_reused_for_another_request_is_refused_and_keys_belong_to_one_person() {
    for app in spawn_apps().await {
        let carol = token("carol", &[]);
        app.with_idempotency_key(&carol, "k", REQUEST_ROLE, wrong_proof())
            .await;
        let other_request = json!({ "input": { "organizationId": GREENVILLE, "role": "SECURITY_OFFICIAL", "proof": greenville_proof() } });
        let reused: Value = app
            .with_idempotency_key(&carol, "k", REQUEST_ROLE, other_request.clone())
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(
            reused["errors"][0]["extensions"]["code"], "INVALID_INPUT",
            "{}: {reused}",
            app.label
        );
        assert_eq!(
            reused["errors"][0]["extensions"]["field"], "idempotency-key",
            "{}",
            app.label
        );

        let someone_else: Value = app
            .with_idempotency_key(&token("dave", &[]), "k", REQUEST_ROLE, other_request)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(
            someone_else["data"]["requestRole"]["proofRejected"], false,
            "{}",
            app.label
        );

        let malformed: Value = app
            .with_idempotency_key(&carol, "", REQUEST_ROLE, wrong_proof())
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(
            malformed["errors"][0]["extensions"]["field"], "idempotency-key",
            "{}",
            app.label
        );
    }
}

/// A server killed after committing a command and before keeping its answer
/// leaves the key "in progress"; a minute later a retry takes the key over and
/// runs the request again. Nothing in the domain tells a retried failed proof
/// from a new attempt, so it counts twice (docs/reliability.md, "Retries after a
/// crash", has the fix this test waits for).
#[tokio::test]
#[ignore = "known gap: a retry after a crash runs the command again (docs/reliability.md)"]
async fn a_failed_proof_whose_server_died_before_keeping_the_answer_counts_once_when_retried() {
    for app in spawn_apps().await {
        let carol = token("carol", &[]);
        app.with_idempotency_key(&carol, "attempt-1", REQUEST_ROLE, wrong_proof())
            .await;
        // What the dead server left, a minute later.
        app.execute_sql(
            "UPDATE idempotency_keys SET response = NULL, created_at_ms = created_at_ms - 120000 \
              WHERE person_id = 'carol' AND idempotency_key = 'attempt-1'",
        )
        .await;

        app.with_idempotency_key(&carol, "attempt-1", REQUEST_ROLE, wrong_proof())
            .await;
        assert_eq!(
            rejections(&app).await,
            1,
            "{}: the retry counted as a second attempt",
            app.label
        );
    }
}
