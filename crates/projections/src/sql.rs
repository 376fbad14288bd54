//! One SQL text for both databases. Statements use `$N` placeholders (which sqlx's SQLite
//! driver accepts as well as PostgreSQL's; the many rows of [`Tx::execute_rows`] are
//! written for each database), text and integer columns only,
//! and times in one fixed-width text form, so the views' logic and the reads are written
//! once.

use access_store::{Database, Pool};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sqlx::postgres::{PgConnection, PgPool, PgRow};
use sqlx::query::Query;
use sqlx::sqlite::SqliteRow;
use sqlx::{Encode, Postgres, Row, Sqlite, Transaction, Type};

use crate::error::Error;

/// One bound value.
#[derive(Clone)]
pub(crate) enum Param {
    Text(Option<String>),
    Int(i64),
}

impl From<&str> for Param {
    fn from(value: &str) -> Self {
        Param::Text(Some(value.to_owned()))
    }
}

impl From<String> for Param {
    fn from(value: String) -> Self {
        Param::Text(Some(value))
    }
}

impl From<Option<&str>> for Param {
    fn from(value: Option<&str>) -> Self {
        Param::Text(value.map(str::to_owned))
    }
}

impl From<Option<String>> for Param {
    fn from(value: Option<String>) -> Self {
        Param::Text(value)
    }
}

impl From<i64> for Param {
    fn from(value: i64) -> Self {
        Param::Int(value)
    }
}

impl From<DateTime<Utc>> for Param {
    fn from(value: DateTime<Utc>) -> Self {
        Param::Text(Some(time_text(value)))
    }
}

/// `params![a, b]`: the values bound to `$1`, `$2`, ...
macro_rules! params {
    ($($value:expr),* $(,)?) => {
        &[$($crate::sql::Param::from($value)),*]
    };
}
pub(crate) use params;

/// Values one SQLite statement of many rows binds at most: well under its limit of 32,766.
const PARAMETERS_PER_STATEMENT: usize = 5_000;

/// `(?1, ?2), (?3, ?4)`: the placeholders of `rows` rows of `columns` values each, for a
/// SQLite `VALUES` list. SQLite reads `$N` as a name and looks each one up among the
/// statement's earlier names, a time growing with the square of the values (a third of a
/// 340-row INSERT's time); `?N` it reads as a number.
fn placeholder_rows(rows: usize, columns: usize) -> String {
    let mut text = String::with_capacity(rows * columns * 7);
    for row in 0..rows {
        if row > 0 {
            text.push_str(", ");
        }
        text.push('(');
        for column in 0..columns {
            if column > 0 {
                text.push_str(", ");
            }
            text.push('?');
            text.push_str(&(row * columns + column + 1).to_string());
        }
        text.push(')');
    }
    text
}

/// `rows`, all of one width, cut into as many statements' worth as the parameter limit
/// needs: each chunk's placeholders and its values in order.
fn row_chunks(rows: Vec<Vec<Param>>) -> Vec<(String, Vec<Param>)> {
    let columns = rows.first().map_or(1, Vec::len).max(1);
    let per_statement = (PARAMETERS_PER_STATEMENT / columns).max(1);
    let mut chunks = Vec::with_capacity(rows.len().div_ceil(per_statement));
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let mut values = Vec::with_capacity(per_statement * columns);
        let mut count = 0;
        for row in rows.by_ref().take(per_statement) {
            debug_assert_eq!(row.len(), columns, "the rows of a statement have one width");
            values.extend(row);
            count += 1;
        }
        chunks.push((placeholder_rows(count, columns), values));
    }
    chunks
}

/// `statement(rows)` for SQLite, with `rows` as `VALUES` lists: each statement's text
/// and its values, as many statements as the parameter limit needs.
fn values_statements(
    rows: Vec<Vec<Param>>,
    statement: impl Fn(&str) -> String,
) -> impl Iterator<Item = (String, Vec<Param>)> {
    row_chunks(rows)
        .into_iter()
        .map(move |(values, params)| (statement(&format!("VALUES {values}")), params))
}

/// One column of many rows, bound as one PostgreSQL array.
enum ColumnArray {
    Int(Vec<Option<i64>>),
    Text(Vec<Option<String>>),
}

/// `rows` turned into one array per column. A column is `bigint` when it holds a number,
/// `text` otherwise (the views store nothing else); a NULL is NULL in either.
fn column_arrays(rows: Vec<Vec<Param>>) -> Vec<ColumnArray> {
    let width = rows.first().map_or(0, Vec::len);
    let mut arrays: Vec<ColumnArray> = (0..width)
        .map(|column| {
            if rows.iter().any(|row| matches!(row[column], Param::Int(_))) {
                ColumnArray::Int(Vec::with_capacity(rows.len()))
            } else {
                ColumnArray::Text(Vec::with_capacity(rows.len()))
            }
        })
        .collect();
    for row in rows {
        debug_assert_eq!(row.len(), width, "the rows of a statement have one width");
        for (array, value) in arrays.iter_mut().zip(row) {
            match (array, value) {
                (ColumnArray::Int(values), Param::Int(number)) => values.push(Some(number)),
                (ColumnArray::Int(values), Param::Text(text)) => {
                    debug_assert!(text.is_none(), "a number column holds numbers or NULL");
                    values.push(None);
                }
                (ColumnArray::Text(values), Param::Text(text)) => values.push(text),
                (ColumnArray::Text(_), Param::Int(_)) => {
                    unreachable!("a column with a number is a number column")
                }
            }
        }
    }
    arrays
}

/// The `UNNEST` that reads `arrays` back as rows, bound from `$first` on.
fn unnest_source(first: usize, arrays: &[ColumnArray]) -> String {
    let casts: Vec<String> = arrays
        .iter()
        .enumerate()
        .map(|(index, array)| match array {
            ColumnArray::Int(_) => format!("${}::bigint[]", first + index),
            ColumnArray::Text(_) => format!("${}::text[]", first + index),
        })
        .collect();
    format!("SELECT * FROM UNNEST({})", casts.join(", "))
}

/// Stands for the row source in a held-back statement's text until it is sent, when its
/// parameters' numbers are known.
const HELD_ROWS: &str = "\u{1}rows\u{1}";

/// Writes of many rows a PostgreSQL transaction holds back until its next statement or
/// its commit, and then sends as one statement: each a data-modifying `WITH` of it.
///
/// Each round trip of a view's transaction waited for the server and the database under
/// load, and a batch's writes are many small ones. They go together unchanged in meaning
/// because the writes held back at once never touch the same rows: a view writes each
/// row a batch changes once, in its final state (inserted, upserted or deleted, by key),
/// and views write tables of their own. Sub-statements of one statement see the same
/// snapshot and not each other's effects, which is all these writes need.
#[derive(Default)]
pub(crate) struct HeldWrites(Vec<(String, Vec<ColumnArray>)>);

impl HeldWrites {
    /// The held writes as one statement and its arrays, in order; `None` when there are none.
    fn take(&mut self) -> Option<(String, Vec<ColumnArray>)> {
        let (mut statements, bound) = self.take_apart();
        let sql = match statements.len() {
            0 => return None,
            1 => statements.pop().unwrap_or_default(),
            _ => format!("{} SELECT 1", with_clause(&statements)),
        };
        Some((sql, bound))
    }

    /// The held writes with a read after them, as one statement: the read sees the
    /// tables as they were before the writes.
    fn take_with(
        &mut self,
        read: impl Fn(&str) -> String,
        read_arrays: Vec<ColumnArray>,
    ) -> (String, Vec<ColumnArray>) {
        let (statements, mut bound) = self.take_apart();
        let read = read(&unnest_source(bound.len() + 1, &read_arrays));
        bound.extend(read_arrays);
        if statements.is_empty() {
            return (read, bound);
        }
        (
            format!(
                "{} SELECT * FROM ({read}) AS read",
                with_clause(&statements)
            ),
            bound,
        )
    }

    /// Each held write's text, its rows' arrays numbered after those of the writes
    /// before it, and all the arrays in order.
    fn take_apart(&mut self) -> (Vec<String>, Vec<ColumnArray>) {
        let writes = std::mem::take(&mut self.0);
        let mut bound = Vec::new();
        let mut statements = Vec::with_capacity(writes.len());
        for (text, arrays) in writes {
            statements.push(text.replace(HELD_ROWS, &unnest_source(bound.len() + 1, &arrays)));
            bound.extend(arrays);
        }
        (statements, bound)
    }
}

/// `WITH w0 AS (…), w1 AS (…)` of data-modifying statements.
fn with_clause(statements: &[String]) -> String {
    let parts: Vec<String> = statements
        .iter()
        .enumerate()
        .map(|(index, statement)| format!("w{index} AS ({statement})"))
        .collect();
    format!("WITH {}", parts.join(", "))
}

/// Runs `sql` with `arrays` bound in order, and gives its rows.
async fn fetch_arrays<'c>(
    executor: impl sqlx::PgExecutor<'c>,
    sql: &str,
    arrays: Vec<ColumnArray>,
) -> Result<Vec<PgRow>, Error> {
    let mut query = sqlx::query(sql);
    for array in arrays {
        query = match array {
            ColumnArray::Int(values) => query.bind(values),
            ColumnArray::Text(values) => query.bind(values),
        };
    }
    Ok(query.fetch_all(executor).await?)
}

/// `statement(rows)` with `rows` bound as one array per column (see [`Tx::fetch_rows`]),
/// each row it gives mapped by `map`.
async fn fetch_unnested<'c, T>(
    executor: impl sqlx::PgExecutor<'c>,
    rows: Vec<Vec<Param>>,
    statement: impl Fn(&str) -> String,
    map: impl Fn(&dyn Cells) -> Result<T, Error>,
) -> Result<Vec<T>, Error> {
    let arrays = column_arrays(rows);
    let sql = statement(&unnest_source(1, &arrays));
    let found = fetch_arrays(executor, &sql, arrays).await?;
    found.iter().map(|row| map(row as &dyn Cells)).collect()
}

/// Sends the writes `held` holds back, if any.
async fn send_held(tx: &mut Transaction<'_, Postgres>, held: &mut HeldWrites) -> Result<(), Error> {
    if let Some((sql, arrays)) = held.take() {
        fetch_arrays(&mut **tx, &sql, arrays).await?;
    }
    Ok(())
}

/// How views store an instant: RFC 3339 in UTC with exactly nine fractional digits, so
/// that text order is time order and no precision is lost.
pub(crate) fn time_text(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

pub(crate) fn parse_time(
    text: &str,
    table: &'static str,
    column: &'static str,
) -> Result<DateTime<Utc>, Error> {
    DateTime::parse_from_rfc3339(text)
        .map(|at| at.with_timezone(&Utc))
        .map_err(|_| Error::Corrupt { table, column })
}

/// The serialized name of a unit enum of the domain (`SECURITY_OFFICIAL`, `PENDING`,
/// ...), which is also the contract's enum value.
pub(crate) fn code<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(code)) => code,
        _ => unreachable!("the domain's state enums serialize as plain strings"),
    }
}

pub(crate) fn from_code<T: DeserializeOwned>(
    code: String,
    table: &'static str,
    column: &'static str,
) -> Result<T, Error> {
    serde_json::from_value(serde_json::Value::String(code))
        .map_err(|_| Error::Corrupt { table, column })
}

fn bind<'q, DB: sqlx::Database>(
    mut query: Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>,
    params: &'q [Param],
) -> Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>
where
    Option<&'q str>: Encode<'q, DB> + Type<DB>,
    i64: Encode<'q, DB> + Type<DB>,
{
    for param in params {
        query = match param {
            Param::Text(text) => query.bind(text.as_deref()),
            Param::Int(number) => query.bind(*number),
        };
    }
    query
}

/// The columns of a result row, by index, whichever database it came from.
pub(crate) trait Cells {
    fn text(&self, index: usize) -> Result<String, Error>;
    fn opt_text(&self, index: usize) -> Result<Option<String>, Error>;
    fn int(&self, index: usize) -> Result<i64, Error>;
}

macro_rules! cells {
    ($row:ty) => {
        impl Cells for $row {
            fn text(&self, index: usize) -> Result<String, Error> {
                Ok(self.try_get(index)?)
            }
            fn opt_text(&self, index: usize) -> Result<Option<String>, Error> {
                Ok(self.try_get(index)?)
            }
            fn int(&self, index: usize) -> Result<i64, Error> {
                Ok(self.try_get(index)?)
            }
        }
    };
}
cells!(SqliteRow);
cells!(PgRow);

/// Runs a query on an executor of either database and maps every row.
macro_rules! rows {
    ($executor:expr, $sql:expr, $params:expr, $map:expr) => {{
        let rows = bind(sqlx::query($sql), $params)
            .fetch_all($executor)
            .await?;
        rows.iter().map(|row| $map(row as &dyn Cells)).collect()
    }};
}

/// The rows of one statement run on its own, each mapped by `map`: a read, or a lone
/// write (its rows by `RETURNING`), which commits by itself. Such a write holds SQLite's
/// write lock only while it runs on the driver's thread, never across an await of the
/// caller as a transaction does; a stalled caller then blocks no other writer.
pub(crate) async fn fetch<T>(
    database: &Database,
    sql: &str,
    params: &[Param],
    map: impl Fn(&dyn Cells) -> Result<T, Error>,
) -> Result<Vec<T>, Error> {
    match database.pool() {
        Pool::Sqlite(pool) => rows!(pool, sql, params, map),
        Pool::Postgres(pool) => rows!(pool, sql, params, map),
    }
}

/// A write transaction on either database, with what is to be done once it has
/// committed (nothing, if it never does): on a pooled connection, or on one its caller
/// holds for the lifetime `'c`.
pub(crate) struct Tx<'c> {
    open: Open<'c>,
    after_commit: Vec<Box<dyn FnOnce() + Send>>,
}

enum Open<'c> {
    Sqlite(Transaction<'c, Sqlite>),
    Postgres(Transaction<'c, Postgres>, HeldWrites),
}

impl<'c> From<Open<'c>> for Tx<'c> {
    fn from(open: Open<'c>) -> Self {
        Tx {
            open,
            after_commit: Vec::new(),
        }
    }
}

impl Tx<'static> {
    /// A transaction on a pooled connection. On SQLite it takes the write lock at once:
    /// one that read first and wrote later could fail to upgrade ("database is locked")
    /// with no wait at all. On PostgreSQL its `BEGIN` is [`begin_sql`]'s.
    pub(crate) async fn begin(database: &Database) -> Result<Tx<'static>, Error> {
        let open = match database.pool() {
            Pool::Sqlite(pool) => Open::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?),
            Pool::Postgres(pool) => {
                Open::Postgres(pool.begin_with(begin_sql("")).await?, HeldWrites::default())
            }
        };
        Ok(open.into())
    }
}

impl<'c> Tx<'c> {
    /// A PostgreSQL transaction on `connection`, which the caller keeps from one
    /// transaction to the next, whose `BEGIN` goes in one round trip with `and_then`
    /// (constant statements, each ending in `;`, their results unread).
    pub(crate) async fn begin_on(
        connection: &'c mut PgConnection,
        and_then: &str,
    ) -> Result<Tx<'c>, Error> {
        let begin = Transaction::begin(connection, Some(begin_sql(and_then).into())).await?;
        Ok(Open::Postgres(begin, HeldWrites::default()).into())
    }

    /// The PostgreSQL connection, for statements written for PostgreSQL alone, once the
    /// writes held back are sent.
    pub(crate) async fn postgres(&mut self) -> Result<Option<&mut sqlx::PgConnection>, Error> {
        match &mut self.open {
            Open::Postgres(tx, held) => {
                send_held(tx, held).await?;
                Ok(Some(&mut **tx))
            }
            Open::Sqlite(_) => Ok(None),
        }
    }

    pub(crate) fn is_postgres(&self) -> bool {
        matches!(self.open, Open::Postgres(..))
    }

    pub(crate) async fn execute(&mut self, sql: &str, params: &[Param]) -> Result<(), Error> {
        match &mut self.open {
            Open::Sqlite(tx) => {
                bind(sqlx::query(sql), params).execute(&mut **tx).await?;
            }
            Open::Postgres(tx, held) => {
                send_held(tx, held).await?;
                bind(sqlx::query(sql), params).execute(&mut **tx).await?;
            }
        }
        Ok(())
    }

    pub(crate) async fn fetch<T>(
        &mut self,
        sql: &str,
        params: &[Param],
        map: impl Fn(&dyn Cells) -> Result<T, Error>,
    ) -> Result<Vec<T>, Error> {
        match &mut self.open {
            Open::Sqlite(tx) => rows!(&mut **tx, sql, params, map),
            Open::Postgres(tx, held) => {
                send_held(tx, held).await?;
                rows!(&mut **tx, sql, params, map)
            }
        }
    }

    /// Runs `statement(rows)` for `rows` (all of one width), where `rows` is a row source
    /// to put where a `VALUES` list goes: `INSERT INTO t (a, b) {rows}`,
    /// `WHERE (a, b) IN ({rows})`. On PostgreSQL the write is held back and sent with the
    /// transaction's next statement or its commit ([`HeldWrites`]): it must not touch rows
    /// another write of the same transaction touches before its next read. See
    /// [`Tx::fetch_rows`] for the row source.
    pub(crate) async fn execute_rows(
        &mut self,
        rows: Vec<Vec<Param>>,
        statement: impl Fn(&str) -> String,
    ) -> Result<(), Error> {
        if rows.is_empty() {
            return Ok(());
        }
        if let Open::Postgres(_, held) = &mut self.open {
            held.0.push((statement(HELD_ROWS), column_arrays(rows)));
            return Ok(());
        }
        self.fetch_rows(rows, statement, |_| Ok(())).await.map(drop)
    }

    /// [`Tx::execute_rows`] for a query: its rows, each mapped by `map`. On PostgreSQL the
    /// source is `SELECT * FROM UNNEST($1::bigint[], $2::text[], …)`, one array per column:
    /// one statement for any number of rows, whose text is the same for every batch; a
    /// `VALUES` list of a thousand rows was a new text, parsed anew, for each count of
    /// rows. On SQLite it is a `VALUES` list per few hundred rows, within its parameter
    /// limit.
    pub(crate) async fn fetch_rows<T>(
        &mut self,
        rows: Vec<Vec<Param>>,
        statement: impl Fn(&str) -> String,
        map: impl Fn(&dyn Cells) -> Result<T, Error>,
    ) -> Result<Vec<T>, Error> {
        self.read_rows(rows, statement, map, false).await
    }

    /// [`Tx::fetch_rows`] for a view's read of its own tables before it writes any. No
    /// other view's write touches them, so on PostgreSQL the writes held back go in the
    /// same statement as the read, one round trip for both.
    pub(crate) async fn fetch_own_rows<T>(
        &mut self,
        rows: Vec<Vec<Param>>,
        statement: impl Fn(&str) -> String,
        map: impl Fn(&dyn Cells) -> Result<T, Error>,
    ) -> Result<Vec<T>, Error> {
        self.read_rows(rows, statement, map, true).await
    }

    async fn read_rows<T>(
        &mut self,
        rows: Vec<Vec<Param>>,
        statement: impl Fn(&str) -> String,
        map: impl Fn(&dyn Cells) -> Result<T, Error>,
        beside_held_writes: bool,
    ) -> Result<Vec<T>, Error> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        if let Open::Postgres(tx, held) = &mut self.open {
            if !beside_held_writes {
                send_held(tx, held).await?;
            }
            let (sql, arrays) = held.take_with(statement, column_arrays(rows));
            let found = fetch_arrays(&mut **tx, &sql, arrays).await?;
            return found.iter().map(|row| map(row as &dyn Cells)).collect();
        }
        let mut found = Vec::new();
        for (sql, params) in values_statements(rows, statement) {
            found.extend(self.fetch(&sql, &params, &map).await?);
        }
        Ok(found)
    }

    /// Runs `then` once the transaction has committed; never if it does not.
    pub(crate) fn after_commit(&mut self, then: impl FnOnce() + Send + 'static) {
        self.after_commit.push(Box::new(then));
    }

    pub(crate) async fn commit(self) -> Result<(), Error> {
        match self.open {
            Open::Sqlite(tx) => tx.commit().await?,
            Open::Postgres(mut tx, mut held) => {
                send_held(&mut tx, &mut held).await?;
                tx.commit().await?
            }
        }
        for then in self.after_commit {
            then();
        }
        Ok(())
    }
}

/// A PostgreSQL transaction's `BEGIN`, sent in one round trip with `and_then` (constant
/// statements, each ending in `;`, their results unread).
///
/// Its statements reach rows by their keys, a batch's worth at a time, and are planned
/// once per connection for that: index scans joined by nested loops. Left to itself the
/// planner chose from the tables' size when a plan was made, and plans kept from the
/// first batches, while the tables were nearly empty, scanned them whole once they had
/// grown; planning every execution instead cost PostgreSQL a fifth of its time in the
/// views' statements (docs/adr/15-held-writes.md).
fn begin_sql(and_then: &str) -> String {
    format!("BEGIN; {} {and_then}", keyed_plans("SET LOCAL"))
}

/// The planner settings of the batched statements, each after `set` (`SET` for a
/// session, `SET LOCAL` for a transaction): see [`begin_sql`].
fn keyed_plans(set: &str) -> String {
    [
        "plan_cache_mode = force_generic_plan",
        "enable_seqscan = off",
        "enable_hashjoin = off",
        "enable_mergejoin = off",
    ]
    .iter()
    .map(|setting| format!("{set} {setting};"))
    .collect::<Vec<_>>()
    .join(" ")
}

/// Writes of many rows that each stand alone: one statement, committed by itself. On
/// PostgreSQL that is one round trip on a connection of their own, whose session plans
/// as a view's transaction does; a transaction around the statement took three (`BEGIN`,
/// the statement, `COMMIT`), each a wait on a busy machine (docs/performance.md, "Lone
/// writes"). On SQLite it is a transaction on the writing connection, as the rows may
/// take several statements there. Reads by many keys outside any view's transaction go
/// here too ([`LoneWrites::fetch_keyed`]). Cheap to clone; the connection is made when
/// first used.
#[derive(Clone, Debug)]
pub(crate) struct LoneWrites {
    database: Database,
    postgres: Option<PgPool>,
}

/// When a [`LoneWrites`] commit is acknowledged on PostgreSQL. SQLite acknowledges every
/// commit once it is in its log file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Acknowledged {
    /// Once it is flushed to disk, as every other commit of the server.
    Flushed,
    /// Before its flush (`synchronous_commit = off`), which the next flushed commit, or
    /// PostgreSQL's WAL writer within a moment, makes: a crash of PostgreSQL in that
    /// moment loses the commit. For the email sender's claims, records and hand-backs
    /// alone, whose loss only has an email tried again (docs/adr/18-sender-records-unflushed.md).
    BeforeFlush,
}

impl LoneWrites {
    /// Call inside a Tokio runtime.
    pub(crate) fn new(database: Database, acknowledged: Acknowledged) -> Self {
        let mut session = keyed_plans("SET");
        if acknowledged == Acknowledged::BeforeFlush {
            session.push_str(" SET synchronous_commit = off;");
        }
        let postgres = match database.pool() {
            Pool::Postgres(pool) => Some(
                access_store::postgres_pool_options()
                    .max_connections(1)
                    .after_connect(move |connection, _| {
                        let session = session.clone();
                        Box::pin(async move {
                            sqlx::Executor::execute(connection, &*session).await?;
                            Ok(())
                        })
                    })
                    .connect_lazy_with((*pool.connect_options()).clone()),
            ),
            Pool::Sqlite(_) => None,
        };
        LoneWrites { database, postgres }
    }

    /// `statement(rows)`, as [`Tx::fetch_rows`] writes it, committed on its own: the rows
    /// it returns, each mapped by `map`.
    pub(crate) async fn fetch_rows<T>(
        &self,
        rows: Vec<Vec<Param>>,
        statement: impl Fn(&str) -> String,
        map: impl Fn(&dyn Cells) -> Result<T, Error>,
    ) -> Result<Vec<T>, Error> {
        self.run(rows, statement, map, OnSqlite::Write).await
    }

    /// A read by many keys, `statement(rows)` as [`Tx::fetch_rows`] writes it. On
    /// PostgreSQL it runs on this connection, planned by key as a view's statements are:
    /// on a pool connection its plan, made once while the table was nearly empty, scanned
    /// the whole table ever after (docs/performance.md, "Addresses read by key"). On
    /// SQLite it is a plain read, outside the writing connection.
    pub(crate) async fn fetch_keyed<T>(
        &self,
        rows: Vec<Vec<Param>>,
        statement: impl Fn(&str) -> String,
        map: impl Fn(&dyn Cells) -> Result<T, Error>,
    ) -> Result<Vec<T>, Error> {
        self.run(rows, statement, map, OnSqlite::Read).await
    }

    async fn run<T>(
        &self,
        rows: Vec<Vec<Param>>,
        statement: impl Fn(&str) -> String,
        map: impl Fn(&dyn Cells) -> Result<T, Error>,
        on_sqlite: OnSqlite,
    ) -> Result<Vec<T>, Error> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        if let Some(pool) = &self.postgres {
            return fetch_unnested(pool, rows, statement, map).await;
        }
        match on_sqlite {
            OnSqlite::Write => {
                let mut tx = Tx::begin(&self.database).await?;
                let found = tx.fetch_rows(rows, statement, map).await?;
                tx.commit().await?;
                Ok(found)
            }
            OnSqlite::Read => {
                let mut found = Vec::new();
                for (sql, params) in values_statements(rows, statement) {
                    found.extend(fetch(&self.database, &sql, &params, &map).await?);
                }
                Ok(found)
            }
        }
    }

    /// [`LoneWrites::fetch_rows`] for a write that returns nothing.
    pub(crate) async fn execute_rows(
        &self,
        rows: Vec<Vec<Param>>,
        statement: impl Fn(&str) -> String,
    ) -> Result<(), Error> {
        self.fetch_rows(rows, statement, |_| Ok(())).await.map(drop)
    }
}

/// How [`LoneWrites`] runs a statement on SQLite: a write takes the writing connection,
/// a read does not.
enum OnSqlite {
    Write,
    Read,
}

/// An identifier read back from a view, parsed into its domain type.
pub(crate) fn parse_id<T: std::str::FromStr>(
    text: &str,
    table: &'static str,
    column: &'static str,
) -> Result<T, Error> {
    text.parse().map_err(|_| Error::Corrupt { table, column })
}

#[cfg(test)]
mod tests {
    use super::{
        column_arrays, placeholder_rows, row_chunks, unnest_source, Acknowledged, ColumnArray,
        HeldWrites, LoneWrites, Param, HELD_ROWS, PARAMETERS_PER_STATEMENT,
    };
    use access_store::testing::fresh_databases;
    use access_store::Database;

    /// `synchronous_commit` as the lone writes' own connection has it.
    async fn synchronous_commit(writes: &LoneWrites) -> Vec<String> {
        writes
            .fetch_keyed(
                vec![vec![Param::from(1)]],
                |rows| format!("SELECT current_setting('synchronous_commit') FROM ({rows}) AS one"),
                |row| row.text(0),
            )
            .await
            .expect("the setting is read")
    }

    #[tokio::test]
    async fn only_lone_writes_acknowledged_before_their_flush_commit_without_waiting_for_it() {
        for test_database in fresh_databases().await {
            if test_database.label != "postgres" {
                continue;
            }
            let database = Database::connect(&test_database.url)
                .await
                .expect("the test database is reached");
            let flushed = LoneWrites::new(database.clone(), Acknowledged::Flushed);
            let before_flush = LoneWrites::new(database, Acknowledged::BeforeFlush);
            assert_eq!(synchronous_commit(&flushed).await, ["on"]);
            assert_eq!(synchronous_commit(&before_flush).await, ["off"]);
        }
    }

    #[test]
    fn many_rows_become_one_typed_array_per_column_for_postgresql() {
        let rows = vec![
            vec![Param::from(1), Param::from("a"), Param::from(None::<&str>)],
            vec![
                Param::from(2),
                Param::from(None::<&str>),
                Param::from(None::<&str>),
            ],
        ];
        let arrays = column_arrays(rows);
        assert_eq!(
            unnest_source(1, &arrays),
            "SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[])"
        );
        assert!(matches!(&arrays[..], [
            ColumnArray::Int(numbers),
            ColumnArray::Text(texts),
            ColumnArray::Text(nulls),
        ] if numbers == &[Some(1), Some(2)]
            && texts == &[Some("a".to_owned()), None]
            && nulls == &[None, None]));
    }

    #[test]
    fn held_writes_go_as_one_statement_numbering_each_ones_arrays_after_the_last() {
        let mut held = HeldWrites::default();
        assert!(held.take().is_none());
        held.0.push((
            format!("INSERT INTO a (x, y) {HELD_ROWS}"),
            column_arrays(vec![vec![Param::from(1), Param::from("one")]]),
        ));
        held.0.push((
            format!("DELETE FROM b WHERE (z) IN ({HELD_ROWS})"),
            column_arrays(vec![vec![Param::from("two")]]),
        ));
        let (sql, arrays) = held.take().expect("two writes held");
        assert_eq!(
            sql,
            "WITH w0 AS (INSERT INTO a (x, y) SELECT * FROM UNNEST($1::bigint[], $2::text[])), \
             w1 AS (DELETE FROM b WHERE (z) IN (SELECT * FROM UNNEST($3::text[]))) SELECT 1"
        );
        assert_eq!(arrays.len(), 3);
        assert!(held.take().is_none(), "taken once");

        held.0.push((
            format!("INSERT INTO a (x, y) {HELD_ROWS}"),
            column_arrays(vec![vec![Param::from(1), Param::from("one")]]),
        ));
        let (alone, _) = held.take().expect("one write held");
        assert_eq!(
            alone,
            "INSERT INTO a (x, y) SELECT * FROM UNNEST($1::bigint[], $2::text[])"
        );
    }

    #[test]
    fn a_read_goes_after_the_held_writes_in_their_statement_numbering_its_arrays_last() {
        let mut held = HeldWrites::default();
        let read = |rows: &str| format!("SELECT x FROM c WHERE x IN ({rows})");
        let (alone, _) = held.take_with(read, column_arrays(vec![vec![Param::from(7)]]));
        assert_eq!(
            alone,
            "SELECT x FROM c WHERE x IN (SELECT * FROM UNNEST($1::bigint[]))"
        );
        held.0.push((
            format!("INSERT INTO a (x, y) {HELD_ROWS}"),
            column_arrays(vec![vec![Param::from(1), Param::from("one")]]),
        ));
        let (sql, arrays) = held.take_with(read, column_arrays(vec![vec![Param::from(7)]]));
        assert_eq!(
            sql,
            "WITH w0 AS (INSERT INTO a (x, y) SELECT * FROM UNNEST($1::bigint[], $2::text[])) \
             SELECT * FROM (SELECT x FROM c WHERE x IN (SELECT * FROM UNNEST($3::bigint[]))) AS read"
        );
        assert_eq!(arrays.len(), 3);
        assert!(held.take().is_none(), "the writes went with the read");
    }

    #[test]
    fn placeholders_number_the_values_row_after_row() {
        assert_eq!(placeholder_rows(2, 3), "(?1, ?2, ?3), (?4, ?5, ?6)");
        assert_eq!(placeholder_rows(2, 1), "(?1), (?2)");
    }

    #[test]
    fn rows_are_cut_into_statements_within_the_parameter_limit_keeping_their_order() {
        let per_statement = PARAMETERS_PER_STATEMENT / 2;
        let rows = (0..per_statement as i64 + 1)
            .map(|row| vec![Param::from(row), Param::from(-row)])
            .collect();
        let chunks = row_chunks(rows);
        assert_eq!(chunks.len(), 2);
        assert_eq!(chunks[0].1.len(), PARAMETERS_PER_STATEMENT);
        assert_eq!(chunks[1].0, "(?1, ?2)");
        assert!(
            matches!(chunks[1].1[..], [Param::Int(last), Param::Int(negated)]
            if last == per_statement as i64 && negated == -last)
        );
    }
}
