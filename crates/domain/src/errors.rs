//! Why the aggregate refused a command. A refused command writes nothing.
//! Messages are for people and never quote a proof value.

use crate::identifiers::TicketNumber;
use crate::proof::ProofField;
use crate::roles::{RequestState, Role};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AccessError {
    #[error("This organization needs a Security Official first: only a Security Official request is accepted until one is approved.")]
    SecurityOfficialRequired,
    #[error("A first Security Official must prove the connection to the organization; missing: {}.", field_names(.0))]
    ProofRequired(Vec<ProofField>),
    #[error("You already have an open request for this organization.")]
    DuplicateRequest,
    #[error("You already hold the {} role in this organization.", .0.label())]
    AlreadyConnected(Role),
    #[error("You are blocked from further attempts for this organization after three failed proofs; help-desk ticket {0} is open for manual review.")]
    AccountBlocked(TicketNumber),
    #[error("You cannot approve or deny your own request.")]
    SelfDecision,
    #[error("This request is {} and can no longer be changed.", .0.label())]
    RequestNotPending(RequestState),
    #[error("Only the {} role can be requested here; the Clinician role comes from clinician verification.", "Security Official or Staff User")]
    RoleNotRequestable,
    #[error("Only a Security Official of this organization may do this.")]
    NotSecurityOfficial,
    #[error("Only the person who made a request may withdraw it.")]
    NotRequester,
    #[error("A Security Official can only revoke Staff Users; removing a Security Official or a Clinician is a support-staff action.")]
    OnlyStaffUsersRevocable,
    #[error("No such role request in this organization.")]
    RequestNotFound,
    #[error("That person holds no role in this organization.")]
    NoRole,
    #[error("That person is not a Security Official of this organization.")]
    NotASecurityOfficial,
    #[error("That person is not blocked in this organization.")]
    NotBlocked,
    #[error("No such help-desk ticket in this organization.")]
    TicketNotFound,
    #[error("Help-desk ticket {0} is already resolved.")]
    TicketNotOpen(TicketNumber),
    #[error("A role can only be changed between Security Official and Staff User, to a role the person does not already hold.")]
    RoleNotChangeable,
    #[error("This organization is not in the reference data.")]
    UnknownOrganization,
    #[error("Only CMS-approved registries can be connected.")]
    OrganizationNotConnectable,
    /// A lookup outside the domain failed; the text is for logs, not clients.
    #[error("service unavailable: {0}")]
    Service(String),
}

fn field_names(fields: &[ProofField]) -> String {
    fields
        .iter()
        .map(|field| match field {
            ProofField::ParticipantTins(count) => format!("participantTins ({count} TINs)"),
            other => other.name().to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}
