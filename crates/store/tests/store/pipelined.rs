//! Commands on one aggregate pipelined through an append queue
//! (docs/adr/05-aggregate-cache.md): the test plays the queue's appender, so it decides
//! when and how each append is settled. On each database.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use access_store::testing::{fresh_databases, TestDatabase};
use access_store::{AggregateStore, AppendQueue, AppendedAt, Database, PendingAppend, StoreError};
use cqrs_es::persist::PersistenceError;
use cqrs_es::AggregateError;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinHandle;

use crate::counter::{Counter, CounterCommand};

/// On each database, a store appending through a queue whose other end the test holds,
/// with `c` loaded at a count of 0.
async fn stores_and_appenders() -> Vec<(
    TestDatabase,
    Arc<AggregateStore<Counter>>,
    UnboundedReceiver<PendingAppend>,
)> {
    let mut stores = Vec::new();
    for db in fresh_databases().await {
        let database = Database::connect(&db.url).await.unwrap();
        let (queue, appender) = AppendQueue::new();
        let store =
            Arc::new(AggregateStore::<Counter>::new(&database, ()).appending_through(queue));
        assert_eq!(store.read("c", |counter| counter.count).await.unwrap(), 0);
        stores.push((db, store, appender));
    }
    stores
}

type Executed = Result<usize, AggregateError<crate::counter::Refused>>;

/// Runs the command on `c` in a task of its own; answers the count right after it.
fn execute(store: &Arc<AggregateStore<Counter>>, command: CounterCommand) -> JoinHandle<Executed> {
    let store = store.clone();
    tokio::spawn(async move {
        store
            .execute("c", command, HashMap::new(), |counter, _| counter.count)
            .await
            .map(|committed| committed.outcome)
    })
}

/// Reads the count of `c` in a task of its own.
fn read_count(store: &Arc<AggregateStore<Counter>>) -> JoinHandle<Result<usize, StoreError>> {
    let store = store.clone();
    tokio::spawn(async move { store.read("c", |counter| counter.count).await })
}

/// Whether `task` is still unfinished after a while. A correct store never finishes
/// it, so a slow machine can only let a wrong one pass, never fail a right one.
async fn still_waiting<T>(task: &mut JoinHandle<T>) -> bool
where
    JoinHandle<T>: Future,
{
    tokio::time::timeout(Duration::from_millis(200), task)
        .await
        .is_err()
}

/// What the appender says of an append it stored.
fn stored(position: i64) -> Result<AppendedAt, PersistenceError> {
    Ok(AppendedAt {
        position,
        projected: true,
    })
}

fn failed() -> Result<AppendedAt, PersistenceError> {
    Err(PersistenceError::UnknownError("the disk is full".into()))
}

#[tokio::test]
async fn a_read_of_a_state_whose_last_command_waits_in_the_queue_answers_once_it_is_stored_and_without_it_when_it_is_not(
) {
    for (_db, store, mut appender) in stores_and_appenders().await {
        let adding = execute(&store, CounterCommand::Add { events: 1 });
        let append = appender.recv().await.unwrap();
        let mut reading = read_count(&store);
        assert!(
            still_waiting(&mut reading).await,
            "answered before the append was settled"
        );
        append.answer(failed());
        assert!(adding.await.unwrap().is_err());
        assert_eq!(
            reading.await.unwrap().unwrap(),
            0,
            "read the event that was never stored"
        );

        let adding = execute(&store, CounterCommand::Add { events: 1 });
        let append = appender.recv().await.unwrap();
        assert_eq!(
            append.events[0].sequence, 1,
            "handled on the state reloaded from the store"
        );
        let mut reading = read_count(&store);
        assert!(
            still_waiting(&mut reading).await,
            "answered before the append was settled"
        );
        append.answer(stored(1));
        assert_eq!(reading.await.unwrap().unwrap(), 1);
        assert_eq!(adding.await.unwrap().unwrap(), 1);
    }
}

#[tokio::test]
async fn a_refusal_decided_on_a_command_waiting_in_the_queue_is_given_once_it_is_stored_and_decided_again_when_it_is_not(
) {
    for (_db, store, mut appender) in stores_and_appenders().await {
        let adding = execute(&store, CounterCommand::Add { events: 1 });
        let first = appender.recv().await.unwrap();
        // Refused on a count of 1, accepted on 0.
        let mut refused_at_one = execute(&store, CounterCommand::AddWhileBelow { below: 1 });
        assert!(
            still_waiting(&mut refused_at_one).await,
            "refused before the append it was decided on was settled"
        );
        first.answer(failed());
        assert!(adding.await.unwrap().is_err());
        let again = appender.recv().await.unwrap();
        assert_eq!(again.events[0].sequence, 1);
        assert!(!again.follows_a_failed_append());
        again.answer(stored(1));
        assert_eq!(refused_at_one.await.unwrap().unwrap(), 1);

        // Stored this time: the refusal stands.
        let adding = execute(&store, CounterCommand::Add { events: 1 });
        let second = appender.recv().await.unwrap();
        let mut refused_at_two = execute(&store, CounterCommand::AddWhileBelow { below: 2 });
        assert!(still_waiting(&mut refused_at_two).await);
        second.answer(stored(2));
        assert_eq!(adding.await.unwrap().unwrap(), 2);
        assert!(matches!(
            refused_at_two.await.unwrap(),
            Err(AggregateError::UserError(_))
        ));
    }
}

#[tokio::test]
async fn a_command_queued_behind_one_that_is_not_stored_is_not_stored_either_and_is_handled_again()
{
    for (_db, store, mut appender) in stores_and_appenders().await {
        let adding = execute(&store, CounterCommand::Add { events: 1 });
        let first = appender.recv().await.unwrap();
        let following = execute(&store, CounterCommand::Add { events: 1 });
        let second = appender.recv().await.unwrap();
        assert_eq!(
            (first.events[0].sequence, second.events[0].sequence),
            (1, 2),
            "the second command was handled on the state the first left, before it was stored"
        );
        assert!(!second.follows_a_failed_append());
        first.answer(failed());
        assert!(second.follows_a_failed_append());
        assert!(adding.await.unwrap().is_err());
        // What the group's appender does with it.
        second.answer(Err(PersistenceError::OptimisticLockError));
        let again = appender.recv().await.unwrap();
        assert_eq!(again.events[0].sequence, 1);
        again.answer(stored(1));
        assert_eq!(following.await.unwrap().unwrap(), 1);
    }
}

#[tokio::test]
async fn a_command_decided_on_a_state_whose_last_append_fails_while_it_is_decided_is_decided_again_on_the_stored_state(
) {
    for (_db, store, mut appender) in stores_and_appenders().await {
        let adding = execute(&store, CounterCommand::Add { events: 1 });
        let first = appender.recv().await.unwrap();
        let deciding = Arc::new(tokio::sync::Notify::new());
        let gate = Arc::new(tokio::sync::Mutex::new(()));
        let closed = gate.clone().lock_owned().await;
        // Refused on a count of 1, the state it is handed; accepted on 0, the stored one.
        let below_one = execute(
            &store,
            CounterCommand::AddWhileBelowPastGate {
                below: 1,
                deciding: deciding.clone(),
                gate,
            },
        );
        deciding.notified().await;
        first.answer(failed());
        assert!(adding.await.unwrap().is_err());
        drop(closed);
        let mut below_one = below_one;
        let again = tokio::select! {
            again = appender.recv() => again.unwrap(),
            decided = &mut below_one => panic!(
                "decided on the events that were not stored: {:?}",
                decided.unwrap()
            ),
        };
        assert_eq!(
            again.events[0].sequence, 1,
            "decided again on the state reloaded from the store"
        );
        again.answer(stored(1));
        assert_eq!(below_one.await.unwrap().unwrap(), 1);
    }
}
