//! Concurrent commands on one organization: exactly one wins each race, the
//! loser gets a retryable CONFLICT (or sees the winner's result), nothing is
//! lost or duplicated. Each race runs on one server, and again with the racers
//! split between two server processes on one database, as a deployment runs
//! them.

use std::collections::{BTreeMap, HashMap};

use access_domain::OrganizationEvent;
use access_store::testing::{fresh_databases, TestDatabase};
use serde_json::json;

use crate::helpers::*;

/// Rounds of each two-process race: `ACCESS_RACE_ROUNDS`, else a few for CI,
/// thousands with `ACCESS_LONG_TESTS=1`.
fn rounds() -> usize {
    std::env::var("ACCESS_RACE_ROUNDS")
        .ok()
        .and_then(|rounds| rounds.parse().ok())
        .unwrap_or(if long_tests() { 2_000 } else { 20 })
}

/// Two server processes on one fresh database, for each database; the servers
/// stop before their database is dropped.
async fn two_servers_per_database() -> Vec<(ServerProcess, ServerProcess, TestDatabase)> {
    let mut servers = Vec::new();
    for database in fresh_databases().await {
        let one = ServerProcess::on(database.label, &database.url, &[]).await;
        let two = ServerProcess::on(database.label, &database.url, &[]).await;
        servers.push((one, two, database));
    }
    servers
}

/// The outcome of a command as the racer saw it: the request's state, or the
/// error code.
fn outcome(response: &Response, state_at: &str) -> String {
    match response.0.get("errors") {
        Some(_) => response.code().to_string(),
        None => response.data(state_at).as_str().unwrap().to_string(),
    }
}

fn count(tally: &mut BTreeMap<String, usize>, outcomes: &[String]) {
    for outcome in outcomes {
        *tally.entry(outcome.clone()).or_default() += 1;
    }
}

/// Alice and Dave, both Security Officials of Greenville, decide each new
/// request at the same instant, Alice through `first` and Dave through
/// `second`: one approves, the other denies, and exactly one decision stands.
async fn decide_each_request_from_two_places(
    first: &impl Graphql,
    second: &impl Graphql,
    label: &str,
    database_url: &str,
    rounds: usize,
) {
    first.first_security_official_of_greenville("alice").await;
    let dave_request = first.pending_staff_request("dave").await;
    first
        .decide("alice", &dave_request, true)
        .await
        .data("approveRoleRequest");
    second.promote_in_greenville("sam", "dave").await;

    let mut tally = BTreeMap::new();
    for round in 0..rounds {
        let request = first
            .pending_staff_request(&format!("requester-{round}"))
            .await;
        let (approve, deny) = tokio::join!(
            first.decide("alice", &request, true),
            second.decide("dave", &request, false)
        );
        let outcomes = [
            outcome(&approve, "approveRoleRequest.state"),
            outcome(&deny, "denyRoleRequest.state"),
        ];
        let decided = outcomes
            .iter()
            .filter(|outcome| ["APPROVED", "DENIED"].contains(&outcome.as_str()))
            .count();
        assert_eq!(decided, 1, "{label}: round {round}: {outcomes:?}");
        assert!(
            outcomes.iter().all(|outcome| {
                ["APPROVED", "DENIED", "CONFLICT", "REQUEST_NOT_PENDING"]
                    .contains(&outcome.as_str())
            }),
            "{label}: {outcomes:?}"
        );
        count(&mut tally, &outcomes);
    }
    println!("{label}: two Security Officials deciding at once, {rounds} rounds: {tally:?}");
    let decisions = stored_events(database_url)
        .await
        .iter()
        .filter(|event| {
            event.event_type == "RoleRequestApproved" || event.event_type == "RoleRequestDenied"
        })
        .count();
    // dave's own approval plus one decision per race
    assert_eq!(decisions, rounds + 1, "{label}");
}

#[tokio::test]
async fn two_security_officials_deciding_one_request_at_once_make_exactly_one_decision() {
    for app in spawn_apps().await {
        decide_each_request_from_two_places(&app, &app, app.label, app.database_url(), 10).await;
    }
}

#[tokio::test]
async fn two_security_officials_on_two_server_processes_deciding_one_request_at_once_make_exactly_one_decision(
) {
    for (one, two, database) in two_servers_per_database().await {
        decide_each_request_from_two_places(&one, &two, one.label(), &database.url, rounds()).await;
    }
}

/// Each round, `racers` people ask at once to be Greenville's first Security
/// Official with its valid proof, through the servers in turn: exactly one is
/// approved. Support then removes the winner, so the next round races for a
/// first Security Official again.
async fn race_for_the_first_security_official(
    servers: &[&impl Graphql],
    label: &str,
    database_url: &str,
    racers: usize,
    rounds: usize,
) {
    let mut tally = BTreeMap::new();
    for round in 0..rounds {
        let people: Vec<String> = (0..racers)
            .map(|racer| format!("racer-{round}-{racer}"))
            .collect();
        let answers =
            futures_util::future::join_all(people.iter().enumerate().map(|(racer, person)| {
                servers[racer % servers.len()].request_role(
                    person,
                    GREENVILLE,
                    "SECURITY_OFFICIAL",
                    greenville_proof(),
                )
            }))
            .await;
        let mut winners = Vec::new();
        for (person, answer) in people.iter().zip(&answers) {
            match outcome(answer, "requestRole.request.state").as_str() {
                "APPROVED" => winners.push(person),
                "PENDING" | "CONFLICT" => {}
                other => panic!("{label}: round {round}: {other}: {}", answer.0),
            }
        }
        assert_eq!(winners.len(), 1, "{label}: round {round}: {winners:?}");
        let outcomes: Vec<String> = answers
            .iter()
            .map(|answer| outcome(answer, "requestRole.request.state"))
            .collect();
        count(&mut tally, &outcomes);
        servers[0]
            .graphql(
                Some(&token("sam", &["support"])),
                "mutation($person: ID!) { removeSecurityOfficial(organizationId: \"practice:123456789\", personId: $person, note: \"next round\") }",
                json!({ "person": winners[0] }),
            )
            .await
            .data("removeSecurityOfficial");
    }
    println!("{label}: {racers} people racing for the first Security Official, {rounds} rounds: {tally:?}");
    let grants = stored_events(database_url)
        .await
        .iter()
        .filter(|event| event.event_type == "RoleGranted")
        .count();
    assert_eq!(
        grants, rounds,
        "{label}: one first Security Official a round"
    );
}

#[tokio::test]
async fn people_racing_to_be_the_first_security_official_leave_exactly_one() {
    for app in spawn_apps().await {
        race_for_the_first_security_official(&[&app], app.label, app.database_url(), 6, 1).await;
    }
}

#[tokio::test]
async fn people_racing_through_two_server_processes_to_be_the_first_security_official_leave_exactly_one(
) {
    for (one, two, database) in two_servers_per_database().await {
        race_for_the_first_security_official(
            &[&one, &two],
            one.label(),
            &database.url,
            4,
            rounds(),
        )
        .await;
    }
}

/// Each round a new person fails Greenville's proof twice through `first`, then sends
/// a third wrong proof and the valid one at the same instant, one through each server:
/// the wrong one through `first` in even rounds, through `second` in odd ones (the
/// server that took the two failures holds the organization as they left it and
/// nearly always wins, so both orders are raced). Exactly one stands: blocked with a
/// ticket, or approved; never both. An approved winner is removed by support so the
/// next round starts over.
async fn race_a_third_failed_proof_against_a_valid_one<Server: Graphql>(
    first: &Server,
    second: &Server,
    label: &str,
    database_url: &str,
    rounds: usize,
) {
    let mut blocked = 0;
    let mut tally = BTreeMap::new();
    for round in 0..rounds {
        let person = format!("prover-{round}");
        for attempt in 1..=2 {
            let failed = first
                .request_role(
                    &person,
                    GREENVILLE,
                    "SECURITY_OFFICIAL",
                    wrong_greenville_proof(),
                )
                .await;
            assert_eq!(
                failed.data("requestRole.attemptsRemaining"),
                3 - attempt,
                "{label}: round {round}"
            );
        }
        let (wrong_via, valid_via) = if round % 2 == 0 {
            (first, second)
        } else {
            (second, first)
        };
        let (third, valid) = tokio::join!(
            wrong_via.request_role(
                &person,
                GREENVILLE,
                "SECURITY_OFFICIAL",
                wrong_greenville_proof()
            ),
            valid_via.request_role(&person, GREENVILLE, "SECURITY_OFFICIAL", greenville_proof())
        );
        let outcomes = [
            outcome(&third, "requestRole.request.state"),
            outcome(&valid, "requestRole.request.state"),
        ];
        count(&mut tally, &outcomes);
        match outcomes.each_ref().map(String::as_str) {
            ["MANUAL_REVIEW", "CONFLICT" | "ACCOUNT_BLOCKED"] => blocked += 1,
            ["CONFLICT" | "ALREADY_CONNECTED", "APPROVED"] => {
                second
                    .graphql(
                        Some(&token("sam", &["support"])),
                        "mutation($person: ID!) { removeSecurityOfficial(organizationId: \"practice:123456789\", personId: $person, note: \"next round\") }",
                        json!({ "person": person }),
                    )
                    .await
                    .data("removeSecurityOfficial");
            }
            other => panic!("{label}: round {round}: {other:?}"),
        }
    }

    println!("{label}: a third failed proof racing a valid one, {rounds} rounds: {tally:?}");
    let mut requests: HashMap<String, (usize, usize, usize)> = HashMap::new();
    for event in stored_events(database_url).await {
        let decoded: OrganizationEvent = serde_json::from_value(event.payload).unwrap();
        let Some(request) = decoded.request_id() else {
            continue;
        };
        let (rejected, blocks, grants) = requests.entry(request.to_string()).or_default();
        match decoded {
            OrganizationEvent::ProofRejected { .. } => *rejected += 1,
            OrganizationEvent::RequesterBlocked { .. } => *blocks += 1,
            OrganizationEvent::RoleGranted { .. } => *grants += 1,
            _ => {}
        }
    }
    assert_eq!(requests.len(), rounds, "{label}: one request a person");
    for (request, (rejected, blocks, grants)) in &requests {
        assert!(
            (*rejected == 3 && *blocks == 1 && *grants == 0)
                || (*rejected == 2 && *blocks == 0 && *grants == 1),
            "{label}: {request}: {rejected} rejections, {blocks} blocks, {grants} grants"
        );
    }
    let tickets = requests
        .values()
        .filter(|(_, blocks, _)| *blocks == 1)
        .count();
    assert_eq!(tickets, blocked, "{label}");
}

#[tokio::test]
async fn a_third_failed_proof_racing_a_valid_one_either_blocks_or_approves_never_both() {
    for app in spawn_apps().await {
        race_a_third_failed_proof_against_a_valid_one(&app, &app, app.label, app.database_url(), 5)
            .await;
    }
}

#[tokio::test]
async fn a_third_failed_proof_racing_a_valid_one_through_two_server_processes_either_blocks_or_approves_never_both(
) {
    for (one, two, database) in two_servers_per_database().await {
        race_a_third_failed_proof_against_a_valid_one(
            &one,
            &two,
            one.label(),
            &database.url,
            rounds(),
        )
        .await;
    }
}
