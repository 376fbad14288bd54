//! What happened to an organization, in the past tense. Events carry who acted
//! and when, person ids (never names or emails) and only masked proof values.
//! The catalogue with fields and versions is docs/events.md.

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::identifiers::{PersonId, TicketNumber};
use crate::proof::ProofMismatch;
use crate::roles::Role;

/// How a new request will be decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DecisionPath {
    /// The organization has no Security Official: the proof decides.
    Proof,
    /// A Security Official of the organization decides.
    SecurityOfficialApproval,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum OrganizationEvent {
    RoleRequested {
        request_id: Uuid,
        person: PersonId,
        role: Role,
        path: DecisionPath,
        at: DateTime<Utc>,
    },
    /// A first-Security-Official proof did not match the reference data.
    ProofRejected {
        request_id: Uuid,
        person: PersonId,
        attempt: u8,
        attempts_remaining: u8,
        masked_proof: String,
        mismatch: ProofMismatch,
        at: DateTime<Utc>,
    },
    /// A first-Security-Official proof matched: the request is approved
    /// automatically (a `RoleGranted` follows).
    ProofAccepted {
        request_id: Uuid,
        person: PersonId,
        masked_proof: String,
        at: DateTime<Utc>,
    },
    /// The third failed proof: the person may not try again for this
    /// organization and the request goes to manual review under `ticket`.
    RequesterBlocked {
        request_id: Uuid,
        person: PersonId,
        ticket: TicketNumber,
        at: DateTime<Utc>,
    },
    /// A request whose proof was rejected, retried after the organization got a
    /// Security Official: it now waits for their approval.
    RoleRequestSentForApproval {
        request_id: Uuid,
        person: PersonId,
        role: Role,
        at: DateTime<Utc>,
    },
    /// `person` is the requester, so the event reads on its own:
    /// "approver approved person's request".
    RoleRequestApproved {
        request_id: Uuid,
        person: PersonId,
        approver: PersonId,
        at: DateTime<Utc>,
    },
    RoleRequestDenied {
        request_id: Uuid,
        person: PersonId,
        approver: PersonId,
        reason: Option<String>,
        at: DateTime<Utc>,
    },
    RoleRequestWithdrawn {
        request_id: Uuid,
        person: PersonId,
        at: DateTime<Utc>,
    },
    /// `by` is who decided; `None` when an accepted proof granted it.
    RoleGranted {
        person: PersonId,
        role: Role,
        request_id: Uuid,
        by: Option<PersonId>,
        at: DateTime<Utc>,
    },
    /// Clinician verification (automatic or manual) granted the view-only
    /// Clinician role. The NPI is masked like any proof value; its
    /// fingerprint lets the organization tell one NPI from another.
    ClinicianRoleGranted {
        person: PersonId,
        masked_npi: String,
        npi_fingerprint: String,
        at: DateTime<Utc>,
    },
    /// A person claimed an NPI another person already connected as: refused,
    /// and recorded so support staff see the attempt.
    ClinicianClaimRefused {
        person: PersonId,
        masked_npi: String,
        npi_fingerprint: String,
        connected_person: PersonId,
        at: DateTime<Utc>,
    },
    StaffUserRevoked {
        person: PersonId,
        by: PersonId,
        reason: Option<String>,
        at: DateTime<Utc>,
    },
    TicketResolved {
        ticket: TicketNumber,
        request_id: Uuid,
        person: PersonId,
        approved: bool,
        by: PersonId,
        note: Option<String>,
        at: DateTime<Utc>,
    },
    /// Support lifted a block: the ticket closes unapproved and the request is
    /// back to "proof rejected" with three fresh attempts.
    RequesterUnblocked {
        ticket: TicketNumber,
        request_id: Uuid,
        person: PersonId,
        by: PersonId,
        note: Option<String>,
        at: DateTime<Utc>,
    },
    RoleChanged {
        person: PersonId,
        from: Role,
        to: Role,
        by: PersonId,
        note: Option<String>,
        at: DateTime<Utc>,
    },
    SecurityOfficialRemoved {
        person: PersonId,
        by: PersonId,
        note: Option<String>,
        at: DateTime<Utc>,
    },
}

impl OrganizationEvent {
    /// The person who caused the event: the requester, decider or support
    /// agent. `None` for automatic grants.
    pub fn actor(&self) -> Option<&PersonId> {
        use OrganizationEvent::*;
        match self {
            RoleRequested { person, .. }
            | ProofRejected { person, .. }
            | ProofAccepted { person, .. }
            | RequesterBlocked { person, .. }
            | RoleRequestSentForApproval { person, .. }
            | RoleRequestWithdrawn { person, .. } => Some(person),
            RoleRequestApproved { approver, .. } | RoleRequestDenied { approver, .. } => {
                Some(approver)
            }
            RoleGranted { by, .. } => by.as_ref(),
            ClinicianRoleGranted { person, .. } | ClinicianClaimRefused { person, .. } => {
                Some(person)
            }
            StaffUserRevoked { by, .. }
            | TicketResolved { by, .. }
            | RequesterUnblocked { by, .. }
            | RoleChanged { by, .. }
            | SecurityOfficialRemoved { by, .. } => Some(by),
        }
    }

    /// The request an event is about, if any.
    pub fn request_id(&self) -> Option<Uuid> {
        use OrganizationEvent::*;
        match self {
            RoleRequested { request_id, .. }
            | ProofRejected { request_id, .. }
            | ProofAccepted { request_id, .. }
            | RequesterBlocked { request_id, .. }
            | RoleRequestSentForApproval { request_id, .. }
            | RoleRequestApproved { request_id, .. }
            | RoleRequestDenied { request_id, .. }
            | RoleRequestWithdrawn { request_id, .. }
            | RoleGranted { request_id, .. }
            | TicketResolved { request_id, .. }
            | RequesterUnblocked { request_id, .. } => Some(*request_id),
            ClinicianRoleGranted { .. }
            | ClinicianClaimRefused { .. }
            | StaffUserRevoked { .. }
            | RoleChanged { .. }
            | SecurityOfficialRemoved { .. } => None,
        }
    }

    pub fn at(&self) -> DateTime<Utc> {
        use OrganizationEvent::*;
        match self {
            RoleRequested { at, .. }
            | ProofRejected { at, .. }
            | ProofAccepted { at, .. }
            | RequesterBlocked { at, .. }
            | RoleRequestSentForApproval { at, .. }
            | RoleRequestApproved { at, .. }
            | RoleRequestDenied { at, .. }
            | RoleRequestWithdrawn { at, .. }
            | RoleGranted { at, .. }
            | ClinicianRoleGranted { at, .. }
            | ClinicianClaimRefused { at, .. }
            | StaffUserRevoked { at, .. }
            | TicketResolved { at, .. }
            | RequesterUnblocked { at, .. }
            | RoleChanged { at, .. }
            | SecurityOfficialRemoved { at, .. } => *at,
        }
    }
}

impl DomainEvent for OrganizationEvent {
    fn event_type(&self) -> String {
        use OrganizationEvent::*;
        let name = match self {
            RoleRequested { .. } => "RoleRequested",
            ProofRejected { .. } => "ProofRejected",
            ProofAccepted { .. } => "ProofAccepted",
            RequesterBlocked { .. } => "RequesterBlocked",
            RoleRequestSentForApproval { .. } => "RoleRequestSentForApproval",
            RoleRequestApproved { .. } => "RoleRequestApproved",
            RoleRequestDenied { .. } => "RoleRequestDenied",
            RoleRequestWithdrawn { .. } => "RoleRequestWithdrawn",
            RoleGranted { .. } => "RoleGranted",
            ClinicianRoleGranted { .. } => "ClinicianRoleGranted",
            ClinicianClaimRefused { .. } => "ClinicianClaimRefused",
            StaffUserRevoked { .. } => "StaffUserRevoked",
            TicketResolved { .. } => "TicketResolved",
            RequesterUnblocked { .. } => "RequesterUnblocked",
            RoleChanged { .. } => "RoleChanged",
            SecurityOfficialRemoved { .. } => "SecurityOfficialRemoved",
        };
        name.to_string()
    }

    /// Every event is at its first version; a change of shape bumps it and adds
    /// an upcaster, never rewrites stored events.
    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}
