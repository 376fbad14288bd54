use std::time::{Duration, Instant};

use access_domain::identifiers::RoleRequestId;
use access_domain::roles::{RequestState, Role};
use access_domain::OrganizationCommand;
use access_projections::{Projector, View, Views};
use access_store::Database;

use crate::common::{
    eventually, harnesses, options, organization, person, request, request_id, GOOD_TIN,
    ORGANIZATIONS,
};

/// The projector's poll is a minute long (see `options`), so an answer within a few
/// seconds can only come from a wake-up on the commit.
const PROMPT: Duration = Duration::from_secs(3);

#[tokio::test]
async fn after_a_command_wait_for_returns_promptly_and_the_views_show_its_effect() {
    let practice = ORGANIZATIONS[0];
    for h in harnesses().await {
        // A second server's projector, with its own handle on the database, writes the
        // views: on PostgreSQL only LISTEN can wake it. On SQLite this one writes them,
        // woken by the store's commit signal.
        let elsewhere = if h.label == "postgres" {
            let other = Projector::start(Database::connect(&h.url).await.unwrap(), options());
            let leading = eventually(|| View::ALL.iter().all(|view| other.is_leading(*view)));
            assert!(leading.await, "{}", h.label);
            Some(other)
        } else {
            None
        };
        let projector = h.projector();
        let views = Views::new(h.database.clone());

        h.run(
            practice,
            request(practice, "alice", Role::SecurityOfficial, Some(GOOD_TIN)),
        )
        .await;
        let submitted = h
            .run(practice, request(practice, "bob", Role::StaffUser, None))
            .await;
        let id = RoleRequestId {
            organization: organization(practice),
            request: request_id(&submitted),
        };
        for (label, command) in [
            ("submitted", None),
            (
                "approved",
                Some(OrganizationCommand::ApproveRequest {
                    request_id: id.request,
                    approver: person("alice"),
                }),
            ),
        ] {
            let position = match command {
                None => submitted.position,
                Some(command) => h.run(practice, command).await.position,
            }
            .expect("the command appended events");
            let started = Instant::now();
            projector.wait_for(position, PROMPT).await.unwrap();
            if let Some(elsewhere) = &elsewhere {
                elsewhere.wait_for(position, PROMPT).await.unwrap();
            }
            assert!(started.elapsed() < PROMPT, "{}: {label}", h.label);
            let shown = views.role_request(&id).await.unwrap().unwrap();
            let expected = if label == "submitted" {
                RequestState::Pending
            } else {
                RequestState::Approved
            };
            assert_eq!(shown.state, expected, "{}: {label}", h.label);
        }
        let users = views
            .organization_users(&organization(practice))
            .await
            .unwrap();
        assert_eq!(users.len(), 2, "{}", h.label);

        projector.shutdown().await;
        if let Some(elsewhere) = elsewhere {
            elsewhere.shutdown().await;
        }
    }
}

#[tokio::test]
async fn wait_for_a_position_the_views_never_reach_fails_after_its_timeout_saying_how_far_they_got()
{
    for h in harnesses().await {
        let projector = h.projector();
        let started = Instant::now();
        let lagging = projector
            .wait_for(1_000, Duration::from_millis(300))
            .await
            .unwrap_err();
        assert!(
            started.elapsed() >= Duration::from_millis(300),
            "{}",
            h.label
        );
        assert_eq!(
            (lagging.position, lagging.reached),
            (1_000, 0),
            "{}",
            h.label
        );
        projector.shutdown().await;
    }
}
