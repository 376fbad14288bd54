use std::sync::Arc;

use access_store::testing::fresh_databases;
use access_store::{AggregateStore, Database};
use cqrs_es::AggregateError;
use tokio::sync::Barrier;

use crate::counter::{Counter, CounterCommand};

const ROUNDS: usize = 5;
const RACERS: usize = 16;
const EVENTS_PER_COMMAND: usize = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_commands_on_one_aggregate_let_exactly_one_win_and_the_other_conflict() {
    for db in fresh_databases().await {
        let database = Database::connect(&db.url).await.unwrap();
        let store = Arc::new(AggregateStore::<Counter>::new(&database, ()));
        let (mut successes, mut conflicts) = (0, 0);

        for _ in 0..ROUNDS {
            let start = Arc::new(Barrier::new(RACERS));
            let racers = (0..RACERS)
                .map(|_| {
                    let (store, start) = (store.clone(), start.clone());
                    tokio::spawn(async move {
                        start.wait().await;
                        let add = CounterCommand::Add {
                            events: EVENTS_PER_COMMAND,
                        };
                        store.execute("contested", add).await
                    })
                })
                .collect::<Vec<_>>();
            for racer in racers {
                match racer.await.unwrap() {
                    Ok(_) => successes += 1,
                    Err(AggregateError::AggregateConflict) => conflicts += 1,
                    Err(other) => panic!("{}: unexpected {other:?}", db.label),
                }
            }
        }

        assert_eq!(successes + conflicts, ROUNDS * RACERS, "{}", db.label);
        assert!(successes >= ROUNDS, "{}: {successes} successes", db.label);
        assert!(conflicts > 0, "{}: the racers never collided", db.label);

        let sequences = database
            .events_after(0, 10_000)
            .await
            .unwrap()
            .into_iter()
            .map(|event| event.sequence)
            .collect::<Vec<_>>();
        let expected = (1..=(successes * EVENTS_PER_COMMAND) as i64).collect::<Vec<_>>();
        assert_eq!(sequences, expected, "{}", db.label);
        let loaded = store.load("contested").await.unwrap();
        assert_eq!(loaded.count, successes * EVENTS_PER_COMMAND, "{}", db.label);
    }
}
