use std::borrow::Cow;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::migrate::MigrateError;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use sqlx::{ColumnIndex, Connection, Decode, Row, Type};
use tokio::sync::watch;

use crate::error::StoreError;
use crate::migrations;

/// How long an SQLite writer waits for another connection's write transaction before
/// giving up with "database is locked". Writers queue on a single lock, so under a burst
/// of commands the wait is the sum of the commits ahead; a few seconds absorbs bursts far
/// beyond this product's load while still failing visibly on a stuck writer.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// SQLite's primary result code for "database is locked" (its extended codes keep it in
/// their low byte).
const SQLITE_BUSY: i32 = 5;

/// How long a query waits for a pooled PostgreSQL connection (sqlx keeps trying to open
/// one until then). Short enough that `/readyz` and requests report an outage within a
/// probe's patience instead of after sqlx's default 30 s; long enough to ride out a brief
/// pool exhaustion.
const POSTGRES_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a pooled PostgreSQL connection may wait unused before it is pinged as it is
/// taken out of its pool.
const PING_AFTER_IDLE: Duration = Duration::from_secs(1);

/// The options of every PostgreSQL pool of the server: [`POSTGRES_ACQUIRE_TIMEOUT`], and
/// a connection pinged as it is taken out only when it has waited unused for a second or
/// more. sqlx pings every connection as it goes back to its pool, and by default again as
/// it is taken out; under load a connection goes back and out again within milliseconds,
/// and each ping is a round trip and a wake-up of a PostgreSQL backend for nothing
/// (docs/performance.md, "the pools' round trips"). One that waited longer, through an outage say,
/// is still tested, and replaced if it has died.
pub fn postgres_pool_options() -> PgPoolOptions {
    PgPoolOptions::new()
        .acquire_timeout(POSTGRES_ACQUIRE_TIMEOUT)
        .test_before_acquire(false)
        .before_acquire(|connection, taken| {
            Box::pin(async move {
                if taken.idle_for >= PING_AFTER_IDLE {
                    connection.ping().await?;
                }
                Ok(true)
            })
        })
}

/// The event store and views, on one of the two supported databases.
///
/// Cheap to clone: clones share the pool and the commit signal.
#[derive(Clone, Debug)]
pub struct Database {
    pool: Pool,
    /// Where queries that write nothing go ([`Database::for_reads`]).
    reads: Pool,
    /// Fired after every commit made through an [`AggregateStore`](crate::AggregateStore)
    /// on this database (or a clone of it), so that tailers in this process wake at once.
    /// SQLite has no LISTEN/NOTIFY; on PostgreSQL it spares the round trip for this
    /// process's own commits.
    commits: Arc<watch::Sender<()>>,
    /// Keys the fingerprints of requests kept for retries (`server_secrets`), so that
    /// a fingerprint of a request holding an SSN cannot be reversed by trying them all.
    fingerprint_key: Arc<str>,
}

/// The connection pool, public so that later crates (projections, the server) can run
/// their own queries on the same connections.
#[derive(Clone, Debug)]
pub enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// One event as stored, for readers that follow the whole log in commit order
/// (projections, subscriptions) rather than one aggregate.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredEvent {
    /// Strictly increasing in commit order across all aggregates; may have gaps.
    pub position: i64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    /// Position within the aggregate, from 1, without gaps.
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub payload: serde_json::Value,
    pub metadata: serde_json::Value,
}

const STORED_EVENT_COLUMNS: &str = "position, aggregate_type, aggregate_id, sequence, \
     event_type, event_version, payload, metadata";

impl Database {
    /// The database on a migrated pool, with the secrets its servers share: made by the
    /// first server that finds one missing, from the database's own strong randomness, so
    /// that every server on the database reads the same.
    async fn open(pool: Pool, reads: Pool) -> Result<Self, StoreError> {
        const NAME: &str = "idempotency fingerprints";
        let random = match &pool {
            Pool::Sqlite(_) => "lower(hex(randomblob(32)))",
            // 122 bits from PostgreSQL's strong random source, twice.
            Pool::Postgres(_) => "gen_random_uuid()::text || gen_random_uuid()::text",
        };
        let mut database = Database {
            pool,
            reads,
            commits: Arc::new(watch::channel(()).0),
            fingerprint_key: Arc::from(""),
        };
        let make = format!(
            "INSERT INTO server_secrets (name, secret) VALUES ($1, {random}) \
             ON CONFLICT (name) DO NOTHING"
        );
        let doing = "reading the server secrets";
        on_pool!(database, |pool| sqlx::query(&make)
            .bind(NAME)
            .execute(pool)
            .await
            .map(drop))
        .map_err(|error| database.error(doing, error))?;
        let key: String = on_pool!(database, |pool| sqlx::query_scalar(
            "SELECT secret FROM server_secrets WHERE name = $1"
        )
        .bind(NAME)
        .fetch_one(pool)
        .await)
        .map_err(|error| database.error(doing, error))?;
        database.fingerprint_key = key.into();
        Ok(database)
    }

    pub(crate) fn fingerprint_key(&self) -> &[u8] {
        self.fingerprint_key.as_bytes()
    }

    /// Opens the database named by `url` (the value of `DATABASE_URL`) and brings its
    /// schema up to date, so that a fresh machine needs no set-up step.
    ///
    /// For SQLite the file and its parent directories are created when missing. Several
    /// processes may call this at once on the same database: PostgreSQL migrations take
    /// sqlx's advisory lock, SQLite ones run inside one write transaction.
    pub async fn connect(url: &str) -> Result<Database, StoreError> {
        match scheme(url)?.as_str() {
            "sqlite" => connect_sqlite(url).await,
            "postgres" | "postgresql" => connect_postgres(url).await,
            other => Err(StoreError::InvalidUrl {
                reason: format!("has the unsupported scheme `{other}:`").into(),
            }),
        }
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// The same database, for queries that write nothing (the views' readers). On
    /// SQLite a pool of its own, so that readers never queue behind the one connection
    /// that writes (see `connect_sqlite`); on PostgreSQL this database.
    pub fn for_reads(&self) -> Database {
        Database {
            pool: self.reads.clone(),
            ..self.clone()
        }
    }

    /// Changes whenever a command committed through this database handle or a clone of it
    /// (never for commits by other processes: PostgreSQL's `LISTEN access_events` covers
    /// those). Waiting on it is how a tailer in this process learns of new events without
    /// polling.
    pub fn commits(&self) -> watch::Receiver<()> {
        self.commits.subscribe()
    }

    pub(crate) fn notify_commit(&self) {
        self.commits.send_replace(());
    }

    /// Where the data lives, for start-up banners and error messages: the kind of
    /// database, its name and host or file, never the credentials.
    pub fn describe(&self) -> String {
        match &self.pool {
            Pool::Sqlite(pool) => describe_sqlite(&pool.connect_options()),
            Pool::Postgres(pool) => describe_postgres(&pool.connect_options()),
        }
    }

    /// Answers whether the database takes queries right now, for `/readyz`.
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_pool!(self, |pool| sqlx::query("SELECT 1")
            .execute(pool)
            .await
            .map(drop))
        .map_err(|error| self.error("checking the connection", error))
    }

    /// Up to `limit` events with a position greater than `position`, in position order.
    ///
    /// Positions are handed out in commit order (see docs/adr/02-global-position.md), so
    /// a reader that passes the last position it has processed never skips an event that
    /// committed late, and never sees one twice. Start from 0.
    pub async fn events_after(
        &self,
        position: i64,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let sql = format!(
            "SELECT {STORED_EVENT_COLUMNS} FROM events \
              WHERE position > $1 ORDER BY position LIMIT $2"
        );
        on_pool!(self, |pool| sqlx::query(&sql)
            .bind(position)
            .bind(limit)
            .fetch_all(pool)
            .await
            .and_then(|rows| rows.iter().map(stored_event).collect()))
        .map_err(|error| self.error(&format!("reading events after position {position}"), error))
    }

    /// Every event of one aggregate, in sequence order: what readers replay to answer
    /// "what was its state at instant T", which no view keeps.
    pub async fn events_of(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let sql = format!(
            "SELECT {STORED_EVENT_COLUMNS} FROM events \
              WHERE aggregate_type = $1 AND aggregate_id = $2 ORDER BY sequence"
        );
        on_pool!(self, |pool| sqlx::query(&sql)
            .bind(aggregate_type)
            .bind(aggregate_id)
            .fetch_all(pool)
            .await
            .and_then(|rows| rows.iter().map(stored_event).collect()))
        .map_err(|error| self.error(&format!("reading the events of {aggregate_id}"), error))
    }

    /// The position of the latest committed event, 0 for an empty store: how far a
    /// complete replay has to go.
    pub async fn head_position(&self) -> Result<i64, StoreError> {
        let sql = "SELECT COALESCE(MAX(position), 0) FROM events";
        on_pool!(self, |pool| sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(pool)
            .await)
        .map_err(|error| self.error("reading the head position", error))
    }

    /// The global position of one stored event.
    pub(crate) async fn position_of(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        sequence: i64,
    ) -> Result<i64, StoreError> {
        let sql = "SELECT position FROM events \
                    WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence = $3";
        on_pool!(self, |pool| sqlx::query_scalar::<_, i64>(sql)
            .bind(aggregate_type)
            .bind(aggregate_id)
            .bind(sequence)
            .fetch_one(pool)
            .await)
        .map_err(|error| self.error(&format!("reading the position of {aggregate_id}"), error))
    }

    /// After an erasure: on SQLite, moves the write-ahead log into the database file and
    /// empties it, so the page images from before the deletion leave the disk (the file
    /// itself zeroes deleted rows: `secure_delete`). Answers false when a reader kept the
    /// log from being emptied; running it again when the server is idle completes it.
    /// PostgreSQL keeps no such copy a query can reach; its own files are left to VACUUM.
    pub async fn flush_deleted_rows(&self) -> Result<bool, StoreError> {
        match &self.pool {
            Pool::Sqlite(pool) => {
                sqlx::query_as::<_, (i64, i64, i64)>("PRAGMA wal_checkpoint(TRUNCATE)")
                    .fetch_one(pool)
                    .await
                    .map(|(busy, _, _)| busy == 0)
                    .map_err(|error| self.error("emptying the write-ahead log", error))
            }
            Pool::Postgres(_) => Ok(true),
        }
    }

    /// A help-desk ticket serial never issued before on this database, from any process.
    pub async fn next_ticket_serial(&self) -> Result<u64, StoreError> {
        let result = match &self.pool {
            Pool::Sqlite(pool) => sqlx::query(
                "INSERT INTO help_desk_tickets (issued_at) \
                 VALUES (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
            )
            .execute(pool)
            .await
            .map(|done| done.last_insert_rowid()),
            Pool::Postgres(pool) => sqlx::query("SELECT nextval('help_desk_ticket_seq')")
                .fetch_one(pool)
                .await
                .and_then(|row| row.try_get::<i64, _>(0)),
        };
        let serial = result.map_err(|error| self.error("issuing a ticket serial", error))?;
        // Both counters start at 1; a negative value means someone re-seeded them by hand.
        u64::try_from(serial).map_err(|_| StoreError::Failed {
            database: self.describe(),
            reason: format!("the help-desk ticket counter issued {serial}, below 1"),
        })
    }

    pub(crate) fn error(&self, doing: &str, error: sqlx::Error) -> StoreError {
        StoreError::from_sqlx(self.describe(), doing, error)
    }
}

/// The scheme, lower-cased, or an error that does not echo the URL: what precedes the
/// first colon may be a user name or worse when the scheme was mistyped.
fn scheme(url: &str) -> Result<String, StoreError> {
    let candidate = url.split_once(':').map(|(scheme, _)| scheme).unwrap_or("");
    let looks_like_a_scheme = candidate.starts_with(|c: char| c.is_ascii_alphabetic())
        && candidate
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if looks_like_a_scheme {
        Ok(candidate.to_ascii_lowercase())
    } else if url.trim().is_empty() {
        Err(StoreError::InvalidUrl {
            reason: Cow::Borrowed("is empty"),
        })
    } else {
        Err(StoreError::InvalidUrl {
            reason: Cow::Borrowed("does not start with a scheme such as sqlite:// or postgres://"),
        })
    }
}

async fn connect_sqlite(url: &str) -> Result<Database, StoreError> {
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|error| StoreError::InvalidUrl {
            reason: format!("is not a usable SQLite URL ({error})").into(),
        })?
        .create_if_missing(true)
        // Readers (projections, queries) never block the writer nor each other.
        .journal_mode(SqliteJournalMode::Wal)
        .busy_timeout(SQLITE_BUSY_TIMEOUT)
        .foreign_keys(true)
        // Deleted rows are overwritten with zeros rather than left in free space, so that
        // erasing a person's contact details (`access-server erase-person`) leaves no copy
        // in the file. Deletes are rare here; the extra writes cost nothing noticeable.
        .pragma("secure_delete", "ON");
    let database = describe_sqlite(&options);

    let file = options.get_filename();
    if let Some(directory) = file.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::create_dir_all(directory).map_err(|error| StoreError::Failed {
            database: database.clone(),
            reason: format!("cannot create directory {}: {error}", directory.display()),
        })?;
    }

    let reads = SqlitePoolOptions::new().connect_lazy_with(options.clone());
    // One connection for everything that writes. SQLite lets one writer in at a time
    // anyway, and writers on several connections wait for each other in its busy
    // handler, which sleeps 1 to 100 ms between tries: under load the sleeps cost more
    // than the writes. Queued for one connection, they follow each other at once
    // (docs/performance.md, SQLite: 250 → 388 commands/s, p99 400 → 131 ms).
    let pool = open_writer(options)
        .await
        .map_err(|error| StoreError::from_sqlx(database.clone(), "opening", error))?;

    // sqlx's migrator takes no lock on SQLite. Running it inside an IMMEDIATE transaction
    // holds the write lock from the first look at `_sqlx_migrations` to the last
    // migration, so a second process waits (busy timeout) and then finds nothing to do.
    // The migrator's own per-migration transactions become savepoints inside this one.
    async {
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
        migrations::sqlite().run(&mut *tx).await?;
        tx.commit().await.map_err(MigrateError::from)
    }
    .await
    .map_err(|error| migration_error(database, error))?;
    Database::open(Pool::Sqlite(pool), Pool::Sqlite(reads)).await
}

/// The pool of the one writing connection. Opening sets the file to WAL mode, which takes
/// an exclusive lock for a moment; a second process opening the same fresh file at that
/// moment is told the database is locked at once, without its busy timeout, so it tries
/// again until the timeout has passed.
async fn open_writer(options: SqliteConnectOptions) -> Result<SqlitePool, sqlx::Error> {
    let started = Instant::now();
    loop {
        let opened = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await;
        match opened {
            Err(sqlx::Error::Database(error))
                if error
                    .code()
                    .and_then(|code| code.parse::<i32>().ok())
                    .is_some_and(|code| code & 0xff == SQLITE_BUSY)
                    && started.elapsed() < SQLITE_BUSY_TIMEOUT =>
            {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            opened => return opened,
        }
    }
}

async fn connect_postgres(url: &str) -> Result<Database, StoreError> {
    let options = PgConnectOptions::from_str(url).map_err(|error| StoreError::InvalidUrl {
        reason: format!("is not a usable PostgreSQL URL ({error})").into(),
    })?;
    let database = describe_postgres(&options);

    // Migrate over a connection of its own before creating the pool: a failure to connect
    // then reports its cause at once (a pool only says it timed out), and closing this
    // connection releases sqlx's session-level migration lock even if a migration failed.
    let mut connection = PgConnection::connect_with(&options)
        .await
        .map_err(|error| StoreError::from_sqlx(database.clone(), "connecting", error))?;
    let migrated = migrations::postgres().run(&mut connection).await;
    let closed = connection.close().await;
    migrated.map_err(|error| migration_error(database.clone(), error))?;
    closed.map_err(|error| StoreError::from_sqlx(database.clone(), "migrating", error))?;

    let pool = postgres_pool_options()
        .connect_with(options)
        .await
        .map_err(|error| StoreError::from_sqlx(database, "connecting", error))?;
    Database::open(Pool::Postgres(pool.clone()), Pool::Postgres(pool)).await
}

fn migration_error(database: String, error: MigrateError) -> StoreError {
    match error {
        MigrateError::Execute(error) => StoreError::from_sqlx(database, "migrating", error),
        MigrateError::ExecuteMigration(error, version) => {
            StoreError::from_sqlx(database, &format!("applying migration {version}"), error)
        }
        other => StoreError::Failed {
            database,
            reason: format!("migrating: {other}"),
        },
    }
}

fn describe_sqlite(options: &SqliteConnectOptions) -> String {
    format!("SQLite database {}", options.get_filename().display())
}

fn describe_postgres(options: &PgConnectOptions) -> String {
    // PostgreSQL's own default when no database is named is the user's name.
    let name = options
        .get_database()
        .unwrap_or_else(|| options.get_username());
    match options.get_socket() {
        Some(socket) => format!("PostgreSQL database {name} via {}", socket.display()),
        None => format!(
            "PostgreSQL database {name} on {}:{}",
            options.get_host(),
            options.get_port()
        ),
    }
}

fn stored_event<'r, R>(row: &'r R) -> Result<StoredEvent, sqlx::Error>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    serde_json::Value: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(StoredEvent {
        position: row.try_get("position")?,
        aggregate_type: row.try_get("aggregate_type")?,
        aggregate_id: row.try_get("aggregate_id")?,
        sequence: row.try_get("sequence")?,
        event_type: row.try_get("event_type")?,
        event_version: row.try_get("event_version")?,
        payload: row.try_get("payload")?,
        metadata: row.try_get("metadata")?,
    })
}
