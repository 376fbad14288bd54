//! Fresh, empty databases for tests, so that every suite runs against SQLite always and
//! against PostgreSQL whenever one is available.
//!
//! ```no_run
//! # async fn example() {
//! use access_store::{testing::fresh_databases, Database};
//!
//! for db in fresh_databases().await {
//!     let database = Database::connect(&db.url).await.unwrap();
//!     // ... assert things, mentioning db.label in messages ...
//! }
//! # }
//! ```
//!
//! PostgreSQL is used when `TEST_DATABASE_URL` points at a server where the user may
//! create databases (e.g. `postgres://postgres@127.0.0.1:5432/postgres`). Without it the
//! PostgreSQL run is skipped, except under `CI=true`, where a missing or unreachable
//! PostgreSQL fails the test instead of silently halving the coverage.

use std::path::PathBuf;
use std::str::FromStr;

use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

/// One fresh database. Dropping it deletes the SQLite file or drops the PostgreSQL
/// database, so repeated test runs do not pile up data.
pub struct TestDatabase {
    /// "sqlite" or "postgres", for assertion messages.
    pub label: &'static str,
    /// Pass to [`Database::connect`](crate::Database::connect) (or as `DATABASE_URL`).
    pub url: String,
    cleanup: Cleanup,
}

impl TestDatabase {
    /// Applies the schema's migrations up to `version` only, as a server of that version
    /// left the database: for tests of what the later ones do to the rows it holds.
    ///
    /// # Panics
    /// When the database cannot be reached or a migration fails.
    pub async fn migrate_until(&self, version: i64) {
        if self.url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(&self.url)
                .unwrap()
                .create_if_missing(true);
            let mut connection = SqliteConnection::connect_with(&options).await.unwrap();
            let migrator = crate::migrations::sqlite_until(version);
            migrator.run(&mut connection).await.unwrap();
            connection.close().await.unwrap();
        } else {
            let mut connection = PgConnection::connect(&self.url).await.unwrap();
            let migrator = crate::migrations::postgres_until(version);
            migrator.run(&mut connection).await.unwrap();
            connection.close().await.unwrap();
        }
    }
}

enum Cleanup {
    SqliteFile(PathBuf),
    PostgresDatabase { admin_url: String, name: String },
}

/// A new SQLite file database and, when available, a new PostgreSQL database, each with
/// a unique name and not yet migrated.
///
/// # Panics
/// Under `CI=true` when `TEST_DATABASE_URL` is unset or no database can be created there.
pub async fn fresh_databases() -> Vec<TestDatabase> {
    let mut databases = vec![fresh_sqlite()];
    databases.extend(fresh_postgres().await);
    databases
}

fn fresh_sqlite() -> TestDatabase {
    let path = std::env::temp_dir().join(format!("access_test_{}.db", Uuid::new_v4().simple()));
    TestDatabase {
        label: "sqlite",
        url: format!("sqlite://{}", path.display()),
        cleanup: Cleanup::SqliteFile(path),
    }
}

async fn fresh_postgres() -> Option<TestDatabase> {
    let in_ci = std::env::var("CI").is_ok_and(|value| value == "true");
    let Ok(admin_url) = std::env::var("TEST_DATABASE_URL") else {
        assert!(
            !in_ci,
            "CI=true but TEST_DATABASE_URL is not set: the PostgreSQL suites must run in CI \
             (e.g. TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres)"
        );
        return None;
    };
    let name = format!("access_test_{}", Uuid::new_v4().simple());
    match create_database(&admin_url, &name).await {
        Ok(()) => Some(TestDatabase {
            label: "postgres",
            url: with_database(&admin_url, &name),
            cleanup: Cleanup::PostgresDatabase { admin_url, name },
        }),
        // The URL itself is not shown: it may hold a password.
        Err(error) if in_ci => {
            panic!("CI=true but no database can be created at TEST_DATABASE_URL: {error}")
        }
        Err(error) => {
            eprintln!(
                "skipping PostgreSQL: no database can be created at TEST_DATABASE_URL: {error}"
            );
            None
        }
    }
}

async fn create_database(admin_url: &str, name: &str) -> Result<(), sqlx::Error> {
    let mut connection = PgConnection::connect(admin_url).await?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut connection)
        .await?;
    connection.close().await
}

/// `url` with its path (the database name) replaced, keeping credentials and parameters.
fn with_database(url: &str, name: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
    let (location, query) = match rest.split_once('?') {
        Some((location, query)) => (location, format!("?{query}")),
        None => (rest, String::new()),
    };
    let authority = location
        .split_once('/')
        .map_or(location, |(authority, _)| authority);
    format!("{scheme}://{authority}/{name}{query}")
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::SqliteFile(path) => {
                // Best effort: the WAL and shared-memory files sit next to the database.
                for suffix in ["", "-wal", "-shm"] {
                    let mut file = path.clone().into_os_string();
                    file.push(suffix);
                    let _ = std::fs::remove_file(file);
                }
            }
            Cleanup::PostgresDatabase { admin_url, name } => {
                // Drop runs inside the test's runtime, which cannot be blocked on; a
                // short-lived runtime on its own thread does the async work. FORCE
                // disconnects pools the test has not closed yet (PostgreSQL 13+).
                let (admin_url, name) = (admin_url.clone(), name.clone());
                let dropped = std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .ok()?;
                    runtime.block_on(async {
                        let mut connection = PgConnection::connect(&admin_url).await.ok()?;
                        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                            .execute(&mut connection)
                            .await
                            .ok()?;
                        connection.close().await.ok()
                    })
                });
                let _ = dropped.join();
            }
        }
    }
}
