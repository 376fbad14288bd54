use access_store::testing::fresh_databases;
use access_store::{Database, Pool, StoreError};
use sqlx::Connection;

#[tokio::test]
async fn a_bad_database_url_gives_an_error_that_names_database_url_and_hides_the_password() {
    for url in [
        "mysql://admin:s3cret@db.example/access",
        "admin:s3cret@db.example/access",
        "data/access.db",
        "",
    ] {
        let error = Database::connect(url).await.unwrap_err();
        let message = error.to_string();
        assert!(
            matches!(error, StoreError::InvalidUrl { .. }),
            "{url}: {message}"
        );
        assert!(message.contains("DATABASE_URL"), "{url}: {message}");
        assert!(message.contains("sqlite://"), "{url}: {message}");
        assert!(!message.contains("s3cret"), "{url}: {message}");
        assert!(!error.is_retryable(), "{url}");
    }
}

#[tokio::test]
async fn an_unreachable_postgresql_is_a_retryable_error_that_names_it_without_the_password() {
    let error = Database::connect("postgres://admin:s3cret@127.0.0.1:1/access")
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(error.is_retryable(), "{message}");
    assert!(
        message.starts_with("PostgreSQL database access on 127.0.0.1:1 is unavailable"),
        "{message}"
    );
    assert!(!message.contains("s3cret"), "{message}");
}

#[tokio::test]
async fn a_postgresql_behind_a_proxy_that_drops_every_connection_is_a_retryable_error() {
    let proxy = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = proxy.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((connection, _)) = proxy.accept().await {
            drop(connection);
        }
    });
    let error = Database::connect(&format!("postgres://admin@{address}/access"))
        .await
        .unwrap_err();
    assert!(error.is_retryable(), "{error}");
}

#[tokio::test]
async fn an_sqlite_url_creates_the_missing_directories_and_file() {
    let directory = std::env::temp_dir().join(format!("access_test_dir_{}", std::process::id()));
    let file = directory.join("nested").join("access.db");
    let _ = std::fs::remove_dir_all(&directory);

    let database = Database::connect(&format!("sqlite://{}", file.display()))
        .await
        .unwrap();
    database.ping().await.unwrap();
    assert!(file.exists());
    assert_eq!(
        database.describe(),
        format!("SQLite database {}", file.display())
    );
    drop(database);
    let _ = std::fs::remove_dir_all(&directory);
}

#[tokio::test]
async fn describe_says_where_the_data_lives_and_ping_reaches_it() {
    for db in fresh_databases().await {
        let database = Database::connect(&db.url).await.unwrap();
        database.ping().await.unwrap();
        let description = database.describe();
        let expected = match db.label {
            "sqlite" => "SQLite database ",
            _ => "PostgreSQL database access_test_",
        };
        assert!(description.starts_with(expected), "{description}");
    }
}

/// sqlx pings a pooled connection as it goes back to its pool; the server's pools ping it
/// again as it is taken out only when it waited a second or more, as after an outage.
#[tokio::test]
async fn a_pooled_postgresql_connection_that_died_while_it_waited_unused_is_replaced_before_a_query_uses_it(
) {
    for db in fresh_databases().await {
        if db.label != "postgres" {
            continue;
        }
        let database = Database::connect(&db.url).await.unwrap();
        let Pool::Postgres(pool) = database.pool() else {
            unreachable!("a PostgreSQL URL gives a PostgreSQL pool")
        };
        let before: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(pool)
            .await
            .unwrap();
        let mut killer = sqlx::PgConnection::connect(&db.url).await.unwrap();
        let killed: Vec<bool> = sqlx::query_scalar(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
              WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        .fetch_all(&mut killer)
        .await
        .unwrap();
        assert!(
            killed.contains(&true),
            "the pool's connection was terminated"
        );
        tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;

        let after: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(pool)
            .await
            .expect("a live connection, made in place of the dead one");
        assert_ne!(after, before);
    }
}

/// On SQLite everything that writes goes through one connection, and readers have
/// connections of their own; on PostgreSQL both are one pool.
#[tokio::test]
async fn on_sqlite_writes_queue_for_one_connection_while_readers_have_their_own() {
    for db in fresh_databases().await {
        let database = Database::connect(&db.url).await.unwrap();
        let reader = database.for_reads();
        match (database.pool(), reader.pool()) {
            (access_store::Pool::Sqlite(writes), access_store::Pool::Sqlite(reads)) => {
                assert_eq!(writes.options().get_max_connections(), 1);
                let mut writing = writes.begin().await.unwrap();
                sqlx::query("CREATE TABLE being_written (x integer)")
                    .execute(&mut *writing)
                    .await
                    .unwrap();
                // The writer's one connection is taken; a reader still gets in.
                let tables: i64 = sqlx::query_scalar("SELECT count(*) FROM sqlite_master")
                    .fetch_one(reads)
                    .await
                    .unwrap();
                assert!(tables > 0);
                writing.commit().await.unwrap();
                let seen: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM sqlite_master WHERE name = 'being_written'",
                )
                .fetch_one(reads)
                .await
                .unwrap();
                assert_eq!(seen, 1, "readers see the writer's commits");
            }
            (access_store::Pool::Postgres(_), access_store::Pool::Postgres(_)) => {}
            _ => panic!(
                "{}: the readers' pool is another kind of database",
                db.label
            ),
        }
    }
}

/// SQLite before 3.51.3 can write a corrupt file when one connection checkpoints its
/// write-ahead log while another, in this process or another, writes: the server and the
/// `rebuild` and `erase-person` commands are such connections (docs/adr/16-sqlite-wal-reset-fix.md).
#[tokio::test]
async fn the_sqlite_linked_in_has_the_fix_for_the_wal_reset_corruption() {
    let database = Database::connect("sqlite::memory:").await.unwrap();
    let Pool::Sqlite(pool) = database.pool() else {
        unreachable!("an SQLite URL opens SQLite")
    };
    let version: String = sqlx::query_scalar("SELECT sqlite_version()")
        .fetch_one(pool)
        .await
        .unwrap();
    let numbers: Vec<u32> = version
        .split('.')
        .map(|number| number.parse().unwrap())
        .collect();
    assert!(
        numbers >= vec![3, 51, 3],
        "SQLite {version} is linked in; the fix came with 3.51.3"
    );
}
