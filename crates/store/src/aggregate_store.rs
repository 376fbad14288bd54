use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::{PersistedEventRepository, PersistenceError, SerializedEvent};
use cqrs_es::{Aggregate, AggregateError, EventEnvelope};
use postgres_es::PostgresEventRepository;
use sqlite_es::SqliteEventRepository;

use crate::appends::{self, AppendQueue, AppendedAt, Queued, Settled};
use crate::database::{Database, Pool};
use crate::error::StoreError;
use crate::snapshots::Snapshot;

/// Commands in, events out, for one aggregate type, on whichever database was configured.
///
/// Events are read and written through the postgres-es and sqlite-es repositories, so the
/// rest of the product never names a database. Each aggregate this process has touched
/// stays in memory with the sequence of its last event, and commands on one aggregate run
/// one after another (a queue per aggregate), so concurrent commands in one process never
/// lose an optimistic-lock race against each other. Other processes writing the same
/// aggregate are caught by the store's optimistic lock; see docs/adr/05-aggregate-cache.md.
///
/// With [`with_snapshots`](Self::with_snapshots), a load that replayed many events keeps
/// the state it reached, so that the next load starts there (docs/adr/08-snapshots.md).
/// No cqrs-es queries: views follow the global log through [`Database::events_after`],
/// which survives restarts and works across processes.
pub struct AggregateStore<A: Aggregate> {
    repository: Repository,
    services: A::Services,
    database: Database,
    cache: Cache<A>,
    /// The layout of the states kept as snapshots; `None` keeps none.
    snapshot_version: Option<i32>,
    /// Where appends go to be written in groups instead of one by one, when set.
    appends: Option<AppendQueue>,
}

enum Repository {
    Sqlite(SqliteEventRepository),
    Postgres(PostgresEventRepository),
}

/// Runs one `PersistedEventRepository` call on whichever repository is configured.
macro_rules! on_repository {
    ($repository:expr, |$repo:ident| $body:expr) => {
        match $repository {
            Repository::Sqlite($repo) => $body,
            Repository::Postgres($repo) => $body,
        }
    };
}

/// See [`AggregateStore::reports_mark`]: equal marks, no news reported in between.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReportsMark(u64);

impl std::fmt::Display for ReportsMark {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{}", self.0)
    }
}

/// What an accepted command did: the events it appended, with their sequence numbers,
/// and what the caller read from them and the aggregate's state right after them.
pub struct Committed<A: Aggregate, R> {
    pub events: Vec<EventEnvelope<A>>,
    pub outcome: R,
    /// The global position of the command's last event: what a reader waits for to see
    /// the command's effect in the views (read-your-writes). `None` when the command
    /// appended nothing, or in the rare case where the commit succeeded but reading its
    /// position back failed; the events are durable either way.
    pub position: Option<i64>,
}

/// How much the cache holds at most; the least recently used idle aggregates go first.
const CACHED_AGGREGATES: usize = 10_000;

/// Events' worth of state held in memory, at most, unless told otherwise
/// ([`AggregateStore::holding_at_most`]). States differ in size, so the count of
/// aggregates alone does not bound memory: this does. An aggregate weighs the events
/// folded into it, or what its [`weighed_by`](AggregateStore::weighed_by) function says
/// (an organization: its entries, each about what one event adds). Keep it above the
/// largest aggregate, or that one is reloaded at each turn.
pub const CACHED_EVENTS: usize = 250_000;

/// A load that replayed at least this many events keeps a snapshot of the state it
/// reached. Fewer replay in about what reading a snapshot costs. The state is what
/// decisions need, not the history, so a snapshot costs the same however old the
/// aggregate is, and a reload reads at most this many events past it.
pub const SNAPSHOT_AFTER_REPLAYING: usize = 100;

/// Times a command is handled again after another process appended to its aggregate
/// first, before the conflict reaches the caller.
const CONFLICT_RETRIES: usize = 8;

impl<A> AggregateStore<A>
where
    A: Aggregate,
    A::Command: Clone,
{
    pub fn new(db: &Database, services: A::Services) -> Self {
        let repository = match db.pool() {
            Pool::Sqlite(pool) => Repository::Sqlite(SqliteEventRepository::new(pool.clone())),
            Pool::Postgres(pool) => {
                Repository::Postgres(PostgresEventRepository::new(pool.clone()))
            }
        };
        AggregateStore {
            repository,
            services,
            database: db.clone(),
            cache: Cache::new(Bound {
                aggregates: CACHED_AGGREGATES,
                events: CACHED_EVENTS,
            }),
            snapshot_version: None,
            appends: None,
        }
    }

    /// Hands appends to `queue`'s task, which may write several commands' events, and
    /// the views, in one transaction (docs/adr/14-grouped-appends.md).
    pub fn appending_through(mut self, queue: AppendQueue) -> Self {
        self.appends = Some(queue);
        self
    }

    /// Keeps snapshots of the aggregates' states, marked with `state_version`: change it
    /// whenever the aggregate's serialized layout or the meaning of its fields changes,
    /// and snapshots of the older layout are ignored, then replaced.
    pub fn with_snapshots(mut self, state_version: i32) -> Self {
        self.snapshot_version = Some(state_version);
        self
    }

    /// Holds at most `events` events' worth of aggregates in memory (instead of
    /// [`CACHED_EVENTS`]).
    pub fn holding_at_most(mut self, events: usize) -> Self {
        self.cache.bound.events = events;
        self
    }

    /// Weighs each state held by `weigh`, in events' worth, instead of by the events
    /// folded into it: for aggregates whose state stops growing while their history
    /// does not.
    pub fn weighed_by(mut self, weigh: fn(&A) -> usize) -> Self {
        self.cache.weigh = Some(weigh);
        self
    }

    /// Handles `command` against the aggregate's current state and appends the events it
    /// produced; they are durable when this returns, and `read` sees them and the state right
    /// after them. Commands on one aggregate from this process wait their turn. When another
    /// process appended first, the command is handled again against the new state, so it
    /// is decided exactly as if it had been queued behind the other; only a conflict that
    /// persists through every retry is returned, as [`AggregateError::AggregateConflict`],
    /// with nothing appended.
    ///
    /// Through an [`AppendQueue`], a turn ends once the command's events are queued: the
    /// next command is handled on the state they leave while they wait for their group,
    /// and is stored only if they are. A command decided on events not yet stored (and
    /// `read`'s answer with it) stands only once they are; when they are not, it is
    /// handled again, which is why `read` may be called more than once.
    ///
    /// A successful commit wakes this process's tailers ([`Database::commits`]).
    pub async fn execute<R>(
        &self,
        aggregate_id: &str,
        command: A::Command,
        metadata: HashMap<String, String>,
        mut read: impl FnMut(&A, &[EventEnvelope<A>]) -> R,
    ) -> Result<Committed<A, R>, AggregateError<A::Error>> {
        let slot = self.cache.slot(aggregate_id);
        let mut conflicts = 0;
        let (events, appended_at, outcome) = loop {
            let turn = self
                .take_turn(&slot, aggregate_id, command.clone(), &metadata, &mut read)
                .await;
            match turn {
                Ok(done) => break done,
                Err(AggregateError::AggregateConflict) if conflicts < CONFLICT_RETRIES => {
                    conflicts += 1;
                }
                Err(error) => return Err(error),
            }
        };
        let position = match (events.last(), appended_at) {
            (None, _) => None,
            (Some(_), Some(appended)) => {
                if !appended.projected {
                    self.database.notify_commit();
                }
                Some(appended.position)
            }
            (Some(last), None) => {
                self.database.notify_commit();
                // sqlite-es does not report positions; the primary key finds it at once.
                self.database
                    .position_of(A::TYPE, aggregate_id, last.sequence as i64)
                    .await
                    .ok()
            }
        };
        Ok(Committed {
            events,
            outcome,
            position,
        })
    }

    /// Reads the aggregate's current state, for answers that must not wait for a
    /// projection. It includes every event this process committed before the call, and
    /// every event of other processes committed before the call or, once
    /// [`rely_on_reports`](Self::rely_on_reports) was called, reported to
    /// [`note_appended`](Self::note_appended) before it. An aggregate without events is
    /// `A::default()`. The answer never includes events that end up not stored: one read
    /// from events still waiting for their group is given once they are committed, and
    /// read again (`read` called again) if they are not.
    pub async fn read<R>(
        &self,
        aggregate_id: &str,
        mut read: impl FnMut(&A) -> R,
    ) -> Result<R, StoreError> {
        let slot = self.cache.slot(aggregate_id);
        loop {
            let mut cached = slot.state.lock().await;
            // Read before asking the database, so a gap reported meanwhile counts.
            let epoch = self.cache.epoch.load(Ordering::SeqCst);
            let current = match take_usable(&mut cached) {
                None => self.load(aggregate_id).await,
                Some(loaded) if self.cache.is_current(&slot, &loaded, epoch) => Ok(loaded),
                Some(mut loaded) => match loaded.unconfirmed().cloned() {
                    // Behind another process's events, which cannot follow appends of
                    // this process still waiting: those will fail; read after them.
                    Some(waiting) => {
                        *cached = Some(loaded);
                        drop(cached);
                        appends::stored(&waiting).await;
                        continue;
                    }
                    None => self
                        .catch_up(aggregate_id, &mut loaded)
                        .await
                        .map(|_| loaded),
                },
            };
            let mut loaded = match current {
                Ok(loaded) => loaded,
                Err(error) => {
                    self.cache.hold(&slot, None);
                    return Err(self.load_error(aggregate_id, error));
                }
            };
            loaded.checked_in = epoch;
            let loaded = cached.insert(loaded);
            self.cache.hold(&slot, Some(loaded));
            let waiting = loaded.unconfirmed().cloned();
            let answer = read(&loaded.aggregate);
            drop(cached);
            match waiting {
                Some(waiting) if !appends::stored(&waiting).await => continue,
                _ => return Ok(answer),
            }
        }
    }

    /// From now on, reads trust what [`note_appended`](Self::note_appended) and
    /// [`note_missed`](Self::note_missed) are told about every event committed by any
    /// process, and answer from memory when nothing newer was reported, instead of asking
    /// the database each time.
    pub fn rely_on_reports(&self) {
        self.cache.reported.store(true, Ordering::SeqCst);
    }

    /// An event was committed to `aggregate_id` at `sequence`, by this or another process.
    pub fn note_appended(&self, aggregate_id: &str, sequence: usize) {
        if let Some(slot) = self.cache.existing(aggregate_id) {
            slot.known.fetch_max(sequence, Ordering::SeqCst);
            if sequence <= slot.sequence.load(Ordering::SeqCst) {
                // This process's own event: the state in memory holds it already.
                return;
            }
        }
        self.cache.news.fetch_add(1, Ordering::SeqCst);
    }

    /// Some events may have been committed without being reported: every aggregate is
    /// checked against the database at its next read.
    pub fn note_missed(&self) {
        self.cache.epoch.fetch_add(1, Ordering::SeqCst);
        self.cache.news.fetch_add(1, Ordering::SeqCst);
    }

    /// How far the reports of other processes' events have come, for answers kept from
    /// the state in memory: the mark moves whenever an event is reported that the state
    /// in memory does not hold (or of an aggregate not in memory), and when reports were
    /// missed; the reports of this process's own events leave it. An answer kept under an
    /// older mark may miss an event. `None` when reads do not rely on reports.
    pub fn reports_mark(&self) -> Option<ReportsMark> {
        self.cache
            .reported
            .load(Ordering::SeqCst)
            .then(|| ReportsMark(self.cache.news.load(Ordering::SeqCst)))
    }

    /// One attempt at the command, in the aggregate's turn: its events and where they
    /// went, and what `read` made of them. [`AggregateError::AggregateConflict`] when it
    /// must be handled again on the store's state.
    async fn take_turn<R>(
        &self,
        slot: &Slot<A>,
        aggregate_id: &str,
        command: A::Command,
        metadata: &HashMap<String, String>,
        read: &mut impl FnMut(&A, &[EventEnvelope<A>]) -> R,
    ) -> Result<(Vec<EventEnvelope<A>>, Option<AppendedAt>, R), AggregateError<A::Error>> {
        let mut cached = slot.state.lock().await;
        let handled = self
            .handle_and_append(&mut cached, aggregate_id, command, metadata)
            .await;
        self.cache.hold(slot, cached.as_ref());
        match handled? {
            Handled::Stored {
                events,
                appended_at,
            } => {
                let outcome = read(state_after_turn(&cached), &events);
                Ok((events, appended_at, outcome))
            }
            Handled::Queued { events, queued } => {
                let outcome = read(state_after_turn(&cached), &events);
                // The next command's turn starts now, on the state these events leave.
                drop(cached);
                let appended_at = queued.answer().await?;
                Ok((events, Some(appended_at), outcome))
            }
            Handled::Unchanged { decision, waiting } => {
                let outcome = decision
                    .as_ref()
                    .ok()
                    .map(|()| read(state_after_turn(&cached), &[]));
                drop(cached);
                if let Some(waiting) = waiting {
                    if !appends::stored(&waiting).await {
                        return Err(AggregateError::AggregateConflict);
                    }
                }
                decision.map_err(AggregateError::UserError)?;
                Ok((Vec::new(), None, outcome.expect("read when accepted")))
            }
        }
    }

    /// Handles the command on the cached state, which it updates, and appends or queues
    /// the events. The state may be behind other processes' commits: appending then
    /// conflicts on the next sequence number, and a refusal or a command that changes
    /// nothing is only trusted once the state is known to be current. The state is out of
    /// `cached` until the turn ends well: a turn cut short (its request dropped, or a
    /// failure) leaves `None`, and the next turn reloads it.
    async fn handle_and_append(
        &self,
        cached: &mut Option<Loaded<A>>,
        aggregate_id: &str,
        command: A::Command,
        metadata: &HashMap<String, String>,
    ) -> Result<Handled<A>, AggregateError<A::Error>> {
        let mut current = false;
        let mut loaded = match take_usable(cached) {
            Some(loaded) => loaded,
            None => {
                current = true;
                self.load(aggregate_id).await?
            }
        };
        loop {
            let sink = EventSink::default();
            let decision = loaded
                .aggregate
                .handle(command.clone(), &self.services, &sink)
                .await;
            let events = sink.collect().await;
            if decision.is_err() || events.is_empty() {
                let waiting = loaded.unconfirmed().cloned();
                if events.is_empty() {
                    if waiting.is_none()
                        && !current
                        && self.catch_up(aggregate_id, &mut loaded).await? > 0
                    {
                        current = true;
                        continue;
                    }
                    *cached = Some(loaded);
                }
                // Else refused after writing: the events were applied to the state but
                // will never be stored, so the state is left for the next turn to reload.
                return Ok(Handled::Unchanged { decision, waiting });
            }
            let envelopes = envelopes(aggregate_id, loaded.sequence, events, metadata);
            let mut serialized = envelopes
                .iter()
                .map(SerializedEvent::try_from)
                .collect::<Result<Vec<_>, PersistenceError>>()?;
            if let Some(queue) = &self.appends {
                match queue.send(serialized, loaded.last_append.clone()) {
                    Ok(queued) => {
                        loaded.sequence += envelopes.len();
                        loaded.last_append = Some(queued.settled.clone());
                        *cached = Some(loaded);
                        return Ok(Handled::Queued {
                            events: envelopes,
                            queued,
                        });
                    }
                    Err(unsent) => {
                        // The process is stopping: append here, after what is queued.
                        if let Some(waiting) = loaded.unconfirmed() {
                            if !appends::stored(waiting).await {
                                return Err(AggregateError::AggregateConflict);
                            }
                        }
                        serialized = unsent;
                    }
                }
            }
            let appended_at = self.append_directly(&serialized).await?;
            loaded.sequence += envelopes.len();
            *cached = Some(loaded);
            return Ok(Handled::Stored {
                events: envelopes,
                appended_at,
            });
        }
    }

    /// Appends the events in this task; on PostgreSQL, answers the global position of
    /// the last one.
    async fn append_directly(
        &self,
        serialized: &[SerializedEvent],
    ) -> Result<Option<AppendedAt>, AggregateError<A::Error>> {
        match &self.repository {
            Repository::Sqlite(repo) => {
                repo.persist::<A>(serialized, None).await?;
                Ok(None)
            }
            Repository::Postgres(_) => {
                let position = self.append_postgres(serialized).await?;
                Ok(Some(AppendedAt {
                    position,
                    projected: false,
                }))
            }
        }
    }

    /// postgres-es's append, in one statement instead of a transaction of one INSERT
    /// per event. The insert's trigger holds the global-position lock from the first row
    /// to the commit (docs/adr/02-global-position.md); in one statement that is the
    /// insert and the commit's flush, never a round trip to this process and back, so
    /// appends from many organizations follow each other at the disk's pace. The rows
    /// are exactly those postgres-es writes and reads back, and a taken sequence number
    /// is its optimistic-lock error, as in postgres-es. See docs/adr/06-one-statement-append.md.
    async fn append_postgres(&self, events: &[SerializedEvent]) -> Result<i64, PersistenceError> {
        let Pool::Postgres(pool) = self.database.pool() else {
            unreachable!("a PostgreSQL repository is made from a PostgreSQL pool");
        };
        let mut insert = sqlx::QueryBuilder::new(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, \
             event_version, payload, metadata) ",
        );
        insert.push_values(events, |mut row, event| {
            row.push_bind(&event.aggregate_type)
                .push_bind(&event.aggregate_id)
                .push_bind(event.sequence as i64)
                .push_bind(&event.event_type)
                .push_bind(&event.event_version)
                .push_bind(&event.payload)
                .push_bind(&event.metadata);
        });
        insert.push(" RETURNING position");
        let positions: Vec<i64> = insert
            .build_query_scalar()
            .fetch_all(pool)
            .await
            .map_err(append_error)?;
        positions
            .into_iter()
            .max()
            .ok_or_else(|| PersistenceError::UnknownError("an append returned no position".into()))
    }

    /// The aggregate from its snapshot, if one is kept, and the events after it; or from
    /// all its events.
    async fn load(&self, aggregate_id: &str) -> Result<Loaded<A>, AggregateError<A::Error>> {
        let mut loaded = match self.snapshot_version {
            Some(version) => self.snapshot(aggregate_id, version).await,
            None => None,
        }
        .unwrap_or_else(|| Loaded {
            aggregate: A::default(),
            sequence: 0,
            checked_in: 0,
            last_append: None,
        });
        let serialized = on_repository!(&self.repository, |repo| repo
            .get_last_events::<A>(aggregate_id, loaded.sequence)
            .await)?;
        loaded.checked_in = self.cache.epoch.load(Ordering::SeqCst);
        let replayed = apply(&mut loaded, serialized)?;
        if let Some(version) = self.snapshot_version {
            if replayed >= SNAPSHOT_AFTER_REPLAYING {
                self.keep_snapshot(aggregate_id, version, &loaded).await;
            }
        }
        Ok(loaded)
    }

    /// The kept snapshot, or `None` to replay from the first event. A snapshot that
    /// cannot be read is only slower loads, so it is logged and passed over; the events
    /// are read next anyway, and fail there if the database does.
    async fn snapshot(&self, aggregate_id: &str, version: i32) -> Option<Loaded<A>> {
        let kept = match self
            .database
            .snapshot_of(A::TYPE, aggregate_id, version)
            .await
        {
            Ok(kept) => kept?,
            Err(error) => {
                tracing::warn!(%error, aggregate = A::TYPE, aggregate_id, "replaying every event");
                return None;
            }
        };
        match serde_json::from_str(&kept.state) {
            Ok(aggregate) => Some(Loaded {
                aggregate,
                sequence: kept.sequence,
                checked_in: 0,
                last_append: None,
            }),
            Err(error) => {
                // The category and place only: serde's message may quote the state.
                tracing::warn!(
                    aggregate = A::TYPE,
                    aggregate_id,
                    state_version = version,
                    problem = ?error.classify(),
                    line = error.line(),
                    column = error.column(),
                    "a snapshot no longer reads as the aggregate: replaying every event"
                );
                None
            }
        }
    }

    /// Keeps the state just loaded, best effort: failing to costs the next load time,
    /// not correctness.
    async fn keep_snapshot(&self, aggregate_id: &str, version: i32, loaded: &Loaded<A>) {
        let snapshot = match serde_json::to_string(&loaded.aggregate) {
            Ok(state) => Snapshot {
                sequence: loaded.sequence,
                state,
            },
            Err(error) => {
                tracing::error!(%error, aggregate = A::TYPE, aggregate_id, "serializing a snapshot");
                return;
            }
        };
        let kept = self
            .database
            .keep_snapshot(A::TYPE, aggregate_id, version, &snapshot)
            .await;
        if let Err(error) = kept {
            tracing::warn!(%error, aggregate = A::TYPE, aggregate_id, "keeping a snapshot");
        }
    }

    /// Applies the events other processes appended since `loaded` was current, and
    /// says how many there were.
    async fn catch_up(
        &self,
        aggregate_id: &str,
        loaded: &mut Loaded<A>,
    ) -> Result<usize, AggregateError<A::Error>> {
        let serialized = on_repository!(&self.repository, |repo| repo
            .get_last_events::<A>(aggregate_id, loaded.sequence)
            .await)?;
        Ok(apply(loaded, serialized)?)
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

/// An aggregate's state and the sequence number of the last event in it.
struct Loaded<A> {
    aggregate: A,
    sequence: usize,
    /// The cache's epoch when the state was last known to match the database.
    checked_in: u64,
    /// The last append of events in the state, queued and maybe not yet settled.
    last_append: Option<Settled>,
}

impl<A> Loaded<A> {
    /// The last append of events in the state unless it is known to be stored: while it
    /// waits for its group, and once it failed. A state taken while its append waited
    /// may see it fail before this is asked; [`appends::stored`] then answers `false` at
    /// once, and the caller treats it as any append that was not stored.
    fn unconfirmed(&self) -> Option<&Settled> {
        self.last_append
            .as_ref()
            .filter(|settled| *settled.borrow() != Some(true))
    }

    /// Whether the state holds events that will never be stored.
    fn includes_a_failed_append(&self) -> bool {
        self.last_append.as_ref().is_some_and(appends::failed)
    }
}

/// What a turn did with the command.
enum Handled<A: Aggregate> {
    /// Its events were appended by the turn itself, and are durable.
    Stored {
        events: Vec<EventEnvelope<A>>,
        appended_at: Option<AppendedAt>,
    },
    /// Its events wait in the append queue.
    Queued {
        events: Vec<EventEnvelope<A>>,
        queued: Queued,
    },
    /// It appended nothing: refused, or nothing to change. Decided on events waiting in
    /// the append queue when `waiting` is set, and stands only if they are stored.
    Unchanged {
        decision: Result<(), A::Error>,
        waiting: Option<Settled>,
    },
}

/// What postgres-es makes of the same failures.
fn append_error(error: sqlx::Error) -> PersistenceError {
    match &error {
        sqlx::Error::Database(database) if database.code().as_deref() == Some("23505") => {
            PersistenceError::OptimisticLockError
        }
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolTimedOut => {
            PersistenceError::ConnectionError(Box::new(error))
        }
        _ => PersistenceError::UnknownError(Box::new(error)),
    }
}

/// The cached state, out of its slot, unless it holds events that will never be stored:
/// then the caller reloads it, as after any failure.
fn take_usable<A>(cached: &mut Option<Loaded<A>>) -> Option<Loaded<A>> {
    cached
        .take()
        .filter(|loaded| !loaded.includes_a_failed_append())
}

/// The state a turn that appended, or accepted a command changing nothing, left.
fn state_after_turn<A>(cached: &Option<Loaded<A>>) -> &A {
    &cached
        .as_ref()
        .expect("a turn that went well leaves its state")
        .aggregate
}

fn apply<A: Aggregate>(
    loaded: &mut Loaded<A>,
    serialized: Vec<SerializedEvent>,
) -> Result<usize, PersistenceError> {
    let count = serialized.len();
    for event in serialized {
        let envelope = EventEnvelope::<A>::try_from(event)?;
        loaded.sequence = envelope.sequence;
        loaded.aggregate.apply(envelope.payload);
    }
    Ok(count)
}

fn envelopes<A: Aggregate>(
    aggregate_id: &str,
    last_sequence: usize,
    events: Vec<A::Event>,
    metadata: &HashMap<String, String>,
) -> Vec<EventEnvelope<A>> {
    events
        .into_iter()
        .zip(last_sequence + 1..)
        .map(|(payload, sequence)| EventEnvelope {
            aggregate_id: aggregate_id.to_string(),
            sequence,
            payload,
            metadata: metadata.clone(),
        })
        .collect()
}

/// The aggregates this process holds in memory, each behind its own lock: holding the
/// lock is a command's turn in the aggregate's queue (tokio's mutex is first come, first
/// served). `None` until the aggregate is loaded, and again after a failure.
struct Cache<A> {
    slots: Mutex<HashMap<String, Arc<Slot<A>>>>,
    bound: Bound,
    /// A state's weight; the events folded into it when `None`.
    weigh: Option<fn(&A) -> usize>,
    /// Events folded into the states held, over every slot.
    events_held: AtomicUsize,
    clock: AtomicU64,
    /// Whether every committed event is reported (`note_appended`).
    reported: AtomicBool,
    /// Moves on whenever reports may have been missed.
    epoch: AtomicU64,
    /// Counts the reports of events the state in memory did not hold, and the reports
    /// missed ([`AggregateStore::reports_mark`]).
    news: AtomicU64,
}

#[derive(Clone, Copy, Debug)]
struct Bound {
    aggregates: usize,
    events: usize,
}

impl Bound {
    fn exceeded_by(self, aggregates: usize, events: usize) -> bool {
        aggregates > self.aggregates || events > self.events
    }

    /// Where eviction stops: a tenth below the bound, so that it runs once per many
    /// new aggregates rather than at each.
    fn after_eviction(self) -> Bound {
        Bound {
            aggregates: self.aggregates - self.aggregates / 10,
            events: self.events - self.events / 10,
        }
    }
}

struct Slot<A> {
    state: tokio::sync::Mutex<Option<Loaded<A>>>,
    last_used: AtomicU64,
    /// The highest sequence number reported for the aggregate.
    known: AtomicUsize,
    /// Events in the state as last recorded by [`Cache::hold`].
    held: AtomicUsize,
    /// The sequence number of the state as last recorded by [`Cache::hold`].
    sequence: AtomicUsize,
}

impl<A> Cache<A> {
    fn new(bound: Bound) -> Self {
        Cache {
            slots: Mutex::default(),
            bound,
            weigh: None,
            events_held: AtomicUsize::new(0),
            clock: AtomicU64::new(0),
            reported: AtomicBool::new(false),
            epoch: AtomicU64::new(0),
            news: AtomicU64::new(0),
        }
    }

    fn existing(&self, aggregate_id: &str) -> Option<Arc<Slot<A>>> {
        let slots = self
            .slots
            .lock()
            .expect("the cache's map is never poisoned");
        slots.get(aggregate_id).cloned()
    }

    /// Whether `loaded` holds every event reported for its aggregate, with no report
    /// missed since it was last checked against the database.
    fn is_current(&self, slot: &Slot<A>, loaded: &Loaded<A>, epoch: u64) -> bool {
        self.reported.load(Ordering::SeqCst)
            && loaded.checked_in == epoch
            && loaded.sequence >= slot.known.load(Ordering::SeqCst)
    }

    /// The aggregate's slot; eviction leaves it alone while the caller holds it.
    fn slot(&self, aggregate_id: &str) -> Arc<Slot<A>> {
        let now = self.clock.fetch_add(1, Ordering::Relaxed);
        let mut slots = self
            .slots
            .lock()
            .expect("the cache's map is never poisoned");
        let slot = slots
            .entry(aggregate_id.to_string())
            .or_insert_with(|| {
                Arc::new(Slot {
                    state: tokio::sync::Mutex::new(None),
                    last_used: AtomicU64::new(now),
                    known: AtomicUsize::new(0),
                    held: AtomicUsize::new(0),
                    sequence: AtomicUsize::new(0),
                })
            })
            .clone();
        slot.last_used.store(now, Ordering::Relaxed);
        if self
            .bound
            .exceeded_by(slots.len(), self.events_held.load(Ordering::SeqCst))
        {
            self.evict_idle(&mut slots);
        }
        slot
    }

    /// Records how many events' worth the slot's state holds, from under its lock.
    fn hold(&self, slot: &Slot<A>, loaded: Option<&Loaded<A>>) {
        slot.sequence
            .store(loaded.map_or(0, |loaded| loaded.sequence), Ordering::SeqCst);
        let now = loaded.map_or(0, |loaded| match self.weigh {
            Some(weigh) => weigh(&loaded.aggregate),
            None => loaded.sequence,
        });
        let before = slot.held.swap(now, Ordering::SeqCst);
        if now >= before {
            self.events_held.fetch_add(now - before, Ordering::SeqCst);
        } else {
            self.events_held.fetch_sub(before - now, Ordering::SeqCst);
        }
    }

    /// Drops the least recently used slots that no command or read is holding or
    /// waiting for, until the cache is a tenth below its bound or nothing idle is left.
    fn evict_idle(&self, slots: &mut HashMap<String, Arc<Slot<A>>>) {
        let mut idle: Vec<(u64, String)> = slots
            .iter()
            .filter(|(_, slot)| Arc::strong_count(slot) == 1)
            .map(|(id, slot)| (slot.last_used.load(Ordering::Relaxed), id.clone()))
            .collect();
        idle.sort_unstable();
        let target = self.bound.after_eviction();
        for (_, id) in idle {
            if !target.exceeded_by(slots.len(), self.events_held.load(Ordering::SeqCst)) {
                break;
            }
            if let Some(slot) = slots.remove(&id) {
                self.events_held
                    .fetch_sub(slot.held.load(Ordering::SeqCst), Ordering::SeqCst);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(aggregates: usize, events: usize) -> Cache<()> {
        Cache::new(Bound { aggregates, events })
    }

    /// Takes the aggregate's slot, records a state of `events` events in it, and lets go.
    fn use_with(cache: &Cache<()>, id: &str, events: usize) {
        let slot = cache.slot(id);
        let loaded = Loaded {
            aggregate: (),
            sequence: events,
            checked_in: 0,
            last_append: None,
        };
        cache.hold(&slot, Some(&loaded));
    }

    fn held(cache: &Cache<()>) -> Vec<String> {
        let mut ids: Vec<String> = cache.slots.lock().unwrap().keys().cloned().collect();
        ids.sort();
        ids
    }

    #[test]
    fn aggregates_past_the_event_bound_are_evicted_least_recently_used_first() {
        let cache = cache(100, 100);
        use_with(&cache, "a", 60);
        use_with(&cache, "b", 30);
        use_with(&cache, "a", 60);
        use_with(&cache, "c", 30);
        // 120 events held: the next use evicts b, the least recently used, which
        // brings the cache to a tenth below its bound.
        use_with(&cache, "d", 0);
        assert_eq!(held(&cache), ["a", "c", "d"]);
        assert_eq!(cache.events_held.load(Ordering::SeqCst), 90);
    }

    #[test]
    fn aggregates_past_the_count_bound_are_evicted_down_to_a_tenth_below_it() {
        let cache = cache(10, 1_000);
        for id in 0..11 {
            use_with(&cache, &format!("{id:02}"), 1);
        }
        assert_eq!(held(&cache).len(), 9);
        assert_eq!(held(&cache)[0], "02");
        assert_eq!(cache.events_held.load(Ordering::SeqCst), 9);
    }

    #[test]
    fn an_aggregate_someone_holds_is_not_evicted_however_large() {
        let cache = cache(100, 100);
        let busy = cache.slot("busy");
        cache.hold(
            &busy,
            Some(&Loaded {
                aggregate: (),
                sequence: 500,
                checked_in: 0,
                last_append: None,
            }),
        );
        use_with(&cache, "idle", 1);
        use_with(&cache, "next", 1);
        assert_eq!(held(&cache), ["busy", "next"]);
        drop(busy);
    }

    #[test]
    fn a_state_weighed_by_its_aggregate_counts_its_weight_not_its_history() {
        let mut cache: Cache<usize> = Cache::new(Bound {
            aggregates: 100,
            events: 100,
        });
        cache.weigh = Some(|entries| *entries);
        let slot = cache.slot("long history, small state");
        let loaded = Loaded {
            aggregate: 3,
            sequence: 100_000,
            checked_in: 0,
            last_append: None,
        };
        cache.hold(&slot, Some(&loaded));
        assert_eq!(cache.events_held.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn a_state_dropped_after_a_failure_no_longer_counts() {
        let cache = cache(100, 100);
        use_with(&cache, "a", 40);
        let slot = cache.slot("a");
        cache.hold(&slot, None);
        assert_eq!(cache.events_held.load(Ordering::SeqCst), 0);
    }
}
