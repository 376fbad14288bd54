//! What the migrations after a release do to the rows a server of that release left.

use access_projections::{AuditFilter, Views};
use access_store::testing::fresh_databases;
use access_store::Database;
use chrono::{DateTime, TimeZone, Utc};
use sqlx::{Connection, Executor, PgConnection, SqliteConnection};

use crate::common::{organization, person, ORGANIZATIONS};

/// The last migration before the audit log moved to the events table (1005) and the
/// notifications were keyed by person (1006).
const BEFORE: i64 = 1004;

/// An approval as the aggregate serializes it, its time with three fractional digits.
const APPROVAL: &str = r#"{"RoleRequestApproved":{"request_id":"6f0c2b7e-8d2a-4c55-9a4e-0d2f1c3b5a69","person":"bob","approver":"alice","at":"2024-05-01T09:00:00.120Z"}}"#;

/// The approval stored by a server at [`BEFORE`], `payload` the SQL of its JSON, with
/// Bob's notification of it, read.
fn rows(payload: &str) -> String {
    let org = ORGANIZATIONS[0];
    format!(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, \
         payload, metadata) VALUES ('Organization', '{org}', 1, 'RoleRequestApproved', '1.0', \
         {payload}, '{{}}'); \
         INSERT INTO notifications (position, person_id, organization_id, kind, message, at, \
         read_at) SELECT position, 'bob', '{org}', 'REQUEST_APPROVED', 'Approved.', \
         '2024-05-01T09:00:00.120000000Z', '2024-05-02T10:00:00.000000000Z' FROM events"
    )
}

#[tokio::test]
async fn upgrading_keeps_every_notification_and_files_the_events_already_stored_for_the_auditors() {
    let at: DateTime<Utc> =
        Utc.with_ymd_and_hms(2024, 5, 1, 9, 0, 0).unwrap() + chrono::Duration::milliseconds(120);
    for db in fresh_databases().await {
        db.migrate_until(BEFORE).await;
        if db.label == "sqlite" {
            let mut connection = SqliteConnection::connect(&db.url).await.unwrap();
            let rows = rows(&format!("'{APPROVAL}'"));
            connection.execute(rows.as_str()).await.unwrap();
            connection.close().await.unwrap();
        } else {
            let mut connection = PgConnection::connect(&db.url).await.unwrap();
            let rows = rows(&format!("CAST('{APPROVAL}' AS json)"));
            connection.execute(rows.as_str()).await.unwrap();
            connection.close().await.unwrap();
        }

        let views = Views::new(Database::connect(&db.url).await.unwrap());
        let told = views.notifications(&person("bob"), false).await.unwrap();
        assert_eq!(told.len(), 1, "{}", db.label);
        assert!(told[0].read, "{}", db.label);
        for filter in [
            AuditFilter {
                person: Some(person("alice")),
                ..AuditFilter::default()
            },
            AuditFilter {
                person: Some(person("bob")),
                from: Some(at),
                to: Some(at),
                ..AuditFilter::default()
            },
            AuditFilter {
                organization: Some(organization(ORGANIZATIONS[0])),
                event_types: Some(vec!["RoleRequestApproved".into()]),
                ..AuditFilter::default()
            },
        ] {
            let page = views.audit_log(&filter, 10, None).await.unwrap();
            let found: Vec<i64> = page.edges.iter().map(|edge| edge.node.position).collect();
            assert_eq!(found, [told[0].position], "{}: {filter:?}", db.label);
        }
    }
}
