//! The access view applies a batch by folding its events into the rows they touch:
//! sequences of events within one batch, and rows of an earlier batch changed by a
//! later one, leave the rows one event at a time would have.

use access_domain::roles::Role;
use access_domain::OrganizationCommand;
use access_projections::{Projector, ProjectorOptions};
use chrono::{DateTime, SecondsFormat, Utc};

use crate::common::{
    harnesses, options, person, request, request_id, ticket_of, Harness, Row, GOOD_TIN,
    ORGANIZATIONS,
};

/// Applies everything committed since the last call in one batch per view.
async fn project_in_one_batch(h: &Harness) {
    let projector = Projector::start(
        h.database.clone(),
        ProjectorOptions {
            batch_size: 1000,
            ..options()
        },
    );
    h.caught_up(&projector).await;
    projector.shutdown().await;
}

/// The views equal the fold of the history; answers the grants and the requests.
async fn checked_views(h: &Harness) -> (Vec<Row>, Vec<Row>) {
    let mut views = h.views().await;
    assert_eq!(views, h.expected().await, "{}", h.label);
    (
        views.remove("view_grants").unwrap(),
        views.remove("view_role_requests").unwrap(),
    )
}

fn text(value: &str) -> Option<String> {
    Some(value.to_owned())
}

fn time(at: DateTime<Utc>) -> Option<String> {
    Some(at.to_rfc3339_opts(SecondsFormat::Nanos, true))
}

/// The grant row of `who` in `organization`.
fn grant<'a>(grants: &'a [Row], organization: &str, who: &str) -> Option<&'a Row> {
    grants
        .iter()
        .find(|row| row[0] == text(organization) && row[1] == text(who))
}

/// The request row of `id` in `organization`.
fn request_row<'a>(requests: &'a [Row], organization: &str, id: uuid::Uuid) -> &'a Row {
    let key = text(&format!("{organization}/{id}"));
    requests
        .iter()
        .find(|row| row[0] == key)
        .expect("the request has a row")
}

/// The practice's first Security Official, alice, by proof.
async fn alice_by_proof(h: &Harness, practice: &str) {
    h.run(
        practice,
        request(practice, "alice", Role::SecurityOfficial, Some(GOOD_TIN)),
    )
    .await;
}

/// `who` asks for Staff User and alice approves; answers the request and the instant of
/// the approval.
async fn approved_staff(h: &Harness, practice: &str, who: &str) -> (uuid::Uuid, DateTime<Utc>) {
    let id = request_id(
        &h.run(practice, request(practice, who, Role::StaffUser, None))
            .await,
    );
    h.run(
        practice,
        OrganizationCommand::ApproveRequest {
            request_id: id,
            approver: person("alice"),
        },
    )
    .await;
    (id, h.clock.last())
}

#[tokio::test]
async fn a_batch_that_requests_and_approves_in_one_go_leaves_one_approved_row() {
    for h in harnesses().await {
        let practice = ORGANIZATIONS[0];
        alice_by_proof(&h, practice).await;
        let (bob, approved_at) = approved_staff(&h, practice, "bob").await;
        project_in_one_batch(&h).await;

        let (grants, requests) = checked_views(&h).await;
        assert_eq!(requests.len(), 2, "{}: {requests:?}", h.label);
        let row = request_row(&requests, practice, bob);
        assert_eq!(
            (&row[4], &row[6], &row[7]),
            (&text("APPROVED"), &time(approved_at), &text("alice")),
            "{}",
            h.label
        );
        assert!(
            requests.iter().all(|row| row[4] == text("APPROVED")),
            "{}: {requests:?}",
            h.label
        );
        assert_eq!(grants.len(), 2, "{}: {grants:?}", h.label);
        assert_eq!(
            grant(&grants, practice, "bob").map(|row| &row[2]),
            Some(&text("STAFF_USER")),
            "{}",
            h.label
        );
    }
}

#[tokio::test]
async fn a_grant_revoked_in_the_batch_that_made_it_leaves_no_row() {
    for h in harnesses().await {
        let practice = ORGANIZATIONS[0];
        alice_by_proof(&h, practice).await;
        approved_staff(&h, practice, "bob").await;
        h.run(
            practice,
            OrganizationCommand::RevokeStaffUser {
                person: person("bob"),
                by: person("alice"),
                reason: None,
            },
        )
        .await;
        project_in_one_batch(&h).await;

        let (grants, _) = checked_views(&h).await;
        assert_eq!(grant(&grants, practice, "bob"), None, "{}", h.label);
        assert!(grant(&grants, practice, "alice").is_some(), "{}", h.label);
    }
}

#[tokio::test]
async fn a_grant_revoked_and_granted_again_in_one_batch_is_held() {
    for h in harnesses().await {
        let practice = ORGANIZATIONS[0];
        alice_by_proof(&h, practice).await;
        approved_staff(&h, practice, "bob").await;
        project_in_one_batch(&h).await;

        h.run(
            practice,
            OrganizationCommand::RevokeStaffUser {
                person: person("bob"),
                by: person("alice"),
                reason: None,
            },
        )
        .await;
        let (_, granted_again_at) = approved_staff(&h, practice, "bob").await;
        project_in_one_batch(&h).await;

        let (grants, requests) = checked_views(&h).await;
        assert_eq!(
            grant(&grants, practice, "bob"),
            Some(&vec![
                text(practice),
                text("bob"),
                text("STAFF_USER"),
                time(granted_again_at),
            ]),
            "{}",
            h.label
        );
        assert_eq!(requests.len(), 3, "{}: {requests:?}", h.label);
    }
}

#[tokio::test]
async fn a_role_changed_in_the_batch_that_granted_it_keeps_the_grant_date() {
    for h in harnesses().await {
        let practice = ORGANIZATIONS[0];
        alice_by_proof(&h, practice).await;
        let (_, granted_at) = approved_staff(&h, practice, "bob").await;
        h.run(
            practice,
            OrganizationCommand::ChangeRole {
                person: person("bob"),
                role: Role::SecurityOfficial,
                by: person("alice"),
                note: None,
            },
        )
        .await;
        project_in_one_batch(&h).await;

        let (grants, _) = checked_views(&h).await;
        assert_eq!(
            grant(&grants, practice, "bob"),
            Some(&vec![
                text(practice),
                text("bob"),
                text("SECURITY_OFFICIAL"),
                time(granted_at),
            ]),
            "{}",
            h.label
        );
    }
}

#[tokio::test]
async fn rows_from_an_earlier_batch_are_updated_by_a_later_one() {
    for h in harnesses().await {
        let [practice, _, _, registry] = ORGANIZATIONS;
        alice_by_proof(&h, practice).await;
        let bob = request_id(
            &h.run(practice, request(practice, "bob", Role::StaffUser, None))
                .await,
        );
        let carol = request_id(
            &h.run(practice, request(practice, "carol", Role::StaffUser, None))
                .await,
        );
        let (dan, _) = approved_staff(&h, practice, "dan").await;
        // Two failed proofs where nobody is Security Official yet.
        let mut erin = None;
        for _ in 0..2 {
            let committed = h
                .run(
                    registry,
                    request(registry, "erin", Role::SecurityOfficial, Some("987654321")),
                )
                .await;
            erin = Some(request_id(&committed));
        }
        let erin = erin.unwrap();
        project_in_one_batch(&h).await;
        let (_, requests) = checked_views(&h).await;
        assert_eq!(request_row(&requests, practice, bob)[4], text("PENDING"));
        assert_eq!(request_row(&requests, registry, erin)[9], text("2"));

        h.run(
            practice,
            OrganizationCommand::ApproveRequest {
                request_id: bob,
                approver: person("alice"),
            },
        )
        .await;
        h.run(
            practice,
            OrganizationCommand::DenyRequest {
                request_id: carol,
                approver: person("alice"),
                reason: Some("not here".into()),
            },
        )
        .await;
        h.run(
            practice,
            OrganizationCommand::ChangeRole {
                person: person("dan"),
                role: Role::SecurityOfficial,
                by: person("alice"),
                note: None,
            },
        )
        .await;
        h.run(
            practice,
            OrganizationCommand::RemoveSecurityOfficial {
                person: person("alice"),
                by: person("dan"),
                note: None,
            },
        )
        .await;
        // The third failure blocks the request.
        let blocked = h
            .run(
                registry,
                request(registry, "erin", Role::SecurityOfficial, Some("987654321")),
            )
            .await;
        let ticket = ticket_of(&blocked).expect("the third failure blocks");
        project_in_one_batch(&h).await;

        let (grants, requests) = checked_views(&h).await;
        assert_eq!(request_row(&requests, practice, bob)[4], text("APPROVED"));
        let carol = request_row(&requests, practice, carol);
        assert_eq!(
            (&carol[4], &carol[8]),
            (&text("DENIED"), &text("not here")),
            "{}",
            h.label
        );
        assert_eq!(request_row(&requests, practice, dan)[4], text("APPROVED"));
        let erin = request_row(&requests, registry, erin);
        assert_eq!(
            (&erin[4], &erin[9], &erin[10]),
            (&text("MANUAL_REVIEW"), &text("3"), &text(ticket.as_str())),
            "{}",
            h.label
        );
        assert_eq!(grant(&grants, practice, "alice"), None, "{}", h.label);
        assert_eq!(
            grant(&grants, practice, "dan").map(|row| &row[2]),
            Some(&text("SECURITY_OFFICIAL")),
            "{}",
            h.label
        );
        assert_eq!(
            grant(&grants, practice, "bob").map(|row| &row[2]),
            Some(&text("STAFF_USER")),
            "{}",
            h.label
        );
    }
}
