use std::collections::HashMap;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use access_store::testing::fresh_databases;
use access_store::{AggregateStore, Database, Pool};

use crate::counter::{Counter, CounterCommand};
use crate::scalar;

const WRITERS: usize = 16;
const COMMANDS_PER_WRITER: usize = 60;
const AGGREGATES_PER_WRITER: usize = 5;

/// With a plain BIGSERIAL a transaction can draw a lower number than one that commits
/// before it; a reader that has moved past the higher number then never sees the lower
/// one. Many writers committing one to four events at a time while a reader tails the
/// log as fast as it can makes that interleaving overwhelmingly likely; the test after
/// this one forces it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_never_make_a_tailing_reader_skip_or_repeat_an_event() {
    for db in fresh_databases().await {
        let database = Database::connect(&db.url).await.unwrap();
        let store = Arc::new(AggregateStore::<Counter>::new(&database, ()));
        let writers_done = Arc::new(AtomicBool::new(false));

        let reader = tokio::spawn({
            let database = database.clone();
            let writers_done = writers_done.clone();
            async move {
                let mut last = 0;
                let mut seen = HashSet::new();
                loop {
                    // Read the flag first: an empty batch after the writers finished
                    // means every committed event has been read.
                    let finished = writers_done.load(Ordering::SeqCst);
                    let batch = database.events_after(last, 100).await.unwrap();
                    for event in &batch {
                        assert!(
                            event.position > last,
                            "position went back to {}",
                            event.position
                        );
                        last = event.position;
                        assert!(
                            seen.insert((event.aggregate_id.clone(), event.sequence)),
                            "{} #{} read twice",
                            event.aggregate_id,
                            event.sequence
                        );
                    }
                    if batch.is_empty() {
                        if finished {
                            return seen;
                        }
                        tokio::task::yield_now().await;
                    }
                }
            }
        });

        let writers = (0..WRITERS)
            .map(|writer| {
                let store = store.clone();
                tokio::spawn(async move {
                    let mut appended = 0;
                    for command in 0..COMMANDS_PER_WRITER {
                        let events = 1 + (writer + command) % 4;
                        let id = format!("counter-{writer}-{}", command % AGGREGATES_PER_WRITER);
                        store
                            .execute(
                                &id,
                                CounterCommand::Add { events },
                                HashMap::new(),
                                |_, _| (),
                            )
                            .await
                            .unwrap();
                        appended += events;
                    }
                    appended
                })
            })
            .collect::<Vec<_>>();
        let mut appended = 0;
        for writer in writers {
            appended += writer.await.unwrap();
        }
        writers_done.store(true, Ordering::SeqCst);
        let seen = reader.await.unwrap();

        assert!(appended > 2000, "{}: only {appended} events", db.label);
        let stored = scalar(&database, "SELECT COUNT(*) FROM events").await;
        assert_eq!(stored as usize, appended, "{}", db.label);
        assert_eq!(
            seen.len(),
            appended,
            "{}: the reader missed events",
            db.label
        );
    }
}

/// Forces the interleaving a BIGSERIAL gets wrong: transaction 1 appends but has not
/// committed when transaction 2 appends and commits. Transaction 2 must wait for
/// transaction 1 and then get the higher position.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_waits_for_an_earlier_uncommitted_append_and_gets_the_higher_position() {
    // Literal SQL that both databases accept, so the race is written once.
    const FIRST: &str = "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, \
         event_version, payload, metadata) VALUES ('Raw', 'first', 1, 'Added', '1', '{}', '{}')";
    const SECOND: &str = "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, \
         event_version, payload, metadata) VALUES ('Raw', 'second', 1, 'Added', '1', '{}', '{}')";

    macro_rules! race {
        ($pool:expr, $label:expr) => {{
            let pool = $pool.clone();
            let mut first = pool.begin().await.unwrap();
            sqlx::query(FIRST).execute(&mut *first).await.unwrap();
            let second = tokio::spawn(async move {
                let mut second = pool.begin().await.unwrap();
                sqlx::query(SECOND).execute(&mut *second).await.unwrap();
                second.commit().await.unwrap();
            });
            tokio::time::sleep(Duration::from_millis(500)).await;
            assert!(
                !second.is_finished(),
                "{}: the second append did not wait for the first",
                $label
            );
            first.commit().await.unwrap();
            second.await.unwrap();
        }};
    }

    for db in fresh_databases().await {
        let database = Database::connect(&db.url).await.unwrap();
        match database.pool() {
            Pool::Sqlite(pool) => race!(pool, db.label),
            Pool::Postgres(pool) => race!(pool, db.label),
        }
        let events = database.events_after(0, 10).await.unwrap();
        let order = events
            .iter()
            .map(|event| event.aggregate_id.as_str())
            .collect::<Vec<_>>();
        assert_eq!(order, ["first", "second"], "{}", db.label);
    }
}
