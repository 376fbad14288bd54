//! Valid event histories, made without the server, to be inserted straight
//! into the `events` table.
//!
//! Rows are serialized exactly as postgres-es/sqlite-es write them:
//! `aggregate_type` is `Organization::TYPE`, `payload` the serde_json of the
//! `OrganizationEvent` (through `serde_json::Value`, as the frameworks do),
//! `event_type`/`event_version` from its `DomainEvent` impl, `metadata` the
//! JSON of the command's (empty) metadata map, `sequence` from 1 without gaps.
//! Every history is one the aggregate could have produced: a first Security
//! Official approved by proof, then staff requests approved, denied,
//! withdrawn or later revoked, each by a fresh person.

use access_domain::events::{DecisionPath, OrganizationEvent};
use access_domain::identifiers::{Npi, PersonId, Ptan, Tin, VendorId};
use access_domain::proof::SecurityOfficialProof;
use access_domain::roles::Role;
use chrono::{DateTime, Duration, Utc};
use cqrs_es::{Aggregate, DomainEvent};
use uuid::Uuid;

use crate::reference::{Practice, Registry};

pub const AGGREGATE_TYPE: &str = <access_domain::Organization as Aggregate>::TYPE;

/// One row of the `events` table (its position is assigned on insert).
#[derive(Clone, Debug, PartialEq)]
pub struct EventRow {
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub payload: String,
    pub metadata: String,
}

/// Serializes `event` as the event store frameworks do.
pub fn row(aggregate_id: &str, sequence: i64, event: &OrganizationEvent) -> EventRow {
    let payload = serde_json::to_value(event).expect("events serialize");
    let metadata = serde_json::to_value(std::collections::HashMap::<String, String>::new())
        .expect("metadata serializes");
    EventRow {
        aggregate_id: aggregate_id.to_string(),
        sequence,
        event_type: event.event_type(),
        event_version: event.event_version(),
        payload: payload.to_string(),
        metadata: metadata.to_string(),
    }
}

/// The history of one organization, appended a command at a time.
pub struct OrganizationHistory {
    pub id: String,
    pub security_official: String,
    tag: String,
    next_sequence: i64,
    staff: u64,
    clock: DateTime<Utc>,
    step: Duration,
}

/// The masked proof a practice's first Security Official gave.
pub fn practice_proof(practice: &Practice) -> String {
    SecurityOfficialProof {
        tin: Tin::parse(&practice.tin).ok(),
        npi: Npi::parse(&practice.npi).ok(),
        ptan: Ptan::parse(&practice.ptan).ok(),
        ..SecurityOfficialProof::default()
    }
    .masked()
}

/// The masked proof a registry's first Security Official gave.
pub fn registry_proof(registry: &Registry) -> String {
    SecurityOfficialProof {
        tin: Tin::parse(&registry.tin).ok(),
        vendor_id: VendorId::parse(&registry.vendor_id).ok(),
        ..SecurityOfficialProof::default()
    }
    .masked()
}

impl OrganizationHistory {
    /// The history of organization `id` from its first event, at `start` and
    /// one `step` apart; `tag` keeps its people apart from everyone else's.
    pub fn new(id: &str, tag: &str, start: DateTime<Utc>, step: Duration) -> OrganizationHistory {
        OrganizationHistory {
            id: id.to_string(),
            security_official: format!("{tag}-so"),
            tag: tag.to_string(),
            next_sequence: 1,
            staff: 0,
            clock: start,
            step,
        }
    }

    pub fn events(&self) -> i64 {
        self.next_sequence - 1
    }

    fn tick(&mut self) -> DateTime<Utc> {
        self.clock += self.step;
        self.clock
    }

    fn rows(&mut self, events: Vec<OrganizationEvent>) -> Vec<EventRow> {
        events
            .iter()
            .map(|event| {
                let row = row(&self.id, self.next_sequence, event);
                self.next_sequence += 1;
                row
            })
            .collect()
    }

    /// The first Security Official (`self.security_official`), approved by a
    /// valid proof whose masked form is `masked_proof` (3 events).
    pub fn first_security_official(&mut self, masked_proof: String) -> Vec<EventRow> {
        let at = self.tick();
        let person = person(&self.security_official);
        let request_id = Uuid::new_v4();
        self.rows(vec![
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
                masked_proof,
                at,
            },
            OrganizationEvent::RoleGranted {
                person,
                role: Role::SecurityOfficial,
                request_id,
                by: None,
                at,
            },
        ])
    }

    /// `other` asks to be a further Security Official; the first approves (3 events).
    pub fn additional_security_official(&mut self, other: &str) -> Vec<EventRow> {
        let person = person(other);
        let so = person_of(&self.security_official);
        let request_id = Uuid::new_v4();
        let requested_at = self.tick();
        let at = self.tick();
        self.rows(vec![
            OrganizationEvent::RoleRequested {
                request_id,
                person: person.clone(),
                role: Role::SecurityOfficial,
                path: DecisionPath::SecurityOfficialApproval,
                at: requested_at,
            },
            OrganizationEvent::RoleRequestApproved {
                request_id,
                person: person.clone(),
                approver: so.clone(),
                at,
            },
            OrganizationEvent::RoleGranted {
                person,
                role: Role::SecurityOfficial,
                request_id,
                by: Some(so),
                at,
            },
        ])
    }

    /// The next staff member's story: requested, then approved (70%), denied,
    /// withdrawn, or approved and later revoked (10% each); 2 to 4 events,
    /// 2.9 on average.
    pub fn staff_cycle(&mut self) -> Vec<EventRow> {
        self.staff += 1;
        let person = person(&format!("{}-staff-{}", self.tag, self.staff));
        let so = person_of(&self.security_official);
        let request_id = Uuid::new_v4();
        let requested_at = self.tick();
        let mut events = vec![OrganizationEvent::RoleRequested {
            request_id,
            person: person.clone(),
            role: Role::StaffUser,
            path: DecisionPath::SecurityOfficialApproval,
            at: requested_at,
        }];
        let at = self.tick();
        let approve = |events: &mut Vec<OrganizationEvent>| {
            events.push(OrganizationEvent::RoleRequestApproved {
                request_id,
                person: person.clone(),
                approver: so.clone(),
                at,
            });
            events.push(OrganizationEvent::RoleGranted {
                person: person.clone(),
                role: Role::StaffUser,
                request_id,
                by: Some(so.clone()),
                at,
            });
        };
        match self.staff % 10 {
            7 => events.push(OrganizationEvent::RoleRequestDenied {
                request_id,
                person: person.clone(),
                approver: so.clone(),
                reason: Some("not on our staff".to_string()),
                at,
            }),
            8 => events.push(OrganizationEvent::RoleRequestWithdrawn {
                request_id,
                person: person.clone(),
                at,
            }),
            9 => {
                approve(&mut events);
                let at = self.tick();
                events.push(OrganizationEvent::StaffUserRevoked {
                    person: person.clone(),
                    by: so.clone(),
                    reason: Some("left the practice".to_string()),
                    at,
                });
            }
            _ => approve(&mut events),
        }
        self.rows(events)
    }

    /// A staff request still waiting for a decision (1 event): fills a history
    /// to an exact size.
    pub fn pending_request(&mut self) -> Vec<EventRow> {
        self.staff += 1;
        let person = person(&format!("{}-staff-{}", self.tag, self.staff));
        let at = self.tick();
        self.rows(vec![OrganizationEvent::RoleRequested {
            request_id: Uuid::new_v4(),
            person,
            role: Role::StaffUser,
            path: DecisionPath::SecurityOfficialApproval,
            at,
        }])
    }
}

fn person(id: &str) -> PersonId {
    PersonId::parse(id).expect("generated person ids are valid")
}

fn person_of(id: &str) -> PersonId {
    person(id)
}

/// Exactly `total` events for one organization (at least 3).
pub fn single_organization(practice: &Practice, tag: &str, total: usize) -> Vec<EventRow> {
    let start = Utc::now() - Duration::days(400);
    let mut history =
        OrganizationHistory::new(&practice.id, tag, start, Duration::milliseconds(1500));
    let mut rows = history.first_security_official(practice_proof(practice));
    while rows.len() + 4 <= total {
        rows.extend(history.staff_cycle());
    }
    while rows.len() < total {
        rows.extend(history.pending_request());
    }
    rows
}

/// The hot registry: its first Security Official (`{tag}-so`) by proof,
/// `others` further Security Officials (`{tag}-so1` …) approved by it, then
/// `users` staff members' stories. Answers the rows and the Security
/// Officials' person ids, the first first.
pub fn hot_registry(
    registry: &Registry,
    tag: &str,
    others: usize,
    users: usize,
) -> (Vec<EventRow>, Vec<String>) {
    let start = Utc::now() - Duration::days(30);
    let mut history =
        OrganizationHistory::new(&registry.id, tag, start, Duration::milliseconds(200));
    let mut rows = history.first_security_official(registry_proof(registry));
    let mut security_officials = vec![history.security_official.clone()];
    for index in 1..=others {
        let person = format!("{tag}-so{index}");
        rows.extend(history.additional_security_official(&person));
        security_officials.push(person);
    }
    for _ in 0..users {
        rows.extend(history.staff_cycle());
    }
    (rows, security_officials)
}

/// About `total` events spread over `practices` (never more than `total`),
/// interleaved the way a live log is: round by round, one command per
/// organization. Handed out in batches of about `batch` rows, in log order.
pub struct ManyOrganizations<'a> {
    practices: &'a [Practice],
    histories: Vec<OrganizationHistory>,
    total: usize,
    produced: usize,
    round: usize,
    cursor: usize,
}

impl<'a> ManyOrganizations<'a> {
    pub fn new(practices: &'a [Practice], tag: &str, total: usize) -> Self {
        let start = Utc::now() - Duration::days(400);
        let histories = practices
            .iter()
            .enumerate()
            .map(|(index, practice)| {
                OrganizationHistory::new(
                    &practice.id,
                    &format!("{tag}-{index}"),
                    start,
                    Duration::milliseconds(1500),
                )
            })
            .collect();
        ManyOrganizations {
            practices,
            histories,
            total,
            produced: 0,
            round: 0,
            cursor: 0,
        }
    }

    pub fn produced(&self) -> usize {
        self.produced
    }

    pub fn next_batch(&mut self, batch: usize) -> Vec<EventRow> {
        let mut rows = Vec::with_capacity(batch + 4);
        while rows.len() < batch && self.produced + 4 <= self.total {
            if self.cursor == self.histories.len() {
                self.cursor = 0;
                self.round += 1;
            }
            let index = self.cursor;
            self.cursor += 1;
            let produced = if self.round == 0 {
                self.histories[index]
                    .first_security_official(practice_proof(&self.practices[index]))
            } else {
                self.histories[index].staff_cycle()
            };
            self.produced += produced.len();
            rows.extend(produced);
        }
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn practice() -> Practice {
        Practice {
            id: "practice:123456789".into(),
            tin: "123456789".into(),
            npi: "1234567893".into(),
            ptan: "AB1234".into(),
        }
    }

    #[test]
    fn histories_replay_into_the_aggregate() {
        let rows = single_organization(&practice(), "t", 1000);
        assert_eq!(rows.len(), 1000);
        let mut organization = access_domain::Organization::default();
        for (index, row) in rows.iter().enumerate() {
            assert_eq!(row.sequence, index as i64 + 1);
            assert_eq!(row.metadata, "{}");
            let event: OrganizationEvent = serde_json::from_str(&row.payload).unwrap();
            assert_eq!(event.event_type(), row.event_type);
            organization.apply(event);
        }
        assert!(organization.has_security_official());
        assert!(organization.grants().count() > 200);
    }

    #[test]
    fn the_hot_registry_has_its_security_officials_and_users() {
        let registry = Registry {
            id: "registry:234567891".into(),
            tin: "234567891".into(),
            vendor_id: "V000123".into(),
        };
        let (rows, sos) = hot_registry(&registry, "h", 31, 100);
        assert_eq!(sos.len(), 32);
        let mut organization = access_domain::Organization::default();
        for row in &rows {
            organization.apply(serde_json::from_str(&row.payload).unwrap());
        }
        let officials = organization
            .grants()
            .filter(|(_, grant)| grant.role == Role::SecurityOfficial)
            .count();
        assert_eq!(officials, 32);
        assert!(organization.grants().count() > 32 + 60);
    }

    #[test]
    fn many_organizations_stay_within_the_total() {
        let practices = vec![practice(); 3];
        let mut many = ManyOrganizations::new(&practices, "m", 100);
        let mut all = Vec::new();
        loop {
            let batch = many.next_batch(7);
            if batch.is_empty() {
                break;
            }
            all.extend(batch);
        }
        assert!(all.len() <= 100 && all.len() > 90, "{}", all.len());
        assert_eq!(many.produced(), all.len());
    }
}
