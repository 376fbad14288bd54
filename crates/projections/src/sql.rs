//! One SQL text for both databases. Statements use `$N` placeholders (which sqlx's SQLite
//! driver accepts as well as PostgreSQL's), text and integer columns only, and times in
//! one fixed-width text form, so the per-event logic and the reads are written once.

use access_store::{Database, Pool};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sqlx::postgres::PgRow;
use sqlx::query::Query;
use sqlx::sqlite::SqliteRow;
use sqlx::{Encode, Postgres, Row, Sqlite, Transaction, Type};

use crate::error::Error;

/// One bound value.
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

/// A lone write statement: see [`fetch`].
pub(crate) async fn execute(database: &Database, sql: &str, params: &[Param]) -> Result<(), Error> {
    fetch(database, sql, params, |_| Ok(())).await.map(drop)
}

/// A write transaction on either database.
pub(crate) enum Tx {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

impl Tx {
    /// On SQLite the transaction takes the write lock at once: one that read first and
    /// wrote later could fail to upgrade ("database is locked") with no wait at all.
    pub(crate) async fn begin(database: &Database) -> Result<Tx, Error> {
        Ok(match database.pool() {
            Pool::Sqlite(pool) => Tx::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?),
            Pool::Postgres(pool) => Tx::Postgres(pool.begin().await?),
        })
    }

    pub(crate) fn is_postgres(&self) -> bool {
        matches!(self, Tx::Postgres(_))
    }

    pub(crate) async fn execute(&mut self, sql: &str, params: &[Param]) -> Result<(), Error> {
        match self {
            Tx::Sqlite(tx) => {
                bind(sqlx::query(sql), params).execute(&mut **tx).await?;
            }
            Tx::Postgres(tx) => {
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
        match self {
            Tx::Sqlite(tx) => rows!(&mut **tx, sql, params, map),
            Tx::Postgres(tx) => rows!(&mut **tx, sql, params, map),
        }
    }

    pub(crate) async fn commit(self) -> Result<(), Error> {
        match self {
            Tx::Sqlite(tx) => tx.commit().await?,
            Tx::Postgres(tx) => tx.commit().await?,
        }
        Ok(())
    }
}

/// An identifier read back from a view, parsed into its domain type.
pub(crate) fn parse_id<T: std::str::FromStr>(
    text: &str,
    table: &'static str,
    column: &'static str,
) -> Result<T, Error> {
    text.parse().map_err(|_| Error::Corrupt { table, column })
}
