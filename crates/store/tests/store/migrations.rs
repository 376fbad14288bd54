use access_store::testing::fresh_databases;
use access_store::{AggregateStore, Database};
use std::collections::HashMap;

use crate::counter::{Counter, CounterCommand};
use crate::scalar;

#[tokio::test]
async fn connecting_again_migrates_nothing_and_keeps_the_events() {
    for db in fresh_databases().await {
        let first = Database::connect(&db.url).await.unwrap();
        AggregateStore::<Counter>::new(&first, ())
            .execute(
                "kept",
                CounterCommand::Add { events: 2 },
                HashMap::new(),
                |_, _| (),
            )
            .await
            .unwrap();
        let applied = scalar(&first, "SELECT COUNT(*) FROM _sqlx_migrations").await;
        assert!(applied >= 1, "{}", db.label);

        let second = Database::connect(&db.url).await.unwrap();
        assert_eq!(
            scalar(&second, "SELECT COUNT(*) FROM _sqlx_migrations").await,
            applied,
            "{}",
            db.label
        );
        let store = AggregateStore::<Counter>::new(&second, ());
        assert_eq!(
            store.read("kept", |counter| counter.count).await.unwrap(),
            2,
            "{}",
            db.label
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_servers_starting_at_once_on_a_fresh_database_both_succeed() {
    for db in fresh_databases().await {
        let (one, other) = tokio::join!(Database::connect(&db.url), Database::connect(&db.url));
        let (one, other) = (one.unwrap(), other.unwrap());
        assert_eq!(
            scalar(&one, "SELECT COUNT(*) FROM _sqlx_migrations").await,
            scalar(
                &other,
                "SELECT COUNT(DISTINCT version) FROM _sqlx_migrations"
            )
            .await,
            "{}: a migration was recorded twice",
            db.label
        );
        one.ping().await.unwrap();
        other.ping().await.unwrap();
    }
}
