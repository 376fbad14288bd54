//! What people see, read from the views right after the commands that changed
//! it (read-your-writes): Manage Access, the pending queue, the support desk,
//! the audit log and access as of an instant.

use access_domain::aggregate::RECENTLY_CLOSED;
use access_store::testing::fresh_databases;
use serde_json::{json, Value};

use crate::helpers::*;

const MANAGE_ACCESS: &str = "{ manageAccess {
    tabs { type connections { organization { id } role connectedUsers pendingUsers } }
    openRequests { state organization { id } }
    performanceFeedbackOrganizations { id }
} }";

const PENDING: &str = "query($org: ID, $first: Int, $after: String) {
    pendingRequests(organizationId: $org, first: $first, after: $after) {
        totalCount pageInfo { hasNextPage endCursor } edges { cursor node { requester { id } organization { id } } }
    }
}";

const RIVERSIDE: &str = "practice:345678912";

fn riverside_proof() -> Value {
    json!({ "tin": "345678912", "npi": "1245319599", "ptan": "RF5678" })
}

fn requesters(page: &Response) -> Vec<String> {
    page.data("pendingRequests.edges")
        .as_array()
        .unwrap()
        .iter()
        .map(|edge| {
            edge["node"]["requester"]["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

#[tokio::test]
async fn manage_access_shows_roles_counts_open_requests_and_clinician_feedback_organizations() {
    for app in spawn_apps().await {
        app.first_security_official_of_greenville("alice").await;
        let bob = app.pending_staff_request("bob").await;
        app.pending_staff_request("carol").await;
        app.decide("alice", &bob, true)
            .await
            .data("approveRoleRequest");

        let alice = app
            .graphql(Some(&token("alice", &[])), MANAGE_ACCESS, json!({}))
            .await;
        assert_eq!(
            alice.data("manageAccess.tabs"),
            &json!([{ "type": "PRACTICE", "connections": [{
                "organization": { "id": GREENVILLE }, "role": "SECURITY_OFFICIAL", "connectedUsers": 2, "pendingUsers": 1
            }] }]),
            "{}",
            app.label
        );
        let bob_view = app
            .graphql(Some(&token("bob", &[])), MANAGE_ACCESS, json!({}))
            .await;
        assert_eq!(
            bob_view.data("manageAccess.tabs")[0]["connections"][0],
            json!({ "organization": { "id": GREENVILLE }, "role": "STAFF_USER", "connectedUsers": null, "pendingUsers": null }),
            "{}",
            app.label
        );
        let carol = app
            .graphql(Some(&token("carol", &[])), MANAGE_ACCESS, json!({}))
            .await;
        assert_eq!(carol.data("manageAccess.tabs"), &json!([]), "{}", app.label);
        assert_eq!(
            carol.data("manageAccess.openRequests"),
            &json!([{ "state": "PENDING", "organization": { "id": GREENVILLE } }]),
            "{}",
            app.label
        );

        let laura = named_token("laura", "Laura Colburn");
        app.graphql(
            Some(&laura),
            "mutation { connectAsClinician { npi } }",
            json!({}),
        )
        .await
        .data("connectAsClinician");
        let clinician = app.graphql(Some(&laura), MANAGE_ACCESS, json!({})).await;
        assert_eq!(
            clinician.data("manageAccess.tabs"),
            &json!([{ "type": "PRACTICE", "connections": [{
                "organization": { "id": GREENVILLE }, "role": "CLINICIAN", "connectedUsers": null, "pendingUsers": null
            }] }]),
            "{}",
            app.label
        );
        let mut feedback: Vec<String> = clinician
            .data("manageAccess.performanceFeedbackOrganizations")
            .as_array()
            .unwrap()
            .iter()
            .map(|organization| organization["id"].as_str().unwrap().to_string())
            .collect();
        feedback.sort();
        assert_eq!(
            feedback,
            vec!["apm-entity:A1234", "virtual-group:VG-00123"],
            "{}",
            app.label
        );
    }
}

#[tokio::test]
async fn the_pending_queue_lists_every_organization_of_the_security_official_oldest_first_in_stable_pages(
) {
    for app in spawn_apps().await {
        app.first_security_official_of_greenville("alice").await;
        let riverside = app
            .request_role("alice", RIVERSIDE, "SECURITY_OFFICIAL", riverside_proof())
            .await;
        assert_eq!(
            riverside.data("requestRole.request.state"),
            "APPROVED",
            "{}",
            app.label
        );
        for (person, organization) in [
            ("p1", GREENVILLE),
            ("p2", RIVERSIDE),
            ("p3", GREENVILLE),
            ("p4", RIVERSIDE),
            ("p5", GREENVILLE),
        ] {
            let response = app
                .request_role(person, organization, "STAFF_USER", Value::Null)
                .await;
            assert_eq!(
                response.data("requestRole.request.state"),
                "PENDING",
                "{}",
                app.label
            );
        }
        let alice = token("alice", &[]);
        let first = app
            .graphql(Some(&alice), PENDING, json!({ "first": 2 }))
            .await;
        assert_eq!(first.data("pendingRequests.totalCount"), 5, "{}", app.label);
        assert_eq!(requesters(&first), vec!["p1", "p2"], "{}", app.label);
        assert_eq!(
            first.data("pendingRequests.pageInfo.hasNextPage"),
            true,
            "{}",
            app.label
        );

        // A request arriving between pages does not shift the pages already read.
        app.request_role("p6", GREENVILLE, "STAFF_USER", Value::Null)
            .await;
        let cursor = first.data("pendingRequests.pageInfo.endCursor").clone();
        let second = app
            .graphql(
                Some(&alice),
                PENDING,
                json!({ "first": 2, "after": cursor }),
            )
            .await;
        assert_eq!(requesters(&second), vec!["p3", "p4"], "{}", app.label);

        let riverside_only = app
            .graphql(Some(&alice), PENDING, json!({ "org": RIVERSIDE }))
            .await;
        assert_eq!(
            requesters(&riverside_only),
            vec!["p2", "p4"],
            "{}",
            app.label
        );

        let stranger = app
            .graphql(
                Some(&token("mallory", &[])),
                PENDING,
                json!({ "org": GREENVILLE }),
            )
            .await;
        assert_eq!(
            stranger.data("pendingRequests.totalCount"),
            0,
            "{}",
            app.label
        );

        let too_big = app
            .graphql(Some(&alice), PENDING, json!({ "first": 101 }))
            .await;
        assert_eq!(
            too_big.error()["extensions"]["field"],
            "first",
            "{}",
            app.label
        );
        let forged = app
            .graphql(Some(&alice), PENDING, json!({ "after": "not-a-cursor" }))
            .await;
        assert_eq!(
            forged.error()["extensions"]["field"],
            "after",
            "{}",
            app.label
        );
    }
}

#[tokio::test]
async fn support_sees_the_blocked_account_and_resolves_its_ticket() {
    for app in spawn_apps().await {
        for _ in 0..3 {
            app.request_role(
                "carol",
                GREENVILLE,
                "SECURITY_OFFICIAL",
                wrong_greenville_proof(),
            )
            .await;
        }
        let support = token("sam", &["support"]);
        let blocked = app
            .graphql(
                Some(&support),
                "{ blockedAccounts { person { id } organization { id } ticket { number state attempts { maskedProof reason } } } }",
                json!({}),
            )
            .await;
        let accounts = blocked.data("blockedAccounts").as_array().unwrap().clone();
        assert_eq!(accounts.len(), 1, "{}", app.label);
        assert_eq!(accounts[0]["person"]["id"], "carol", "{}", app.label);
        assert_eq!(
            accounts[0]["ticket"]["attempts"].as_array().unwrap().len(),
            3,
            "{}",
            app.label
        );
        assert_eq!(
            accounts[0]["ticket"]["attempts"][0]["reason"],
            "the PTAN does not match that clinician's enrollment",
            "{}",
            app.label
        );
        let number = accounts[0]["ticket"]["number"]
            .as_str()
            .unwrap()
            .to_string();

        let not_support = app
            .graphql(
                Some(&token("alice", &[])),
                "{ blockedAccounts { person { id } } }",
                json!({}),
            )
            .await;
        assert_eq!(not_support.code(), "FORBIDDEN", "{}", app.label);

        let resolved = app
            .graphql(
                Some(&support),
                "mutation($n: String!) { resolveTicket(number: $n, approve: true, note: \"checked by phone\") { state person { id } } }",
                json!({ "n": number }),
            )
            .await;
        assert_eq!(
            resolved.data("resolveTicket.state"),
            "RESOLVED_APPROVED",
            "{}",
            app.label
        );
        let again = app
            .graphql(
                Some(&support),
                "mutation($n: String!) { resolveTicket(number: $n, approve: false) { state } }",
                json!({ "n": number }),
            )
            .await;
        assert_eq!(again.code(), "REQUEST_NOT_PENDING", "{}", app.label);

        let carol = app
            .graphql(Some(&token("carol", &[])), MANAGE_ACCESS, json!({}))
            .await;
        assert_eq!(
            carol.data("manageAccess.tabs")[0]["connections"][0]["role"],
            "SECURITY_OFFICIAL",
            "{}",
            app.label
        );
        let none_blocked = app
            .graphql(
                Some(&support),
                "{ blockedAccounts { person { id } } }",
                json!({}),
            )
            .await;
        assert_eq!(
            none_blocked.data("blockedAccounts"),
            &json!([]),
            "{}",
            app.label
        );
        let unknown = app
            .graphql(
                Some(&support),
                "{ supportTicket(number: \"CS99999999\") { number } }",
                json!({}),
            )
            .await;
        assert_eq!(unknown.data("supportTicket"), &Value::Null, "{}", app.label);
    }
}

#[tokio::test]
async fn auditors_read_the_whole_history_filtered_and_others_cannot() {
    for app in spawn_apps().await {
        app.first_security_official_of_greenville("alice").await;
        let bob = app.pending_staff_request("bob").await;
        app.decide("alice", &bob, true)
            .await
            .data("approveRoleRequest");
        let query = "query($filter: AuditFilter, $first: Int, $after: String) {
            auditLog(filter: $filter, first: $first, after: $after) {
                pageInfo { hasNextPage endCursor }
                edges { node { position organizationId sequence eventType eventVersion actor { id } payload } }
            }
        }";
        let auditor = token("audrey", &["auditor"]);
        let all = app.graphql(Some(&auditor), query, json!({})).await;
        let events = all.data("auditLog.edges").as_array().unwrap().clone();
        let types: Vec<&str> = events
            .iter()
            .map(|edge| edge["node"]["eventType"].as_str().unwrap())
            .collect();
        assert_eq!(
            types,
            vec![
                "RoleRequested",
                "ProofAccepted",
                "RoleGranted",
                "RoleRequested",
                "RoleRequestApproved",
                "RoleGranted"
            ],
            "{}",
            app.label
        );
        let positions: Vec<i64> = events
            .iter()
            .map(|edge| edge["node"]["position"].as_str().unwrap().parse().unwrap())
            .collect();
        assert!(
            positions.windows(2).all(|pair| pair[0] < pair[1]),
            "{}: {positions:?}",
            app.label
        );
        assert_eq!(events[4]["node"]["actor"]["id"], "alice", "{}", app.label);
        assert_eq!(events[4]["node"]["sequence"], 5, "{}", app.label);

        let bobs = app
            .graphql(
                Some(&auditor),
                query,
                json!({ "filter": { "personId": "bob" } }),
            )
            .await;
        assert_eq!(
            bobs.data("auditLog.edges").as_array().unwrap().len(),
            3,
            "{}",
            app.label
        );
        let grants = app
            .graphql(
                Some(&auditor),
                query,
                json!({ "filter": { "eventTypes": ["RoleGranted"] }, "first": 1 }),
            )
            .await;
        assert_eq!(
            grants.data("auditLog.pageInfo.hasNextPage"),
            true,
            "{}",
            app.label
        );
        let cursor = grants.data("auditLog.pageInfo.endCursor").clone();
        let next = app
            .graphql(
                Some(&auditor),
                query,
                json!({ "filter": { "eventTypes": ["RoleGranted"] }, "after": cursor }),
            )
            .await;
        assert!(
            next.data("auditLog.edges")[0]["node"]["payload"]
                .as_str()
                .unwrap()
                .contains("bob"),
            "{}",
            app.label
        );

        let refused = app
            .graphql(Some(&token("alice", &[])), query, json!({}))
            .await;
        assert_eq!(refused.code(), "FORBIDDEN", "{}", app.label);
    }
}

#[tokio::test]
async fn access_as_of_answers_who_held_which_role_at_past_instants() {
    for app in spawn_apps().await {
        let before = chrono::Utc::now();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        app.first_security_official_of_greenville("alice").await;
        let bob = app.pending_staff_request("bob").await;
        app.decide("alice", &bob, true)
            .await
            .data("approveRoleRequest");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let both = chrono::Utc::now();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        app.graphql(
            Some(&token("alice", &[])),
            "mutation { revokeAccess(organizationId: \"practice:123456789\", personId: \"bob\") }",
            json!({}),
        )
        .await
        .data("revokeAccess");

        let query = "query($at: DateTime!) { accessAsOf(organizationId: \"practice:123456789\", at: $at) { person { id } role } }";
        let auditor = token("audrey", &["auditor"]);
        let people = |response: Response| {
            let mut people: Vec<String> = response
                .data("accessAsOf")
                .as_array()
                .unwrap()
                .iter()
                .map(|grant| {
                    format!(
                        "{} {}",
                        grant["person"]["id"].as_str().unwrap(),
                        grant["role"].as_str().unwrap()
                    )
                })
                .collect();
            people.sort();
            people
        };
        let at_start = app
            .graphql(Some(&auditor), query, json!({ "at": before }))
            .await;
        assert_eq!(people(at_start), Vec::<String>::new(), "{}", app.label);
        let in_between = app
            .graphql(Some(&auditor), query, json!({ "at": both }))
            .await;
        assert_eq!(
            people(in_between),
            vec!["alice SECURITY_OFFICIAL", "bob STAFF_USER"],
            "{}",
            app.label
        );
        let now = app
            .graphql(Some(&auditor), query, json!({ "at": chrono::Utc::now() }))
            .await;
        assert_eq!(
            people(now),
            vec!["alice SECURITY_OFFICIAL"],
            "{}",
            app.label
        );

        let refused = app
            .graphql(Some(&token("alice", &[])), query, json!({ "at": both }))
            .await;
        assert_eq!(refused.code(), "FORBIDDEN", "{}", app.label);
    }
}

/// The organization's state keeps only the latest closed requests whole
/// (docs/adr/11-compact-organization-state.md); an older one is read from the views,
/// shown to the same people, and still refused as decided.
#[tokio::test]
async fn a_request_closed_long_ago_is_read_whole_from_the_views() {
    const ROLE_REQUEST: &str = "query($id: ID!) {
        roleRequest(id: $id) { state requester { id } decidedBy { id } reason decidedAt }
    }";
    for app in spawn_apps().await {
        app.first_security_official_of_greenville("alice").await;
        let bob = app.pending_staff_request("bob").await;
        app.decide("alice", &bob, false)
            .await
            .data("denyRoleRequest");
        for n in 0..RECENTLY_CLOSED {
            let request = app.pending_staff_request(&format!("staff-{n}")).await;
            app.decide("alice", &request, false)
                .await
                .data("denyRoleRequest");
        }

        for reader in [
            token("bob", &[]),
            token("alice", &[]),
            token("auditor", &["auditor"]),
        ] {
            let answer = app
                .graphql(Some(&reader), ROLE_REQUEST, json!({ "id": bob }))
                .await;
            let request = answer.data("roleRequest");
            assert_eq!(request["state"], "DENIED", "{}", app.label);
            assert_eq!(request["requester"]["id"], "bob", "{}", app.label);
            assert_eq!(request["decidedBy"]["id"], "alice", "{}", app.label);
            assert_eq!(request["reason"], "not our staff", "{}", app.label);
            assert!(request["decidedAt"].is_string(), "{}", app.label);
        }
        let stranger = app
            .graphql(
                Some(&token("mallory", &[])),
                ROLE_REQUEST,
                json!({ "id": bob }),
            )
            .await;
        assert_eq!(stranger.data("roleRequest"), &Value::Null, "{}", app.label);
        let again = app.decide("alice", &bob, true).await;
        assert_eq!(again.code(), "REQUEST_NOT_PENDING", "{}", app.label);
    }
}

async fn answers_sent_as_kept(app: &TestApp) -> u64 {
    let metrics = app.get("/metrics").await.text().await.unwrap();
    metrics
        .lines()
        .find_map(|line| line.strip_prefix("access_graphql_answers_sent_as_kept_total "))
        .and_then(|count| count.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "{}: no count of answers sent as kept in\n{metrics}",
                app.label
            )
        })
}

/// docs/adr/13-remembered-answer-texts.md
#[tokio::test]
async fn a_repeated_read_is_answered_as_kept_for_its_reader_until_a_change_shows_in_it() {
    for app in spawn_apps().await {
        app.first_security_official_of_greenville("alice").await;
        app.pending_staff_request("bob").await;
        let alice = token("alice", &[]);
        let queue = json!({ "first": 10 });
        let first = app.graphql(Some(&alice), PENDING, queue.clone()).await;
        let again = app.graphql(Some(&alice), PENDING, queue.clone()).await;
        assert_eq!(again.0, first.0, "{}", app.label);
        assert_eq!(answers_sent_as_kept(&app).await, 1, "{}", app.label);

        app.pending_staff_request("carol").await;
        let after = app.graphql(Some(&alice), PENDING, queue.clone()).await;
        assert_eq!(requesters(&after), ["bob", "carol"], "{}", app.label);
        app.graphql(Some(&alice), PENDING, queue.clone()).await;
        assert_eq!(answers_sent_as_kept(&app).await, 2, "{}", app.label);

        for _ in 0..2 {
            app.graphql(Some(&alice), MANAGE_ACCESS, json!({}))
                .await
                .data("manageAccess");
        }
        let bob = app
            .graphql(Some(&token("bob", &[])), MANAGE_ACCESS, json!({}))
            .await;
        assert_eq!(bob.data("manageAccess.tabs"), &json!([]), "{}", app.label);
        assert_eq!(answers_sent_as_kept(&app).await, 3, "{}", app.label);

        let with_tickets =
            "{ pendingRequests(first: 10) { edges { node { ticket { number } } } } }";
        for _ in 0..2 {
            app.graphql(Some(&alice), with_tickets, json!({}))
                .await
                .data("pendingRequests");
        }
        assert_eq!(
            answers_sent_as_kept(&app).await,
            3,
            "{}: a read of the support view was kept",
            app.label
        );
    }
}

const AUTHORIZE_SUBMITTING: &str = "query($org: ID!) {
    authorize(organizationId: $org, capability: SUBMIT_DATA) { allowed role reason }
}";

/// Bob's role in Greenville, as `authorize` tells Bob.
async fn role_bob_holds(app: &TestApp) -> Value {
    app.graphql(
        Some(&token("bob", &[])),
        AUTHORIZE_SUBMITTING,
        json!({ "org": GREENVILLE }),
    )
    .await
    .data("authorize.role")
    .clone()
}

/// docs/adr/13-remembered-answer-texts.md: `authorize` about oneself.
#[tokio::test]
async fn a_repeated_authorize_about_oneself_is_answered_as_kept_until_the_organization_changes() {
    for app in spawn_apps().await {
        app.first_security_official_of_greenville("alice").await;
        let request = app.pending_staff_request("bob").await;
        let bob = token("bob", &[]);
        let greenville = json!({ "org": GREENVILLE });
        let denied = app
            .graphql(Some(&bob), AUTHORIZE_SUBMITTING, greenville.clone())
            .await;
        assert_eq!(
            denied.data("authorize.allowed"),
            &json!(false),
            "{}",
            app.label
        );
        let again = app
            .graphql(Some(&bob), AUTHORIZE_SUBMITTING, greenville.clone())
            .await;
        assert_eq!(again.0, denied.0, "{}", app.label);
        assert_eq!(answers_sent_as_kept(&app).await, 1, "{}", app.label);

        app.decide("alice", &request, true)
            .await
            .data("approveRoleRequest");
        assert_eq!(
            role_bob_holds(&app).await,
            json!("STAFF_USER"),
            "{}: the approval shows at once",
            app.label
        );
        assert_eq!(answers_sent_as_kept(&app).await, 1, "{}", app.label);

        // About someone else, the answer depends on the token's roles: never kept.
        let about_bob = "query($org: ID!) {
            authorize(personId: \"bob\", organizationId: $org, capability: SUBMIT_DATA) { allowed }
        }";
        let support = token("sam", &["support"]);
        for _ in 0..2 {
            app.graphql(Some(&support), about_bob, greenville.clone())
                .await
                .data("authorize");
        }
        assert_eq!(answers_sent_as_kept(&app).await, 1, "{}", app.label);
    }
}

/// A command through another server process shows in the kept `authorize` answers of
/// the process that writes the views as soon as that command is acknowledged. PostgreSQL
/// only: on SQLite processes notice each other's commits by polling (docs/adr/05).
#[tokio::test]
async fn a_kept_authorize_answer_goes_when_another_server_process_changes_the_organization() {
    let Some(database) = fresh_databases()
        .await
        .into_iter()
        .find(|database| database.label == "postgres")
    else {
        eprintln!("skipping: two processes see each other at once on PostgreSQL alone (TEST_DATABASE_URL)");
        return;
    };
    let app = spawn_app(database).await;
    let other = ServerProcess::start(&app).await;
    app.first_security_official_of_greenville("alice").await;
    let request = app.pending_staff_request("bob").await;
    for _ in 0..2 {
        assert_eq!(role_bob_holds(&app).await, Value::Null, "{}", app.label);
    }
    assert_eq!(answers_sent_as_kept(&app).await, 1, "{}", app.label);

    let approved = other
        .graphql(
            Some(&token("alice", &[])),
            "mutation($id: ID!) { approveRoleRequest(requestId: $id) { state } }",
            json!({ "id": request }),
        )
        .await;
    assert_eq!(
        approved.data("approveRoleRequest.state"),
        &json!("APPROVED"),
        "{}",
        app.label
    );
    assert_eq!(
        role_bob_holds(&app).await,
        json!("STAFF_USER"),
        "{}: the other process's approval shows at once",
        app.label
    );
}
