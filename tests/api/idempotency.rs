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

/// Sends the wrong proof again under `key` and checks that the kept answer comes back,
/// marked as a replay.
async fn assert_replayed(app: &TestApp, bearer: &str, key: &str, kept: &Value) {
    let replay = app
        .with_idempotency_key(bearer, key, REQUEST_ROLE, wrong_proof())
        .await;
    assert_eq!(
        replay.headers()["idempotent-replayed"],
        "true",
        "{}",
        app.label
    );
    let replay: Value = replay.json().await.unwrap();
    assert_eq!(&replay, kept, "{}", app.label);
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

        assert_replayed(&app, &carol, "attempt-1", &first).await;

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

/// What a server that died while running a keyed request leaves behind, as a
/// retry finds it once the key counts as abandoned: no answer kept.
async fn forget_the_answer_as_a_dead_server_would(app: &TestApp, person: &str, key: &str) {
    app.execute_sql(&format!(
        "UPDATE idempotency_keys SET response = NULL, created_at_ms = created_at_ms - 120000 \
          WHERE person_id = '{person}' AND idempotency_key = '{key}'"
    ))
    .await;
}

/// A server killed after committing a command and before keeping its answer
/// leaves the key "in progress". The retry that takes the key over finds the
/// events the first attempt committed and says so, instead of running the
/// request again (a retried failed proof would otherwise count twice).
#[tokio::test]
async fn a_failed_proof_whose_server_died_before_keeping_the_answer_counts_once_when_retried() {
    for app in spawn_apps().await {
        let carol = token("carol", &[]);
        app.with_idempotency_key(&carol, "attempt-1", REQUEST_ROLE, wrong_proof())
            .await;
        forget_the_answer_as_a_dead_server_would(&app, "carol", "attempt-1").await;

        let retry: Value = app
            .with_idempotency_key(&carol, "attempt-1", REQUEST_ROLE, wrong_proof())
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(
            retry["errors"][0]["extensions"]["code"], "ALREADY_APPLIED",
            "{}: {retry}",
            app.label
        );
        assert_eq!(
            rejections(&app).await,
            1,
            "{}: the retry counted as a second attempt",
            app.label
        );

        // The answer to the retry is kept like any other.
        assert_replayed(&app, &carol, "attempt-1", &retry).await;
    }
}

/// The other half of a crash: the server died before its command committed. The
/// retry finds no event of the request and runs it.
#[tokio::test]
async fn a_request_whose_server_died_before_committing_runs_when_retried() {
    for app in spawn_apps().await {
        let carol = token("carol", &[]);
        app.with_idempotency_key(&carol, "earlier", REQUEST_ROLE, wrong_proof())
            .await;
        // The row a server writes when it starts the same request under another key,
        // left unanswered as it died before committing.
        app.execute_sql(
            "INSERT INTO idempotency_keys (person_id, idempotency_key, fingerprint, response, created_at_ms) \
             SELECT person_id, 'attempt-1', fingerprint, NULL, created_at_ms - 120000 \
               FROM idempotency_keys WHERE person_id = 'carol' AND idempotency_key = 'earlier'",
        )
        .await;

        let retry: Value = app
            .with_idempotency_key(&carol, "attempt-1", REQUEST_ROLE, wrong_proof())
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(
            retry["data"]["requestRole"]["attemptsRemaining"], 1,
            "{}: the retry ran as a second attempt: {retry}",
            app.label
        );
        assert_eq!(rejections(&app).await, 2, "{}", app.label);
    }
}
