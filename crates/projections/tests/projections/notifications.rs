//! The notifications view: who is told what, once, whatever crashes.

use std::collections::BTreeSet;
use std::time::Duration;

use access_domain::roles::Role;
use access_domain::OrganizationCommand;
use access_projections::{
    rebuild, EmailHandoff, Error, FailPoint, Outbox, Projector, ProjectorOptions, View, Views,
};
use access_store::Database;
use chrono::Utc;

use crate::common::{
    harnesses, options, organization, person, request, request_id, Harness, GOOD_TIN,
    ORGANIZATIONS, WAIT,
};

/// The kinds of a person's notifications, oldest first.
async fn kinds(views: &Views, who: &str) -> Vec<String> {
    let mut notifications = views.notifications(&person(who), false).await.unwrap();
    notifications.reverse();
    notifications
        .into_iter()
        .map(|notification| notification.kind)
        .collect()
}

/// (position, person, kind) of every notification of `people`, and of every queued email.
async fn told(
    h: &Harness,
    people: &[&str],
) -> (
    BTreeSet<(i64, String, String)>,
    BTreeSet<(i64, String, String)>,
) {
    let views = Views::new(h.database.clone());
    let mut on_screen = BTreeSet::new();
    for who in people {
        for notification in views.notifications(&person(who), false).await.unwrap() {
            on_screen.insert((notification.position, who.to_string(), notification.kind));
        }
    }
    let tomorrow = Utc::now() + chrono::Duration::days(1);
    let queued = Outbox::new(h.database.clone())
        .due(tomorrow, 10_000)
        .await
        .unwrap()
        .into_iter()
        .map(|email| (email.position, email.recipient.to_string(), email.kind))
        .collect();
    (on_screen, queued)
}

fn approve(request: uuid::Uuid, approver: &str) -> OrganizationCommand {
    OrganizationCommand::ApproveRequest {
        request_id: request,
        approver: person(approver),
    }
}

#[tokio::test]
async fn each_change_tells_the_people_concerned_and_a_new_request_every_security_official_of_that_moment(
) {
    for h in harnesses().await {
        let projector = h.projector();
        let practice = ORGANIZATIONS[0];
        let registry = ORGANIZATIONS[3];
        h.run(
            practice,
            request(practice, "alice", Role::SecurityOfficial, Some(GOOD_TIN)),
        )
        .await;
        let bob = h
            .run(practice, request(practice, "bob", Role::StaffUser, None))
            .await;
        let carol = h
            .run(
                practice,
                request(practice, "carol", Role::SecurityOfficial, None),
            )
            .await;
        h.run(practice, approve(request_id(&carol), "alice")).await;
        let dave = h
            .run(practice, request(practice, "dave", Role::StaffUser, None))
            .await;
        h.run(
            practice,
            OrganizationCommand::DenyRequest {
                request_id: request_id(&dave),
                approver: person("alice"),
                reason: Some("not our staff".into()),
            },
        )
        .await;
        h.run(
            practice,
            OrganizationCommand::RemoveSecurityOfficial {
                person: person("carol"),
                by: person("sam"),
                note: None,
            },
        )
        .await;
        h.run(practice, request(practice, "erin", Role::StaffUser, None))
            .await;
        h.run(practice, approve(request_id(&bob), "alice")).await;
        h.run(
            practice,
            OrganizationCommand::RevokeStaffUser {
                person: person("bob"),
                by: person("alice"),
                reason: None,
            },
        )
        .await;
        for _ in 0..3 {
            h.run(
                registry,
                request(registry, "frank", Role::SecurityOfficial, Some("999999999")),
            )
            .await;
        }
        h.caught_up(&projector).await;
        projector.shutdown().await;

        let views = Views::new(h.database.clone());
        let expected: [(&str, &[&str]); 6] = [
            (
                "alice",
                &[
                    "REQUEST_APPROVED",
                    "NEW_PENDING_REQUEST",
                    "NEW_PENDING_REQUEST",
                    "NEW_PENDING_REQUEST",
                    "NEW_PENDING_REQUEST",
                ],
            ),
            (
                "bob",
                &["REQUEST_SUBMITTED", "REQUEST_APPROVED", "ACCESS_REVOKED"],
            ),
            // Told of dave's request while Security Official, not of erin's after.
            (
                "carol",
                &[
                    "REQUEST_SUBMITTED",
                    "REQUEST_APPROVED",
                    "NEW_PENDING_REQUEST",
                    "ACCESS_REVOKED",
                ],
            ),
            ("dave", &["REQUEST_SUBMITTED", "REQUEST_DENIED"]),
            ("erin", &["REQUEST_SUBMITTED"]),
            (
                "frank",
                &["PROOF_REJECTED", "PROOF_REJECTED", "REQUESTER_BLOCKED"],
            ),
        ];
        for (who, kinds_told) in expected {
            assert_eq!(kinds(&views, who).await, kinds_told, "{}: {who}", h.label);
        }

        let alice = views.notifications(&person("alice"), false).await.unwrap();
        let approved = &alice.last().unwrap().message;
        // Without reference data the organization is named by type and masked key.
        assert_eq!(
            approved,
            "Your information was verified: you are now a Security Official of Practice *****1111.",
            "{}",
            h.label
        );
        let dave = views.notifications(&person("dave"), false).await.unwrap();
        assert!(dave[0].message.contains("\"not our staff\""), "{}", h.label);
        let frank = views.notifications(&person("frank"), false).await.unwrap();
        assert!(frank[0].message.contains("ticket CS"), "{}", h.label);
        assert_eq!(frank[0].organization, organization(registry));

        // One queued email per notification, and the other way round.
        let (on_screen, queued) =
            told(&h, &["alice", "bob", "carol", "dave", "erin", "frank"]).await;
        assert_eq!(on_screen, queued, "{}", h.label);
        assert_eq!(on_screen.len(), 18, "{}", h.label);
    }
}

#[tokio::test]
async fn a_projector_that_dies_before_its_commit_tells_nobody_twice_and_nobody_nothing_after_a_restart(
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
        h.run(
            practice,
            request(practice, "alice", Role::SecurityOfficial, Some(GOOD_TIN)),
        )
        .await;
        h.caught_up(&first).await;
        fail_point.arm();
        h.run(practice, request(practice, "bob", Role::StaffUser, None))
            .await;
        assert!(
            fail_point.stopped(View::ALL.len(), WAIT).await,
            "{}: the views did not reach the fail point",
            h.label
        );
        first.shutdown().await;
        let (on_screen, queued) = told(&h, &["alice", "bob"]).await;
        assert_eq!((on_screen.len(), queued.len()), (1, 1), "{}", h.label);

        let second = Projector::start(Database::connect(&h.url).await.unwrap(), options());
        h.caught_up(&second).await;
        second.shutdown().await;
        let (on_screen, queued) = told(&h, &["alice", "bob"]).await;
        let kinds: Vec<(&str, &str)> = on_screen
            .iter()
            .map(|(_, who, kind)| (who.as_str(), kind.as_str()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("alice", "REQUEST_APPROVED"),
                ("alice", "NEW_PENDING_REQUEST"),
                ("bob", "REQUEST_SUBMITTED"),
            ],
            "{}",
            h.label
        );
        assert_eq!(on_screen, queued, "{}", h.label);
    }
}

#[tokio::test]
async fn a_person_marks_only_their_own_notifications_read() {
    for h in harnesses().await {
        two_requests_told(&h, options()).await;

        let views = Views::new(h.database.clone());
        let (alice, bob) = (person("alice"), person("bob"));
        let told = views.notifications(&alice, false).await.unwrap();
        let (pending, approved) = (told[0].position, told[1].position);
        assert!(!views.mark_notification_read(&bob, approved).await.unwrap());
        assert!(views.mark_notification_read(&alice, pending).await.unwrap());
        assert!(views.mark_notification_read(&alice, pending).await.unwrap());
        let unread = views.notifications(&alice, true).await.unwrap();
        assert_eq!(unread.len(), 1, "{}", h.label);
        assert_eq!(unread[0].kind, "REQUEST_APPROVED", "{}", h.label);
        assert!(views.notifications(&alice, false).await.unwrap()[0].read);
        assert!(!views.notifications(&bob, false).await.unwrap()[0].read);
    }
}

#[tokio::test]
async fn the_notifications_view_is_never_rebuilt_from_the_events() {
    for h in harnesses().await {
        let refused = rebuild(&h.database, &[View::Notifications], 100, |_| ()).await;
        assert!(
            matches!(refused, Err(Error::NotRebuildable(View::Notifications))),
            "{}: {refused:?}",
            h.label
        );
    }
}

/// Alice's first Security Official request and Bob's staff request, applied by a projector
/// with `options`.
async fn two_requests_told(h: &Harness, options: ProjectorOptions) {
    let projector = Projector::start(h.database.clone(), options);
    let practice = ORGANIZATIONS[0];
    h.run(
        practice,
        request(practice, "alice", Role::SecurityOfficial, Some(GOOD_TIN)),
    )
    .await;
    h.run(practice, request(practice, "bob", Role::StaffUser, None))
        .await;
    h.caught_up(&projector).await;
    projector.shutdown().await;
}

fn handing_over(handoff: EmailHandoff) -> ProjectorOptions {
    ProjectorOptions {
        email_handoff: Some(handoff),
        ..options()
    }
}

#[tokio::test]
async fn emails_are_queued_claimed_for_the_sender_they_are_handed_to_once_their_batch_commits() {
    for h in harnesses().await {
        let claim = Duration::from_secs(300);
        let (handoff, mut handed) = EmailHandoff::new(claim);
        let before = Utc::now();
        two_requests_told(&h, handing_over(handoff)).await;

        let mut emails = BTreeSet::new();
        while let Some(batch) = handed.try_recv() {
            assert!(batch.until >= before + claim, "{}", h.label);
            for email in batch.emails {
                assert!(
                    email.email.is_none(),
                    "{}: addresses are read at send time",
                    h.label
                );
                emails.insert((email.position, email.recipient.to_string(), email.kind));
            }
        }
        let (on_screen, queued) = told(&h, &["alice", "bob"]).await;
        assert_eq!(on_screen.len(), 3, "{}", h.label);
        assert_eq!(
            emails, on_screen,
            "{}: one email handed per notification",
            h.label
        );
        // Claimed: no sender takes them from the outbox before the claim lapses.
        let due_now = Outbox::new(h.database.clone())
            .due(Utc::now(), 100)
            .await
            .unwrap();
        assert!(due_now.is_empty(), "{}: {due_now:?}", h.label);
        assert_eq!(queued, on_screen, "{}: due once the claim lapses", h.label);
    }
}

#[tokio::test]
async fn with_no_sender_to_hand_them_to_emails_are_queued_due_at_once_for_any_sender() {
    for h in harnesses().await {
        let (handoff, handed) = EmailHandoff::new(Duration::from_secs(300));
        drop(handed);
        two_requests_told(&h, handing_over(handoff)).await;

        let due_now: BTreeSet<(i64, String, String)> = Outbox::new(h.database.clone())
            .due(Utc::now(), 100)
            .await
            .unwrap()
            .into_iter()
            .map(|email| (email.position, email.recipient.to_string(), email.kind))
            .collect();
        let (on_screen, _) = told(&h, &["alice", "bob"]).await;
        assert_eq!(due_now, on_screen, "{}", h.label);
    }
}
