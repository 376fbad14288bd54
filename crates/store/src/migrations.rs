//! The schema, compiled into the binary so that `cargo run` needs no migration files at
//! run time, and applied through sqlx's own migrator (checksums, `_sqlx_migrations`,
//! PostgreSQL advisory lock) without pulling in the `migrate!` macro.
//!
//! Both folders share one version space and one `_sqlx_migrations` table: the event
//! store from 1, the projections' view tables (`projections/<db>/`) from 1001. They
//! must be listed in one migrator, because sqlx refuses to run when the table holds a
//! version its migrator does not know.

use std::borrow::Cow;

use sqlx::migrate::{Migration, MigrationType, Migrator};

struct MigrationFile {
    version: i64,
    description: &'static str,
    sql: &'static str,
}

/// Versions and descriptions follow sqlx's `<VERSION>_<DESCRIPTION>.sql` file naming, so
/// `sqlx migrate info` run on the folders agrees with what the server records.
const SQLITE: &[MigrationFile] = &[
    MigrationFile {
        version: 1,
        description: "event store",
        sql: include_str!("../../../event-store/sqlite/0001_event_store.sql"),
    },
    MigrationFile {
        version: 2,
        description: "idempotency keys",
        sql: include_str!("../../../event-store/sqlite/0002_idempotency_keys.sql"),
    },
    MigrationFile {
        version: 3,
        description: "events by request",
        sql: include_str!("../../../event-store/sqlite/0003_events_by_request.sql"),
    },
    MigrationFile {
        version: 4,
        description: "server secrets",
        sql: include_str!("../../../event-store/sqlite/0004_server_secrets.sql"),
    },
    MigrationFile {
        version: 5,
        description: "aggregate snapshots",
        sql: include_str!("../../../event-store/sqlite/0005_aggregate_snapshots.sql"),
    },
    MigrationFile {
        version: 1001,
        description: "views",
        sql: include_str!("../../../projections/sqlite/1001_views.sql"),
    },
    MigrationFile {
        version: 1002,
        description: "notifications",
        sql: include_str!("../../../projections/sqlite/1002_notifications.sql"),
    },
    MigrationFile {
        version: 1003,
        description: "outbox due",
        sql: include_str!("../../../projections/sqlite/1003_outbox_due.sql"),
    },
    MigrationFile {
        version: 1004,
        description: "outbox undelivered",
        sql: include_str!("../../../projections/sqlite/1004_outbox_undelivered.sql"),
    },
    MigrationFile {
        version: 1005,
        description: "audit log from events",
        sql: include_str!("../../../projections/sqlite/1005_audit_log_from_events.sql"),
    },
    MigrationFile {
        version: 1006,
        description: "notifications keyed by person",
        sql: include_str!("../../../projections/sqlite/1006_notifications_keyed_by_person.sql"),
    },
];

const POSTGRES: &[MigrationFile] = &[
    MigrationFile {
        version: 1,
        description: "event store",
        sql: include_str!("../../../event-store/postgres/0001_event_store.sql"),
    },
    MigrationFile {
        version: 2,
        description: "idempotency keys",
        sql: include_str!("../../../event-store/postgres/0002_idempotency_keys.sql"),
    },
    MigrationFile {
        version: 3,
        description: "events by request",
        sql: include_str!("../../../event-store/postgres/0003_events_by_request.sql"),
    },
    MigrationFile {
        version: 4,
        description: "server secrets",
        sql: include_str!("../../../event-store/postgres/0004_server_secrets.sql"),
    },
    MigrationFile {
        version: 5,
        description: "aggregate snapshots",
        sql: include_str!("../../../event-store/postgres/0005_aggregate_snapshots.sql"),
    },
    MigrationFile {
        version: 6,
        description: "positions per statement",
        sql: include_str!("../../../event-store/postgres/0006_positions_per_statement.sql"),
    },
    MigrationFile {
        version: 1001,
        description: "views",
        sql: include_str!("../../../projections/postgres/1001_views.sql"),
    },
    MigrationFile {
        version: 1002,
        description: "notifications",
        sql: include_str!("../../../projections/postgres/1002_notifications.sql"),
    },
    MigrationFile {
        version: 1003,
        description: "outbox due",
        sql: include_str!("../../../projections/postgres/1003_outbox_due.sql"),
    },
    MigrationFile {
        version: 1004,
        description: "outbox undelivered",
        sql: include_str!("../../../projections/postgres/1004_outbox_undelivered.sql"),
    },
    MigrationFile {
        version: 1005,
        description: "audit log from events",
        sql: include_str!("../../../projections/postgres/1005_audit_log_from_events.sql"),
    },
    MigrationFile {
        version: 1006,
        description: "notifications keyed by person",
        sql: include_str!("../../../projections/postgres/1006_notifications_keyed_by_person.sql"),
    },
];

pub(crate) fn sqlite() -> Migrator {
    migrator(SQLITE, i64::MAX)
}

pub(crate) fn postgres() -> Migrator {
    migrator(POSTGRES, i64::MAX)
}

/// The migrations up to `version`, as a server of that version applied them.
#[cfg(feature = "test-support")]
pub(crate) fn sqlite_until(version: i64) -> Migrator {
    migrator(SQLITE, version)
}

#[cfg(feature = "test-support")]
pub(crate) fn postgres_until(version: i64) -> Migrator {
    migrator(POSTGRES, version)
}

fn migrator(files: &'static [MigrationFile], until: i64) -> Migrator {
    let migrations = files
        .iter()
        .filter(|file| file.version <= until)
        .map(|file| {
            Migration::new(
                file.version,
                Cow::Borrowed(file.description),
                MigrationType::Simple,
                Cow::Borrowed(file.sql),
                false,
            )
        })
        .collect::<Vec<_>>();
    // The fields are public (for `migrate!`) but hidden from sqlx's docs and exempt from
    // its semver promise: pin sqlx's minor version when upgrading.
    Migrator {
        migrations: Cow::Owned(migrations),
        // An unknown version in `_sqlx_migrations` means a newer server migrated this
        // database; refuse rather than run old code on a newer schema.
        ignore_missing: false,
        // On PostgreSQL: a session advisory lock, so two servers starting at once take
        // turns. SQLite ignores it; `Database::connect` serializes there instead.
        locking: true,
        no_tx: false,
    }
}
