//! The Organization aggregate: one per organization, holding who has which role,
//! its open role requests, and what became of the closed ones. Rules 1–9 of domain.md.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::commands::OrganizationCommand;
use crate::errors::AccessError;
use crate::events::{DecisionPath, OrganizationEvent};
use crate::identifiers::{OrganizationId, PersonId, TicketNumber};
use crate::proof::{ProofMismatch, ProofVerdict, SecurityOfficialProof};
use crate::roles::{RequestState, Role, TicketState};
use crate::services::OrganizationServices;

/// Failed proofs allowed before the requester is blocked (the seeds: "You have
/// three attempts").
pub const PROOF_ATTEMPTS: u8 = 3;

/// The layout of [`Organization`] as serialized into snapshots. Change it with any
/// change to the fields below or to what they mean; snapshots of another layout are then
/// ignored and the organizations replayed from their events.
pub const STATE_VERSION: i32 = 2;

/// Closed requests kept whole, newest last, so that a command's answer can show the
/// request it just closed. The views hold every request whole, and a command is
/// answered only once they include it, so reads after it find it there.
pub const RECENTLY_CLOSED: usize = 8;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Organization {
    grants: BTreeMap<PersonId, Grant>,
    /// Who of `grants` is a Security Official, so rule 2's question is O(1)
    /// however many users the organization has.
    security_officials: BTreeSet<PersonId>,
    /// The open requests (pending, proof rejected, in manual review): only these
    /// change, so only these are kept whole, and the state does not grow with the
    /// organization's history.
    requests: HashMap<Uuid, RoleRequest>,
    /// How every closed request ended, so a command on one is refused precisely.
    closed: HashMap<Uuid, RequestState>,
    recently_closed: VecDeque<RoleRequest>,
    open_request_of: HashMap<PersonId, Uuid>,
    ticket_requests: HashMap<TicketNumber, Uuid>,
    /// NPI fingerprint → the person connected as that clinician here.
    clinician_npis: HashMap<String, PersonId>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Grant {
    pub role: Role,
    pub granted_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoleRequest {
    pub id: Uuid,
    pub person: PersonId,
    pub role: Role,
    pub state: RequestState,
    pub submitted_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
    pub decided_by: Option<PersonId>,
    pub reason: Option<String>,
    /// Failed proofs since the request opened or was last unblocked.
    pub failed_attempts: u8,
    pub failed_proofs: Vec<FailedProof>,
    pub ticket: Option<Ticket>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailedProof {
    pub at: DateTime<Utc>,
    pub masked_proof: String,
    pub mismatch: ProofMismatch,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ticket {
    pub number: TicketNumber,
    pub opened_at: DateTime<Utc>,
    pub state: TicketState,
}

impl Organization {
    pub fn has_security_official(&self) -> bool {
        !self.security_officials.is_empty()
    }

    pub fn grants(&self) -> impl Iterator<Item = (&PersonId, &Grant)> {
        self.grants.iter()
    }

    pub fn grant_of(&self, person: &PersonId) -> Option<&Grant> {
        self.grants.get(person)
    }

    /// An open or recently closed request, whole.
    pub fn request(&self, id: &Uuid) -> Option<&RoleRequest> {
        self.requests.get(id).or_else(|| {
            self.recently_closed
                .iter()
                .rev()
                .find(|request| &request.id == id)
        })
    }

    /// The entries the state holds (grants, requests, outcomes, tickets, clinicians'
    /// NPIs), each about what one event adds: what the organization weighs in memory,
    /// which its history no longer says.
    pub fn entries(&self) -> usize {
        self.grants.len()
            + self.security_officials.len()
            + self.requests.len()
            + self.closed.len()
            + self.recently_closed.len()
            + self.open_request_of.len()
            + self.ticket_requests.len()
            + self.clinician_npis.len()
    }

    /// Whether the organization ever had the request, even if only its outcome is
    /// still kept here.
    pub fn ever_had_request(&self, id: &Uuid) -> bool {
        self.requests.contains_key(id) || self.closed.contains_key(id)
    }

    pub fn open_request_of(&self, person: &PersonId) -> Option<&RoleRequest> {
        self.open_request_of
            .get(person)
            .and_then(|id| self.requests.get(id))
    }

    fn is_security_official(&self, person: &PersonId) -> bool {
        self.security_officials.contains(person)
    }

    /// Every change of a person's role goes through here, so the Security
    /// Officials set always agrees with the grants.
    fn set_role(&mut self, person: PersonId, role: Role, granted_at: DateTime<Utc>) {
        if role == Role::SecurityOfficial {
            self.security_officials.insert(person.clone());
        } else {
            self.security_officials.remove(&person);
        }
        self.grants.insert(person, Grant { role, granted_at });
    }

    fn remove_role(&mut self, person: &PersonId) {
        self.security_officials.remove(person);
        self.grants.remove(person);
    }

    /// The open request; a closed one is refused with how it ended.
    fn open_request(&self, id: &Uuid) -> Result<&RoleRequest, AccessError> {
        self.requests
            .get(id)
            .ok_or_else(|| match self.closed.get(id) {
                Some(&ended) => AccessError::RequestNotPending(ended),
                None => AccessError::RequestNotFound,
            })
    }

    fn request_mut(&mut self, id: &Uuid) -> &mut RoleRequest {
        self.requests
            .get_mut(id)
            .expect("events only name requests opened by an earlier event")
    }

    fn close(&mut self, id: &Uuid, state: RequestState) {
        let mut request = self
            .requests
            .remove(id)
            .expect("events only close requests opened by an earlier event");
        request.state = state;
        self.open_request_of.remove(&request.person);
        self.closed.insert(request.id, state);
        self.recently_closed.push_back(request);
        if self.recently_closed.len() > RECENTLY_CLOSED {
            self.recently_closed.pop_front();
        }
    }

    /// A Security Official deciding a pending request that is not their own.
    fn decidable_request(
        &self,
        id: &Uuid,
        approver: &PersonId,
    ) -> Result<&RoleRequest, AccessError> {
        // Only a Security Official learns how a closed request ended.
        if self.closed.contains_key(id) && !self.is_security_official(approver) {
            return Err(AccessError::NotSecurityOfficial);
        }
        let request = self.open_request(id)?;
        if &request.person == approver {
            return Err(AccessError::SelfDecision);
        }
        if !self.is_security_official(approver) {
            return Err(AccessError::NotSecurityOfficial);
        }
        if request.state != RequestState::Pending {
            return Err(AccessError::RequestNotPending(request.state));
        }
        Ok(request)
    }
}

/// The events of one command, stamped with one instant.
struct Outcome<'a> {
    sink: &'a EventSink<Organization>,
    at: DateTime<Utc>,
}

impl Outcome<'_> {
    async fn record(&self, aggregate: &mut Organization, event: OrganizationEvent) {
        self.sink.write(event, aggregate).await;
    }
}

impl Aggregate for Organization {
    const TYPE: &'static str = "Organization";
    type Command = OrganizationCommand;
    type Event = OrganizationEvent;
    type Error = AccessError;
    type Services = OrganizationServices;

    async fn handle(
        &mut self,
        command: Self::Command,
        services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let out = Outcome {
            sink,
            at: services.clock.now(),
        };
        let at = out.at;
        match command {
            OrganizationCommand::RequestRole {
                organization,
                request_id,
                requester,
                role,
                proof,
            } => {
                self.request_role(
                    &out,
                    services,
                    &organization,
                    request_id,
                    requester,
                    role,
                    proof,
                )
                .await
            }
            OrganizationCommand::ApproveRequest {
                request_id,
                approver,
            } => {
                let request = self.decidable_request(&request_id, &approver)?;
                let (person, role) = (request.person.clone(), request.role);
                out.record(
                    self,
                    OrganizationEvent::RoleRequestApproved {
                        request_id,
                        person: person.clone(),
                        approver: approver.clone(),
                        at,
                    },
                )
                .await;
                out.record(
                    self,
                    OrganizationEvent::RoleGranted {
                        person,
                        role,
                        request_id,
                        by: Some(approver),
                        at,
                    },
                )
                .await;
                Ok(())
            }
            OrganizationCommand::DenyRequest {
                request_id,
                approver,
                reason,
            } => {
                let person = self
                    .decidable_request(&request_id, &approver)?
                    .person
                    .clone();
                out.record(
                    self,
                    OrganizationEvent::RoleRequestDenied {
                        request_id,
                        person,
                        approver,
                        reason,
                        at,
                    },
                )
                .await;
                Ok(())
            }
            OrganizationCommand::WithdrawRequest {
                request_id,
                requester,
            } => {
                let request = self.open_request(&request_id)?;
                if request.person != requester {
                    return Err(AccessError::NotRequester);
                }
                if !matches!(
                    request.state,
                    RequestState::Pending | RequestState::ProofRejected
                ) {
                    return Err(AccessError::RequestNotPending(request.state));
                }
                out.record(
                    self,
                    OrganizationEvent::RoleRequestWithdrawn {
                        request_id,
                        person: requester,
                        at,
                    },
                )
                .await;
                Ok(())
            }
            OrganizationCommand::RevokeStaffUser { person, by, reason } => {
                if !self.is_security_official(&by) {
                    return Err(AccessError::NotSecurityOfficial);
                }
                match self.grants.get(&person).map(|grant| grant.role) {
                    None => Err(AccessError::NoRole),
                    Some(Role::StaffUser) => {
                        out.record(
                            self,
                            OrganizationEvent::StaffUserRevoked {
                                person,
                                by,
                                reason,
                                at,
                            },
                        )
                        .await;
                        Ok(())
                    }
                    Some(_) => Err(AccessError::OnlyStaffUsersRevocable),
                }
            }
            OrganizationCommand::ResolveTicket {
                ticket,
                approve,
                by,
                note,
            } => {
                let request_id = *self
                    .ticket_requests
                    .get(&ticket)
                    .ok_or(AccessError::TicketNotFound)?;
                // A request blocked, unblocked and blocked again has a new ticket; the
                // old one was closed by the unblock and stays closed. A resolved
                // ticket's request is closed too.
                let request = self
                    .requests
                    .get(&request_id)
                    .filter(|request| {
                        request.state == RequestState::ManualReview
                            && request
                                .ticket
                                .as_ref()
                                .is_some_and(|current| current.number == ticket)
                    })
                    .ok_or_else(|| AccessError::TicketNotOpen(ticket.clone()))?;
                let (person, role) = (request.person.clone(), request.role);
                out.record(
                    self,
                    OrganizationEvent::TicketResolved {
                        ticket,
                        request_id,
                        person: person.clone(),
                        approved: approve,
                        by: by.clone(),
                        note,
                        at,
                    },
                )
                .await;
                if approve {
                    out.record(
                        self,
                        OrganizationEvent::RoleGranted {
                            person,
                            role,
                            request_id,
                            by: Some(by),
                            at,
                        },
                    )
                    .await;
                }
                Ok(())
            }
            OrganizationCommand::UnblockPerson { person, by, note } => {
                let request = self
                    .open_request_of(&person)
                    .filter(|request| request.state == RequestState::ManualReview)
                    .ok_or(AccessError::NotBlocked)?;
                let request_id = request.id;
                let ticket = request
                    .ticket
                    .as_ref()
                    .map(|ticket| ticket.number.clone())
                    .expect("a request in manual review has a ticket");
                out.record(
                    self,
                    OrganizationEvent::RequesterUnblocked {
                        ticket,
                        request_id,
                        person,
                        by,
                        note,
                        at,
                    },
                )
                .await;
                Ok(())
            }
            OrganizationCommand::ChangeRole {
                person,
                role,
                by,
                note,
            } => {
                let from = self
                    .grants
                    .get(&person)
                    .map(|grant| grant.role)
                    .ok_or(AccessError::NoRole)?;
                let changeable = [Role::SecurityOfficial, Role::StaffUser];
                if from == role || !changeable.contains(&from) || !changeable.contains(&role) {
                    return Err(AccessError::RoleNotChangeable);
                }
                out.record(
                    self,
                    OrganizationEvent::RoleChanged {
                        person,
                        from,
                        to: role,
                        by,
                        note,
                        at,
                    },
                )
                .await;
                Ok(())
            }
            OrganizationCommand::GrantClinicianRole { person, npi } => {
                let (masked_npi, npi_fingerprint) = (npi.masked(), npi.fingerprint());
                if let Some(connected_person) = self.clinician_npis.get(&npi_fingerprint) {
                    if connected_person != &person {
                        let connected_person = connected_person.clone();
                        out.record(
                            self,
                            OrganizationEvent::ClinicianClaimRefused {
                                person,
                                masked_npi,
                                npi_fingerprint,
                                connected_person,
                                at,
                            },
                        )
                        .await;
                        return Ok(());
                    }
                }
                if let Some(grant) = self.grants.get(&person) {
                    return Err(AccessError::AlreadyConnected(grant.role));
                }
                out.record(
                    self,
                    OrganizationEvent::ClinicianRoleGranted {
                        person,
                        masked_npi,
                        npi_fingerprint,
                        at,
                    },
                )
                .await;
                Ok(())
            }
            OrganizationCommand::RemoveSecurityOfficial { person, by, note } => {
                if !self.is_security_official(&person) {
                    return Err(AccessError::NotASecurityOfficial);
                }
                out.record(
                    self,
                    OrganizationEvent::SecurityOfficialRemoved {
                        person,
                        by,
                        note,
                        at,
                    },
                )
                .await;
                Ok(())
            }
        }
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            OrganizationEvent::RoleRequested {
                request_id,
                person,
                role,
                at,
                ..
            } => {
                self.open_request_of.insert(person.clone(), request_id);
                self.requests.insert(
                    request_id,
                    RoleRequest {
                        id: request_id,
                        person,
                        role,
                        // A proof-path request is decided by the proof event
                        // recorded in the same commit, so it is never seen pending.
                        state: RequestState::Pending,
                        submitted_at: at,
                        decided_at: None,
                        decided_by: None,
                        reason: None,
                        failed_attempts: 0,
                        failed_proofs: Vec::new(),
                        ticket: None,
                    },
                );
            }
            OrganizationEvent::ProofRejected {
                request_id,
                masked_proof,
                mismatch,
                at,
                ..
            } => {
                let request = self.request_mut(&request_id);
                request.state = RequestState::ProofRejected;
                request.failed_attempts += 1;
                request.failed_proofs.push(FailedProof {
                    at,
                    masked_proof,
                    mismatch,
                });
            }
            OrganizationEvent::ProofAccepted { request_id, at, .. } => {
                let request = self.request_mut(&request_id);
                request.decided_at = Some(at);
                self.close(&request_id, RequestState::Approved);
            }
            OrganizationEvent::RequesterBlocked {
                request_id,
                ticket,
                at,
                ..
            } => {
                self.ticket_requests.insert(ticket.clone(), request_id);
                let request = self.request_mut(&request_id);
                request.state = RequestState::ManualReview;
                request.ticket = Some(Ticket {
                    number: ticket,
                    opened_at: at,
                    state: TicketState::Open,
                });
            }
            OrganizationEvent::RoleRequestSentForApproval {
                request_id, role, ..
            } => {
                let request = self.request_mut(&request_id);
                request.state = RequestState::Pending;
                request.role = role;
            }
            OrganizationEvent::RoleRequestApproved {
                request_id,
                approver,
                at,
                ..
            } => {
                let request = self.request_mut(&request_id);
                request.decided_at = Some(at);
                request.decided_by = Some(approver);
                self.close(&request_id, RequestState::Approved);
            }
            OrganizationEvent::RoleRequestDenied {
                request_id,
                approver,
                reason,
                at,
                ..
            } => {
                let request = self.request_mut(&request_id);
                request.decided_at = Some(at);
                request.decided_by = Some(approver);
                request.reason = reason;
                self.close(&request_id, RequestState::Denied);
            }
            OrganizationEvent::RoleRequestWithdrawn { request_id, at, .. } => {
                self.request_mut(&request_id).decided_at = Some(at);
                self.close(&request_id, RequestState::Withdrawn);
            }
            OrganizationEvent::RoleGranted {
                person, role, at, ..
            } => self.set_role(person, role, at),
            OrganizationEvent::ClinicianRoleGranted {
                person,
                npi_fingerprint,
                at,
                ..
            } => {
                self.clinician_npis.insert(npi_fingerprint, person.clone());
                self.set_role(person, Role::Clinician, at);
            }
            // Recorded for support staff; the organization is unchanged.
            OrganizationEvent::ClinicianClaimRefused { .. } => {}
            OrganizationEvent::StaffUserRevoked { person, .. }
            | OrganizationEvent::SecurityOfficialRemoved { person, .. } => {
                self.remove_role(&person);
            }
            OrganizationEvent::TicketResolved {
                request_id,
                approved,
                by,
                note,
                at,
                ..
            } => {
                let request = self.request_mut(&request_id);
                request.decided_at = Some(at);
                request.decided_by = Some(by);
                request.reason = note;
                if let Some(ticket) = request.ticket.as_mut() {
                    ticket.state = if approved {
                        TicketState::ResolvedApproved
                    } else {
                        TicketState::ResolvedDenied
                    };
                }
                let state = if approved {
                    RequestState::Approved
                } else {
                    RequestState::Denied
                };
                self.close(&request_id, state);
            }
            OrganizationEvent::RequesterUnblocked { request_id, .. } => {
                let request = self.request_mut(&request_id);
                request.state = RequestState::ProofRejected;
                request.failed_attempts = 0;
                if let Some(ticket) = request.ticket.as_mut() {
                    ticket.state = TicketState::ResolvedDenied;
                }
            }
            OrganizationEvent::RoleChanged { person, to, .. } => {
                // A role change keeps the original grant time: the person has
                // had access since then.
                if let Some(granted_at) = self.grants.get(&person).map(|grant| grant.granted_at) {
                    self.set_role(person, to, granted_at);
                }
            }
        }
    }
}

impl Organization {
    #[allow(clippy::too_many_arguments)]
    async fn request_role(
        &mut self,
        out: &Outcome<'_>,
        services: &OrganizationServices,
        organization: &OrganizationId,
        new_request_id: Uuid,
        person: PersonId,
        role: Role,
        proof: Option<SecurityOfficialProof>,
    ) -> Result<(), AccessError> {
        let at = out.at;
        if role == Role::Clinician {
            return Err(AccessError::RoleNotRequestable);
        }
        if let Some(grant) = self.grants.get(&person) {
            return Err(AccessError::AlreadyConnected(grant.role));
        }
        let has_security_official = self.has_security_official();
        let open = self
            .open_request_of(&person)
            .map(|request| (request.id, request.state, request.ticket.clone()));
        let request_id = match open {
            Some((_, RequestState::ManualReview, ticket)) => {
                let ticket = ticket.expect("a request in manual review has a ticket");
                return Err(AccessError::AccountBlocked(ticket.number));
            }
            Some((request_id, RequestState::ProofRejected, _)) if has_security_official => {
                out.record(
                    self,
                    OrganizationEvent::RoleRequestSentForApproval {
                        request_id,
                        person,
                        role,
                        at,
                    },
                )
                .await;
                return Ok(());
            }
            Some((request_id, RequestState::ProofRejected, _)) => request_id,
            Some(_) => return Err(AccessError::DuplicateRequest),
            None if has_security_official => {
                out.record(
                    self,
                    OrganizationEvent::RoleRequested {
                        request_id: new_request_id,
                        person,
                        role,
                        path: DecisionPath::SecurityOfficialApproval,
                        at,
                    },
                )
                .await;
                return Ok(());
            }
            None => new_request_id,
        };
        if role != Role::SecurityOfficial {
            return Err(AccessError::SecurityOfficialRequired);
        }
        let proof = proof.unwrap_or_default();
        let mismatch = match services.reference.check_proof(organization, &proof) {
            ProofVerdict::Incomplete(missing) => return Err(AccessError::ProofRequired(missing)),
            ProofVerdict::UnknownOrganization => return Err(AccessError::UnknownOrganization),
            ProofVerdict::NotConnectable => return Err(AccessError::OrganizationNotConnectable),
            ProofVerdict::Accepted => None,
            ProofVerdict::Mismatch(mismatch) => Some(mismatch),
        };
        // A blocked attempt needs its ticket before anything is recorded, so a
        // failing ticket service leaves the aggregate untouched.
        let failed_so_far = self
            .requests
            .get(&request_id)
            .map_or(0, |request| request.failed_attempts);
        let ticket = if mismatch.is_some() && failed_so_far + 1 >= PROOF_ATTEMPTS {
            Some(
                services
                    .tickets
                    .next_ticket_number()
                    .await
                    .map_err(|error| AccessError::Service(error.to_string()))?,
            )
        } else {
            None
        };
        if open.is_none() {
            out.record(
                self,
                OrganizationEvent::RoleRequested {
                    request_id,
                    person: person.clone(),
                    role,
                    path: DecisionPath::Proof,
                    at,
                },
            )
            .await;
        }
        let masked_proof = proof.masked();
        match mismatch {
            None => {
                out.record(
                    self,
                    OrganizationEvent::ProofAccepted {
                        request_id,
                        person: person.clone(),
                        masked_proof,
                        at,
                    },
                )
                .await;
                out.record(
                    self,
                    OrganizationEvent::RoleGranted {
                        person,
                        role: Role::SecurityOfficial,
                        request_id,
                        by: None,
                        at,
                    },
                )
                .await;
            }
            Some(mismatch) => {
                let attempt = failed_so_far + 1;
                out.record(
                    self,
                    OrganizationEvent::ProofRejected {
                        request_id,
                        person: person.clone(),
                        attempt,
                        attempts_remaining: PROOF_ATTEMPTS.saturating_sub(attempt),
                        masked_proof,
                        mismatch,
                        at,
                    },
                )
                .await;
                if let Some(ticket) = ticket {
                    out.record(
                        self,
                        OrganizationEvent::RequesterBlocked {
                            request_id,
                            person,
                            ticket,
                            at,
                        },
                    )
                    .await;
                }
            }
        }
        Ok(())
    }
}
