//! The one place client-facing errors are made: every refusal carries a stable
//! `extensions.code`; infrastructure failures are logged here with context and
//! reach clients only as `INTERNAL`.

use access_domain::identifiers::IdentifierError;
use std::any::Any;

use access_domain::AccessError;
use access_store::StoreError;
use async_graphql::{Enum, ErrorExtensions};
use cqrs_es::AggregateError;

/// The contract's error codes, as they appear in `extensions.code`.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[graphql(rename_items = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    Unauthenticated,
    Forbidden,
    NotFound,
    /// A malformed field; `extensions.field` names it.
    InvalidInput,
    SecurityOfficialRequired,
    ProofRequired,
    DuplicateRequest,
    AlreadyConnected,
    /// Blocked after three failed proofs; `extensions.ticket` holds the ticket.
    AccountBlocked,
    SelfDecision,
    RequestNotPending,
    LastSecurityOfficial,
    /// A concurrent write won; the same request is safe to retry.
    Conflict,
    ClinicianNotFound,
    ClinicianInfoMissing,
    ClinicianNotVerified,
    Internal,
    /// Too many attempts or changes for now; the message says when to retry.
    RateLimited,
    /// The request ran past the server's time limit; safe to retry.
    Timeout,
    /// The database cannot be reached right now; retry in a few seconds, with the same
    /// Idempotency-Key (a change may have been saved before the failure).
    Unavailable,
    /// The document is not valid GraphQL for this schema, or exceeds the
    /// depth, complexity or size limits.
    InvalidQuery,
    /// A retry of a request whose first attempt was carried out but whose answer was
    /// lost (its server stopped, or it failed after saving): nothing was done again;
    /// read the current state.
    AlreadyApplied,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Unauthenticated => "UNAUTHENTICATED",
            ErrorCode::Forbidden => "FORBIDDEN",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::InvalidInput => "INVALID_INPUT",
            ErrorCode::SecurityOfficialRequired => "SECURITY_OFFICIAL_REQUIRED",
            ErrorCode::ProofRequired => "PROOF_REQUIRED",
            ErrorCode::DuplicateRequest => "DUPLICATE_REQUEST",
            ErrorCode::AlreadyConnected => "ALREADY_CONNECTED",
            ErrorCode::AccountBlocked => "ACCOUNT_BLOCKED",
            ErrorCode::SelfDecision => "SELF_DECISION",
            ErrorCode::RequestNotPending => "REQUEST_NOT_PENDING",
            ErrorCode::LastSecurityOfficial => "LAST_SECURITY_OFFICIAL",
            ErrorCode::Conflict => "CONFLICT",
            ErrorCode::ClinicianNotFound => "CLINICIAN_NOT_FOUND",
            ErrorCode::ClinicianInfoMissing => "CLINICIAN_INFO_MISSING",
            ErrorCode::ClinicianNotVerified => "CLINICIAN_NOT_VERIFIED",
            ErrorCode::Internal => "INTERNAL",
            ErrorCode::RateLimited => "RATE_LIMITED",
            ErrorCode::Timeout => "TIMEOUT",
            ErrorCode::Unavailable => "UNAVAILABLE",
            ErrorCode::InvalidQuery => "INVALID_QUERY",
            ErrorCode::AlreadyApplied => "ALREADY_APPLIED",
        }
    }
}

/// A refusal or failure as a client sees it. Deliberately not `Display`:
/// async-graphql converts any `Display` error into a GraphQL error without
/// `extensions.code`, so the only way from here to a response is the `From`
/// below, which always sets the code.
#[derive(Debug)]
pub enum ApiError {
    Unauthenticated(String),
    Forbidden(String),
    NotFound(String),
    InvalidInput {
        field: String,
        message: String,
    },
    Refused(AccessError),
    /// A concurrent write won.
    Conflict,
    /// Already logged with context by [`ApiError::internal`].
    Internal,
    /// The database did not answer; logged by [`ApiError::internal`].
    Unavailable,
    ClinicianNotFound,
    ClinicianInfoMissing,
    ClinicianNotVerified,
    /// An internal failure while connecting a clinician; logged already.
    NpiAssociationFailed,
    RateLimited {
        retry_after_minutes: u64,
    },
    /// The per-person mutation rate was exceeded.
    TooManyMutations,
    /// The request took longer than the server allows.
    Timeout,
    /// The process serves as many requests as it is set to; this one was not started.
    Busy,
    /// The first request with the same Idempotency-Key is still running.
    IdempotentInProgress,
    /// The first request with the same Idempotency-Key saved its changes, and its
    /// answer was lost.
    AlreadyApplied,
}

/// The clinician guide's messages, word for word.
pub const CLINICIAN_NOT_FOUND: &str = "No unique clinician with this name was found in eligibility";
pub const CLINICIAN_INFO_MISSING: &str =
    "You must provide all required information to complete this request.";
pub const CLINICIAN_NOT_VERIFIED: &str =
    "We couldn't verify the information you provided. Please try again.";
pub const NPI_ASSOCIATION_FAILED: &str = "Unknown error while requesting NPI association";

impl ApiError {
    pub fn invalid(field: impl Into<String>, error: IdentifierError) -> Self {
        ApiError::InvalidInput {
            field: field.into(),
            message: error.to_string(),
        }
    }

    /// Logs an infrastructure failure with what was being done, and hides it. A database
    /// that cannot be reached is told apart, so that clients learn that retrying later is
    /// the remedy (and an outage is logged as such, not as a bug).
    pub fn internal(context: &str, error: &(impl std::fmt::Display + 'static)) -> Self {
        if database_unavailable(error) {
            tracing::warn!(%error, "{context}: the database is unavailable");
            return ApiError::Unavailable;
        }
        tracing::error!(%error, "{context}");
        ApiError::Internal
    }

    pub fn message(&self) -> String {
        match self {
            ApiError::Unauthenticated(message) | ApiError::Forbidden(message) | ApiError::NotFound(message) => {
                message.clone()
            }
            ApiError::InvalidInput { field, message } => format!("{field}: {message}"),
            ApiError::Refused(refusal) => refusal.to_string(),
            ApiError::Conflict => {
                "Another change to this organization was saved at the same moment; retry the request.".into()
            }
            ApiError::Internal => "Unknown error; it has been logged.".into(),
            ApiError::Unavailable => {
                "The service cannot reach its database right now; retry in a few seconds, with the same Idempotency-Key if you sent one.".into()
            }
            ApiError::ClinicianNotFound => CLINICIAN_NOT_FOUND.into(),
            ApiError::ClinicianInfoMissing => CLINICIAN_INFO_MISSING.into(),
            ApiError::ClinicianNotVerified => CLINICIAN_NOT_VERIFIED.into(),
            ApiError::NpiAssociationFailed => NPI_ASSOCIATION_FAILED.into(),
            ApiError::RateLimited { retry_after_minutes } => format!(
                "Too many failed verification attempts; try again in {retry_after_minutes} minute(s)."
            ),
            ApiError::TooManyMutations => "Too many changes in a short time; slow down and retry in a second.".into(),
            ApiError::Timeout => "The request took too long and was stopped; it is safe to retry.".into(),
            ApiError::Busy => {
                "The server is serving as many requests as it can and did not start this one; retry in a second, with the same Idempotency-Key if you sent one.".into()
            }
            ApiError::IdempotentInProgress => {
                "The first request with this Idempotency-Key is still being processed; retry shortly.".into()
            }
            ApiError::AlreadyApplied => {
                "The first request with this Idempotency-Key was carried out, but its answer was lost; it was not done again. Read the current state to see its effect.".into()
            }
        }
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            ApiError::Unauthenticated(_) => ErrorCode::Unauthenticated,
            ApiError::Forbidden(_) => ErrorCode::Forbidden,
            ApiError::NotFound(_) => ErrorCode::NotFound,
            ApiError::InvalidInput { .. } => ErrorCode::InvalidInput,
            ApiError::Refused(refusal) => refusal_code(refusal),
            ApiError::Conflict | ApiError::IdempotentInProgress => ErrorCode::Conflict,
            ApiError::Internal | ApiError::NpiAssociationFailed => ErrorCode::Internal,
            ApiError::Unavailable | ApiError::Busy => ErrorCode::Unavailable,
            ApiError::ClinicianNotFound => ErrorCode::ClinicianNotFound,
            ApiError::ClinicianInfoMissing => ErrorCode::ClinicianInfoMissing,
            ApiError::ClinicianNotVerified => ErrorCode::ClinicianNotVerified,
            ApiError::RateLimited { .. } | ApiError::TooManyMutations => ErrorCode::RateLimited,
            ApiError::Timeout => ErrorCode::Timeout,
            ApiError::AlreadyApplied => ErrorCode::AlreadyApplied,
        }
    }

    /// Maps the outcome of a command on an organization.
    pub fn from_command(context: &str, error: AggregateError<AccessError>) -> Self {
        match error {
            AggregateError::UserError(AccessError::Service(detail)) => {
                Self::internal(context, &detail)
            }
            AggregateError::UserError(refusal) => ApiError::Refused(refusal),
            AggregateError::AggregateConflict => ApiError::Conflict,
            other => Self::internal(context, &other),
        }
    }
}

/// Whether a failure is the database not answering. Errors reach the API under the types
/// of the layers they crossed; each is opened down to what the store can judge.
fn database_unavailable(error: &dyn Any) -> bool {
    let cause: Option<&(dyn std::error::Error + 'static)> =
        if let Some(error) = error.downcast_ref::<StoreError>() {
            Some(error)
        } else if let Some(error) = error.downcast_ref::<access_projections::Error>() {
            match error {
                access_projections::Error::Store(error) => Some(error),
                access_projections::Error::Sql(error) => Some(error),
                _ => None,
            }
        } else if let Some(error) = error.downcast_ref::<AggregateError<AccessError>>() {
            match error {
                AggregateError::DatabaseConnectionError(error)
                | AggregateError::UnexpectedError(error) => Some(error.as_ref()),
                _ => None,
            }
        } else {
            None
        };
    cause.is_some_and(StoreError::is_unavailable)
}

fn refusal_code(refusal: &AccessError) -> ErrorCode {
    match refusal {
        AccessError::SecurityOfficialRequired => ErrorCode::SecurityOfficialRequired,
        AccessError::ProofRequired(_) => ErrorCode::ProofRequired,
        AccessError::DuplicateRequest => ErrorCode::DuplicateRequest,
        AccessError::AlreadyConnected(_) => ErrorCode::AlreadyConnected,
        AccessError::AccountBlocked(_) => ErrorCode::AccountBlocked,
        AccessError::SelfDecision => ErrorCode::SelfDecision,
        AccessError::RequestNotPending(_) | AccessError::TicketNotOpen(_) => {
            ErrorCode::RequestNotPending
        }
        AccessError::NotSecurityOfficial
        | AccessError::NotRequester
        | AccessError::OnlyStaffUsersRevocable
        | AccessError::OrganizationNotConnectable => ErrorCode::Forbidden,
        AccessError::RequestNotFound
        | AccessError::NoRole
        | AccessError::NotASecurityOfficial
        | AccessError::NotBlocked
        | AccessError::TicketNotFound
        | AccessError::UnknownOrganization => ErrorCode::NotFound,
        AccessError::RoleNotRequestable | AccessError::RoleNotChangeable => ErrorCode::InvalidInput,
        AccessError::Service(_) => ErrorCode::Internal,
    }
}

impl From<ApiError> for async_graphql::Error {
    fn from(error: ApiError) -> Self {
        let code = error.code();
        async_graphql::Error::new(error.message()).extend_with(|_, extensions| {
            extensions.set("code", code.as_str());
            match &error {
                ApiError::InvalidInput { field, .. } => extensions.set("field", field.as_str()),
                ApiError::Refused(
                    AccessError::RoleNotRequestable | AccessError::RoleNotChangeable,
                ) => extensions.set("field", "role"),
                ApiError::Refused(AccessError::AccountBlocked(ticket)) => {
                    extensions.set("ticket", ticket.as_str())
                }
                ApiError::Refused(AccessError::ProofRequired(missing)) => extensions.set(
                    "missing",
                    missing.iter().map(|field| field.name()).collect::<Vec<_>>(),
                ),
                _ => {}
            }
        })
    }
}

/// For helpers: `?` in a resolver turns the error into a coded GraphQL error.
pub type ApiResult<T> = Result<T, ApiError>;

/// What resolvers return.
pub type GqlResult<T> = async_graphql::Result<T>;
