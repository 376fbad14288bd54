//! Every query and mutation tried by each kind of caller, checked against one
//! table of who may do what. "Allowed" means the answer is not a refusal of
//! the caller (it may still be a domain outcome such as ALREADY_CONNECTED);
//! "hidden" means an answer that does not reveal the data exists.

use serde_json::{json, Value};

use crate::helpers::*;

/// The kinds of caller, in the order of each row's verdicts.
const CALLERS: [(&str, &[&str]); 9] = [
    ("anonymous", &[]),
    ("stranger", &[]),
    ("requester", &[]),
    ("staff", &[]),
    ("clinician", &[]),
    ("so", &[]),
    ("other-so", &[]),
    ("support", &["support"]),
    ("auditor", &["auditor"]),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Allowed,
    Denied,
    Hidden,
}

/// `A` allowed, `D` denied, `H` hidden, one letter per caller of [`CALLERS`].
fn verdicts(row: &str) -> Vec<Verdict> {
    row.chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| match c {
            'A' => Verdict::Allowed,
            'D' => Verdict::Denied,
            'H' => Verdict::Hidden,
            other => panic!("unknown verdict {other}"),
        })
        .collect()
}

fn verdict_of(response: &Response, field: &str) -> Verdict {
    if response.0.get("errors").is_some() {
        return match response.code() {
            "UNAUTHENTICATED" | "FORBIDDEN" | "SELF_DECISION" => Verdict::Denied,
            _ => Verdict::Allowed,
        };
    }
    match &response.0["data"][field] {
        Value::Null => Verdict::Hidden,
        Value::Array(items) if items.is_empty() => Verdict::Hidden,
        Value::Object(object) if object.get("totalCount") == Some(&json!(0)) => Verdict::Hidden,
        _ => Verdict::Allowed,
    }
}

/// Sets up one organization with a person of every kind, two pending
/// requests, another organization with its own Security Official, and two
/// people blocked at a registry.
async fn organization_with_everyone(app: &TestApp) -> (String, String) {
    app.first_security_official_of_greenville("so").await;
    let staff = app.pending_staff_request("staff").await;
    app.decide("so", &staff, true)
        .await
        .data("approveRoleRequest");
    app.graphql(
        Some(&named_token("clinician", "Laura Colburn")),
        "mutation { connectAsClinician { npi } }",
        json!({}),
    )
    .await
    .data("connectAsClinician");
    let withdrawable = app.pending_staff_request("requester").await;
    let decidable = app.pending_staff_request("ned").await;
    let riverside = json!({ "tin": "345678912", "npi": "1245319599", "ptan": "RF5678" });
    let other = app
        .request_role(
            "other-so",
            "practice:345678912",
            "SECURITY_OFFICIAL",
            riverside,
        )
        .await;
    assert_eq!(other.data("requestRole.request.state"), "APPROVED");
    for blocked in ["carol", "dana"] {
        for _ in 0..3 {
            app.request_role(
                blocked,
                "registry:234567891",
                "SECURITY_OFFICIAL",
                json!({ "tin": "234567891", "vendorId": "V999999" }),
            )
            .await;
        }
    }
    (withdrawable, decidable)
}

#[tokio::test]
async fn every_operation_allows_exactly_the_callers_the_rules_name() {
    for app in spawn_apps().await {
        let (withdrawable, decidable) = organization_with_everyone(&app).await;
        let support = token("support", &["support"]);
        let ticket = app
            .graphql(
                Some(&support),
                "{ blockedAccounts { person { id } ticket { number } } }",
                json!({}),
            )
            .await
            .data("blockedAccounts")
            .as_array()
            .unwrap()
            .iter()
            .find(|account| account["person"]["id"] == "carol")
            .map(|account| account["ticket"]["number"].as_str().unwrap().to_string())
            .unwrap();

        // (field, document, verdicts for: anonymous stranger requester staff clinician so other-so support auditor)
        let rows: Vec<(&str, String, &str)> = vec![
            ("me", "{ me { id } }".into(), "D A A A A A A A A"),
            ("organizations", "{ organizations(search: {type: PRACTICE, query: \"greenville\"}) { id } }".into(), "A A A A A A A A A"),
            ("organization", format!("{{ organization(id: \"{GREENVILLE}\") {{ id }} }}"), "D A A A A A A A A"),
            ("manageAccess", "{ manageAccess { tabs { type } } }".into(), "D A A A A A A A A"),
            ("pendingRequests", format!("{{ pendingRequests(organizationId: \"{GREENVILLE}\") {{ totalCount }} }}"), "D H H H H A H H H"),
            ("roleRequest", format!("{{ roleRequest(id: \"{withdrawable}\") {{ state }} }}"), "D H A H H A H A A"),
            ("organizationUsers", format!("{{ organizationUsers(organizationId: \"{GREENVILLE}\") {{ role }} }}"), "D D D D D A D A A"),
            ("blockedAccounts", "{ blockedAccounts { person { id } } }".into(), "D D D D D D D A D"),
            ("supportTicket", format!("{{ supportTicket(number: \"{ticket}\") {{ number }} }}"), "D D D D D D D A D"),
            ("auditLog", "{ auditLog { edges { cursor } } }".into(), "D D D D D D D A A"),
            ("accessAsOf", format!("{{ accessAsOf(organizationId: \"{GREENVILLE}\", at: \"2030-01-01T00:00:00Z\") {{ role }} }}"), "D D D D D D D A A"),
            ("authorize", format!("{{ authorize(personId: \"so\", organizationId: \"{GREENVILLE}\", capability: MANAGE_ACCESS) {{ allowed }} }}"), "D D D D D A D A A"),
            ("clinicianMatch", "{ clinicianMatch { npi } }".into(), "D H H H H H H H H"),
            ("notifications", "{ notifications { id } }".into(), "D H A A A A A H H"),
            ("requestRole", format!("mutation {{ requestRole(input: {{organizationId: \"{GREENVILLE}\", role: STAFF_USER}}) {{ proofRejected }} }}"), "D A A A A A A A A"),
            ("connectAsClinician", "mutation { connectAsClinician { npi } }".into(), "D A A A A A A A A"),
            ("markNotificationRead", "mutation { markNotificationRead(id: \"1\") }".into(), "D A A A A A A A A"),
            ("denyRoleRequest", format!("mutation {{ denyRoleRequest(requestId: \"{decidable}\") {{ state }} }}"), "D D D D D A D D D"),
            ("approveRoleRequest", format!("mutation {{ approveRoleRequest(requestId: \"{decidable}\") {{ state }} }}"), "D D D D D A D D D"),
            ("withdrawRoleRequest", format!("mutation {{ withdrawRoleRequest(requestId: \"{withdrawable}\") {{ state }} }}"), "D D A D D D D D D"),
            ("revokeAccess", format!("mutation {{ revokeAccess(organizationId: \"{GREENVILLE}\", personId: \"staff\") }}"), "D D D D D A D D D"),
            ("unblockAccount", "mutation { unblockAccount(organizationId: \"registry:234567891\", personId: \"dana\") }".into(), "D D D D D D D A D"),
            ("resolveTicket", format!("mutation {{ resolveTicket(number: \"{ticket}\", approve: false) {{ state }} }}"), "D D D D D D D A D"),
            ("changeRole", format!("mutation {{ changeRole(organizationId: \"{GREENVILLE}\", personId: \"ned\", role: SECURITY_OFFICIAL) {{ role }} }}"), "D D D D D D D A D"),
            ("removeSecurityOfficial", "mutation { removeSecurityOfficial(organizationId: \"practice:345678912\", personId: \"other-so\") }".into(), "D D D D D D D A D"),
        ];

        let mut checked = 0;
        for (field, document, row) in &rows {
            let expected = verdicts(row);
            assert_eq!(expected.len(), CALLERS.len(), "{field}");
            // Refused callers first: a refusal changes nothing, so the one
            // allowed to change state still finds it as it was.
            let mut order: Vec<usize> = (0..CALLERS.len()).collect();
            order.sort_by_key(|index| expected[*index] == Verdict::Allowed);
            for index in order {
                let (name, roles) = CALLERS[index];
                let bearer = (name != "anonymous").then(|| token(name, roles));
                let response = app.graphql(bearer.as_deref(), document, json!({})).await;
                assert_eq!(
                    verdict_of(&response, field),
                    expected[index],
                    "{}: {field} as {name}: {}",
                    app.label,
                    response.0
                );
                checked += 1;
            }
        }
        assert_eq!(checked, rows.len() * CALLERS.len(), "{}", app.label);
    }
}
