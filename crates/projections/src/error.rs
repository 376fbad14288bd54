use access_store::StoreError;

/// Why a projection, a read or a rebuild failed.
///
/// Messages never quote an event payload or a view row: they may hold personal data. They
/// name positions, event types, views and tables instead.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] StoreError),

    #[error("the views' database failed: {0}")]
    Sql(#[from] sqlx::Error),

    /// An event the current code cannot read: projecting stops there rather than skip it.
    #[error(
        "the event at position {position} ({event_type}) does not match the current event types"
    )]
    Undecodable { position: i64, event_type: String },

    /// A view row with a value the current code cannot read (an edited table, or a newer
    /// server's data): rebuilding the view cures it.
    #[error("{table} holds a {column} the current code cannot read; rebuild the view")]
    Corrupt {
        table: &'static str,
        column: &'static str,
    },

    /// The notifications view holds what people read and which emails went out, which no
    /// event records: a replay would lose the one and send the other again.
    #[error("the {0} view is not rebuilt from the events: it records what people read and which emails went out")]
    NotRebuildable(crate::View),

    /// A pagination cursor that this query never handed out.
    #[error("the cursor was not issued by this query")]
    InvalidCursor,

    /// The people directory's batch failed; the cause is logged once for the batch.
    #[error("the batch recording callers' names and emails failed")]
    DirectoryBatchFailed,

    /// The task that writes the people directory is gone (the process is stopping).
    #[error("the people directory's writer has stopped")]
    DirectoryStopped,

    #[error("writing the export failed: {0}")]
    Io(#[from] std::io::Error),

    /// The projector stopped at the test fail point, as if the process had died there.
    #[cfg(feature = "fail-points")]
    #[error("stopped at the fail point")]
    FailPoint,
}
