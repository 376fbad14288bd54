use access_domain::roles::Role;
use access_projections::{Projector, View};
use access_store::Database;

use crate::common::{eventually, harnesses, options, request, GOOD_TIN, ORGANIZATIONS, WAIT};

fn leads_all(projector: &Projector) -> bool {
    View::ALL.iter().all(|view| projector.is_leading(*view))
}

fn leads_none(projector: &Projector) -> bool {
    View::ALL.iter().all(|view| !projector.is_leading(*view))
}

#[tokio::test]
async fn of_two_projectors_on_one_postgresql_database_one_writes_and_the_other_takes_over_when_it_stops(
) {
    for h in harnesses()
        .await
        .into_iter()
        .filter(|h| h.label == "postgres")
    {
        // Two server processes: each its own pool.
        let first = Projector::start(Database::connect(&h.url).await.unwrap(), options());
        assert!(
            eventually(|| leads_all(&first)).await,
            "the first took no lease"
        );
        let second = Projector::start(Database::connect(&h.url).await.unwrap(), options());

        for (index, who) in ["alice", "bob", "carol"].into_iter().enumerate() {
            let organization = ORGANIZATIONS[index];
            h.run(
                organization,
                request(organization, who, Role::SecurityOfficial, Some(GOOD_TIN)),
            )
            .await;
        }
        second.wait_for(h.head().await, WAIT).await.unwrap();
        assert!(
            leads_all(&first) && leads_none(&second),
            "both wrote the views"
        );

        first.shutdown().await;
        assert!(
            eventually(|| leads_all(&second)).await,
            "the second did not take over"
        );
        h.run(
            ORGANIZATIONS[0],
            request(ORGANIZATIONS[0], "dave", Role::StaffUser, None),
        )
        .await;
        h.caught_up(&second).await;
        assert_eq!(h.views().await, h.expected().await);
        second.shutdown().await;
    }
}

#[tokio::test]
async fn a_projector_whose_lease_connection_dies_gives_way_and_the_views_stay_exact() {
    for h in harnesses()
        .await
        .into_iter()
        .filter(|h| h.label == "postgres")
    {
        let first = Projector::start(Database::connect(&h.url).await.unwrap(), options());
        assert!(
            eventually(|| leads_all(&first)).await,
            "the first took no lease"
        );
        let second = Projector::start(Database::connect(&h.url).await.unwrap(), options());

        // What a dead process leaves: its sessions end and PostgreSQL frees their locks.
        let access_store::Pool::Postgres(pool) = h.database.pool() else {
            unreachable!()
        };
        sqlx::query(
            "SELECT pg_terminate_backend(pid) FROM pg_locks \
              WHERE locktype = 'advisory' AND classid = 1094927699 AND objid > 1000 AND granted",
        )
        .execute(pool)
        .await
        .unwrap();
        let practice = ORGANIZATIONS[0];
        h.run(
            practice,
            request(practice, "alice", Role::SecurityOfficial, Some(GOOD_TIN)),
        )
        .await;
        h.caught_up(&second).await;
        h.run(practice, request(practice, "bob", Role::StaffUser, None))
            .await;
        h.caught_up(&first).await;
        assert_eq!(h.views().await, h.expected().await);
        let one_writer = View::ALL
            .iter()
            .all(|view| !(first.is_leading(*view) && second.is_leading(*view)));
        assert!(one_writer, "both lead a view");
        first.shutdown().await;
        second.shutdown().await;
    }
}
