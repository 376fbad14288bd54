use std::collections::HashMap;
use std::sync::Arc;

use access_store::testing::fresh_databases;
use access_store::{AggregateStore, Database};
use cqrs_es::AggregateError;
use tokio::sync::Barrier;

use crate::counter::{Counter, CounterCommand};
use crate::two_processes;

const ROUNDS: usize = 5;
const RACERS: usize = 16;
const EVENTS_PER_COMMAND: usize = 3;

/// Runs `RACERS` commands at once, `ROUNDS` times, each racer on the store it is
/// given, and checks the aggregate's events have no gap and no duplicate.
/// Answers (successes, conflicts).
async fn race(database: &Database, stores: &[Arc<AggregateStore<Counter>>]) -> (usize, usize) {
    let (mut successes, mut conflicts) = (0, 0);
    for _ in 0..ROUNDS {
        let start = Arc::new(Barrier::new(RACERS));
        let racers = (0..RACERS)
            .map(|racer| {
                let (store, start) = (stores[racer % stores.len()].clone(), start.clone());
                tokio::spawn(async move {
                    start.wait().await;
                    let add = CounterCommand::Add {
                        events: EVENTS_PER_COMMAND,
                    };
                    store
                        .execute("contested", add, HashMap::new(), |counter, _| counter.count)
                        .await
                })
            })
            .collect::<Vec<_>>();
        for racer in racers {
            match racer.await.unwrap() {
                Ok(_) => successes += 1,
                Err(AggregateError::AggregateConflict) => conflicts += 1,
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
    }
    let sequences = database
        .events_after(0, 10_000)
        .await
        .unwrap()
        .into_iter()
        .map(|event| event.sequence)
        .collect::<Vec<_>>();
    let expected = (1..=(successes * EVENTS_PER_COMMAND) as i64).collect::<Vec<_>>();
    assert_eq!(sequences, expected);
    for store in stores {
        let count = store
            .read("contested", |counter| counter.count)
            .await
            .unwrap();
        assert_eq!(count, successes * EVENTS_PER_COMMAND);
    }
    (successes, conflicts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_commands_on_one_aggregate_in_one_process_are_queued_and_all_succeed() {
    for db in fresh_databases().await {
        let database = Database::connect(&db.url).await.unwrap();
        let store = Arc::new(AggregateStore::<Counter>::new(&database, ()));
        let (successes, conflicts) = race(&database, &[store]).await;
        assert_eq!((successes, conflicts), (ROUNDS * RACERS, 0), "{}", db.label);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn commands_racing_from_two_processes_are_handled_again_on_the_new_state_and_never_lost() {
    for db in fresh_databases().await {
        let database = Database::connect(&db.url).await.unwrap();
        let stores = two_processes(&db.url).await;
        let (successes, conflicts) = race(&database, &stores).await;
        assert_eq!(successes + conflicts, ROUNDS * RACERS, "{}", db.label);
        assert!(
            successes >= ROUNDS * RACERS - 1,
            "{}: {conflicts} conflicts",
            db.label
        );
    }
}

#[tokio::test]
async fn a_read_or_a_refusal_in_one_process_takes_account_of_what_another_process_committed() {
    for db in fresh_databases().await {
        let [this_process, other_process] = two_processes(&db.url).await;
        let add = |events| CounterCommand::Add { events };
        this_process
            .execute("shared", add(1), HashMap::new(), |_, _| ())
            .await
            .unwrap();
        other_process
            .execute("shared", add(2), HashMap::new(), |_, _| ())
            .await
            .unwrap();

        // This process's copy still says 1; the other process made it 3.
        let count = this_process
            .read("shared", |counter| counter.count)
            .await
            .unwrap();
        assert_eq!(count, 3, "{}", db.label);
        other_process
            .execute("shared", add(1), HashMap::new(), |_, _| ())
            .await
            .unwrap();
        let accepted = this_process
            .execute(
                "shared",
                CounterCommand::AddOnceAtLeast { at_least: 4 },
                HashMap::new(),
                |counter, _| counter.count,
            )
            .await
            .unwrap();
        assert_eq!(accepted.outcome, 5, "{}", db.label);
        assert_eq!(accepted.events[0].sequence, 5, "{}", db.label);
    }
}

#[tokio::test]
async fn a_read_relying_on_reports_asks_the_database_only_when_told_of_newer_events_or_of_missed_reports(
) {
    for db in fresh_databases().await {
        let [this_process, other_process] = two_processes(&db.url).await;
        this_process.rely_on_reports();
        let add = |events| CounterCommand::Add { events };
        this_process
            .execute("shared", add(1), HashMap::new(), |_, _| ())
            .await
            .unwrap();

        other_process
            .execute("shared", add(2), HashMap::new(), |_, _| ())
            .await
            .unwrap();
        assert_eq!(
            read_count(&this_process).await,
            1,
            "{}: nothing reported yet",
            db.label
        );
        this_process.note_appended("shared", 3);
        assert_eq!(read_count(&this_process).await, 3, "{}", db.label);

        other_process
            .execute("shared", add(1), HashMap::new(), |_, _| ())
            .await
            .unwrap();
        this_process.note_missed();
        assert_eq!(read_count(&this_process).await, 4, "{}", db.label);
    }
}

async fn read_count(store: &AggregateStore<Counter>) -> usize {
    store.read("shared", |counter| counter.count).await.unwrap()
}

#[tokio::test]
async fn the_reports_mark_moves_with_events_reported_that_memory_did_not_hold_and_with_missed_reports(
) {
    for db in fresh_databases().await {
        let database = Database::connect(&db.url).await.unwrap();
        let store = AggregateStore::<Counter>::new(&database, ());
        store
            .execute(
                "shared",
                CounterCommand::Add { events: 1 },
                HashMap::new(),
                |_, _| (),
            )
            .await
            .unwrap();
        assert_eq!(
            store.reports_mark(),
            None,
            "{}: reads do not rely on reports yet",
            db.label
        );
        store.rely_on_reports();
        let first = store.reports_mark().unwrap();
        store.note_appended("shared", 1);
        assert_eq!(
            store.reports_mark(),
            Some(first),
            "{}: the state in memory holds that event, this process's own",
            db.label
        );
        store.note_appended("shared", 2);
        let newer = store.reports_mark().unwrap();
        assert_ne!(newer, first, "{}: an event memory does not hold", db.label);
        store.note_appended("elsewhere", 1);
        let elsewhere = store.reports_mark().unwrap();
        assert_ne!(elsewhere, newer, "{}: an aggregate not in memory", db.label);
        store.note_missed();
        assert_ne!(store.reports_mark(), Some(elsewhere), "{}", db.label);
    }
}
