//! What people ask of an organization. Every field is already parsed: the
//! commands cannot carry a malformed identifier.
//!
//! Support-staff commands are built by the API only from a support capability
//! (validated token claims); the aggregate records who acted.

use uuid::Uuid;

use crate::identifiers::{Npi, OrganizationId, PersonId, TicketNumber};
use crate::proof::SecurityOfficialProof;
use crate::roles::Role;

#[derive(Debug, Clone, PartialEq)]
pub enum OrganizationCommand {
    /// Ask for a role (rules 1–4, 6). `request_id` is used only when a new
    /// request is opened; a retry after a rejected proof continues the open one.
    RequestRole {
        organization: OrganizationId,
        request_id: Uuid,
        requester: PersonId,
        role: Role,
        proof: Option<SecurityOfficialProof>,
    },
    /// Rule 5.
    ApproveRequest {
        request_id: Uuid,
        approver: PersonId,
    },
    /// Rule 5.
    DenyRequest {
        request_id: Uuid,
        approver: PersonId,
        reason: Option<String>,
    },
    /// Rule 7.
    WithdrawRequest {
        request_id: Uuid,
        requester: PersonId,
    },
    /// Rule 8: a Security Official revokes a Staff User.
    RevokeStaffUser {
        person: PersonId,
        by: PersonId,
        reason: Option<String>,
    },
    /// Rule 9 (support staff): approve or deny a blocked request after checking
    /// the proof by hand.
    ResolveTicket {
        ticket: TicketNumber,
        approve: bool,
        by: PersonId,
        note: Option<String>,
    },
    /// Rule 9 (support staff): let a blocked person try again.
    UnblockPerson {
        person: PersonId,
        by: PersonId,
        note: Option<String>,
    },
    /// Rule 8 (support staff): Security Official ↔ Staff User.
    ChangeRole {
        person: PersonId,
        role: Role,
        by: PersonId,
        note: Option<String>,
    },
    /// Clinician verification matched this person to a clinician associated
    /// with the organization: the view-only Clinician role, no approval.
    GrantClinicianRole { person: PersonId, npi: Npi },
    /// Rule 8 (support staff): a Security Official who left.
    RemoveSecurityOfficial {
        person: PersonId,
        by: PersonId,
        note: Option<String>,
    },
}
