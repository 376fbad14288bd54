//! The wiring of the domain to its stores: the one place the aggregate's
//! services, the event store and the reference data meet.

use std::sync::Arc;

use access_domain::identifiers::{OrganizationId, TicketNumber};
use access_domain::services::{OrganizationServices, ServiceError, SystemClock, TicketNumbers};
use access_domain::{Organization as OrganizationState, OrganizationCommand, OrganizationEvent};
use access_reference::ReferenceData;
use access_store::{AggregateStore, Database};
use async_trait::async_trait;

use crate::error::{ApiError, ApiResult};
use crate::types::Organization;

/// Help-desk ticket numbers from the database's system-wide sequence.
struct DatabaseTickets(Database);

#[async_trait]
impl TicketNumbers for DatabaseTickets {
    async fn next_ticket_number(&self) -> Result<TicketNumber, ServiceError> {
        let serial = self
            .0
            .next_ticket_serial()
            .await
            .map_err(|error| ServiceError(error.to_string()))?;
        TicketNumber::from_serial(serial)
            .map_err(|error| ServiceError(format!("ticket serial {serial}: {error}")))
    }
}

/// What a command changed: the organization's state after it, and its events.
pub struct Executed {
    pub state: OrganizationState,
    pub events: Vec<OrganizationEvent>,
}

#[derive(Clone)]
pub struct AccessService {
    inner: Arc<Inner>,
}

struct Inner {
    organizations: AggregateStore<OrganizationState>,
    reference: Arc<ReferenceData>,
    database: Database,
}

impl AccessService {
    pub fn new(database: Database, reference: Arc<ReferenceData>) -> Self {
        let services = OrganizationServices {
            reference: reference.clone(),
            tickets: Arc::new(DatabaseTickets(database.clone())),
            clock: Arc::new(SystemClock),
        };
        let organizations = AggregateStore::new(&database, services);
        Self {
            inner: Arc::new(Inner {
                organizations,
                reference,
                database,
            }),
        }
    }

    pub fn reference(&self) -> &ReferenceData {
        &self.inner.reference
    }

    pub fn database(&self) -> &Database {
        &self.inner.database
    }

    /// The organization's reference record, or NOT_FOUND.
    pub fn organization(&self, id: &OrganizationId) -> ApiResult<Organization> {
        self.inner
            .reference
            .organization(id)
            .cloned()
            .map(Organization)
            .ok_or_else(|| {
                ApiError::NotFound(format!("No organization {id} in the reference data."))
            })
    }

    /// The organization's current state, straight from its events.
    pub async fn load(&self, id: &OrganizationId) -> ApiResult<OrganizationState> {
        self.inner
            .organizations
            .load(&id.to_string())
            .await
            .map_err(|error| ApiError::internal(&format!("loading organization {id}"), &error))
    }

    /// Runs a command; it is durable when this returns.
    pub async fn execute(
        &self,
        id: &OrganizationId,
        command: OrganizationCommand,
    ) -> ApiResult<Executed> {
        let committed = self
            .inner
            .organizations
            .execute(&id.to_string(), command)
            .await
            .map_err(|error| {
                ApiError::from_command(&format!("command on organization {id}"), error)
            })?;
        Ok(Executed {
            state: committed.aggregate,
            events: committed
                .events
                .into_iter()
                .map(|envelope| envelope.payload)
                .collect(),
        })
    }
}
