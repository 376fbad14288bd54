//! Roles a person can hold in an organization and the states of a request.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Role {
    SecurityOfficial,
    StaffUser,
    /// View-only, granted by clinician verification, never requested.
    Clinician,
}

impl Role {
    pub fn label(self) -> &'static str {
        match self {
            Role::SecurityOfficial => "Security Official",
            Role::StaffUser => "Staff User",
            Role::Clinician => "Clinician",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RequestState {
    /// A first-Security-Official request whose last proof failed; the person may
    /// try again while attempts remain.
    ProofRejected,
    /// Waiting for a Security Official of the organization.
    Pending,
    Approved,
    Denied,
    Withdrawn,
    /// Blocked after the third failed proof; a help-desk ticket is open.
    ManualReview,
}

impl RequestState {
    /// An open request is the person's one request for the organization.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            RequestState::ProofRejected | RequestState::Pending | RequestState::ManualReview
        )
    }

    pub fn label(self) -> &'static str {
        match self {
            RequestState::ProofRejected => "proof rejected",
            RequestState::Pending => "pending",
            RequestState::Approved => "approved",
            RequestState::Denied => "denied",
            RequestState::Withdrawn => "withdrawn",
            RequestState::ManualReview => "in manual review",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TicketState {
    Open,
    ResolvedApproved,
    ResolvedDenied,
}
