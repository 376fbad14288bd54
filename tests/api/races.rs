//! Concurrent commands on one organization: exactly one wins each race, the
//! loser gets a retryable CONFLICT (or sees the winner's result), nothing is
//! lost or duplicated.

use std::sync::Arc;

use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn two_security_officials_deciding_one_request_at_once_make_exactly_one_decision() {
    for app in spawn_apps().await {
        let app = Arc::new(app);
        app.first_security_official_of_greenville("alice").await;
        let dave_request = app.pending_staff_request("dave").await;
        app.decide("alice", &dave_request, true)
            .await
            .data("approveRoleRequest");
        let promoted = app
            .graphql(
                Some(&token("sam", &["support"])),
                "mutation { changeRole(organizationId: \"practice:123456789\", personId: \"dave\", role: SECURITY_OFFICIAL) { role } }",
                serde_json::json!({}),
            )
            .await;
        promoted.data("changeRole");

        let races = 10;
        for round in 0..races {
            let request = app
                .pending_staff_request(&format!("requester-{round}"))
                .await;
            let (approve, deny) = tokio::join!(
                app.decide("alice", &request, true),
                app.decide("dave", &request, false)
            );
            let outcomes = [&approve, &deny].map(|response| match response.0.get("errors") {
                None => "decided".to_string(),
                Some(_) => response.code().to_string(),
            });
            let decided = outcomes
                .iter()
                .filter(|outcome| *outcome == "decided")
                .count();
            assert_eq!(decided, 1, "{}: round {round}: {outcomes:?}", app.label);
            assert!(
                outcomes
                    .iter()
                    .all(|outcome| ["decided", "CONFLICT", "REQUEST_NOT_PENDING"]
                        .contains(&outcome.as_str())),
                "{}: {outcomes:?}",
                app.label
            );
        }
        let decisions = app
            .stored_events()
            .await
            .iter()
            .filter(|event| {
                event.event_type == "RoleRequestApproved" || event.event_type == "RoleRequestDenied"
            })
            .count();
        // dave's own approval plus one decision per race
        assert_eq!(decisions, races + 1, "{}", app.label);
    }
}

#[tokio::test]
async fn people_racing_to_be_the_first_security_official_leave_exactly_one() {
    for app in spawn_apps().await {
        let app = Arc::new(app);
        let racers: Vec<_> = (0..6)
            .map(|index| {
                let app = app.clone();
                tokio::spawn(async move {
                    app.request_role(
                        &format!("racer-{index}"),
                        GREENVILLE,
                        "SECURITY_OFFICIAL",
                        greenville_proof(),
                    )
                    .await
                })
            })
            .collect();
        let mut approved = 0;
        for racer in racers {
            let response = racer.await.unwrap();
            match response.0.get("errors") {
                Some(_) => assert_eq!(response.code(), "CONFLICT", "{}", app.label),
                None => {
                    let state = response.data("requestRole.request.state");
                    assert!(
                        state == "APPROVED" || state == "PENDING",
                        "{}: {state}",
                        app.label
                    );
                    approved += usize::from(state == &Value::from("APPROVED"));
                }
            }
        }
        assert_eq!(approved, 1, "{}", app.label);
        let grants = app
            .stored_events()
            .await
            .iter()
            .filter(|event| event.event_type == "RoleGranted")
            .count();
        assert_eq!(grants, 1, "{}", app.label);
    }
}
