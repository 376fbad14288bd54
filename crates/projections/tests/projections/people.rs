//! The people directory: callers' names and addresses, written a batch at a time.

use std::collections::BTreeMap;

use access_projections::{Outbox, PendingEmail, People};
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

/// The people table's sequential and index scans as PostgreSQL's statistics have them.
async fn people_scans(pool: &sqlx::PgPool) -> (i64, i64) {
    // A snapshot of the statistics lasts a transaction; each call sees the latest.
    sqlx::query_as(
        "SELECT seq_scan, COALESCE(idx_scan, 0) FROM pg_stat_user_tables WHERE relname = 'people'",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn addresses_are_read_by_key_even_when_the_directory_was_empty_at_the_first_reads() {
    for h in harnesses().await {
        let Pool::Postgres(pool) = h.database.pool() else {
            continue;
        };
        let outbox = Outbox::new(h.database.clone());
        let email = |recipient: &str| PendingEmail {
            position: 1,
            recipient: person(recipient),
            kind: "ROLE_REQUESTED".into(),
            subject: "subject".into(),
            body: "body".into(),
            display_name: None,
            email: None,
        };
        // PostgreSQL keeps a generic plan after five executions of a statement on a
        // connection; made while the directory is empty, a plan free to choose scans the
        // whole table. Enough reads for every connection of a pool to make one.
        for _ in 0..100 {
            outbox.address(vec![email("nobody")]).await.unwrap();
        }
        sqlx::query(
            "INSERT INTO people (person_id, display_name, email, updated_at) \
             SELECT 'person-' || n, 'Person ' || n, 'person-' || n || '@example.org', '' \
               FROM generate_series(1, 5000) AS n",
        )
        .execute(pool)
        .await
        .unwrap();
        // A backend reports its statistics when idle, at most once a second (else ten
        // seconds later): past that second, the read below is reported at once.
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        let before = people_scans(pool).await;

        let addressed = outbox.address(vec![email("person-42")]).await.unwrap();

        assert_eq!(
            addressed[0].email.as_deref(),
            Some("person-42@example.org"),
            "{}",
            h.label
        );
        let mut after = people_scans(pool).await;
        for _ in 0..150 {
            if after != before {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            after = people_scans(pool).await;
        }
        assert_ne!(after, before, "{}: the read was never reported", h.label);
        assert_eq!(
            after.0, before.0,
            "{}: the address read scanned the whole directory",
            h.label
        );
    }
}
