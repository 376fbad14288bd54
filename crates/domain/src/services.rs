//! What the aggregate asks the outside world, behind traits so the domain stays
//! pure and its tests can answer with fixed values.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::identifiers::{OrganizationId, TicketNumber};
use crate::proof::{ProofVerdict, SecurityOfficialProof};

/// The organization reference data (the seeds' PECOS extract), held in memory.
pub trait ReferenceLookup: Send + Sync {
    fn check_proof(
        &self,
        organization: &OrganizationId,
        proof: &SecurityOfficialProof,
    ) -> ProofVerdict;
}

/// The system-wide help-desk ticket sequence: every call a new number.
#[async_trait]
pub trait TicketNumbers: Send + Sync {
    async fn next_ticket_number(&self) -> Result<TicketNumber, ServiceError>;
}

pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The wall clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A service failed for reasons outside the domain (database down, ...).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ServiceError(pub String);

/// The aggregate's `Services`: one handle per lookup it may make.
#[derive(Clone)]
pub struct OrganizationServices {
    pub reference: Arc<dyn ReferenceLookup>,
    pub tickets: Arc<dyn TicketNumbers>,
    pub clock: Arc<dyn Clock>,
}
