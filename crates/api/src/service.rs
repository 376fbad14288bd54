//! The wiring of the domain to its stores: the one place the aggregate's
//! services, the event store and the reference data meet.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use access_domain::aggregate::Grant as GrantState;
use access_domain::identifiers::{Npi, OrganizationId, PersonId, TicketNumber};
use access_domain::roles::Role;
use access_domain::services::{OrganizationServices, ServiceError, SystemClock, TicketNumbers};
use access_domain::AccessError;
use access_domain::{Organization as OrganizationState, OrganizationCommand, OrganizationEvent};
use access_projections::{Appended, People, Projector, Views};
use access_reference::ReferenceData;
use access_store::{AggregateStore, Database, ReportsMark, REQUEST_METADATA};
use async_trait::async_trait;
use tokio::sync::broadcast;

use crate::clinician::FailureLimiter;
use crate::error::{ApiError, ApiResult};
use crate::notifications::RecentlyRemembered;
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

/// Tells the organizations held in memory about every event committed by any process,
/// so reads answer from memory unless another process changed the organization. Ends
/// with the service.
async fn report_appended(mut appended: broadcast::Receiver<Appended>, service: Weak<Inner>) {
    loop {
        let news = appended.recv().await;
        let Some(service) = service.upgrade() else {
            return;
        };
        match news {
            Ok(event) => service.organizations.note_appended(
                &event.organization.to_string(),
                usize::try_from(event.sequence).unwrap_or(usize::MAX),
            ),
            Err(broadcast::error::RecvError::Lagged(_)) => service.organizations.note_missed(),
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

tokio::task_local! {
    /// The request being served, when it came with an `Idempotency-Key`: every event
    /// it appends carries this in its metadata, so that a retry after a crash can
    /// tell whether it committed (`Database::request_committed`).
    static SERVING_REQUEST: String;
}

/// Runs `serve` with the events it appends tied to `request` (a hash of the person and
/// the key: the key itself is the client's text and stays out of the events).
pub(crate) async fn serving_request<F: std::future::Future>(
    request: String,
    serve: F,
) -> F::Output {
    SERVING_REQUEST.scope(request, serve).await
}

/// What a command changed: its events, and what the caller read from them and
/// the organization's state right after them.
pub struct Executed<R> {
    pub outcome: R,
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
    recently_remembered: RecentlyRemembered,
    people: People,
}

/// Longest a mutation waits for the views to show its effect before
/// answering anyway (the command is durable either way).
const READ_YOUR_WRITES_WAIT: Duration = Duration::from_secs(5);

/// Mutations one person may make per second on average, and in a burst.
const MUTATIONS_PER_SECOND: f64 = 50.0;
const MUTATION_BURST: f64 = 100.0;

impl AccessService {
    /// Call inside a Tokio runtime: a task follows the log for the organizations held
    /// in memory.
    /// `cached_events` bounds the organizations held in memory by the entries of their
    /// states, each about one event's worth (`access_store::CACHED_EVENTS` is the usual
    /// bound).
    pub fn new(
        database: Database,
        reference: Arc<ReferenceData>,
        projector: Projector,
        cached_events: usize,
    ) -> Self {
        let services = OrganizationServices {
            reference: reference.clone(),
            tickets: Arc::new(DatabaseTickets(database.clone())),
            clock: Arc::new(SystemClock),
        };
        let organizations = AggregateStore::new(&database, services)
            .holding_at_most(cached_events)
            .weighed_by(OrganizationState::entries)
            .with_snapshots(access_domain::aggregate::STATE_VERSION)
            .appending_through(projector.append_queue());
        let appended = projector.appended();
        organizations.rely_on_reports();
        let people = projector.people();
        let service = Self {
            inner: Arc::new(Inner {
                organizations,
                reference,
                views: projector.views(),
                database,
                projector,
                clinician_failures: FailureLimiter::default(),
                metrics: Arc::default(),
                mutation_limit: Arc::new(MutationLimit::new(MUTATIONS_PER_SECOND, MUTATION_BURST)),
                recently_remembered: RecentlyRemembered::default(),
                people,
            }),
        };
        tokio::spawn(report_appended(appended, Arc::downgrade(&service.inner)));
        service
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

    pub(crate) fn recently_remembered(&self) -> &RecentlyRemembered {
        &self.inner.recently_remembered
    }

    /// The directory of callers' names and addresses the email sender reads.
    pub(crate) fn people(&self) -> &People {
        &self.inner.people
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

    /// How far the reports of other processes' commands have come
    /// (`AggregateStore::reports_mark`): an answer kept from the organizations in memory is
    /// given again only under the same mark, as a read in its place may no longer be
    /// answered the same once it has moved. `None` when reads do not rely on reports.
    pub fn reports_mark(&self) -> Option<ReportsMark> {
        self.inner.organizations.reports_mark()
    }

    /// Reads the organization's current state, including every command committed
    /// before the call by any server process. `read` may run more than once: an answer
    /// read from commands still being committed is read again if they are not.
    pub async fn read<R>(
        &self,
        id: &OrganizationId,
        read: impl FnMut(&OrganizationState) -> R,
    ) -> ApiResult<R> {
        self.inner
            .organizations
            .read(&id.to_string(), read)
            .await
            .map_err(|error| ApiError::internal(&format!("loading organization {id}"), &error))
    }

    /// Runs a command; it is durable when this returns. `read` sees its events and
    /// the organization's state right after them, and runs again whenever the command
    /// is handled again (docs/adr/05-aggregate-cache.md).
    pub async fn execute<R>(
        &self,
        id: &OrganizationId,
        command: OrganizationCommand,
        mut read: impl FnMut(&OrganizationState, &[OrganizationEvent]) -> R,
    ) -> ApiResult<Executed<R>> {
        let committed = self
            .inner
            .organizations
            .execute(
                &id.to_string(),
                command,
                SERVING_REQUEST
                    .try_with(|request| HashMap::from([(REQUEST_METADATA.into(), request.clone())]))
                    .unwrap_or_default(),
                |state, envelopes| {
                    let events = envelopes
                        .iter()
                        .map(|envelope| envelope.payload.clone())
                        .collect::<Vec<_>>();
                    (read(state, &events), events)
                },
            )
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
        let (outcome, events) = committed.outcome;
        Ok(Executed { outcome, events })
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
            let command = OrganizationCommand::GrantClinicianRole {
                person: person.clone(),
                npi: npi.clone(),
            };
            let clinician_grant = |state: &OrganizationState| {
                state
                    .grant_of(person)
                    .filter(|grant| grant.role == Role::Clinician)
                    .cloned()
            };
            let grant = match self
                .execute(organization, command, |state, events| {
                    let refused = events.iter().any(|event| {
                        matches!(event, OrganizationEvent::ClinicianClaimRefused { .. })
                    });
                    (!refused).then(|| clinician_grant(state))
                })
                .await
            {
                Ok(Executed { outcome: None, .. }) => return Err(ApiError::ClinicianNotVerified),
                Ok(Executed {
                    outcome: Some(grant),
                    ..
                }) => grant,
                Err(ApiError::Refused(AccessError::AlreadyConnected(_))) => {
                    self.read(organization, clinician_grant).await?
                }
                Err(ApiError::Internal) => return Err(ApiError::NpiAssociationFailed),
                Err(other) => return Err(other),
            };
            if let Some(grant) = grant {
                grants.push((organization.clone(), grant));
            }
        }
        Ok(grants)
    }
}
