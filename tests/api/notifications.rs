//! Notifications over HTTP (domain rule 10): on screen through `notifications` and
//! `markNotificationRead`, by email through an SMTP sink started by the test, or into
//! the log without ACCESS_SMTP_URL.

use std::collections::BTreeMap;
use std::time::Duration;

use access_api::auth::{sign_hs256, TokenClaims};
use access_notifications::testing::{Received, SmtpSink};
use access_notifications::{MailSettings, SenderOptions};
use access_store::testing::fresh_databases;
use serde_json::{json, Value};

use crate::helpers::*;

const WAIT: Duration = Duration::from_secs(20);
/// How long a test looks for a copy of an email it should not get.
const SETTLE: Duration = Duration::from_millis(500);

/// A token whose claims carry the person's email address, as the identity provider's do.
fn signed_in(person: &str, name: &str, roles: &[&str]) -> String {
    let email = format!("{person}@example.org");
    sign_hs256(
        SECRET,
        &TokenClaims {
            sub: person,
            name: Some(name),
            email: Some(&email),
            roles: roles.to_vec(),
            exp: (chrono::Utc::now() + chrono::Duration::hours(1)).timestamp(),
        },
    )
}

fn mail_to(sink_url: &str, sender: SenderOptions) -> MailSettings {
    MailSettings {
        sender,
        ..MailSettings::parse(Some(sink_url), Some("QPP Access <access@example.org>")).unwrap()
    }
}

async fn as_person(app: &TestApp, person: &str, query: &str, variables: Value) -> Response {
    app.graphql(Some(&signed_in(person, person, &[])), query, variables)
        .await
}

const REQUEST_ROLE: &str = "mutation($input: RequestRoleInput!) {
    requestRole(input: $input) { proofRejected request { id state } } }";

async fn request_role(
    app: &TestApp,
    person: &str,
    organization: &str,
    role: &str,
    proof: Value,
) -> Response {
    let input =
        json!({ "input": { "organizationId": organization, "role": role, "proof": proof } });
    as_person(app, person, REQUEST_ROLE, input).await
}

/// Returns the pending request's id.
async fn staff_request(app: &TestApp, person: &str) -> String {
    let response = request_role(app, person, GREENVILLE, "STAFF_USER", Value::Null).await;
    assert_eq!(
        response.data("requestRole.request.state"),
        "PENDING",
        "{}",
        app.label
    );
    response
        .data("requestRole.request.id")
        .as_str()
        .unwrap()
        .to_string()
}

async fn approve(app: &TestApp, approver: &str, request: &str) {
    let response = as_person(
        app,
        approver,
        "mutation($id: ID!) { approveRoleRequest(requestId: $id) { state } }",
        json!({ "id": request }),
    )
    .await;
    assert_eq!(
        response.data("approveRoleRequest.state"),
        "APPROVED",
        "{}",
        app.label
    );
}

/// Every message the sink received, by (recipient, subject).
fn by_recipient_and_subject(messages: &[Received]) -> BTreeMap<(String, String), Vec<&Received>> {
    let mut grouped: BTreeMap<(String, String), Vec<&Received>> = BTreeMap::new();
    for message in messages {
        grouped
            .entry((message.recipients.join(","), message.subject()))
            .or_default()
            .push(message);
    }
    grouped
}

#[tokio::test]
async fn a_scripted_journey_mails_each_person_concerned_exactly_once_in_plain_words() {
    for database in fresh_databases().await {
        let sink = SmtpSink::start().await;
        let url = sink.url();
        let app = spawn_app_with(database, |settings| {
            settings.mail = mail_to(&url, SenderOptions::default());
        })
        .await;

        // alice proves the practice: the first Security Official, approved automatically.
        let alice = request_role(
            &app,
            "alice",
            GREENVILLE,
            "SECURITY_OFFICIAL",
            greenville_proof(),
        )
        .await;
        assert_eq!(alice.data("requestRole.request.state"), "APPROVED");
        // bob asks, alice approves, and later revokes him.
        let bob = staff_request(&app, "bob").await;
        approve(&app, "alice", &bob).await;
        // carol asks and is denied, with a reason.
        let carol = staff_request(&app, "carol").await;
        let denied = as_person(
            &app,
            "alice",
            "mutation($id: ID!) { denyRoleRequest(requestId: $id, reason: \"not our staff\") { state } }",
            json!({ "id": carol }),
        )
        .await;
        assert_eq!(denied.data("denyRoleRequest.state"), "DENIED");
        // dave fails his proof for Riverside three times and is blocked.
        for _ in 0..3 {
            let riverside = json!({ "tin": "345678912", "npi": "1245319599", "ptan": "ZZ9999" });
            let attempt = request_role(
                &app,
                "dave",
                "practice:345678912",
                "SECURITY_OFFICIAL",
                riverside,
            )
            .await;
            assert_eq!(attempt.data("requestRole.proofRejected"), true);
        }
        let revoked = as_person(
            &app,
            "alice",
            "mutation { revokeAccess(organizationId: \"practice:123456789\", personId: \"bob\") }",
            json!({}),
        )
        .await;
        assert_eq!(revoked.data("revokeAccess"), true);
        // erin is approved, then support makes her a Security Official.
        let erin = staff_request(&app, "erin").await;
        approve(&app, "alice", &erin).await;
        let changed = app
            .graphql(
                Some(&signed_in("sam", "Sam Support", &["support"])),
                "mutation { changeRole(organizationId: \"practice:123456789\", personId: \"erin\", role: SECURITY_OFFICIAL) { role } }",
                json!({}),
            )
            .await;
        assert_eq!(changed.data("changeRole.role"), "SECURITY_OFFICIAL");
        // laura's name matches a clinician of the demo data.
        let connected = app
            .graphql(
                Some(&signed_in("laura", "Laura Colburn", &[])),
                "mutation { connectAsClinician { npi } }",
                json!({}),
            )
            .await;
        assert_eq!(connected.data("connectAsClinician.npi"), "1234567893");

        let greenville = "Greenville Medical Clinic";
        let riverside = "Riverside Family Practice";
        let expected: Vec<(&str, String, usize)> = vec![
            (
                "alice",
                format!("Request approved: Security Official of {greenville}"),
                1,
            ),
            (
                "alice",
                format!("New request waiting for your approval: {greenville}"),
                3,
            ),
            (
                "bob",
                format!("Request submitted: Staff User of {greenville}"),
                1,
            ),
            (
                "bob",
                format!("Request approved: Staff User of {greenville}"),
                1,
            ),
            ("bob", format!("Access removed: {greenville}"), 1),
            (
                "carol",
                format!("Request submitted: Staff User of {greenville}"),
                1,
            ),
            ("carol", format!("Request denied: {greenville}"), 1),
            (
                "dave",
                format!("We could not verify your information: {riverside}"),
                2,
            ),
            (
                "dave",
                "Your request is under manual review: ticket CS".to_string(),
                1,
            ),
            (
                "erin",
                format!("Request submitted: Staff User of {greenville}"),
                1,
            ),
            (
                "erin",
                format!("Request approved: Staff User of {greenville}"),
                1,
            ),
            ("erin", format!("Your role changed: {greenville}"), 1),
            (
                "laura",
                format!("Connected as a Clinician: {greenville}"),
                1,
            ),
            (
                "laura",
                "Connected as a Clinician: Buckeye ACO".to_string(),
                1,
            ),
            (
                "laura",
                "Connected as a Clinician: Ohio Valley Virtual Group".to_string(),
                1,
            ),
        ];
        let total = expected.iter().map(|(_, _, count)| count).sum();
        sink.wait_for(total, WAIT).await;
        tokio::time::sleep(SETTLE).await;
        let messages = sink.messages();
        assert_eq!(
            messages.len(),
            total,
            "{}: {:#?}",
            app.label,
            by_recipient_and_subject(&messages).keys()
        );
        let grouped = by_recipient_and_subject(&messages);
        for (who, subject, count) in &expected {
            let address = format!("{who}@example.org");
            let found: usize = grouped
                .iter()
                .filter(|((to, got), _)| *to == address && got.starts_with(subject.as_str()))
                .map(|(_, copies)| copies.len())
                .sum();
            assert_eq!(found, *count, "{}: {who} / {subject}", app.label);
        }

        let body = |who: &str, subject: &str| {
            grouped
                .iter()
                .find(|((to, got), _)| to.starts_with(who) && got.starts_with(subject))
                .map(|(_, copies)| copies[0].body_words())
                .unwrap_or_else(|| panic!("{}: no {subject} for {who}", app.label))
        };
        assert!(body("carol", "Request denied").contains("Reason given: \"not our staff\""));
        let blocked = body("dave", "Your request is under manual review");
        assert!(
            blocked.contains("under manual review by the QPP Help Desk, ticket CS")
                && blocked
                    .contains("You cannot submit another attempt for Riverside Family Practice"),
            "{blocked}"
        );
        assert!(body("erin", "Your role changed").contains("from Staff User to Security Official"));
        assert!(body("bob", "Access removed").contains("revoked your Staff User access"));
        assert!(body("alice", "New request waiting").contains("approve or deny it"));
        let first = &grouped.values().next().unwrap()[0];
        assert_eq!(first.mail_from, "access@example.org");

        // Organization names, never the values people prove with.
        for message in &messages {
            for proof in [
                "123456789",
                "345678912",
                "1234567893",
                "1245319599",
                "AB1234",
                "ZZ9999",
            ] {
                assert!(
                    !message.data.contains(proof),
                    "{}: {proof} in {}",
                    app.label,
                    message.data
                );
            }
        }
    }
}

#[tokio::test]
async fn emails_made_while_the_mail_server_is_down_are_each_delivered_once_when_it_is_back() {
    for database in fresh_databases().await {
        let sink = SmtpSink::start().await;
        let (address, url) = (sink.address(), sink.url());
        sink.stop().await;
        let app = spawn_app_with(database, |settings| {
            settings.mail = mail_to(
                &url,
                SenderOptions {
                    max_attempts: 1000,
                    first_retry: Duration::from_millis(50),
                    longest_retry: Duration::from_millis(200),
                    poll_interval: Duration::from_millis(100),
                    ..SenderOptions::default()
                },
            );
        })
        .await;

        request_role(
            &app,
            "alice",
            GREENVILLE,
            "SECURITY_OFFICIAL",
            greenville_proof(),
        )
        .await;
        let bob = staff_request(&app, "bob").await;
        approve(&app, "alice", &bob).await;
        // Commands answered at once while every email fails and waits for its next try.
        tokio::time::sleep(Duration::from_millis(700)).await;

        let back = SmtpSink::start_on(address).await.unwrap();
        back.wait_for(4, WAIT).await;
        tokio::time::sleep(SETTLE).await;
        let delivered: Vec<(String, String)> = by_recipient_and_subject(&back.messages())
            .into_iter()
            .map(|((to, subject), copies)| {
                assert_eq!(copies.len(), 1, "{}: {subject} to {to}", app.label);
                (to, subject)
            })
            .collect();
        assert_eq!(
            delivered,
            [
                (
                    "alice@example.org".to_string(),
                    "New request waiting for your approval: Greenville Medical Clinic".to_string()
                ),
                (
                    "alice@example.org".to_string(),
                    "Request approved: Security Official of Greenville Medical Clinic".to_string()
                ),
                (
                    "bob@example.org".to_string(),
                    "Request approved: Staff User of Greenville Medical Clinic".to_string()
                ),
                (
                    "bob@example.org".to_string(),
                    "Request submitted: Staff User of Greenville Medical Clinic".to_string()
                ),
            ],
            "{}",
            app.label
        );
    }
}

const NOTIFICATIONS: &str =
    "query($unread: Boolean) { notifications(unreadOnly: $unread) { id at kind message read } }";
const MARK_READ: &str = "mutation($id: ID!) { markNotificationRead(id: $id) }";

#[tokio::test]
async fn a_person_lists_and_marks_read_their_own_notifications_and_no_one_elses() {
    for app in spawn_apps().await {
        request_role(
            &app,
            "alice",
            GREENVILLE,
            "SECURITY_OFFICIAL",
            greenville_proof(),
        )
        .await;
        staff_request(&app, "bob").await;

        let listed = as_person(&app, "alice", NOTIFICATIONS, json!({})).await;
        let alice = listed.data("notifications").as_array().unwrap().clone();
        let kinds: Vec<&str> = alice.iter().map(|n| n["kind"].as_str().unwrap()).collect();
        assert_eq!(
            kinds,
            ["NEW_PENDING_REQUEST", "REQUEST_APPROVED"],
            "{}: newest first",
            app.label
        );
        assert_eq!(
            alice[1]["message"],
            "Your information was verified: you are now a Security Official of Greenville Medical Clinic."
        );
        assert!(alice.iter().all(|n| n["read"] == false), "{}", app.label);
        let bob = as_person(&app, "bob", NOTIFICATIONS, json!({})).await;
        assert_eq!(bob.data("notifications")[0]["kind"], "REQUEST_SUBMITTED");

        let pending = alice[0]["id"].as_str().unwrap();
        for someone_elses in [pending, "not-an-id", "1:bob"] {
            let refused = as_person(&app, "bob", MARK_READ, json!({ "id": someone_elses })).await;
            assert_eq!(
                refused.code(),
                "NOT_FOUND",
                "{}: {someone_elses}",
                app.label
            );
        }
        for _ in 0..2 {
            let marked = as_person(&app, "alice", MARK_READ, json!({ "id": pending })).await;
            assert_eq!(marked.data("markNotificationRead"), true, "{}", app.label);
        }
        let unread = as_person(&app, "alice", NOTIFICATIONS, json!({ "unread": true })).await;
        let unread = unread.data("notifications").as_array().unwrap().clone();
        assert_eq!(unread.len(), 1, "{}", app.label);
        assert_eq!(unread[0]["kind"], "REQUEST_APPROVED");
        let bob = as_person(&app, "bob", NOTIFICATIONS, json!({ "unread": true })).await;
        assert_eq!(
            bob.data("notifications").as_array().unwrap().len(),
            1,
            "{}",
            app.label
        );

        let anonymous = app.graphql(None, NOTIFICATIONS, json!({})).await;
        assert_eq!(anonymous.code(), "UNAUTHENTICATED");
    }
}

#[tokio::test]
async fn without_an_smtp_server_each_email_is_written_once_to_the_log_with_its_recipient_and_subject(
) {
    for app in spawn_apps().await {
        let person = format!("logged-{}", app.label);
        let response = request_role(
            &app,
            &person,
            GREENVILLE,
            "SECURITY_OFFICIAL",
            greenville_proof(),
        )
        .await;
        assert_eq!(response.data("requestRole.request.state"), "APPROVED");
        let recipient = format!("recipient={person} ");
        let logged = || {
            captured_logs()
                .lines()
                .filter(|line| line.contains("email logged, not sent") && line.contains(&recipient))
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        let deadline = tokio::time::Instant::now() + WAIT;
        while logged().is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(SETTLE).await;
        let lines = logged();
        assert_eq!(lines.len(), 1, "{}: {lines:?}", app.label);
        assert!(
            lines[0].contains("INFO")
                && lines[0].contains(
                    "subject=Request approved: Security Official of Greenville Medical Clinic"
                ),
            "{}",
            lines[0]
        );
        for proof in ["123456789", "1234567893", "AB1234", "@example.org"] {
            assert!(!lines[0].contains(proof), "{}", lines[0]);
        }
    }
}
