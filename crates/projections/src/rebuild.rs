//! Rebuilding a view from position 0 into fresh tables, swapped in at the end in one
//! transaction, while the live tables keep serving (and a running projector keeps
//! updating them) until that moment.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use access_store::Database;

use crate::error::Error;
use crate::events::read_batch;
use crate::sql::{params, Tx};
use crate::view::{apply_batch, ensure_checkpoint, lock_checkpoint, set_checkpoint, Target, View};

/// Where a rebuild stands, after each batch.
#[derive(Clone, Copy, Debug)]
pub struct RebuildProgress {
    pub view: View,
    pub position: i64,
    /// The head of the log when the rebuild started (or the position, when later).
    pub head: i64,
    pub events: u64,
}

/// What a finished rebuild did.
#[derive(Clone, Copy, Debug)]
pub struct Rebuilt {
    pub view: View,
    /// The checkpoint the fresh tables were swapped in at.
    pub position: i64,
    pub events: u64,
    pub elapsed: Duration,
}

impl Rebuilt {
    pub fn events_per_second(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }
}

/// Rebuilds `view` from the whole log, `batch_size` events per transaction, calling
/// `progress` after each batch.
///
/// The fresh tables are filled outside any lock. The swap then locks the view's
/// checkpoint (so no projector commits meanwhile), applies what was appended during the
/// rebuild, replaces the live tables and sets the checkpoint, all in one transaction:
/// readers see the old tables until it commits and the new ones after, and a running
/// projector, finding the checkpoint moved, resumes from it. Leftover fresh tables of an
/// interrupted rebuild are dropped by the next one. Run one rebuild of a view at a time.
///
/// # Errors
/// [`Error::NotRebuildable`] for a view outside [`View::REBUILDABLE`].
pub async fn rebuild(
    database: &Database,
    view: View,
    batch_size: i64,
    mut progress: impl FnMut(RebuildProgress),
) -> Result<Rebuilt, Error> {
    if !View::REBUILDABLE.contains(&view) {
        return Err(Error::NotRebuildable(view));
    }
    let started = Instant::now();
    create_fresh_tables(database, view).await?;
    let head = database.head_position().await?;
    let mut position = 0;
    let mut events = 0;
    loop {
        let batch = read_batch(database, position, batch_size).await?;
        if batch.through == position {
            break;
        }
        let mut tx = Tx::begin(database).await?;
        apply_batch(view, Target::Rebuild, &mut tx, &batch, None).await?;
        tx.commit().await?;
        position = batch.through;
        events += batch.events.len() as u64;
        progress(RebuildProgress {
            view,
            position,
            head: head.max(position),
            events,
        });
    }

    ensure_checkpoint(database, view).await?;
    let mut tx = Tx::begin(database).await?;
    lock_checkpoint(&mut tx, view).await?;
    loop {
        let batch = read_batch(database, position, batch_size).await?;
        if batch.through == position {
            break;
        }
        apply_batch(view, Target::Rebuild, &mut tx, &batch, None).await?;
        position = batch.through;
        events += batch.events.len() as u64;
    }
    for &table in view.tables() {
        let fresh = Target::Rebuild.table(table);
        tx.execute(&format!("DROP TABLE {table}"), params![])
            .await?;
        tx.execute(&format!("ALTER TABLE {fresh} RENAME TO {table}"), params![])
            .await?;
    }
    set_checkpoint(&mut tx, view, position).await?;
    tx.commit().await?;
    Ok(Rebuilt {
        view,
        position,
        events,
        elapsed: started.elapsed(),
    })
}

/// Empty tables shaped like the live ones, indexes included, copied from the database's
/// catalog so that the migrations stay the only definition of the views.
async fn create_fresh_tables(database: &Database, view: View) -> Result<(), Error> {
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
            tx.execute(&statement, params![]).await?;
        }
    }
    tx.commit().await
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
