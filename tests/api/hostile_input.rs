//! Hostile input at the GraphQL endpoint: random and oversize requests, and
//! injection attempts in the organization search. Each gets a clear refusal
//! with a code or a plain answer, the server stays up, and nothing is written.

use std::sync::Arc;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Value};

use crate::helpers::*;

/// Every code a client may meet (docs/api.md).
const CODES: [&str; 21] = [
    "UNAUTHENTICATED",
    "FORBIDDEN",
    "NOT_FOUND",
    "INVALID_INPUT",
    "SECURITY_OFFICIAL_REQUIRED",
    "PROOF_REQUIRED",
    "DUPLICATE_REQUEST",
    "ALREADY_CONNECTED",
    "ACCOUNT_BLOCKED",
    "SELF_DECISION",
    "REQUEST_NOT_PENDING",
    "LAST_SECURITY_OFFICIAL",
    "CONFLICT",
    "CLINICIAN_NOT_FOUND",
    "CLINICIAN_INFO_MISSING",
    "CLINICIAN_NOT_VERIFIED",
    "INTERNAL",
    "RATE_LIMITED",
    "TIMEOUT",
    "INVALID_QUERY",
    "UNAVAILABLE",
];

/// Pieces of GraphQL and of this schema, so that random documents get past the
/// first character of the parser and into validation and execution.
const TOKENS: &[&str] = &[
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    ":",
    ",",
    "!",
    "=",
    "|",
    "&",
    "...",
    "$v",
    "$input",
    "@include(if: $v)",
    "@skip(if: true)",
    "query",
    "mutation",
    "subscription",
    "fragment F on Query",
    "on",
    "__schema",
    "__type(name: \"Query\")",
    "__typename",
    "types",
    "fields",
    "name",
    "me",
    "id",
    "displayName",
    "organizations",
    "organization(id: \"practice:123456789\")",
    "search:",
    "type:",
    "PRACTICE",
    "APM_ENTITY",
    "query:",
    "first:",
    "requestRole",
    "input:",
    "organizationId:",
    "role:",
    "SECURITY_OFFICIAL",
    "proof:",
    "tin:",
    "\"12-3456789\"",
    "approveRoleRequest(requestId: \"x\")",
    "auditLog",
    "edges",
    "node",
    "payload",
    "\"x\"",
    "\"\"\"block\"\"\"",
    "\"\\u0000\"",
    "1",
    "-1.5e300",
    "99999999999999999999",
    "null",
    "true",
    "#",
    "\n",
    "\u{feff}",
    "\u{202e}",
    "é",
];

fn token_soup() -> impl Strategy<Value = String> {
    proptest::collection::vec(proptest::sample::select(TOKENS), 0..60)
        .prop_map(|tokens| tokens.join(" "))
}

/// JSON values up to a few levels deep, for `variables`.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        any::<String>().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            proptest::collection::btree_map(any::<String>(), inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// Request bodies: raw bytes, random text as the document, GraphQL token soup
/// with random variables, and random JSON in place of the request.
fn request_bodies() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..2048),
        any::<String>().prop_map(|query| json!({ "query": query }).to_string().into_bytes()),
        (
            token_soup(),
            json_value(),
            proptest::option::of(any::<String>())
        )
            .prop_map(|(query, variables, operation)| {
                json!({ "query": query, "variables": variables, "operationName": operation })
                    .to_string()
                    .into_bytes()
            }),
        json_value().prop_map(|value| value.to_string().into_bytes()),
    ]
}

/// Deep, wide and oversize documents, built rather than drawn.
fn oversize_bodies() -> Vec<Vec<u8>> {
    let deep_selection = format!("{}{}", "{ me ".repeat(5_000), "}".repeat(5_000));
    let wide_selection = format!(
        "{{ {} }}",
        (0..3_000)
            .map(|alias| format!("a{alias}: me {{ id }}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let deep_variables = format!(
        "{{\"query\": \"{{ me {{ id }} }}\", \"variables\": {{\"v\": {}{}}}}}",
        "[".repeat(20_000),
        "]".repeat(20_000)
    );
    vec![
        json!({ "query": deep_selection }).to_string().into_bytes(),
        json!({ "query": wide_selection }).to_string().into_bytes(),
        deep_variables.into_bytes(),
        vec![b'{'; 65 * 1024],
        json!({ "query": "{ me { id } }", "padding": "x".repeat(1 << 20) })
            .to_string()
            .into_bytes(),
    ]
}

/// The HTTP status and the answer, which must be JSON.
async fn post(app: &TestApp, bearer: Option<&str>, body: Vec<u8>) -> (u16, Value) {
    let response = app.post_graphql_as(bearer, body).await;
    let status = response.status().as_u16();
    let text = response.text().await.expect("a body");
    let answer = serde_json::from_str(&text)
        .unwrap_or_else(|_| panic!("{}: HTTP {status}, not JSON: {text:.200}", app.label));
    (status, answer)
}

/// An answer with data and no error, or errors that each carry a known code.
fn well_formed(status: u16, answer: &Value) -> Result<(), String> {
    if ![200, 400, 413].contains(&status) {
        return Err(format!("HTTP {status}"));
    }
    match answer.get("errors").and_then(Value::as_array) {
        None => match answer.get("data") {
            Some(data) if !data.is_null() => Ok(()),
            _ => Err(format!("neither data nor errors: {answer}")),
        },
        Some(errors) => {
            errors
                .iter()
                .try_for_each(|error| match error["extensions"]["code"].as_str() {
                    Some(code) if CODES.contains(&code) => Ok(()),
                    _ => Err(format!("an error without a known code: {error}")),
                })
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_and_oversize_requests_always_get_a_json_answer_with_a_code_and_write_nothing() {
    for app in spawn_apps().await {
        let app = Arc::new(app);
        app.first_security_official_of_greenville("alice").await;
        let before = app.stored_events().await.len();

        for body in oversize_bodies() {
            let (status, answer) = post(&app, None, body).await;
            if let Err(problem) = well_formed(status, &answer) {
                panic!("{}: an oversize request: {problem}", app.label);
            }
            assert!(
                answer.get("errors").is_some(),
                "{}: {answer:.300}",
                app.label
            );
        }

        let fuzzed = app.clone();
        let runtime = tokio::runtime::Handle::current();
        let cases = if long_tests() { 20_000 } else { 1_000 };
        // Half the requests come from a Security Official, so that mutations get
        // past authentication; none can make a valid command by chance.
        let alice = token("alice", &[]);
        tokio::task::spawn_blocking(move || {
            let mut runner = TestRunner::new(Config {
                cases,
                failure_persistence: None,
                ..Config::default()
            });
            runner
                .run(&(request_bodies(), any::<bool>()), |(body, signed_in)| {
                    let bearer = signed_in.then_some(alice.as_str());
                    let (status, answer) = runtime.block_on(post(&fuzzed, bearer, body));
                    well_formed(status, &answer).map_err(TestCaseError::fail)
                })
                .unwrap_or_else(|failure| panic!("{}: {failure}", fuzzed.label));
        })
        .await
        .unwrap();

        assert_eq!(app.get("/healthz").await.status(), 200, "{}", app.label);
        assert_eq!(
            app.stored_events().await.len(),
            before,
            "{}: a hostile request wrote events",
            app.label
        );
    }
}

const SEARCH: &str = "query($type: OrganizationType!, $q: String!, $model: ApmModel) {
    organizations(search: {type: $type, query: $q, apmModel: $model}) { id legalBusinessName }
}";

/// Each search type, and the APM model its search needs.
const TYPES: [(&str, Option<&str>); 4] = [
    ("PRACTICE", None),
    ("REGISTRY", None),
    ("VIRTUAL_GROUP", None),
    ("APM_ENTITY", Some("SHARED_SAVINGS_PROGRAM")),
];

/// The organizations found, or the field a refusal names.
async fn search(
    app: &TestApp,
    kind: &str,
    model: Option<&str>,
    query: &str,
) -> Result<Vec<String>, String> {
    let answer = app
        .graphql(
            None,
            SEARCH,
            json!({ "type": kind, "q": query, "model": model }),
        )
        .await;
    match answer.0.get("errors") {
        Some(_) => {
            assert_eq!(
                answer.code(),
                "INVALID_INPUT",
                "{}: {kind} {query:.40?}",
                app.label
            );
            Err(answer.error()["extensions"]["field"]
                .as_str()
                .unwrap()
                .to_string())
        }
        None => Ok(answer
            .data("organizations")
            .as_array()
            .unwrap()
            .iter()
            .map(|found| found["id"].as_str().unwrap().to_string())
            .collect()),
    }
}

#[tokio::test]
async fn injection_strings_in_the_organization_search_get_a_refusal_or_a_plain_answer() {
    let long_word = "a".repeat(10_000);
    let long_words = "clinic ".repeat(1_500);
    let hostile = [
        "'; DROP TABLE events; --",
        "' OR '1'='1",
        "\" OR \"\"=\"",
        "1; SELECT pg_sleep(10)",
        "%",
        "_",
        "%%",
        "\\",
        "\0",
        "greenville\0",
        "\u{202e}greenville",
        "\u{200f}\u{200e}",
        "gre\u{0301}enville",
        "e\u{0301}\u{0302}\u{0303}\u{0304}",
        "😀",
        "greenville 😀",
        "{ __schema { types { name } } }",
        "\") { id } } mutation { requestRole(input: {}) { proofRejected } } #",
        "$q",
        "12-3456789",
        "123456789'--",
        &long_word,
        &long_words,
    ];
    for app in spawn_apps().await {
        app.first_security_official_of_greenville("alice").await;
        let before = app.stored_events().await.len();
        for query in hostile {
            for (kind, model) in TYPES {
                let found = search(&app, kind, model, query).await;
                if let Err(field) = &found {
                    assert_eq!(field, "search.query", "{}: {kind} {query:.40?}", app.label);
                }
            }
        }
        let greenville = || Ok(vec![GREENVILLE.to_string()]);
        let refused = || Err("search.query".to_string());
        let expected = [
            ("'; DROP TABLE events; --", Ok(vec![])),
            ("%", refused()),
            ("_", refused()),
            ("\0", refused()),
            ("😀", refused()),
            ("greenville%", greenville()),
            ("\u{202e}greenville", greenville()),
            ("12-3456789", greenville()),
            ("123456789'--", Ok(vec![])),
        ];
        for (query, answer) in expected {
            let found = search(&app, "PRACTICE", None, query).await;
            assert_eq!(found, answer, "{}: {query:?}", app.label);
        }
        assert_eq!(
            search(&app, "PRACTICE", None, &long_word).await,
            Ok(vec![]),
            "{}",
            app.label
        );
        assert_eq!(app.get("/healthz").await.status(), 200, "{}", app.label);
        assert_eq!(app.stored_events().await.len(), before, "{}", app.label);
    }
}

#[tokio::test]
async fn a_value_of_the_wrong_type_or_an_unknown_enum_value_is_refused_without_being_quoted_back() {
    const SSN: &str = "123-45-6789";
    const REQUEST_ROLE: &str =
        "mutation($input: RequestRoleInput!) { requestRole(input: $input) { request { id } } }";
    let bob = token("bob", &[]);
    for app in spawn_apps().await {
        let refusals = [
            // An enum value sent in the variables.
            app.graphql(
                Some(&bob),
                REQUEST_ROLE,
                json!({ "input": { "organizationId": GREENVILLE, "role": SSN } }),
            )
            .await,
            // An object where a string goes, with the value inside it.
            app.graphql(
                Some(&bob),
                REQUEST_ROLE,
                json!({ "input": { "organizationId": { "ssn": SSN }, "role": "STAFF_USER" } }),
            )
            .await,
            // An enum value typed into the document.
            app.graphql(
                Some(&bob),
                "mutation { requestRole(input: { organizationId: \"practice:123456789\", role: SSN_123456789 }) { request { id } } }",
                json!({}),
            )
            .await,
        ];
        for refusal in refusals {
            assert_eq!(
                refusal.code(),
                "INVALID_QUERY",
                "{}: {}",
                app.label,
                refusal.0
            );
            let answer = refusal.0.to_string();
            assert!(
                !answer.contains(SSN) && !answer.contains("SSN_123456789"),
                "{}: the value is quoted back: {answer}",
                app.label
            );
            let message = refusal.error()["message"].as_str().unwrap();
            assert!(
                message.contains("\"Role\"") || message.contains("\"ID\""),
                "{}: the type is not named: {message}",
                app.label
            );
        }
        assert!(app.stored_events().await.is_empty(), "{}", app.label);
    }
}
