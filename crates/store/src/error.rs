use std::borrow::Cow;

/// Why the store could not do what was asked.
///
/// Messages are written for an operator reading a log or a start-up failure. They name
/// the database by [`Database::describe`](crate::Database::describe), never by its URL, so
/// a password cannot leak; and they never quote an event payload, which may hold personal
/// data.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// `DATABASE_URL` cannot be used as given; fixing the configuration is the only remedy.
    #[error(
        "DATABASE_URL {reason}; expected sqlite://PATH (e.g. sqlite://data/access.db) \
         or postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE"
    )]
    InvalidUrl { reason: Cow<'static, str> },

    /// The database could not be reached or is too busy right now; the same request may
    /// succeed later, so readiness probes report it and callers may retry.
    #[error("{database} is unavailable: {reason}")]
    Unavailable { database: String, reason: String },

    /// The database answered, but with an error that retrying will not cure (a failed
    /// migration, a permission problem, stored events the code can no longer read).
    #[error("{database}: {reason}")]
    Failed { database: String, reason: String },
}

impl StoreError {
    /// Whether the failure is transient, so that retrying later is sensible.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Unavailable { .. })
    }

    /// Whether `error`, or an error it wraps, says the database cannot be reached right
    /// now: for callers holding the store's errors as another layer boxed them
    /// (cqrs-es's `AggregateError`, the views' own queries).
    pub fn is_unavailable(error: &(dyn std::error::Error + 'static)) -> bool {
        if let Some(store) = error.downcast_ref::<StoreError>() {
            return store.is_retryable();
        }
        if let Some(sqlx) = error.downcast_ref::<sqlx::Error>() {
            return is_unavailable(sqlx);
        }
        error.source().is_some_and(Self::is_unavailable)
    }

    /// Sorts an sqlx error into retryable or not. `doing` completes "… failed while …"
    /// so that the message says what the store was trying to do.
    pub(crate) fn from_sqlx(database: String, doing: &str, error: sqlx::Error) -> Self {
        let reason = format!("{doing}: {error}");
        if is_unavailable(&error) {
            StoreError::Unavailable { database, reason }
        } else {
            StoreError::Failed { database, reason }
        }
    }
}

fn is_unavailable(error: &sqlx::Error) -> bool {
    match error {
        // A connection closed in the middle of the handshake (by a proxy or load balancer
        // with no database behind it) reads as a protocol error.
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            matches!(
                code.as_ref(),
                // SQLite: SQLITE_BUSY and SQLITE_LOCKED (and their extended codes) once
                // the busy timeout has run out.
                "5" | "6" | "261" | "262" | "517" | "773"
                // PostgreSQL: too many connections, shutting down, starting up.
                | "53300" | "57P01" | "57P02" | "57P03"
            ) || code.starts_with("08") // PostgreSQL connection exceptions
        }),
        _ => false,
    }
}
