use access_domain::roles::Role;
use access_domain::OrganizationCommand;
use access_projections::{rebuild, View};
use access_store::{Database, Pool};

use crate::common::{
    harnesses, person, request, request_id, ticket_of, Harness, GOOD_TIN, ORGANIZATIONS,
};

/// A history touching every table: grants of each kind, every request state, a blocked
/// requester with a ticket, a resolved ticket, an unblocked one blocked again.
async fn history(h: &Harness) {
    let [practice, entity, group, registry] = ORGANIZATIONS;
    let support = || person("support");
    h.run(
        practice,
        request(practice, "alice", Role::SecurityOfficial, Some(GOOD_TIN)),
    )
    .await;
    let bob = h
        .run(practice, request(practice, "bob", Role::StaffUser, None))
        .await;
    h.run(
        practice,
        OrganizationCommand::ApproveRequest {
            request_id: request_id(&bob),
            approver: person("alice"),
        },
    )
    .await;
    let carol = h
        .run(practice, request(practice, "carol", Role::StaffUser, None))
        .await;
    h.run(
        practice,
        OrganizationCommand::DenyRequest {
            request_id: request_id(&carol),
            approver: person("alice"),
            reason: Some("not at this practice".into()),
        },
    )
    .await;
    h.run(practice, request(practice, "carol", Role::StaffUser, None))
        .await;
    for organization in [entity, group] {
        let mut blocked = None;
        for _ in 0..3 {
            let committed = h
                .run(
                    organization,
                    request(
                        organization,
                        "erin",
                        Role::SecurityOfficial,
                        Some("987654321"),
                    ),
                )
                .await;
            blocked = ticket_of(&committed);
        }
        let ticket = blocked.expect("the third failure blocks");
        if organization == entity {
            h.run(
                organization,
                OrganizationCommand::ResolveTicket {
                    ticket,
                    approve: true,
                    by: support(),
                    note: None,
                },
            )
            .await;
        } else {
            h.run(
                organization,
                OrganizationCommand::UnblockPerson {
                    person: person("erin"),
                    by: support(),
                    note: None,
                },
            )
            .await;
            // Blocked again: a second ticket, with only the attempts since the unblock.
            for _ in 0..3 {
                h.run(
                    organization,
                    request(
                        organization,
                        "erin",
                        Role::SecurityOfficial,
                        Some("987654321"),
                    ),
                )
                .await;
            }
        }
    }
    let dana = h
        .run(
            registry,
            request(registry, "dana", Role::SecurityOfficial, Some("987654321")),
        )
        .await;
    h.run(
        registry,
        OrganizationCommand::WithdrawRequest {
            request_id: request_id(&dana),
            requester: person("dana"),
        },
    )
    .await;
}

/// The columns of every index on the views' tables, by table, whatever the indexes'
/// names (a rebuild names its copies itself).
async fn view_indexes(database: &Database) -> Vec<(String, String)> {
    let sql = match database.pool() {
        Pool::Sqlite(_) => {
            "SELECT tbl_name, substr(sql, instr(sql, '(')) FROM sqlite_master \
              WHERE type = 'index' AND sql IS NOT NULL AND tbl_name LIKE 'view_%'"
        }
        Pool::Postgres(_) => {
            "SELECT tablename, substr(indexdef, strpos(indexdef, '(')) FROM pg_indexes \
              WHERE schemaname = current_schema() AND tablename LIKE 'view_%'"
        }
    };
    let mut indexes: Vec<(String, String)> = match database.pool() {
        Pool::Sqlite(pool) => sqlx::query_as(sql).fetch_all(pool).await.unwrap(),
        Pool::Postgres(pool) => sqlx::query_as(sql).fetch_all(pool).await.unwrap(),
    };
    indexes.sort();
    indexes
}

#[tokio::test]
async fn every_view_rebuilt_from_scratch_alone_or_all_in_one_pass_equals_the_live_one_row_for_row()
{
    for h in harnesses().await {
        let projector = h.projector();
        history(&h).await;
        h.caught_up(&projector).await;
        projector.shutdown().await;
        let live = h.views().await;
        assert_eq!(live, h.expected().await, "{}", h.label);
        assert!(
            live.values().all(|rows| !rows.is_empty()),
            "{}: {live:#?}",
            h.label
        );

        let head = h.head().await;
        let indexes = view_indexes(&h.database).await;
        for view in View::REBUILDABLE {
            let mut reported = Vec::new();
            let rebuilt = rebuild(&h.database, &[view], 5, |progress| {
                reported.push(progress.position)
            })
            .await
            .unwrap();
            assert_eq!(rebuilt.position, head, "{}: {view}", h.label);
            assert!(rebuilt.events > 0 && rebuilt.events_per_second() > 0.0);
            assert!(
                reported.windows(2).all(|pair| pair[0] < pair[1]),
                "{}",
                h.label
            );
        }
        assert_eq!(h.views().await, live, "{}", h.label);
        // Twice, so the second rebuild copies tables the first one created.
        rebuild(&h.database, &[View::Access], 1000, |_| ())
            .await
            .unwrap();
        assert_eq!(h.views().await, live, "{}", h.label);
        // Every view in one pass, in batches that end mid-history.
        let together = rebuild(&h.database, &View::REBUILDABLE, 4, |_| ())
            .await
            .unwrap();
        assert_eq!(together.position, head, "{}", h.label);
        assert_eq!(together.views, View::REBUILDABLE, "{}", h.label);
        assert_eq!(h.views().await, live, "{}", h.label);
        assert_eq!(
            view_indexes(&h.database).await,
            indexes,
            "{}: the rebuilt tables have the live ones' indexes",
            h.label
        );
    }
}

#[tokio::test]
async fn a_rebuild_while_the_projector_runs_and_commands_keep_coming_leaves_exact_views() {
    for h in harnesses().await {
        let projector = h.projector();
        history(&h).await;
        let practice = ORGANIZATIONS[0];
        let (rebuilt, _) = tokio::join!(
            async {
                for view in View::REBUILDABLE {
                    rebuild(&h.database, &[view], 3, |_| ()).await.unwrap();
                }
            },
            async {
                for who in ["frank", "gina", "hal", "ivan", "judy"] {
                    h.run(practice, request(practice, who, Role::StaffUser, None))
                        .await;
                    tokio::task::yield_now().await;
                }
            }
        );
        let () = rebuilt;
        h.run(practice, request(practice, "kim", Role::StaffUser, None))
            .await;
        h.caught_up(&projector).await;
        projector.shutdown().await;
        assert_eq!(h.views().await, h.expected().await, "{}", h.label);
    }
}
