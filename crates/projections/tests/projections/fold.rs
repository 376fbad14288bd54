use std::collections::{BTreeSet, HashMap};

use access_domain::identifiers::TicketNumber;
use access_domain::roles::Role;
use access_domain::{OrganizationCommand, OrganizationEvent};
use access_projections::{rebuild, AuditFilter, View};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use uuid::Uuid;

use crate::common::{
    audit_log, harnesses, npi, organization, person, request, Harness, Row, GOOD_TIN, ORGANIZATIONS,
};

const PEOPLE: usize = 3;

/// One step of a random history; indexes pick among the organizations, the people,
/// and the requests and tickets seen so far in the organization.
#[derive(Clone, Debug)]
enum Step {
    /// Asked `times` in a row, as a person retrying a proof does.
    Request {
        org: usize,
        who: usize,
        staff: bool,
        good_proof: bool,
        times: usize,
    },
    Approve {
        org: usize,
        request: usize,
        by: usize,
    },
    Deny {
        org: usize,
        request: usize,
        by: usize,
    },
    Withdraw {
        org: usize,
        request: usize,
    },
    Revoke {
        org: usize,
        who: usize,
        by: usize,
    },
    Resolve {
        org: usize,
        ticket: usize,
        approve: bool,
    },
    Unblock {
        org: usize,
        who: usize,
    },
    ChangeRole {
        org: usize,
        who: usize,
        to_official: bool,
    },
    Clinician {
        org: usize,
        who: usize,
        npi: usize,
    },
    RemoveOfficial {
        org: usize,
        who: usize,
    },
}

fn step() -> impl Strategy<Value = Step> {
    let org = 0..ORGANIZATIONS.len();
    let who = 0..PEOPLE;
    prop_oneof![
        6 => (org.clone(), who.clone(), prop::bool::weighted(0.4), prop::bool::weighted(0.2), 1..=3usize)
            .prop_map(|(org, who, staff, good_proof, times)| {
                Step::Request { org, who, staff, good_proof, times }
            }),
        3 => (org.clone(), 0..8usize, who.clone())
            .prop_map(|(org, request, by)| Step::Approve { org, request, by }),
        1 => (org.clone(), 0..8usize, who.clone())
            .prop_map(|(org, request, by)| Step::Deny { org, request, by }),
        1 => (org.clone(), 0..8usize).prop_map(|(org, request)| Step::Withdraw { org, request }),
        1 => (org.clone(), who.clone(), who.clone())
            .prop_map(|(org, who, by)| Step::Revoke { org, who, by }),
        2 => (org.clone(), 0..4usize, any::<bool>())
            .prop_map(|(org, ticket, approve)| Step::Resolve { org, ticket, approve }),
        1 => (org.clone(), who.clone()).prop_map(|(org, who)| Step::Unblock { org, who }),
        1 => (org.clone(), who.clone(), any::<bool>())
            .prop_map(|(org, who, to_official)| Step::ChangeRole { org, who, to_official }),
        1 => (org.clone(), who.clone(), 0..PEOPLE)
            .prop_map(|(org, who, npi)| Step::Clinician { org, who, npi }),
        1 => (org, who).prop_map(|(org, who)| Step::RemoveOfficial { org, who }),
    ]
}

fn name(who: usize) -> String {
    format!("person-{who}")
}

/// What the history has opened so far, to aim decisions at real requests and tickets.
#[derive(Default)]
struct Seen {
    requests: HashMap<usize, Vec<(Uuid, usize)>>,
    tickets: HashMap<usize, Vec<TicketNumber>>,
}

impl Seen {
    /// The commands of a step, none when it aims at nothing seen yet.
    fn commands(&self, step: &Step) -> Vec<(usize, OrganizationCommand)> {
        match step {
            Step::Request { times, .. } => (0..*times).filter_map(|_| self.command(step)).collect(),
            _ => self.command(step).into_iter().collect(),
        }
    }

    fn command(&self, step: &Step) -> Option<(usize, OrganizationCommand)> {
        let pick_request = |org: &usize, index: &usize| {
            let requests = self.requests.get(org)?;
            requests.get(index % requests.len().max(1)).copied()
        };
        let support = person("support");
        Some(match step {
            Step::Request {
                org,
                who,
                staff,
                good_proof,
                ..
            } => {
                let role = if *staff {
                    Role::StaffUser
                } else {
                    Role::SecurityOfficial
                };
                let tin = if *good_proof { GOOD_TIN } else { "987654321" };
                (
                    *org,
                    request(ORGANIZATIONS[*org], &name(*who), role, Some(tin)),
                )
            }
            Step::Approve { org, request, by } => {
                let (request_id, _) = pick_request(org, request)?;
                (
                    *org,
                    OrganizationCommand::ApproveRequest {
                        request_id,
                        approver: person(&name(*by)),
                    },
                )
            }
            Step::Deny { org, request, by } => {
                let (request_id, _) = pick_request(org, request)?;
                let reason = Some(format!("reason {by}"));
                (
                    *org,
                    OrganizationCommand::DenyRequest {
                        request_id,
                        approver: person(&name(*by)),
                        reason,
                    },
                )
            }
            Step::Withdraw { org, request } => {
                let (request_id, owner) = pick_request(org, request)?;
                (
                    *org,
                    OrganizationCommand::WithdrawRequest {
                        request_id,
                        requester: person(&name(owner)),
                    },
                )
            }
            Step::Revoke { org, who, by } => (
                *org,
                OrganizationCommand::RevokeStaffUser {
                    person: person(&name(*who)),
                    by: person(&name(*by)),
                    reason: None,
                },
            ),
            Step::Resolve {
                org,
                ticket,
                approve,
            } => {
                let tickets = self.tickets.get(org)?;
                let ticket = tickets.get(ticket % tickets.len().max(1))?.clone();
                let note = Some("checked by hand".to_owned());
                (
                    *org,
                    OrganizationCommand::ResolveTicket {
                        ticket,
                        approve: *approve,
                        by: support,
                        note,
                    },
                )
            }
            Step::Unblock { org, who } => (
                *org,
                OrganizationCommand::UnblockPerson {
                    person: person(&name(*who)),
                    by: support,
                    note: None,
                },
            ),
            Step::ChangeRole {
                org,
                who,
                to_official,
            } => {
                let role = if *to_official {
                    Role::SecurityOfficial
                } else {
                    Role::StaffUser
                };
                (
                    *org,
                    OrganizationCommand::ChangeRole {
                        person: person(&name(*who)),
                        role,
                        by: support,
                        note: None,
                    },
                )
            }
            Step::Clinician {
                org,
                who,
                npi: number,
            } => (
                *org,
                OrganizationCommand::GrantClinicianRole {
                    person: person(&name(*who)),
                    npi: npi(*number),
                },
            ),
            Step::RemoveOfficial { org, who } => (
                *org,
                OrganizationCommand::RemoveSecurityOfficial {
                    person: person(&name(*who)),
                    by: support,
                    note: None,
                },
            ),
        })
    }

    fn record(&mut self, org: usize, events: &[OrganizationEvent]) {
        for event in events {
            match event {
                OrganizationEvent::RoleRequested {
                    request_id, person, ..
                } => {
                    let owner = (0..PEOPLE)
                        .find(|who| name(*who) == person.as_str())
                        .unwrap_or(0);
                    self.requests
                        .entry(org)
                        .or_default()
                        .push((*request_id, owner));
                }
                OrganizationEvent::RequesterBlocked { ticket, .. } => {
                    self.tickets.entry(org).or_default().push(ticket.clone());
                }
                _ => {}
            }
        }
    }
}

/// Runs the history through the aggregate with the projector following, then compares;
/// then rebuilds the access view in one batch and compares again.
async fn views_equal_the_fold(steps: Vec<Step>) -> Result<(), String> {
    for h in harnesses().await {
        let projector = h.projector();
        let mut seen = Seen::default();
        for step in &steps {
            for (org, command) in seen.commands(step) {
                // Refused commands are part of the game: they must change nothing.
                if let Ok(committed) = h.execute(ORGANIZATIONS[org], command).await {
                    let events: Vec<_> = committed.events.into_iter().map(|e| e.payload).collect();
                    seen.record(org, &events);
                }
            }
        }
        h.caught_up(&projector).await;
        projector.shutdown().await;
        let (views, expected) = (h.views().await, h.expected().await);
        if views != expected {
            return Err(format!("{}: views {views:#?}\nfold {expected:#?}", h.label));
        }
        audit_filters_equal_the_fold(&h, &expected["audit log"]).await?;
        // The whole history again in one batch, however the projector cut it.
        rebuild(&h.database, &[View::Access], 1000, |_| ())
            .await
            .map_err(|error| format!("{}: {error}", h.label))?;
        let views = h.views().await;
        if views != expected {
            return Err(format!(
                "{}: rebuilt in one batch: views {views:#?}\nfold {expected:#?}",
                h.label
            ));
        }
    }
    Ok(())
}

/// The audit log by person and by organization: the entries the person did or that are
/// about them, as the domain names actor and subject, and an organization's own.
async fn audit_filters_equal_the_fold(h: &Harness, audit: &[Row]) -> Result<(), String> {
    const ORGANIZATION: usize = 1;
    const ACTOR: usize = 6;
    const SUBJECT: usize = 7;
    let people: BTreeSet<&str> = audit
        .iter()
        .flat_map(|row| [row[ACTOR].as_deref(), row[SUBJECT].as_deref()])
        .flatten()
        .collect();
    let by_person = people.into_iter().map(|who| {
        let filter = AuditFilter {
            person: Some(person(who)),
            ..AuditFilter::default()
        };
        (who, filter, [ACTOR, SUBJECT])
    });
    let by_organization = ORGANIZATIONS.into_iter().map(|org| {
        let filter = AuditFilter {
            organization: Some(organization(org)),
            ..AuditFilter::default()
        };
        (org, filter, [ORGANIZATION; 2])
    });
    for (named, filter, columns) in by_person.chain(by_organization) {
        let expected: Vec<Row> = audit
            .iter()
            .filter(|row| columns.iter().any(|&at| row[at].as_deref() == Some(named)))
            .cloned()
            .collect();
        let read = audit_log(&h.database, &filter).await;
        if read != expected {
            return Err(format!(
                "{}: {named}'s audit log {read:#?}\nfold {expected:#?}",
                h.label
            ));
        }
    }
    Ok(())
}

#[test]
fn every_view_equals_a_fold_of_the_event_history_for_random_commands_on_many_organizations() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let config = Config {
        cases: 20,
        failure_persistence: None,
        ..Config::default()
    };
    TestRunner::new(config)
        .run(&prop::collection::vec(step(), 10..80), |steps| {
            runtime
                .block_on(views_equal_the_fold(steps))
                .map_err(TestCaseError::fail)
        })
        .unwrap();
}
