use std::collections::HashMap;

use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{Aggregate, AggregateContext, AggregateError, EventEnvelope, EventStore};
use postgres_es::PostgresEventRepository;
use sqlite_es::SqliteEventRepository;

use crate::database::{Database, Pool};
use crate::error::StoreError;

/// Commands in, events out, for one aggregate type, on whichever database was configured.
///
/// A thin switch over the postgres-es and sqlite-es frameworks, so the rest of the
/// product never names a database. Aggregates are rebuilt from their events on every
/// command (no snapshots): organizations have few events, and snapshots would be one
/// more thing to keep compatible. No cqrs-es queries are attached either: views follow
/// the global log through [`Database::events_after`], which survives restarts and works
/// across processes, where cqrs-es queries only see this process's commits.
pub struct AggregateStore<A: Aggregate> {
    backend: Backend<A>,
    services: A::Services,
    database: Database,
}

enum Backend<A: Aggregate> {
    Sqlite(PersistedEventStore<SqliteEventRepository, A>),
    Postgres(PersistedEventStore<PostgresEventRepository, A>),
}

/// What an accepted command did: the aggregate's state after it and the
/// events appended, with their sequence numbers.
pub struct Committed<A: Aggregate> {
    pub aggregate: A,
    pub events: Vec<EventEnvelope<A>>,
    /// The global position of the command's last event: what a reader waits for to see
    /// the command's effect in the views (read-your-writes). `None` when the command
    /// appended nothing, or in the rare case where the commit succeeded but reading its
    /// position back failed; the events are durable either way.
    pub position: Option<i64>,
}

impl<A: Aggregate + Clone> AggregateStore<A> {
    pub fn new(db: &Database, services: A::Services) -> Self {
        let backend = match db.pool() {
            Pool::Sqlite(pool) => Backend::Sqlite(PersistedEventStore::new_event_store(
                SqliteEventRepository::new(pool.clone()),
            )),
            Pool::Postgres(pool) => Backend::Postgres(PersistedEventStore::new_event_store(
                PostgresEventRepository::new(pool.clone()),
            )),
        };
        AggregateStore {
            backend,
            services,
            database: db.clone(),
        }
    }

    /// Handles `command` against the aggregate's current state and appends the events it
    /// produced; they are durable when this returns. A concurrent command that appended
    /// first makes this one fail with [`AggregateError::AggregateConflict`] and append
    /// nothing; the caller may retry it against the new state.
    ///
    /// A successful commit wakes this process's tailers ([`Database::commits`]).
    pub async fn execute(
        &self,
        aggregate_id: &str,
        command: A::Command,
    ) -> Result<Committed<A>, AggregateError<A::Error>> {
        self.execute_with_metadata(aggregate_id, command, HashMap::new())
            .await
    }

    /// As [`execute`](Self::execute), storing `metadata` (who, from where, correlation
    /// ids) with every event the command produces.
    pub async fn execute_with_metadata(
        &self,
        aggregate_id: &str,
        command: A::Command,
        metadata: HashMap<String, String>,
    ) -> Result<Committed<A>, AggregateError<A::Error>> {
        let (aggregate, events) = match &self.backend {
            Backend::Sqlite(store) => {
                handle_and_commit(store, &self.services, aggregate_id, command, metadata).await
            }
            Backend::Postgres(store) => {
                handle_and_commit(store, &self.services, aggregate_id, command, metadata).await
            }
        }?;
        let position = match events.last() {
            None => None,
            Some(last) => {
                self.database.notify_commit();
                // Neither framework reports positions; the primary key finds it at once.
                self.database
                    .position_of(A::TYPE, aggregate_id, last.sequence as i64)
                    .await
                    .ok()
            }
        };
        Ok(Committed {
            aggregate,
            events,
            position,
        })
    }

    /// The aggregate's current state, for reads that must not wait for a projection.
    /// An aggregate without events is `A::default()`.
    pub async fn load(&self, aggregate_id: &str) -> Result<A, StoreError> {
        let loaded = match &self.backend {
            Backend::Sqlite(store) => store.load_aggregate(aggregate_id).await,
            Backend::Postgres(store) => store.load_aggregate(aggregate_id).await,
        };
        loaded
            .map(|context| context.aggregate)
            .map_err(|error| self.load_error(aggregate_id, error))
    }

    fn load_error(&self, aggregate_id: &str, error: AggregateError<A::Error>) -> StoreError {
        let doing = format!("loading {} {aggregate_id}", A::TYPE);
        let database = self.database.describe();
        match error {
            // The serde message may quote the payload; say what failed instead.
            AggregateError::DeserializationError(_) => StoreError::Failed {
                database,
                reason: format!(
                    "{doing}: its stored events no longer match the current event types"
                ),
            },
            AggregateError::DatabaseConnectionError(error)
            | AggregateError::UnexpectedError(error) => match error.downcast::<sqlx::Error>() {
                Ok(error) => StoreError::from_sqlx(database, &doing, *error),
                Err(error) => StoreError::Failed {
                    database,
                    reason: format!("{doing}: {error}"),
                },
            },
            // Loading neither runs a command nor appends.
            AggregateError::UserError(_) | AggregateError::AggregateConflict => {
                StoreError::Failed {
                    database,
                    reason: format!("{doing}: {error}"),
                }
            }
        }
    }
}

/// What `CqrsFramework::execute_with_metadata` does, keeping the state and the
/// committed events it would discard. Views follow the global log instead of
/// cqrs-es queries, so there is nothing to dispatch.
async fn handle_and_commit<A, ES>(
    store: &ES,
    services: &A::Services,
    aggregate_id: &str,
    command: A::Command,
    metadata: HashMap<String, String>,
) -> Result<(A, Vec<EventEnvelope<A>>), AggregateError<A::Error>>
where
    A: Aggregate + Clone,
    ES: EventStore<A>,
{
    let mut context = store.load_aggregate(aggregate_id).await?;
    let sink = EventSink::default();
    context
        .aggregate()
        .handle(command, services, &sink)
        .await
        .map_err(AggregateError::UserError)?;
    let aggregate = context.aggregate().clone();
    let events = store
        .commit(sink.collect().await, context, metadata)
        .await?;
    Ok((aggregate, events))
}
