use access_domain::roles::Role;
use access_domain::OrganizationCommand;
use access_projections::{Grant, Views};
use chrono::Duration;

use crate::common::{
    harnesses, npi, organization, person, request, request_id, SteppingClock, GOOD_TIN,
    ORGANIZATIONS,
};

fn by_person(mut grants: Vec<Grant>) -> Vec<Grant> {
    grants.sort_by(|a, b| a.person.cmp(&b.person));
    grants
}

#[tokio::test]
async fn access_as_of_an_instant_equals_the_grants_the_views_showed_at_that_instant() {
    let practice = ORGANIZATIONS[0];
    let entity = ORGANIZATIONS[1];
    for h in harnesses().await {
        let projector = h.projector();
        let views = Views::new(h.database.clone());
        let support = || person("support");
        let mut snapshots = Vec::new();

        macro_rules! step {
            ($organization:expr, $command:expr) => {{
                let committed = h.run($organization, $command).await;
                h.caught_up(&projector).await;
                let shown = views
                    .organization_users(&organization(practice))
                    .await
                    .unwrap();
                snapshots.push((h.clock.last(), by_person(shown)));
                committed
            }};
        }

        step!(
            practice,
            request(practice, "alice", Role::SecurityOfficial, Some(GOOD_TIN))
        );
        let bob = step!(practice, request(practice, "bob", Role::StaffUser, None));
        step!(
            entity,
            request(entity, "alice", Role::SecurityOfficial, Some(GOOD_TIN))
        );
        step!(
            practice,
            OrganizationCommand::ApproveRequest {
                request_id: request_id(&bob),
                approver: person("alice")
            }
        );
        let carol = step!(practice, request(practice, "carol", Role::StaffUser, None));
        step!(
            practice,
            OrganizationCommand::ApproveRequest {
                request_id: request_id(&carol),
                approver: person("alice")
            }
        );
        step!(
            practice,
            OrganizationCommand::ChangeRole {
                person: person("bob"),
                role: Role::SecurityOfficial,
                by: support(),
                note: None
            }
        );
        step!(
            practice,
            OrganizationCommand::RevokeStaffUser {
                person: person("carol"),
                by: person("bob"),
                reason: None
            }
        );
        step!(
            practice,
            OrganizationCommand::RemoveSecurityOfficial {
                person: person("alice"),
                by: support(),
                note: None
            }
        );
        step!(
            practice,
            OrganizationCommand::GrantClinicianRole {
                person: person("dave"),
                npi: npi(1)
            }
        );
        projector.shutdown().await;

        let practice = organization(practice);
        let before = SteppingClock::instant(0);
        assert_eq!(
            views.access_as_of(&practice, before).await.unwrap(),
            vec![],
            "{}",
            h.label
        );
        for (at, shown) in &snapshots {
            for instant in [*at, *at + Duration::milliseconds(500)] {
                let then = views.access_as_of(&practice, instant).await.unwrap();
                assert_eq!(&by_person(then), shown, "{}: at {instant}", h.label);
            }
        }
        // Six of the steps changed the practice's grants.
        let changes = snapshots
            .windows(2)
            .filter(|pair| pair[0].1 != pair[1].1)
            .count();
        assert_eq!(changes, 6, "{}", h.label);
    }
}
