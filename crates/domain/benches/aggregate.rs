//! How the Organization aggregate's cost grows with its history: replaying
//! events into state (what loading an organization costs without a cache),
//! and handling a command on a large organization.
//! `cargo bench -p access-domain`; figures in docs/performance.md.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use access_domain::events::DecisionPath;
use access_domain::identifiers::{OrganizationId, PersonId, TicketNumber};
use access_domain::proof::{ProofVerdict, SecurityOfficialProof};
use access_domain::roles::Role;
use access_domain::services::{
    OrganizationServices, ReferenceLookup, ServiceError, SystemClock, TicketNumbers,
};
use access_domain::{Organization, OrganizationCommand, OrganizationEvent};
use async_trait::async_trait;
use chrono::Utc;
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use uuid::Uuid;

struct AcceptAll;

impl ReferenceLookup for AcceptAll {
    fn check_proof(&self, _: &OrganizationId, _: &SecurityOfficialProof) -> ProofVerdict {
        ProofVerdict::Accepted
    }
}

struct Tickets(AtomicU64);

#[async_trait]
impl TicketNumbers for Tickets {
    async fn next_ticket_number(&self) -> Result<TicketNumber, ServiceError> {
        Ok(TicketNumber::from_serial(self.0.fetch_add(1, Ordering::Relaxed) + 1).unwrap())
    }
}

fn person(index: usize) -> PersonId {
    PersonId::parse(&format!("person-{index}")).unwrap()
}

/// A Security Official and `users` Staff Users, each requested, approved and
/// granted: three events a user after the first four.
fn history(users: usize) -> Vec<OrganizationEvent> {
    let at = Utc::now();
    let so = person(0);
    let mut events = vec![
        OrganizationEvent::RoleRequested {
            request_id: Uuid::from_u128(0),
            person: so.clone(),
            role: Role::SecurityOfficial,
            path: DecisionPath::Proof,
            at,
        },
        OrganizationEvent::ProofAccepted {
            request_id: Uuid::from_u128(0),
            person: so.clone(),
            masked_proof: "tin *****6789".into(),
            at,
        },
        OrganizationEvent::RoleGranted {
            person: so.clone(),
            role: Role::SecurityOfficial,
            request_id: Uuid::from_u128(0),
            by: None,
            at,
        },
    ];
    for index in 1..=users {
        let request_id = Uuid::from_u128(index as u128);
        events.push(OrganizationEvent::RoleRequested {
            request_id,
            person: person(index),
            role: Role::StaffUser,
            path: DecisionPath::SecurityOfficialApproval,
            at,
        });
        events.push(OrganizationEvent::RoleRequestApproved {
            request_id,
            person: person(index),
            approver: so.clone(),
            at,
        });
        events.push(OrganizationEvent::RoleGranted {
            person: person(index),
            role: Role::StaffUser,
            request_id,
            by: Some(so.clone()),
            at,
        });
    }
    events
}

fn replay(events: &[OrganizationEvent]) -> Organization {
    let mut organization = Organization::default();
    for event in events {
        organization.apply(event.clone());
    }
    organization
}

fn benchmarks(c: &mut Criterion) {
    let services = OrganizationServices {
        reference: Arc::new(AcceptAll),
        tickets: Arc::new(Tickets(AtomicU64::new(0))),
        clock: Arc::new(SystemClock),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    for users in [10, 33_333] {
        let events = history(users);
        c.bench_function(&format!("replay {} events", events.len()), |b| {
            b.iter(|| black_box(replay(&events)))
        });
        let organization = replay(&events);
        c.bench_function(
            &format!(
                "request a role in an organization of {} events",
                events.len()
            ),
            |b| {
                b.iter_batched(
                    || organization.clone(),
                    |mut organization| {
                        let sink = EventSink::default();
                        let command = OrganizationCommand::RequestRole {
                            organization: OrganizationId::parse("practice:123456789").unwrap(),
                            request_id: Uuid::new_v4(),
                            requester: person(users + 1),
                            role: Role::StaffUser,
                            proof: None,
                        };
                        runtime
                            .block_on(organization.handle(command, &services, &sink))
                            .unwrap();
                        black_box(organization)
                    },
                    BatchSize::LargeInput,
                )
            },
        );
    }
}

criterion_group!(aggregate, benchmarks);
criterion_main!(aggregate);
