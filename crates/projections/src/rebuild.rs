//! Rebuilding a view from position 0 into fresh tables, swapped in at the end in one
//! transaction, while the live tables keep serving (and a running projector keeps
//! updating them) until that moment.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use access_store::Database;
use futures_util::{StreamExt, TryStreamExt};
use tokio::sync::mpsc;

use crate::error::Error;
use crate::events::{read_batch, Batch};
use crate::sql::{params, Tx};
use crate::view::{apply_batch, ensure_checkpoint, lock_checkpoint, set_checkpoint, Target, View};

/// Fresh tables' indexes built at the same time, each in a transaction of its own: on
/// two cores, two gave the most (docs/performance.md, (e)).
const INDEX_BUILDS_AT_ONCE: usize = 2;

/// Batches read ahead of the slowest view's task at most.
const BATCHES_AHEAD: usize = 2;

/// Where a rebuild stands, after each batch.
#[derive(Clone, Copy, Debug)]
pub struct RebuildProgress {
    pub position: i64,
    /// The head of the log when the rebuild started (or the position, when later).
    pub head: i64,
    pub events: u64,
}

/// What a finished rebuild did.
#[derive(Clone, Debug)]
pub struct Rebuilt {
    pub views: Vec<View>,
    /// The checkpoint the fresh tables were swapped in at.
    pub position: i64,
    pub events: u64,
    pub elapsed: Duration,
    /// Of `elapsed`: making the fresh tables and filling them from the log.
    pub filling: Duration,
    /// Of `elapsed`: building their deferred indexes.
    pub indexing: Duration,
}

impl Rebuilt {
    /// The rest of `elapsed`: the swap, with the events appended meanwhile.
    pub fn swapping(&self) -> Duration {
        self.elapsed.saturating_sub(self.filling + self.indexing)
    }

    pub fn events_per_second(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }
}

/// Rebuilds `views` from the whole log in one pass, `batch_size` events per transaction,
/// calling `progress` after each batch is read. Each batch is read once for all the
/// views and handed to each view's task, which writes it while the next ones are read
/// and decoded (at most [`BATCHES_AHEAD`] ahead of the slowest view).
///
/// The fresh tables are filled outside any lock; their transactions do not wait for the
/// disk on PostgreSQL (`synchronous_commit = off`): until the swap nothing reads them, and
/// a rebuild cut short by a crash starts over anyway. The swap then locks the views'
/// checkpoints (so no projector commits meanwhile), applies what was appended during the
/// rebuild, replaces the live tables and sets the checkpoints, all in one transaction
/// that waits for the disk: readers see the old tables until it commits and the new ones
/// after, and a running projector, finding its checkpoint moved, resumes from it.
/// Leftover fresh tables of an interrupted rebuild are dropped by the next one. Run one
/// rebuild of a view at a time.
///
/// # Errors
/// [`Error::NotRebuildable`] for a view outside [`View::REBUILDABLE`].
pub async fn rebuild(
    database: &Database,
    views: &[View],
    batch_size: i64,
    mut progress: impl FnMut(RebuildProgress),
) -> Result<Rebuilt, Error> {
    if let Some(&view) = views.iter().find(|view| !View::REBUILDABLE.contains(view)) {
        return Err(Error::NotRebuildable(view));
    }
    let started = Instant::now();
    let mut deferred_indexes = Vec::new();
    for &view in views {
        deferred_indexes.extend(create_fresh_tables(database, view).await?);
    }
    // Batches are read on connections apart from the ones that write (on SQLite, the
    // only one), and the last ones while the swap's transaction holds the checkpoints.
    let log = database.for_reads();
    let head = database.head_position().await?;
    // Each view is filled by a task of its own, in a transaction per batch: their tables
    // are apart, and on PostgreSQL each has a backend, so both the views' rows and their
    // statements are made on every core, and none waits for a slower one between batches.
    let (senders, fills): (Vec<_>, Vec<_>) = views
        .iter()
        .map(|&view| {
            let (sender, batches) = mpsc::channel(BATCHES_AHEAD);
            (sender, tokio::spawn(fill(database.clone(), view, batches)))
        })
        .unzip();
    let mut position = 0;
    let mut events = 0;
    'reading: loop {
        let batch = Arc::new(read_batch(&log, position, batch_size).await?);
        if batch.through == position {
            break;
        }
        for sender in &senders {
            if sender.send(batch.clone()).await.is_err() {
                // That view's task failed; its error is the rebuild's.
                break 'reading;
            }
        }
        position = batch.through;
        events += batch.events.len() as u64;
        progress(RebuildProgress {
            position,
            head: head.max(position),
            events,
        });
    }
    drop(senders);
    for filled in futures_util::future::join_all(fills).await {
        filled.unwrap_or_else(|failed| std::panic::resume_unwind(failed.into_panic()))?;
    }

    let filling = started.elapsed();
    // Building an index over the filled table once costs less than keeping it up to
    // date row by row.
    let builds = deferred_indexes.iter().map(|statement| async move {
        let mut tx = Tx::begin(database).await?;
        tx.execute(statement, params![]).await?;
        tx.commit().await
    });
    futures_util::stream::iter(builds)
        .buffer_unordered(INDEX_BUILDS_AT_ONCE)
        .try_collect::<Vec<()>>()
        .await?;

    let indexing = started.elapsed() - filling;
    for &view in views {
        ensure_checkpoint(database, view).await?;
    }
    let mut tx = Tx::begin(database).await?;
    for &view in views {
        lock_checkpoint(&mut tx, view).await?;
    }
    loop {
        let batch = read_batch(&log, position, batch_size).await?;
        if batch.through == position {
            break;
        }
        for &view in views {
            apply_batch(view, Target::Rebuild, &mut tx, &batch, None).await?;
        }
        position = batch.through;
        events += batch.events.len() as u64;
    }
    for &view in views {
        for &table in view.tables() {
            let fresh = Target::Rebuild.table(table);
            tx.execute(&format!("DROP TABLE {table}"), params![])
                .await?;
            tx.execute(&format!("ALTER TABLE {fresh} RENAME TO {table}"), params![])
                .await?;
        }
        set_checkpoint(&mut tx, view, position).await?;
    }
    tx.commit().await?;
    Ok(Rebuilt {
        views: views.to_vec(),
        position,
        events,
        elapsed: started.elapsed(),
        filling,
        indexing,
    })
}

/// Writes each batch `batches` hands over into `view`'s fresh tables, a transaction each.
/// They do not wait for the disk on PostgreSQL (see [`rebuild`]).
async fn fill(
    database: Database,
    view: View,
    mut batches: mpsc::Receiver<Arc<Batch>>,
) -> Result<(), Error> {
    while let Some(batch) = batches.recv().await {
        let mut tx = Tx::begin(&database).await?;
        if tx.is_postgres() {
            tx.execute("SET LOCAL synchronous_commit = off", params![])
                .await?;
        }
        apply_batch(view, Target::Rebuild, &mut tx, &batch, None).await?;
        tx.commit().await?;
    }
    Ok(())
}

/// Empty tables shaped like the live ones, copied from the database's catalog so that the
/// migrations stay the only definition of the views. Unique indexes (primary keys
/// included) are made at once, as writing the view relies on them; the statements that
/// make the others are answered, to be run once the tables are filled.
async fn create_fresh_tables(database: &Database, view: View) -> Result<Vec<String>, Error> {
    let mut deferred = Vec::new();
    let mut tx = Tx::begin(database).await?;
    // Index names are global and survive a table's renaming; a suffix unique to this
    // rebuild keeps the fresh ones clear of the live ones (named by an earlier rebuild).
    let generation = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_micros());
    for &table in view.tables() {
        let fresh = Target::Rebuild.table(table);
        tx.execute(&format!("DROP TABLE IF EXISTS {fresh}"), params![])
            .await?;
        if tx.is_postgres() {
            // PostgreSQL names the copied indexes itself, avoiding names in use.
            tx.execute(
                &format!("CREATE TABLE {fresh} (LIKE {table} INCLUDING ALL)"),
                params![],
            )
            .await?;
            let secondary = tx
                .fetch(
                    "SELECT i.indexname, i.indexdef FROM pg_indexes i \
                       JOIN pg_class c ON c.relname = i.indexname \
                       JOIN pg_index x ON x.indexrelid = c.oid \
                      WHERE i.schemaname = current_schema() AND i.tablename = $1 \
                        AND NOT x.indisunique",
                    params![fresh.as_ref()],
                    |row| Ok((row.text(0)?, row.text(1)?)),
                )
                .await?;
            for (name, definition) in secondary {
                tx.execute(&format!("DROP INDEX {name}"), params![]).await?;
                deferred.push(definition);
            }
            continue;
        }
        let definitions = tx
            .fetch(
                "SELECT type, name, sql FROM sqlite_master \
                  WHERE tbl_name = $1 AND sql IS NOT NULL ORDER BY type = 'index', name",
                params![table],
                |row| Ok((row.text(0)?, row.text(1)?, row.text(2)?)),
            )
            .await?;
        for (kind, name, sql) in definitions {
            let statement =
                sqlite_copy(&kind, &name, &sql, &fresh, generation).ok_or(Error::Corrupt {
                    table,
                    column: "definition",
                })?;
            if statement.starts_with("CREATE INDEX") {
                deferred.push(statement);
            } else {
                tx.execute(&statement, params![]).await?;
            }
        }
    }
    tx.commit().await?;
    Ok(deferred)
}

/// The statement creating the counterpart of a table or index definition from
/// `sqlite_master` on the table `fresh`. SQLite keeps definitions as written (with the
/// table name quoted after a rename), so everything from the column list on is reused.
fn sqlite_copy(kind: &str, name: &str, sql: &str, fresh: &str, generation: u128) -> Option<String> {
    match kind {
        "table" => {
            let columns = sql.find('(')?;
            Some(format!("CREATE TABLE {fresh} {}", &sql[columns..]))
        }
        "index" => {
            let on = sql.find(" ON ")?;
            let columns = on + sql[on..].find('(')?;
            let unique = if sql.starts_with("CREATE UNIQUE") {
                "UNIQUE "
            } else {
                ""
            };
            let base = name.split("__").next().unwrap_or(name);
            Some(format!(
                "CREATE {unique}INDEX {base}__{generation} ON {fresh} {}",
                &sql[columns..]
            ))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::sqlite_copy;

    #[test]
    fn a_copied_index_keeps_its_columns_and_gets_a_name_of_this_generation() {
        let renamed = "CREATE INDEX view_grants_person__17 ON \"view_grants\" (person_id, role)";
        assert_eq!(
            sqlite_copy(
                "index",
                "view_grants_person__17",
                renamed,
                "view_grants_rebuild",
                42
            )
            .unwrap(),
            "CREATE INDEX view_grants_person__42 ON view_grants_rebuild (person_id, role)"
        );
    }

    #[test]
    fn a_copied_table_keeps_its_columns_and_options() {
        let table = "CREATE TABLE \"view_grants\" (a TEXT, PRIMARY KEY (a)) STRICT";
        assert_eq!(
            sqlite_copy("table", "view_grants", table, "view_grants_rebuild", 1).unwrap(),
            "CREATE TABLE view_grants_rebuild (a TEXT, PRIMARY KEY (a)) STRICT"
        );
    }
}
