//! How fast a rebuild replays a large log: not a check, a measurement.
//!
//!     TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REBUILD_EVENTS=100000 \
//!       cargo test -p access-projections --release -- --ignored --nocapture rebuild_throughput

use std::time::Duration;

use access_domain::events::DecisionPath;
use access_domain::roles::Role;
use access_domain::OrganizationEvent;
use access_projections::{rebuild, View};
use access_store::testing::fresh_databases;
use access_store::Database;
use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use uuid::Uuid;

use crate::common::{append_to_log, person, LogRow, SteppingClock};

/// Events per organization on average, as in the load generator's rebuild workload.
const EVENTS_PER_ORGANIZATION: usize = 100;

/// One organization's history: a first Security Official by proof, then staff members
/// approved (70%), denied, withdrawn, or approved and revoked (10% each).
struct History {
    id: String,
    sequence: i64,
    staff: usize,
    step: i64,
}

impl History {
    fn at(&mut self) -> DateTime<Utc> {
        self.step += 1;
        SteppingClock::instant(self.step)
    }

    fn first_security_official(&mut self) -> Vec<OrganizationEvent> {
        let (request_id, person, at) = (Uuid::new_v4(), person("so"), self.at());
        vec![
            OrganizationEvent::RoleRequested {
                request_id,
                person: person.clone(),
                role: Role::SecurityOfficial,
                path: DecisionPath::Proof,
                at,
            },
            OrganizationEvent::ProofAccepted {
                request_id,
                person: person.clone(),
                masked_proof: "tin *****6789".into(),
                at,
            },
            OrganizationEvent::RoleGranted {
                person,
                role: Role::SecurityOfficial,
                request_id,
                by: None,
                at,
            },
        ]
    }

    fn staff_cycle(&mut self) -> Vec<OrganizationEvent> {
        self.staff += 1;
        let (request_id, so) = (Uuid::new_v4(), person("so"));
        let person = person(&format!("staff-{}", self.staff));
        let requested_at = self.at();
        let at = self.at();
        let mut events = vec![OrganizationEvent::RoleRequested {
            request_id,
            person: person.clone(),
            role: Role::StaffUser,
            path: DecisionPath::SecurityOfficialApproval,
            at: requested_at,
        }];
        let approve = [
            OrganizationEvent::RoleRequestApproved {
                request_id,
                person: person.clone(),
                approver: so.clone(),
                at,
            },
            OrganizationEvent::RoleGranted {
                person: person.clone(),
                role: Role::StaffUser,
                request_id,
                by: Some(so.clone()),
                at,
            },
        ];
        match self.staff % 10 {
            7 => events.push(OrganizationEvent::RoleRequestDenied {
                request_id,
                person,
                approver: so,
                reason: Some("not on our staff".into()),
                at,
            }),
            8 => events.push(OrganizationEvent::RoleRequestWithdrawn {
                request_id,
                person,
                at,
            }),
            9 => {
                events.extend(approve);
                let at = self.at();
                events.push(OrganizationEvent::StaffUserRevoked {
                    person,
                    by: so,
                    reason: Some("left the practice".into()),
                    at,
                });
            }
            _ => events.extend(approve),
        }
        events
    }
}

/// About `total` events over `total / 100` practices, interleaved round by round as a
/// live log is, as (aggregate id, sequence, event type, event version, payload) rows.
fn synthetic_log(total: usize) -> Vec<LogRow> {
    let organizations = (total / EVENTS_PER_ORGANIZATION).max(1);
    let mut histories: Vec<History> = (0..organizations)
        .map(|index| History {
            id: format!("practice:{:09}", 100_000_000 + index),
            sequence: 0,
            staff: 0,
            step: 0,
        })
        .collect();
    let mut rows = Vec::with_capacity(total + 4);
    'rounds: for round in 0.. {
        for history in &mut histories {
            if rows.len() + 4 > total {
                break 'rounds;
            }
            let events = if round == 0 {
                history.first_security_official()
            } else {
                history.staff_cycle()
            };
            for event in events {
                history.sequence += 1;
                rows.push((
                    history.id.clone(),
                    history.sequence,
                    event.event_type(),
                    event.event_version(),
                    serde_json::to_value(&event).unwrap().to_string(),
                ));
            }
        }
    }
    rows
}

#[tokio::test]
#[ignore = "a measurement: a large log, run in release mode with --nocapture"]
async fn rebuild_throughput_of_each_view_on_a_large_log() {
    let total = std::env::var("REBUILD_EVENTS")
        .ok()
        .and_then(|events| events.parse().ok())
        .unwrap_or(100_000);
    let rows = synthetic_log(total);
    for test_database in fresh_databases().await {
        let database = Database::connect(&test_database.url).await.unwrap();
        append_to_log(&database, &rows).await;
        let mut elapsed = Duration::ZERO;
        for view in View::REBUILDABLE {
            let rebuilt = rebuild(&database, &[view], 1000, |_| ()).await.unwrap();
            assert_eq!(rebuilt.events, rows.len() as u64, "{}", test_database.label);
            elapsed += rebuilt.elapsed;
            println!(
                "{}: {view}: {} events in {:.2} s ({:.0} events/s)",
                test_database.label,
                rebuilt.events,
                rebuilt.elapsed.as_secs_f64(),
                rebuilt.events_per_second()
            );
        }
        println!(
            "{}: all views, one after another: {:.2} s ({:.0} events/s over the log)",
            test_database.label,
            elapsed.as_secs_f64(),
            rows.len() as f64 / elapsed.as_secs_f64()
        );
        let together = rebuild(&database, &View::REBUILDABLE, 2000, |_| ())
            .await
            .unwrap();
        println!(
            "{}: all views in one pass: {:.2} s ({:.0} events/s over the log)",
            test_database.label,
            together.elapsed.as_secs_f64(),
            together.events_per_second()
        );
    }
}
