//! The wiring of the domain to its stores: the one place the aggregate's
//! services, the event store and the reference data meet.

use std::sync::Arc;
use std::time::Duration;

use access_domain::aggregate::Grant as GrantState;
use access_domain::identifiers::{Npi, OrganizationId, PersonId, TicketNumber};
use access_domain::roles::Role;
use access_domain::services::{OrganizationServices, ServiceError, SystemClock, TicketNumbers};
use access_domain::AccessError;
use access_domain::{Organization as OrganizationState, OrganizationCommand, OrganizationEvent};
use access_projections::{Projector, Views};
use access_reference::ReferenceData;
use access_store::{AggregateStore, Database};
use async_trait::async_trait;

use crate::clinician::FailureLimiter;
use crate::error::{ApiError, ApiResult};
use crate::observe::{Metrics, MutationLimit};
use crate::types::{Organization, SupportTicket};

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
    projector: Projector,
    views: Views,
    clinician_failures: FailureLimiter,
    metrics: Arc<Metrics>,
    mutation_limit: Arc<MutationLimit>,
}

/// Longest a mutation waits for the views to show its effect before
/// answering anyway (the command is durable either way).
const READ_YOUR_WRITES_WAIT: Duration = Duration::from_secs(5);

/// Mutations one person may make per second on average, and in a burst.
const MUTATIONS_PER_SECOND: f64 = 50.0;
const MUTATION_BURST: f64 = 100.0;

/// Retries of a command that lost a race before the conflict reaches the
/// client; only for commands whose retry cannot do harm.
const CONFLICT_RETRIES: usize = 3;

impl AccessService {
    pub fn new(database: Database, reference: Arc<ReferenceData>, projector: Projector) -> Self {
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
                views: Views::new(database.clone()),
                database,
                projector,
                clinician_failures: FailureLimiter::default(),
                metrics: Arc::default(),
                mutation_limit: Arc::new(MutationLimit::new(MUTATIONS_PER_SECOND, MUTATION_BURST)),
            }),
        }
    }

    pub fn reference(&self) -> &ReferenceData {
        &self.inner.reference
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }

    pub fn mutation_limit(&self) -> &Arc<MutationLimit> {
        &self.inner.mutation_limit
    }

    pub fn clinician_failures(&self) -> &FailureLimiter {
        &self.inner.clinician_failures
    }

    pub fn projector(&self) -> &Projector {
        &self.inner.projector
    }

    pub fn views(&self) -> &Views {
        &self.inner.views
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

    /// A help-desk ticket from the support desk view.
    pub async fn ticket(&self, number: &TicketNumber) -> ApiResult<Option<SupportTicket>> {
        self.inner
            .views
            .support_ticket(number)
            .await
            .map(|ticket| ticket.map(SupportTicket))
            .map_err(|error| ApiError::internal(&format!("reading ticket {number}"), &error))
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
        self.inner.metrics.events_appended(committed.events.len());
        if let Some(position) = committed.position {
            // Read-your-writes: what the caller reads next shows this command.
            if let Err(lagging) = self
                .inner
                .projector
                .wait_for(position, READ_YOUR_WRITES_WAIT)
                .await
            {
                tracing::warn!(
                    position = lagging.position,
                    reached = lagging.reached,
                    "views still behind a committed command; answering anyway"
                );
            }
        }
        Ok(Executed {
            state: committed.aggregate,
            events: committed
                .events
                .into_iter()
                .map(|envelope| envelope.payload)
                .collect(),
        })
    }

    /// Grants the Clinician role on each organization in turn (they are
    /// separate aggregates), and answers the Clinician grants the person
    /// holds there afterwards. Repeating it is harmless: organizations where
    /// the person is already connected are kept as they are.
    pub async fn connect_clinician(
        &self,
        person: &PersonId,
        npi: &Npi,
        organizations: &[OrganizationId],
    ) -> ApiResult<Vec<(OrganizationId, GrantState)>> {
        let mut grants = Vec::new();
        for organization in organizations {
            let command = || OrganizationCommand::GrantClinicianRole {
                person: person.clone(),
                npi: npi.clone(),
            };
            let mut outcome = self.execute(organization, command()).await;
            for _ in 0..CONFLICT_RETRIES {
                if !matches!(outcome, Err(ApiError::Conflict)) {
                    break;
                }
                outcome = self.execute(organization, command()).await;
            }
            let state = match outcome {
                Ok(executed) => {
                    let refused = executed.events.iter().any(|event| {
                        matches!(event, OrganizationEvent::ClinicianClaimRefused { .. })
                    });
                    if refused {
                        return Err(ApiError::ClinicianNotVerified);
                    }
                    executed.state
                }
                Err(ApiError::Refused(AccessError::AlreadyConnected(_))) => {
                    self.load(organization).await?
                }
                Err(ApiError::Internal) => return Err(ApiError::NpiAssociationFailed),
                Err(other) => return Err(other),
            };
            if let Some(grant) = state
                .grant_of(person)
                .filter(|grant| grant.role == Role::Clinician)
            {
                grants.push((organization.clone(), grant.clone()));
            }
        }
        Ok(grants)
    }
}
