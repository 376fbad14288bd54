//! Two edge cases of postgres-es 0.5, shown against postgres-es itself, and the
//! product's store shown free of them (docs/reliability.md, "Upstream edge cases"):
//!
//! - its snapshot path inserts a command's events, updates the snapshot row only
//!   where it is still the one the command loaded, commits, and only then looks
//!   at how many rows the update changed (`PostgresEventRepository::update`,
//!   src/event_repository.rs lines 254-273): a stale snapshot makes it report a
//!   conflict for events it has just committed, and a caller who retries the
//!   "conflict", as a conflict invites, applies the command twice;
//! - its replay stream reads rows in a spawned task that unwraps each
//!   (`stream_events`, line 119): a database error panics that task, and the
//!   reader sees the stream end as if the aggregate had no more events.
//!
//! The product uses neither path: `AggregateStore` loads aggregates from their
//! events (no snapshots) and readers follow the log through
//! `Database::events_after`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use access_store::testing::fresh_databases;
use access_store::{AggregateStore, Database, Pool};
use cqrs_es::persist::{
    PersistedEventRepository, PersistedEventStore, PersistenceError, ReplayStream, SerializedEvent,
    SerializedSnapshot,
};
use cqrs_es::{Aggregate, AggregateError, CqrsFramework};
use postgres_es::PostgresEventRepository;
use serde_json::Value;
use sqlx::PgPool;
use tokio::sync::{oneshot, Barrier};

use crate::counter::{Counter, CounterCommand};
use crate::{scalar, two_processes};

/// Where a held load waits: it says it got there, then waits to be let go.
type Hold = Arc<Mutex<Option<(oneshot::Sender<()>, oneshot::Receiver<()>)>>>;

/// Holds the next load after its snapshot read: the first receiver fires there,
/// and the load goes on when the sender does.
fn hold_next_load(hold: &Hold) -> (oneshot::Receiver<()>, oneshot::Sender<()>) {
    let (reached, reached_rx) = oneshot::channel();
    let (resume_tx, resume) = oneshot::channel();
    *hold.lock().unwrap() = Some((reached, resume));
    (reached_rx, resume_tx)
}

/// postgres-es, unchanged, except that a load can be held between its two reads
/// (the snapshot, then the events after it), so that a test can commit another
/// command exactly there.
struct HeldBetweenReads {
    inner: PostgresEventRepository,
    hold: Hold,
}

impl PersistedEventRepository for HeldBetweenReads {
    async fn get_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        self.inner.get_events::<A>(aggregate_id).await
    }

    async fn get_last_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
        last_sequence: usize,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        let held = self.hold.lock().unwrap().take();
        if let Some((reached, resume)) = held {
            let _ = reached.send(());
            let _ = resume.await;
        }
        self.inner
            .get_last_events::<A>(aggregate_id, last_sequence)
            .await
    }

    async fn get_snapshot<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Option<SerializedSnapshot>, PersistenceError> {
        self.inner.get_snapshot::<A>(aggregate_id).await
    }

    async fn persist<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        snapshot_update: Option<(String, Value, usize)>,
    ) -> Result<(), PersistenceError> {
        self.inner.persist::<A>(events, snapshot_update).await
    }

    async fn stream_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<ReplayStream, PersistenceError> {
        self.inner.stream_events::<A>(aggregate_id).await
    }

    async fn stream_all_events<A: Aggregate>(&self) -> Result<ReplayStream, PersistenceError> {
        self.inner.stream_all_events::<A>().await
    }
}

const ONE_EVENT: CounterCommand = CounterCommand::Add { events: 1 };

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_es_snapshots_report_a_conflict_for_events_they_committed() {
    for db in fresh_databases().await {
        let database = Database::connect(&db.url).await.unwrap();
        let Pool::Postgres(pool) = database.pool() else {
            continue;
        };
        // A snapshot after every command: each commit updates the snapshot row.
        let writer = CqrsFramework::new(
            PersistedEventStore::<_, Counter>::new_snapshot_store(
                PostgresEventRepository::new(pool.clone()),
                1,
            ),
            vec![],
            (),
        );
        let hold = Hold::default();
        let held = HeldBetweenReads {
            inner: PostgresEventRepository::new(pool.clone()),
            hold: hold.clone(),
        };
        let racer = Arc::new(CqrsFramework::new(
            PersistedEventStore::<_, Counter>::new_snapshot_store(held, 1),
            vec![],
            (),
        ));
        writer.execute("counter", ONE_EVENT).await.unwrap();

        // The racer reads snapshot 1; the writer commits event 2 and snapshot 2; the
        // racer reads the events after its snapshot, event 2 among them, and commits
        // event 3 against snapshot 1.
        let (reached, resume) = hold_next_load(&hold);
        let racing = tokio::spawn({
            let racer = racer.clone();
            async move { racer.execute("counter", ONE_EVENT).await }
        });
        reached.await.unwrap();
        writer.execute("counter", ONE_EVENT).await.unwrap();
        resume.send(()).unwrap();
        let outcome = racing.await.unwrap();

        assert!(
            matches!(outcome, Err(AggregateError::AggregateConflict)),
            "{outcome:?}"
        );
        let count = "SELECT COUNT(*) FROM events WHERE aggregate_id = 'counter'";
        assert_eq!(
            scalar(&database, count).await,
            3,
            "the 'conflicting' command's event was committed"
        );

        // Retrying a conflict is what a conflict asks for: the command lands twice.
        racer.execute("counter", ONE_EVENT).await.unwrap();
        assert_eq!(
            scalar(&database, count).await,
            4,
            "three commands succeeded, one of them twice"
        );
    }
}

/// Where panics in source files whose path holds `part` happened, from now on.
/// Every panic still reaches the hook that was in place.
fn panics_in(part: &'static str) -> Arc<Mutex<Vec<String>>> {
    let seen = Arc::<Mutex<Vec<String>>>::default();
    let record = seen.clone();
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if let Some(location) = info.location().filter(|at| at.file().contains(part)) {
            let at = format!("{}:{}", location.file(), location.line());
            record.lock().unwrap().push(at);
        }
        previous(info);
    }));
    seen
}

/// A replay to its end: how many events it gave, and how many errors.
async fn replay(repository: &PostgresEventRepository) -> (usize, usize) {
    let mut stream = repository
        .stream_events::<Counter>("counter")
        .await
        .unwrap();
    let (mut events, mut errors) = (0, 0);
    while let Some(next) = stream.next::<Counter>(&[]).await {
        match next {
            Ok(_) => events += 1,
            Err(_) => errors += 1,
        }
    }
    (events, errors)
}

#[tokio::test]
async fn postgres_es_replay_streams_end_quietly_when_the_database_fails() {
    for db in fresh_databases().await {
        let database = Database::connect(&db.url).await.unwrap();
        let Pool::Postgres(pool) = database.pool() else {
            continue;
        };
        AggregateStore::<Counter>::new(&database, ())
            .execute(
                "counter",
                CounterCommand::Add { events: 3 },
                HashMap::new(),
                |_, _| (),
            )
            .await
            .unwrap();
        let healthy = PostgresEventRepository::new(pool.clone());
        assert_eq!(replay(&healthy).await, (3, 0));

        // A pool of its own, closed: every query fails.
        let closed = PgPool::connect(&db.url).await.unwrap();
        closed.close().await;
        let failing = PostgresEventRepository::new(closed);
        let panics = panics_in("postgres-es");
        assert_eq!(
            replay(&failing).await,
            (0, 0),
            "the replay of three events ends at once, with no error"
        );
        let panics = panics.lock().unwrap().clone();
        assert!(
            panics
                .iter()
                .any(|at| at.ends_with("src/event_repository.rs:119")),
            "{panics:?}"
        );
        // The same failure is an error on the path that does not stream.
        assert!(failing.get_events::<Counter>("counter").await.is_err());
    }
}

const RACERS: usize = 8;
const COMMANDS_PER_RACER: usize = 5;
const EVENTS_PER_COMMAND: usize = 2;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_store_writes_every_command_once_and_nothing_for_a_conflict_under_racing_commits() {
    for db in fresh_databases().await {
        let database = Database::connect(&db.url).await.unwrap();
        // Two processes race; within one, commands on an aggregate are queued and never
        // collide.
        let stores = two_processes(&db.url).await;
        let start = Arc::new(Barrier::new(RACERS));
        let racers = (0..RACERS).map(|racer| {
            let (store, start) = (stores[racer % 2].clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                let (mut landed, mut conflicted) = (Vec::new(), Vec::new());
                for command in 0..COMMANDS_PER_RACER {
                    // Each attempt tags its events, so the log tells which landed.
                    for attempt in 0.. {
                        let tag = format!("{racer}/{command}/{attempt}");
                        let metadata = HashMap::from([("attempt".to_string(), tag.clone())]);
                        let add = CounterCommand::Add {
                            events: EVENTS_PER_COMMAND,
                        };
                        match store.execute("contested", add, metadata, |_, _| ()).await {
                            Ok(_) => {
                                landed.push(tag);
                                break;
                            }
                            Err(AggregateError::AggregateConflict) => conflicted.push(tag),
                            Err(other) => panic!("{other:?}"),
                        }
                    }
                }
                (landed, conflicted)
            })
        });
        let (mut landed, mut conflicted) = (Vec::new(), Vec::new());
        for racer in racers.collect::<Vec<_>>() {
            let (racer_landed, racer_conflicted) = racer.await.unwrap();
            landed.extend(racer_landed);
            conflicted.extend(racer_conflicted);
        }

        let events = database.events_after(0, 100_000).await.unwrap();
        let mut written: HashMap<String, usize> = HashMap::new();
        for event in &events {
            let tag = event.metadata["attempt"].as_str().unwrap().to_string();
            *written.entry(tag).or_default() += 1;
        }
        assert_eq!(landed.len(), RACERS * COMMANDS_PER_RACER, "{}", db.label);
        for tag in &landed {
            assert_eq!(
                written.get(tag),
                Some(&EVENTS_PER_COMMAND),
                "{}: {tag}",
                db.label
            );
        }
        for tag in &conflicted {
            assert_eq!(written.get(tag), None, "{}: {tag} conflicted", db.label);
        }
        let sequences: Vec<i64> = events.iter().map(|event| event.sequence).collect();
        let expected: Vec<i64> = (1..=(landed.len() * EVENTS_PER_COMMAND) as i64).collect();
        assert_eq!(sequences, expected, "{}", db.label);
        println!(
            "{}: {} commands landed once each, {} conflicts wrote nothing",
            db.label,
            landed.len(),
            conflicted.len()
        );
    }
}

#[tokio::test]
async fn reading_the_log_or_an_aggregate_while_the_database_fails_is_an_error_not_a_panic() {
    for db in fresh_databases().await {
        let database = Database::connect(&db.url).await.unwrap();
        let store = AggregateStore::<Counter>::new(&database, ());
        store
            .execute("counter", ONE_EVENT, HashMap::new(), |_, _| ())
            .await
            .unwrap();
        match database.pool() {
            Pool::Sqlite(pool) => pool.close().await,
            Pool::Postgres(pool) => pool.close().await,
        }
        let log = database.events_after(0, 100).await.unwrap_err();
        assert!(log.is_retryable(), "{}: {log}", db.label);
        let head = database.head_position().await.unwrap_err();
        assert!(head.is_retryable(), "{}: {head}", db.label);
        let aggregate = store.read("counter", |_| ()).await.unwrap_err();
        assert!(aggregate.is_retryable(), "{}: {aggregate}", db.label);
    }
}
