//! Aggregates' states as of one of their events (`aggregate_snapshots`), so that a load
//! reads one row and the events after it rather than the whole history. A cache of the
//! log, never the truth: see docs/adr/08-snapshots.md.

use crate::database::Database;
use crate::error::StoreError;

/// A state as it was kept: the sequence of the last event folded into it, and the JSON.
pub(crate) struct Snapshot {
    pub sequence: usize,
    pub state: String,
}

impl Database {
    /// The aggregate's snapshot, if one of `state_version` is kept.
    pub(crate) async fn snapshot_of(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        state_version: i32,
    ) -> Result<Option<Snapshot>, StoreError> {
        let row: Option<(i64, String)> = on_pool!(self, |pool| sqlx::query_as(
            "SELECT sequence, state FROM aggregate_snapshots \
             WHERE aggregate_type = $1 AND aggregate_id = $2 AND state_version = $3"
        )
        .bind(aggregate_type)
        .bind(aggregate_id)
        .bind(state_version)
        .fetch_optional(pool)
        .await)
        .map_err(|error| self.error("reading a snapshot", error))?;
        Ok(row.map(|(sequence, state)| Snapshot {
            sequence: sequence as usize,
            state,
        }))
    }

    /// Keeps `snapshot` unless a later one of the same layout is kept already (another
    /// process may have loaded the aggregate further meanwhile).
    pub(crate) async fn keep_snapshot(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        state_version: i32,
        snapshot: &Snapshot,
    ) -> Result<(), StoreError> {
        on_pool!(self, |pool| sqlx::query(
            "INSERT INTO aggregate_snapshots \
                 (aggregate_type, aggregate_id, state_version, sequence, state) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (aggregate_type, aggregate_id) DO UPDATE \
                 SET state_version = excluded.state_version, sequence = excluded.sequence, \
                     state = excluded.state \
                 WHERE aggregate_snapshots.state_version <> excluded.state_version \
                    OR aggregate_snapshots.sequence <= excluded.sequence"
        )
        .bind(aggregate_type)
        .bind(aggregate_id)
        .bind(state_version)
        .bind(snapshot.sequence as i64)
        .bind(&snapshot.state)
        .execute(pool)
        .await
        .map(drop))
        .map_err(|error| self.error("keeping a snapshot", error))
    }
}
