use access_domain::roles::Role;
use access_projections::{FailPoint, Projector, ProjectorOptions, View, Views};
use access_store::Database;

use crate::common::{harnesses, options, request, request_id, GOOD_TIN, ORGANIZATIONS, WAIT};

#[tokio::test]
async fn a_projector_that_dies_between_the_commit_and_the_view_update_leaves_exact_views_after_a_restart(
) {
    for h in harnesses().await {
        let fail_point = FailPoint::default();
        let first = Projector::start(
            h.database.clone(),
            ProjectorOptions {
                fail_point: Some(fail_point.clone()),
                ..options()
            },
        );
        let practice = ORGANIZATIONS[0];
        let approved = h
            .run(
                practice,
                request(practice, "alice", Role::SecurityOfficial, Some(GOOD_TIN)),
            )
            .await;
        h.caught_up(&first).await;

        fail_point.arm();
        let pending = h
            .run(practice, request(practice, "bob", Role::StaffUser, None))
            .await;
        assert!(
            fail_point.stopped(View::ALL.len(), WAIT).await,
            "{}: the views did not reach the fail point",
            h.label
        );
        first.shutdown().await;

        // The command is durable, and no view shows it: the update died with the process.
        let head = h.head().await;
        let views = Views::new(h.database.clone());
        let bob = access_domain::identifiers::RoleRequestId {
            organization: crate::common::organization(practice),
            request: request_id(&pending),
        };
        assert_eq!(views.role_request(&bob).await.unwrap(), None, "{}", h.label);
        assert!(
            first
                .wait_for(head, std::time::Duration::from_millis(200))
                .await
                .is_err(),
            "{}: a checkpoint moved past the abandoned update",
            h.label
        );
        assert!(approved.position.is_some_and(|position| position < head));

        // A new process on the same database finishes the job, once.
        let restarted = Database::connect(&h.url).await.unwrap();
        let second = Projector::start(restarted.clone(), options());
        second.wait_for(head, WAIT).await.unwrap();
        assert_eq!(h.views().await, h.expected().await, "{}", h.label);
        assert!(
            views.role_request(&bob).await.unwrap().is_some(),
            "{}",
            h.label
        );
        second.shutdown().await;
    }
}
