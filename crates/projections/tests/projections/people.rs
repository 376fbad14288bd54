//! The people directory: callers' names and addresses, written a batch at a time.

use std::collections::BTreeMap;

use access_projections::People;
use access_store::Pool;

use crate::common::{harnesses, person};

/// Every directory row: person → (display name, email).
pub(crate) async fn directory(
    database: &access_store::Database,
) -> BTreeMap<String, (Option<String>, Option<String>)> {
    let sql = "SELECT person_id, display_name, email FROM people";
    let rows: Vec<(String, Option<String>, Option<String>)> = match database.pool() {
        Pool::Sqlite(pool) => sqlx::query_as(sql).fetch_all(pool).await,
        Pool::Postgres(pool) => sqlx::query_as(sql).fetch_all(pool).await,
    }
    .unwrap();
    rows.into_iter()
        .map(|(person, name, email)| (person, (name, email)))
        .collect()
}

#[tokio::test]
async fn callers_remembered_at_once_are_each_committed_before_their_answer_and_the_latest_row_of_one_person_wins(
) {
    for h in harnesses().await {
        let people = People::new(h.database.clone());
        let callers: Vec<(String, Option<String>)> = (0..40)
            .map(|n| {
                (
                    format!("caller-{n}"),
                    Some(format!("caller-{n}@example.org")),
                )
            })
            .chain([
                ("twice".to_string(), Some("old@example.org".to_string())),
                ("twice".to_string(), None),
            ])
            .collect();
        // Sent before the writer runs, so they share one batch.
        let ids: Vec<_> = callers.iter().map(|(who, _)| person(who)).collect();
        let answers =
            futures_util::future::join_all(callers.iter().zip(&ids).map(|((who, email), id)| {
                people.remember(id, Some(who.as_str()), email.as_deref())
            }))
            .await;
        assert!(
            answers.iter().all(Result::is_ok),
            "{}: {answers:?}",
            h.label
        );

        let mut expected: BTreeMap<String, (Option<String>, Option<String>)> = callers
            .iter()
            .map(|(who, email)| (who.clone(), (Some(who.clone()), email.clone())))
            .collect();
        expected.insert("twice".into(), (Some("twice".into()), None));
        assert_eq!(directory(&h.database).await, expected, "{}", h.label);

        if let Pool::Postgres(pool) = h.database.pool() {
            let transactions: i64 =
                sqlx::query_scalar("SELECT count(DISTINCT xmin::text) FROM people")
                    .fetch_one(pool)
                    .await
                    .unwrap();
            assert_eq!(
                transactions, 1,
                "one transaction for the callers who came at once"
            );
        }
    }
}
