//! Personal data (docs/security.md): SSNs and proof values as people typed them
//! reach no table, no log and no error; names and email addresses live only in
//! the erasable people directory (and in answers kept for retries), and
//! `access-server erase-person` erases them while the audit log keeps the id.

use access_domain::identifiers::Npi;
use serde_json::{json, Value};

use crate::helpers::*;

const REQUEST_ROLE: &str = "mutation($input: RequestRoleInput!) {
    requestRole(input: $input) { proofRejected request { id state } }
}";
const CONNECT: &str = "mutation($manual: ClinicianManualInput) {
    connectAsClinician(manual: $manual) { grants { organization { id } } }
}";
const RIVERSIDE: &str = "practice:345678912";

async fn request_role(
    app: &TestApp,
    bearer: &str,
    organization: &str,
    role: &str,
    proof: Value,
) -> Response {
    app.graphql(
        Some(bearer),
        REQUEST_ROLE,
        json!({ "input": { "organizationId": organization, "role": role, "proof": proof } }),
    )
    .await
}

/// Alice becomes Greenville's Security Official with its proof typed with a dash
/// and a lower-case PTAN, and approves Bob.
async fn alice_approves_bob(app: &TestApp) {
    let alice = contact_token("alice", "Alice Example", "alice@example.org");
    let proof = json!({ "tin": "12-3456789", "npi": "1234567893", "ptan": "aB1234" });
    let approved = request_role(app, &alice, GREENVILLE, "SECURITY_OFFICIAL", proof).await;
    assert_eq!(
        approved.data("requestRole.request.state"),
        "APPROVED",
        "{}",
        app.label
    );
    let bob = contact_token("bob", "Robert Tables", "bob.tables@example.org");
    let pending = request_role(app, &bob, GREENVILLE, "STAFF_USER", Value::Null).await;
    let request = pending.data("requestRole.request.id").as_str().unwrap();
    app.graphql(
        Some(&alice),
        "mutation($id: ID!) { approveRoleRequest(requestId: $id) { state } }",
        json!({ "id": request }),
    )
    .await
    .data("approveRoleRequest");
}

#[tokio::test]
async fn no_ssn_and_no_proof_value_as_typed_reaches_a_table_a_log_or_an_error() {
    let wrong_npi = format!("111222333{}", Npi::check_digit("111222333"));
    for app in spawn_apps().await {
        alice_approves_bob(&app).await;

        // Carol fails Riverside's proof three times, each time on another value.
        let carol = contact_token("carol", "Carol Prover", "carol@example.org");
        let attempts = [
            json!({ "tin": "55-5123456", "npi": "1245319599", "ptan": "RF5678" }),
            json!({ "tin": "34 567 8912", "npi": wrong_npi, "ptan": "RF5678" }),
            json!({ "tin": "345678912", "npi": "1245319599", "ptan": "ZQ7788" }),
        ];
        for proof in attempts {
            let failed = request_role(&app, &carol, RIVERSIDE, "SECURITY_OFFICIAL", proof).await;
            assert_eq!(
                failed.data("requestRole.proofRejected"),
                true,
                "{}",
                app.label
            );
        }

        // Marcus verifies by hand: a wrong SSN, a document that does not parse
        // with an SSN typed in it, then the right one, the last two with keys
        // (whose answers are kept).
        let marcus = contact_token("marcus", "Marcus Okafor", "marcus@example.org");
        let manual =
            |ssn: &str| json!({ "manual": { "npi": "1245319599", "ssn": ssn, "ptan": "RF5678" } });
        let wrong = app
            .graphql(Some(&marcus), CONNECT, manual("987 65 4320"))
            .await;
        assert_eq!(wrong.code(), "CLINICIAN_NOT_VERIFIED", "{}", app.label);
        let broken = app
            .with_idempotency_key(
                &marcus,
                "broken",
                "mutation { connectAsClinician(manual: {npi: \"1245319599\", ssn: \"987-65-4329\", ptan: \"RF5678\"}) { grants",
                json!({}),
            )
            .await
            .text()
            .await
            .unwrap();
        assert!(broken.contains("INVALID_QUERY"), "{}: {broken}", app.label);
        assert!(
            !broken.contains("987"),
            "{}: the error quotes the SSN: {broken}",
            app.label
        );
        let connected: Value = app
            .with_idempotency_key(&marcus, "connect", CONNECT, manual("987-65-4321"))
            .await
            .json()
            .await
            .unwrap();
        assert!(
            connected.get("errors").is_none(),
            "{}: {connected}",
            app.label
        );

        let dump = app.database_dump().await;
        let logs = captured_logs();
        let never_kept = [
            // SSNs, as typed and as digits
            "987-65-4321",
            "987654321",
            "987 65 4320",
            "987654320",
            "987-65-4329",
            "987654329",
            // TINs as typed, and a TIN that is no organization's
            "12-3456789",
            "55-5123456",
            "555123456",
            "34 567 8912",
            // NPIs
            "1234567893",
            "1245319599",
            &wrong_npi,
            // PTANs, as typed and as compared
            "aB1234",
            "AB1234",
            "RF5678",
            "ZQ7788",
        ];
        for value in never_kept {
            assert!(
                !dump.contains(value),
                "{}: {value} is in the database",
                app.label
            );
            assert!(
                !logs.contains(value),
                "{}: {value} is in the logs",
                app.label
            );
        }
        // What is kept instead: organization ids (an organization's own TIN),
        // masked values, and names and addresses in the people directory.
        for kept in [
            "practice:123456789",
            "*****6789",
            "*****3456",
            "Carol Prover",
            "marcus@example.org",
        ] {
            assert!(
                dump.contains(kept),
                "{}: {kept} is not in the database",
                app.label
            );
        }
    }
}

/// Runs a subcommand of the server binary on the database, which must succeed.
fn subcommand(database_url: &str, args: &[&str]) -> String {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_access-server"))
        .args(args)
        .env_clear()
        .env("DATABASE_URL", database_url)
        .output()
        .expect("the server binary runs");
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

const AUDIT: &str = "{ auditLog(filter: {personId: \"bob\"}) { edges { node { eventType actor { id } payload } } } }";

#[tokio::test]
async fn erasing_a_person_removes_their_name_and_address_and_the_audit_log_still_replays_with_their_id(
) {
    for app in spawn_apps().await {
        alice_approves_bob(&app).await;
        // What an SMTP server's refusal records: it often quotes the address.
        let bob_keyed: Value = app
            .with_idempotency_key(
                &contact_token("bob", "Robert Tables", "bob.tables@example.org"),
                "withdraw",
                "mutation { withdrawRoleRequest(requestId: \"practice:123456789/nope\") { state } }",
                json!({}),
            )
            .await
            .json()
            .await
            .unwrap();
        assert!(bob_keyed.get("errors").is_some(), "{}", app.label);
        // Once the sender is done with Bob's two emails: recording one it was still
        // sending would overwrite the error set here.
        app.until_sql_answers(
            "SELECT COUNT(*) FROM notification_outbox WHERE recipient_id = 'bob' AND state = 'SENT'",
            2,
        )
        .await;
        app.execute_sql(
            "UPDATE notification_outbox SET last_error = '550 5.1.1 <bob.tables@example.org>: unknown' \
              WHERE recipient_id = 'bob'",
        )
        .await;
        let dump = app.database_dump().await;
        for contact in ["Robert Tables", "bob.tables@example.org"] {
            assert!(
                dump.contains(contact),
                "{}: {contact} was never stored",
                app.label
            );
        }
        let auditor = token("audrey", &["auditor"]);
        let before = app.graphql(Some(&auditor), AUDIT, json!({})).await;

        let erased = subcommand(app.database_url(), &["erase-person", "bob"]);
        assert!(
            erased.contains(
                "bob: erased; directory entries: 1, delivery errors: 2, answers kept for retries: 1"
            ),
            "{}: {erased}",
            app.label
        );

        let dump = app.database_dump().await;
        for contact in ["Robert Tables", "bob.tables@example.org"] {
            assert!(
                !dump.contains(contact),
                "{}: {contact} is still stored",
                app.label
            );
        }
        assert!(
            dump.contains("Alice Example"),
            "{}: only Bob is erased",
            app.label
        );
        subcommand(app.database_url(), &["rebuild", "all"]);
        let after = app.graphql(Some(&auditor), AUDIT, json!({})).await;
        let entries = after.data("auditLog.edges").as_array().unwrap();
        assert_eq!(
            entries,
            before.data("auditLog.edges").as_array().unwrap(),
            "{}",
            app.label
        );
        assert!(
            entries
                .iter()
                .any(|entry| entry["node"]["actor"]["id"] == "bob"),
            "{}: {entries:?}",
            app.label
        );
        let exported = subcommand(app.database_url(), &["export-audit"]);
        assert!(exported.contains("\"bob\""), "{}", app.label);
        assert!(!exported.contains("Robert"), "{}", app.label);
    }
}
