use std::collections::HashMap;

use access_store::testing::fresh_databases;
use access_store::{AggregateStore, Database};
use cqrs_es::AggregateError;
use serde_json::json;

use crate::counter::{Counter, CounterCommand};

#[tokio::test]
async fn load_returns_the_state_the_executed_commands_left_and_a_refused_command_appends_nothing() {
    for db in fresh_databases().await {
        let database = Database::connect(&db.url).await.unwrap();
        let store = AggregateStore::<Counter>::new(&database, ());

        assert_eq!(
            store.read("c-1", |counter| counter.count).await.unwrap(),
            0,
            "{}",
            db.label
        );
        store
            .execute(
                "c-1",
                CounterCommand::Add { events: 2 },
                HashMap::new(),
                |_, _| (),
            )
            .await
            .unwrap();
        let metadata = HashMap::from([("user".to_string(), "alice".to_string())]);
        store
            .execute(
                "c-1",
                CounterCommand::Add { events: 1 },
                metadata,
                |_, _| (),
            )
            .await
            .unwrap();
        let refused = store
            .execute("c-1", CounterCommand::Refuse, HashMap::new(), |_, _| ())
            .await;
        assert!(
            matches!(refused, Err(AggregateError::UserError(_))),
            "{}",
            db.label
        );

        assert_eq!(
            store.read("c-1", |counter| counter.count).await.unwrap(),
            3,
            "{}",
            db.label
        );
        let events = database.events_after(0, 10).await.unwrap();
        assert_eq!(events.len(), 3, "{}", db.label);
        let last = &events[2];
        assert_eq!(
            (
                last.aggregate_type.as_str(),
                last.aggregate_id.as_str(),
                last.sequence,
                last.event_type.as_str(),
                last.event_version.as_str()
            ),
            ("Counter", "c-1", 3, "Added", "1"),
            "{}",
            db.label
        );
        assert_eq!(last.payload, json!({"Added": {"count": 3}}), "{}", db.label);
        assert_eq!(last.metadata, json!({"user": "alice"}), "{}", db.label);
        assert_eq!(
            database.events_after(events[1].position, 10).await.unwrap(),
            vec![last.clone()],
            "{}",
            db.label
        );
    }
}

#[tokio::test]
async fn a_commit_reports_the_position_of_its_last_event_and_wakes_this_processs_tailers() {
    for db in fresh_databases().await {
        let database = Database::connect(&db.url).await.unwrap();
        let store = AggregateStore::<Counter>::new(&database, ());
        let mut commits = database.commits();
        store
            .execute(
                "other",
                CounterCommand::Add { events: 1 },
                HashMap::new(),
                |_, _| (),
            )
            .await
            .unwrap();
        assert!(commits.has_changed().unwrap(), "{}", db.label);
        commits.mark_unchanged();

        let committed = store
            .execute(
                "c-1",
                CounterCommand::Add { events: 3 },
                HashMap::new(),
                |_, _| (),
            )
            .await
            .unwrap();
        assert_eq!(committed.position, Some(4), "{}", db.label);
        assert_eq!(database.head_position().await.unwrap(), 4, "{}", db.label);
        assert!(commits.has_changed().unwrap(), "{}", db.label);
        commits.mark_unchanged();

        // A refused command commits nothing, reports nothing and wakes nobody.
        let refused = store
            .execute("c-1", CounterCommand::Refuse, HashMap::new(), |_, _| ())
            .await;
        assert!(refused.is_err(), "{}", db.label);
        assert!(!commits.has_changed().unwrap(), "{}", db.label);

        let stream = database.events_of("Counter", "c-1").await.unwrap();
        let sequences: Vec<i64> = stream.iter().map(|event| event.sequence).collect();
        assert_eq!(sequences, [1, 2, 3], "{}", db.label);
    }
}

#[tokio::test]
async fn a_command_dropped_in_the_middle_of_its_turn_leaves_no_half_changed_state_behind() {
    for db in fresh_databases().await {
        let database = Database::connect(&db.url).await.unwrap();
        let store = std::sync::Arc::new(AggregateStore::<Counter>::new(&database, ()));
        assert_eq!(store.read("c-1", |counter| counter.count).await.unwrap(), 0);

        let stalled = std::sync::Arc::new(tokio::sync::Notify::new());
        let dropped = tokio::spawn({
            let (store, stalled) = (store.clone(), stalled.clone());
            async move {
                let command = CounterCommand::AddThenStall { stalled };
                store
                    .execute("c-1", command, HashMap::new(), |_, _| ())
                    .await
            }
        });
        // Its event is in the state held in memory, and will never be stored.
        stalled.notified().await;
        dropped.abort();
        assert!(
            matches!(dropped.await, Err(join) if join.is_cancelled()),
            "{}",
            db.label
        );

        let committed = store
            .execute(
                "c-1",
                CounterCommand::Add { events: 1 },
                HashMap::new(),
                |counter, _| counter.count,
            )
            .await
            .unwrap();
        assert_eq!(
            committed.outcome, 1,
            "{}: counted the dropped event",
            db.label
        );
        assert_eq!(committed.events[0].sequence, 1, "{}", db.label);
        assert_eq!(
            store.read("c-1", |counter| counter.count).await.unwrap(),
            1,
            "{}",
            db.label
        );
    }
}
