//! Hostile and oversize requests get clear refusals and write nothing; the
//! operational endpoints answer.

use std::path::PathBuf;

use access_server::settings::TokenKey;
use access_store::testing::fresh_databases;
use base64::Engine;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use crate::helpers::*;

const ISSUER: &str = "https://idp.example.org";
const AUDIENCE: &str = "access-management";

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/jwt")
        .join(name)
}

fn claims(overrides: Value) -> Value {
    let now = chrono::Utc::now().timestamp();
    let mut claims = json!({ "sub": "alice", "name": "Alice", "exp": now + 3600, "iss": ISSUER, "aud": AUDIENCE });
    for (key, value) in overrides.as_object().unwrap() {
        if value.is_null() {
            claims.as_object_mut().unwrap().remove(key);
        } else {
            claims[key] = value.clone();
        }
    }
    claims
}

fn signed(algorithm: Algorithm, key: &EncodingKey, overrides: Value) -> String {
    encode(&Header::new(algorithm), &claims(overrides), key).unwrap()
}

fn rsa_key() -> EncodingKey {
    EncodingKey::from_rsa_pem(&std::fs::read(fixture("rs256-private.pem")).unwrap()).unwrap()
}

fn other_rsa_key() -> EncodingKey {
    EncodingKey::from_rsa_pem(&std::fs::read(fixture("rs256-other-private.pem")).unwrap()).unwrap()
}

fn ec_key() -> EncodingKey {
    EncodingKey::from_ec_pem(&std::fs::read(fixture("es256-private.pem")).unwrap()).unwrap()
}

/// `{"alg":"none"}` with valid claims and no signature.
fn unsigned() -> String {
    let encode =
        |value: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string());
    format!(
        "{}.{}.",
        encode(json!({ "alg": "none", "typ": "JWT" })),
        encode(claims(json!({})))
    )
}

async fn spawn_rs256_apps() -> Vec<TestApp> {
    let mut apps = Vec::new();
    for database in fresh_databases().await {
        apps.push(
            spawn_app_with(database, |settings| {
                settings.token_key = TokenKey::PublicKeyFile(fixture("rs256-public.pem"));
                settings.issuer = Some(ISSUER.into());
                settings.audience = Some(AUDIENCE.into());
            })
            .await,
        );
    }
    apps
}

#[tokio::test]
async fn forged_expired_early_and_misdirected_tokens_are_refused_and_write_nothing() {
    let public_key_as_hmac_secret = std::fs::read(fixture("rs256-public.pem")).unwrap();
    let now = chrono::Utc::now().timestamp();
    let refused = [
        ("alg none", unsigned(), "malformed"),
        (
            "HS256 signed with the public key",
            signed(
                Algorithm::HS256,
                &EncodingKey::from_secret(&public_key_as_hmac_secret),
                json!({}),
            ),
            "unexpected algorithm",
        ),
        (
            "RS256 from another key",
            signed(Algorithm::RS256, &other_rsa_key(), json!({})),
            "bad signature",
        ),
        (
            "ES256 from another key",
            signed(Algorithm::ES256, &ec_key(), json!({})),
            "unexpected algorithm",
        ),
        (
            "expired",
            signed(Algorithm::RS256, &rsa_key(), json!({ "exp": now - 3600 })),
            "expired",
        ),
        (
            "not valid yet",
            signed(Algorithm::RS256, &rsa_key(), json!({ "nbf": now + 3600 })),
            "not valid yet",
        ),
        (
            "wrong audience",
            signed(
                Algorithm::RS256,
                &rsa_key(),
                json!({ "aud": "another-app" }),
            ),
            "wrong audience",
        ),
        (
            "wrong issuer",
            signed(
                Algorithm::RS256,
                &rsa_key(),
                json!({ "iss": "https://evil.example" }),
            ),
            "wrong issuer",
        ),
        (
            "no expiry",
            signed(Algorithm::RS256, &rsa_key(), json!({ "exp": null })),
            "a required claim is missing",
        ),
        ("garbage", "not-a-token".to_string(), "malformed"),
    ];
    for app in spawn_rs256_apps().await {
        let valid = signed(Algorithm::RS256, &rsa_key(), json!({}));
        let me = app.graphql(Some(&valid), "{ me { id } }", json!({})).await;
        assert_eq!(me.data("me.id"), "alice", "{}", app.label);

        for (name, token, reason) in &refused {
            let response = app
                .graphql(
                    Some(token),
                    "mutation($input: RequestRoleInput!) { requestRole(input: $input) { proofRejected } }",
                    json!({ "input": { "organizationId": GREENVILLE, "role": "SECURITY_OFFICIAL", "proof": greenville_proof() } }),
                )
                .await;
            assert_eq!(response.code(), "UNAUTHENTICATED", "{}: {name}", app.label);
            let message = response.error()["message"].as_str().unwrap();
            assert!(message.contains(reason), "{}: {name}: {message}", app.label);
        }
        assert!(app.stored_events().await.is_empty(), "{}", app.label);
    }
}

#[tokio::test]
async fn an_unsigned_token_is_refused_by_a_server_checking_hs256() {
    for app in spawn_apps().await {
        let response = app
            .graphql(Some(&unsigned()), "{ me { id } }", json!({}))
            .await;
        assert_eq!(response.code(), "UNAUTHENTICATED", "{}", app.label);
    }
}

/// The classic confusion, against the server as an operator configures it (from
/// the environment): a verifier that let the token choose the algorithm would
/// check this HS256 signature with the public key's text as the secret.
#[tokio::test]
async fn a_server_configured_with_a_public_key_refuses_an_hs256_token_signed_with_that_key() {
    let database = fresh_databases().await.remove(0);
    let public_key = fixture("rs256-public.pem");
    let server = ServerProcess::on(
        database.label,
        &database.url,
        &[
            // Empty is unset: the public key is the only way to check tokens.
            ("ACCESS_JWT_SECRET", ""),
            ("ACCESS_JWT_PUBLIC_KEY", public_key.to_str().unwrap()),
        ],
    )
    .await;
    let valid = signed(
        Algorithm::RS256,
        &rsa_key(),
        json!({ "iss": null, "aud": null }),
    );
    let me = server
        .graphql(Some(&valid), "{ me { id } }", json!({}))
        .await;
    assert_eq!(me.data("me.id"), "alice");

    let forged = signed(
        Algorithm::HS256,
        &EncodingKey::from_secret(&std::fs::read(&public_key).unwrap()),
        json!({ "iss": null, "aud": null }),
    );
    let refused = server
        .graphql(
            Some(&forged),
            "mutation { requestRole(input: {organizationId: \"practice:123456789\", role: STAFF_USER}) { request { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(refused.code(), "UNAUTHENTICATED");
    assert!(refused.error()["message"]
        .as_str()
        .unwrap()
        .contains("unexpected algorithm"));
    assert!(stored_events(&database.url).await.is_empty());
}

#[tokio::test]
async fn an_es256_public_key_accepts_es256_tokens() {
    let database = fresh_databases().await.remove(0);
    let app = spawn_app_with(database, |settings| {
        settings.token_key = TokenKey::PublicKeyFile(fixture("es256-public.pem"));
    })
    .await;
    let token = signed(
        Algorithm::ES256,
        &ec_key(),
        json!({ "iss": null, "aud": null }),
    );
    let me = app.graphql(Some(&token), "{ me { id } }", json!({})).await;
    assert_eq!(me.data("me.id"), "alice");
}

#[tokio::test]
async fn malformed_deep_and_oversize_documents_get_clear_refusals() {
    for app in spawn_apps().await {
        let garbage = app
            .graphql(None, "{ organizations(search: {type: PRACTICE", json!({}))
            .await;
        assert_eq!(garbage.code(), "INVALID_QUERY", "{}", app.label);

        let unknown_field = app.graphql(None, "{ secrets }", json!({})).await;
        assert_eq!(unknown_field.code(), "INVALID_QUERY", "{}", app.label);

        let deep = format!(
            "{{ __schema {{ types {}name{} }} }}",
            "{ fields { type { ofType ".repeat(8),
            " } } }".repeat(8)
        );
        let too_deep = app.graphql(None, &deep, json!({})).await;
        assert_eq!(too_deep.code(), "INVALID_QUERY", "{}", app.label);

        let too_many = app
            .graphql(None, "{ organizations(search: {type: PRACTICE, query: \"clinic\", first: 1000}) { id } }", json!({}))
            .await;
        assert_eq!(too_many.code(), "INVALID_INPUT", "{}", app.label);
        assert_eq!(
            too_many.error()["extensions"]["field"],
            "search.first",
            "{}",
            app.label
        );

        let oversize = app
            .post_graphql(
                json!({ "query": format!("{{ me {{ id }} }} #{}", "x".repeat(100_000)) })
                    .to_string(),
            )
            .await;
        assert_eq!(oversize.status(), 413, "{}", app.label);
        assert_eq!(
            oversize.headers()["connection"],
            "close",
            "{}: the unread body leaves the connection unusable",
            app.label
        );
        let oversize: Value = oversize.json().await.unwrap();
        assert_eq!(
            oversize["errors"][0]["extensions"]["code"], "INVALID_QUERY",
            "{}",
            app.label
        );

        let not_json = app.post_graphql("{{{{ 987-65-4321").await;
        assert_eq!(not_json.status(), 400, "{}", app.label);
        let not_json = not_json.text().await.unwrap();
        assert!(
            !not_json.contains("987-65-4321"),
            "{}: {not_json}",
            app.label
        );
        let not_json: Value = serde_json::from_str(&not_json).unwrap();
        assert_eq!(
            not_json["errors"][0]["extensions"]["code"], "INVALID_QUERY",
            "{}",
            app.label
        );

        let injection = app
            .graphql(
                None,
                "query($q: String!) { organizations(search: {type: PRACTICE, query: $q}) { id } }",
                json!({ "q": "'; DROP TABLE events; -- ☃\u{202e}" }),
            )
            .await;
        assert_eq!(injection.data("organizations"), &json!([]), "{}", app.label);
        assert_eq!(app.get("/healthz").await.status(), 200, "{}", app.label);
    }
}

#[tokio::test]
async fn one_person_making_too_many_mutations_is_slowed_down_and_others_are_not() {
    for app in spawn_apps().await {
        let flood = token("flooder", &[]);
        let attempts = (0..250).map(|_| {
            app.graphql(
                Some(&flood),
                "mutation { withdrawRoleRequest(requestId: \"nope\") { state } }",
                json!({}),
            )
        });
        let codes: Vec<String> = futures_util::future::join_all(attempts)
            .await
            .iter()
            .map(|response| response.code().to_string())
            .collect();
        assert!(
            codes.iter().any(|code| code == "RATE_LIMITED"),
            "{}: {codes:?}",
            app.label
        );
        assert!(
            codes
                .iter()
                .all(|code| code == "RATE_LIMITED" || code == "INVALID_INPUT"),
            "{}",
            app.label
        );

        let other = app
            .graphql(
                Some(&token("calm", &[])),
                "mutation { withdrawRoleRequest(requestId: \"nope\") { state } }",
                json!({}),
            )
            .await;
        assert_eq!(other.code(), "INVALID_INPUT", "{}", app.label);
    }
}

#[tokio::test]
async fn a_mutation_document_beyond_the_budget_is_refused_whole_and_none_of_it_runs() {
    for app in spawn_apps().await {
        // One change that would be accepted, then enough others to pass the burst.
        let withdrawals: String = (0..100)
            .map(|n| format!(" w{n}: withdrawRoleRequest(requestId: \"nope\") {{ state }}"))
            .collect();
        let document = format!(
            "mutation($input: RequestRoleInput!) {{ requestRole(input: $input) {{ request {{ state }} }}{withdrawals} }}"
        );
        let input = json!({ "input": {
            "organizationId": GREENVILLE, "role": "SECURITY_OFFICIAL", "proof": greenville_proof()
        } });
        let response = app
            .graphql(Some(&token("greedy", &[])), &document, input)
            .await;
        let errors = response.0["errors"].as_array().cloned().unwrap_or_default();
        assert_eq!(errors.len(), 101, "{}: {}", app.label, response.0);
        assert!(
            errors
                .iter()
                .all(|error| error["extensions"]["code"] == "RATE_LIMITED"),
            "{}: {}",
            app.label,
            response.0
        );
        assert!(app.stored_events().await.is_empty(), "{}", app.label);
    }
}

#[tokio::test]
async fn metrics_count_operations_by_outcome_and_events_appended() {
    for app in spawn_apps().await {
        app.first_security_official_of_greenville("alice").await;
        app.request_role("bob", GREENVILLE, "STAFF_USER", Value::Null)
            .await;
        app.graphql(None, "{ me { id } }", json!({})).await;
        let metrics = app.get("/metrics").await.text().await.unwrap();
        for line in [
            "access_graphql_requests_total{operation=\"requestRole\",outcome=\"ok\"} 2",
            "access_graphql_requests_total{operation=\"me\",outcome=\"UNAUTHENTICATED\"} 1",
            "access_graphql_request_duration_seconds_count{operation=\"requestRole\"} 2",
            "access_events_appended_total 4",
            "access_projector_lag_events{view=\"access\"} 0",
            "access_projector_lag_events{view=\"support\"} 0",
        ] {
            assert!(
                metrics.contains(line),
                "{}: {line} not in\n{metrics}",
                app.label
            );
        }
    }
}

#[tokio::test]
async fn metrics_say_how_many_commands_each_group_of_appends_took_and_how_long_writing_them_took() {
    for app in spawn_apps().await {
        let before = app.get("/metrics").await.text().await.unwrap();
        assert_eq!(
            series(&before, "access_append_group_commands_total"),
            Some(0.0),
            "{}",
            app.label
        );
        app.first_security_official_of_greenville("alice").await;
        app.request_role("bob", GREENVILLE, "STAFF_USER", Value::Null)
            .await;
        app.graphql(None, "{ me { id } }", json!({})).await;
        let metrics = app.get("/metrics").await.text().await.unwrap();
        let commands = series(&metrics, "access_append_group_commands_total");
        let groups = series(&metrics, "access_append_groups_total");
        let busy = series(&metrics, "access_append_busy_seconds_total");
        assert_eq!(commands, Some(2.0), "{}: {metrics}", app.label);
        assert!(
            groups.is_some_and(|groups| (1.0..=2.0).contains(&groups)),
            "{}: {metrics}",
            app.label
        );
        assert!(
            busy.is_some_and(|busy| busy > 0.0),
            "{}: {metrics}",
            app.label
        );
    }
}

/// The value of an unlabelled series in a Prometheus text exposition.
fn series(metrics: &str, name: &str) -> Option<f64> {
    metrics.lines().find_map(|line| {
        let (series, value) = line.split_once(' ')?;
        (series == name).then(|| value.parse().ok())?
    })
}

#[tokio::test]
async fn every_response_carries_the_request_id() {
    for app in spawn_apps().await {
        let response = app
            .post_graphql(json!({ "query": "{ __typename }" }).to_string())
            .await;
        assert_eq!(
            response.headers()["x-request-id"],
            "test-request-42",
            "{}",
            app.label
        );
        let generated = app.get("/healthz").await;
        assert_eq!(
            generated.headers()["x-request-id"].len(),
            36,
            "{}",
            app.label
        );
    }
}

#[tokio::test]
async fn past_the_requests_it_serves_at_once_a_server_turns_more_away_unstarted_and_retryable() {
    const STAFF_REQUEST: &str =
        "mutation($input: RequestRoleInput!) { requestRole(input: $input) { request { state } } }";
    let staff_request = json!({ "input": { "organizationId": GREENVILLE, "role": "STAFF_USER" } });
    for database in fresh_databases().await {
        let app = spawn_app_with(database, |settings| settings.max_requests = 1).await;
        app.first_security_official_of_greenville("alice").await;
        let mut accepted = Vec::new();
        let mut turned_away = Vec::new();
        // Concurrent requests on one allowed at a time: nearly always some are turned
        // away in the first round; rounds repeat so that a slow machine cannot pass
        // vacuously.
        for round in 0..20 {
            let people: Vec<String> = (0..32).map(|n| format!("staff-{round}-{n}")).collect();
            let answers = futures_util::future::join_all(people.iter().map(|person| {
                let (bearer, key) = (token(person, &[]), format!("key-{person}"));
                let variables = staff_request.clone();
                let app = &app;
                async move {
                    app.with_idempotency_key(&bearer, &key, STAFF_REQUEST, variables)
                        .await
                }
            }))
            .await;
            for (person, answer) in people.into_iter().zip(answers) {
                let status = answer.status();
                let retry_after = answer.headers().get("retry-after").cloned();
                let body: Value = answer.json().await.unwrap();
                if status == 503 {
                    assert_eq!(retry_after.unwrap(), "1", "{}", app.label);
                    assert_eq!(
                        body["errors"][0]["extensions"]["code"], "UNAVAILABLE",
                        "{}",
                        app.label
                    );
                    turned_away.push(person);
                } else {
                    assert_eq!(
                        body["data"]["requestRole"]["request"]["state"], "PENDING",
                        "{}: {body}",
                        app.label
                    );
                    accepted.push(person);
                }
            }
            if !turned_away.is_empty() {
                break;
            }
        }
        assert!(!turned_away.is_empty(), "{}: none turned away", app.label);

        let events = app.stored_events().await;
        let mentions = |person: &str| {
            let quoted = format!("\"{person}\"");
            events
                .iter()
                .filter(|event| event.payload.to_string().contains(&quoted))
                .count()
        };
        assert!(
            accepted.iter().all(|person| mentions(person) > 0),
            "{}",
            app.label
        );
        assert!(
            turned_away.iter().all(|person| mentions(person) == 0),
            "{}: a turned-away request wrote",
            app.label
        );
        let metrics = app.get("/metrics").await.text().await.unwrap();
        let counted = format!(
            "access_graphql_requests_turned_away_total {}",
            turned_away.len()
        );
        assert!(
            metrics.contains(&counted),
            "{}: {counted} not in\n{metrics}",
            app.label
        );
        assert!(
            metrics.contains("access_graphql_requests_in_flight 0"),
            "{}",
            app.label
        );

        // Nothing was kept for its key either: the retry runs the request.
        let person = &turned_away[0];
        let retried = app
            .with_idempotency_key(
                &token(person, &[]),
                &format!("key-{person}"),
                STAFF_REQUEST,
                staff_request.clone(),
            )
            .await;
        assert_eq!(retried.status(), 200, "{}", app.label);
        let body: Value = retried.json().await.unwrap();
        assert_eq!(
            body["data"]["requestRole"]["request"]["state"], "PENDING",
            "{}: {body}",
            app.label
        );
    }
}
