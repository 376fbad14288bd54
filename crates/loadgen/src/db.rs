//! Fresh databases for each workload (a PostgreSQL database created on the
//! admin URL and dropped afterwards, or an SQLite file in a temporary
//! directory), and bulk inserts of synthesized events.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sqlx::{Connection, PgConnection};

use crate::history::{EventRow, AGGREGATE_TYPE};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Postgres,
    Sqlite,
}

#[derive(Debug)]
pub enum TestDatabase {
    Postgres {
        admin: String,
        name: String,
        url: String,
    },
    Sqlite {
        path: PathBuf,
        url: String,
    },
}

impl TestDatabase {
    pub async fn create(kind: Kind, admin: &str, dir: &Path, label: &str) -> Result<Self, String> {
        let unique = format!(
            "{}_{}_{}",
            label.replace('-', "_"),
            std::process::id(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        match kind {
            Kind::Postgres => {
                let name = format!("access_load_{unique}");
                let mut connection = PgConnection::connect(admin)
                    .await
                    .map_err(|error| format!("--postgres {admin}: {error}"))?;
                sqlx::query(&format!("CREATE DATABASE \"{name}\""))
                    .execute(&mut connection)
                    .await
                    .map_err(|error| format!("CREATE DATABASE {name}: {error}"))?;
                let _ = connection.close().await;
                Ok(TestDatabase::Postgres {
                    admin: admin.to_string(),
                    url: with_database_name(admin, &name),
                    name,
                })
            }
            Kind::Sqlite => {
                let path = dir.join(format!("{unique}.db"));
                Ok(TestDatabase::Sqlite {
                    url: format!("sqlite://{}", path.display()),
                    path,
                })
            }
        }
    }

    pub fn url(&self) -> &str {
        match self {
            TestDatabase::Postgres { url, .. } | TestDatabase::Sqlite { url, .. } => url,
        }
    }

    pub async fn drop_database(self) {
        match self {
            TestDatabase::Postgres { admin, name, .. } => {
                if let Ok(mut connection) = PgConnection::connect(&admin).await {
                    if let Err(error) =
                        sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                            .execute(&mut connection)
                            .await
                    {
                        eprintln!("warning: could not drop database {name}: {error}");
                    }
                    let _ = connection.close().await;
                }
            }
            TestDatabase::Sqlite { path, .. } => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            }
        }
    }
}

/// `postgres://user@host:port/NAME?params` with the database name replaced.
pub fn with_database_name(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |index| index + 3);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}

/// Inserts rows into PostgreSQL's `events` in one statement per call (the
/// table's trigger assigns positions in row order), in one transaction.
///
/// postgres-es binds payload and metadata as sqlx's `serde_json::Value`, which
/// travels as `jsonb`; stored in the `json` columns it reads back in jsonb's
/// canonical text (keys by length then bytes, `": "`, `", "`). The rows here go
/// through the same `::jsonb::json` casts, so they are stored byte for byte alike.
pub async fn insert_postgres(
    connection: &mut PgConnection,
    rows: &[EventRow],
) -> Result<(), String> {
    let mut ids = Vec::with_capacity(rows.len());
    let mut sequences = Vec::with_capacity(rows.len());
    let mut types = Vec::with_capacity(rows.len());
    let mut versions = Vec::with_capacity(rows.len());
    let mut payloads = Vec::with_capacity(rows.len());
    let mut metadata = Vec::with_capacity(rows.len());
    for row in rows {
        ids.push(row.aggregate_id.as_str());
        sequences.push(row.sequence);
        types.push(row.event_type.as_str());
        versions.push(row.event_version.as_str());
        payloads.push(row.payload.as_str());
        metadata.push(row.metadata.as_str());
    }
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         SELECT $1, u.id, u.seq, u.typ, u.ver, u.payload::jsonb::json, u.meta::jsonb::json
           FROM UNNEST($2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[])
                WITH ORDINALITY AS u(id, seq, typ, ver, payload, meta, n)
          ORDER BY u.n",
    )
    .bind(AGGREGATE_TYPE)
    .bind(&ids)
    .bind(&sequences)
    .bind(&types)
    .bind(&versions)
    .bind(&payloads)
    .bind(&metadata)
    .execute(&mut *connection)
    .await
    .map_err(|error| format!("inserting {} events: {error}", rows.len()))?;
    Ok(())
}

/// Feeds every batch of `next` into the database at `url`; answers how many
/// rows and how long it took.
pub async fn bulk_insert(
    url: &str,
    mut next: impl FnMut() -> Vec<EventRow>,
    mut progress: impl FnMut(usize),
) -> Result<(usize, Duration), String> {
    let started = Instant::now();
    let mut connection = PgConnection::connect(url)
        .await
        .map_err(|error| format!("{url}: {error}"))?;
    let mut inserted = 0;
    loop {
        let rows = next();
        if rows.is_empty() {
            break;
        }
        insert_postgres(&mut connection, &rows).await?;
        inserted += rows.len();
        progress(inserted);
    }
    let _ = connection.close().await;
    Ok((inserted, started.elapsed()))
}

/// `texts` as the `events` table would store them after [`insert_postgres`]'s casts.
pub async fn stored_form(url: &str, texts: &[String]) -> Result<Vec<String>, String> {
    let mut connection = PgConnection::connect(url)
        .await
        .map_err(|error| format!("{url}: {error}"))?;
    let stored: Vec<String> = sqlx::query_scalar(
        "SELECT u.x::jsonb::json::text FROM UNNEST($1::text[]) WITH ORDINALITY AS u(x, n) ORDER BY u.n",
    )
    .bind(texts)
    .fetch_all(&mut connection)
    .await
    .map_err(|error| error.to_string())?;
    let _ = connection.close().await;
    Ok(stored)
}

/// The rows a real command wrote, to check the synthesized ones against.
pub async fn sample_rows(url: &str, aggregate_id: &str) -> Result<Vec<EventRow>, String> {
    let mut connection = PgConnection::connect(url)
        .await
        .map_err(|error| format!("{url}: {error}"))?;
    let rows: Vec<(String, i64, String, String, String, String)> = sqlx::query_as(
        "SELECT aggregate_id, sequence, event_type, event_version, payload::text, metadata::text
           FROM events WHERE aggregate_id = $1 ORDER BY sequence",
    )
    .bind(aggregate_id)
    .fetch_all(&mut connection)
    .await
    .map_err(|error| error.to_string())?;
    let _ = connection.close().await;
    Ok(rows
        .into_iter()
        .map(
            |(aggregate_id, sequence, event_type, event_version, payload, metadata)| EventRow {
                aggregate_id,
                sequence,
                event_type,
                event_version,
                payload,
                metadata,
            },
        )
        .collect())
}

/// Whether the PostgreSQL server vacuums its tables by itself. Some test machines run
/// it with `autovacuum = off`; a soak there measures dead rows piling up, which no
/// production server with the default settings has.
pub async fn autovacuum_is_on(url: &str) -> Result<bool, String> {
    let mut connection = PgConnection::connect(url)
        .await
        .map_err(|error| format!("{url}: {error}"))?;
    let setting: String = sqlx::query_scalar("SHOW autovacuum")
        .fetch_one(&mut connection)
        .await
        .map_err(|error| error.to_string())?;
    let _ = connection.close().await;
    Ok(setting == "on")
}

/// The WAL records and bytes the PostgreSQL server has written since its statistics were
/// last reset, all databases together: read before and after a workload, the difference
/// counts the work its commands gave PostgreSQL (every row and index entry written is a
/// record), a figure that does not move with the machine's noise as a rate does.
pub async fn wal_written(url: &str) -> Result<(i64, i64), String> {
    let mut connection = PgConnection::connect(url)
        .await
        .map_err(|error| format!("{url}: {error}"))?;
    let written: (i64, i64) =
        sqlx::query_as("SELECT wal_records::bigint, wal_bytes::bigint FROM pg_stat_wal")
            .fetch_one(&mut connection)
            .await
            .map_err(|error| error.to_string())?;
    let _ = connection.close().await;
    Ok(written)
}

/// `VACUUM (ANALYZE)` of the whole database, as autovacuum would do over time: it takes
/// no lock that writers wait for. Answers how long it took.
pub async fn vacuum(url: &str) -> Result<Duration, String> {
    let started = Instant::now();
    let mut connection = PgConnection::connect(url)
        .await
        .map_err(|error| format!("{url}: {error}"))?;
    sqlx::query("VACUUM (ANALYZE)")
        .execute(&mut connection)
        .await
        .map_err(|error| error.to_string())?;
    let _ = connection.close().await;
    Ok(started.elapsed())
}

/// The event the aggregate's snapshot was taken at and the size of its JSON, if one is kept.
pub async fn snapshot_of(url: &str, aggregate_id: &str) -> Result<Option<(i64, i64)>, String> {
    let mut connection = PgConnection::connect(url)
        .await
        .map_err(|error| format!("{url}: {error}"))?;
    let kept: Option<(i64, i64)> = sqlx::query_as(
        "SELECT sequence, octet_length(state)::bigint FROM aggregate_snapshots WHERE aggregate_id = $1",
    )
    .bind(aggregate_id)
    .fetch_optional(&mut connection)
    .await
    .map_err(|error| error.to_string())?;
    let _ = connection.close().await;
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_database_name() {
        assert_eq!(
            with_database_name("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database_name("postgres://u:p@h/db?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(
            with_database_name("postgres://h:5432", "x"),
            "postgres://h:5432/x"
        );
    }
}
