use access_domain::identifiers::{OrganizationKind, RoleRequestId};
use access_domain::proof::ProofMismatch;
use access_domain::roles::{RequestState, Role, TicketState};
use access_domain::OrganizationCommand;
use access_projections::{AuditFilter, Error, RoleRequest, UserCounts, Views};

use crate::common::{
    harnesses, npi, organization, person, request, request_id, ticket_of, SteppingClock, GOOD_TIN,
    ORGANIZATIONS,
};

fn requesters(requests: &[&RoleRequest]) -> Vec<String> {
    requests
        .iter()
        .map(|request| request.person.to_string())
        .collect()
}

#[tokio::test]
async fn a_security_officials_queue_lists_every_pending_request_of_their_organizations_oldest_first_in_stable_pages(
) {
    let [practice, entity, group, _] = ORGANIZATIONS;
    for h in harnesses().await {
        let projector = h.projector();
        let views = Views::new(h.database.clone());
        h.run(
            practice,
            request(practice, "alice", Role::SecurityOfficial, Some(GOOD_TIN)),
        )
        .await;
        h.run(
            entity,
            request(entity, "alice", Role::SecurityOfficial, Some(GOOD_TIN)),
        )
        .await;
        h.run(
            group,
            request(group, "zoe", Role::SecurityOfficial, Some(GOOD_TIN)),
        )
        .await;
        let bob = h
            .run(practice, request(practice, "bob", Role::StaffUser, None))
            .await;
        h.run(entity, request(entity, "carol", Role::StaffUser, None))
            .await;
        h.run(practice, request(practice, "dan", Role::StaffUser, None))
            .await;
        h.run(entity, request(entity, "eve", Role::SecurityOfficial, None))
            .await;
        h.run(group, request(group, "fay", Role::StaffUser, None))
            .await;
        h.caught_up(&projector).await;

        let alice = person("alice");
        let first = views.pending_requests(&alice, None, 2, None).await.unwrap();
        let nodes: Vec<_> = first.page.edges.iter().map(|edge| &edge.node).collect();
        assert_eq!(requesters(&nodes), ["bob", "carol"], "{}", h.label);
        assert!(
            first.page.has_next_page && first.total_count == 4,
            "{}",
            h.label
        );

        // Decisions and new requests between two pages move no boundary.
        h.run(
            practice,
            OrganizationCommand::ApproveRequest {
                request_id: request_id(&bob),
                approver: alice.clone(),
            },
        )
        .await;
        h.run(practice, request(practice, "gus", Role::StaffUser, None))
            .await;
        h.caught_up(&projector).await;
        let after = first.page.end_cursor();
        let second = views
            .pending_requests(&alice, None, 10, after)
            .await
            .unwrap();
        let nodes: Vec<_> = second.page.edges.iter().map(|edge| &edge.node).collect();
        assert_eq!(requesters(&nodes), ["dan", "eve", "gus"], "{}", h.label);
        assert!(
            !second.page.has_next_page && second.total_count == 4,
            "{}",
            h.label
        );
        assert!(nodes
            .iter()
            .all(|request| request.state == RequestState::Pending));

        let entity_only = views
            .pending_requests(&alice, Some(&organization(entity)), 10, None)
            .await
            .unwrap();
        let nodes: Vec<_> = entity_only
            .page
            .edges
            .iter()
            .map(|edge| &edge.node)
            .collect();
        assert_eq!(requesters(&nodes), ["carol", "eve"], "{}", h.label);
        assert_eq!(entity_only.total_count, 2);

        let nobody = views
            .pending_requests(&person("bob"), None, 10, None)
            .await
            .unwrap();
        assert!(
            nobody.page.edges.is_empty() && nobody.total_count == 0,
            "{}",
            h.label
        );
        for bad in ["", "nonsense", "2024-05-01T09:00:00Z|practice:1/x"] {
            let refused = views.pending_requests(&alice, None, 10, Some(bad)).await;
            assert!(
                matches!(refused, Err(Error::InvalidCursor)),
                "{}: {bad:?}",
                h.label
            );
        }
        projector.shutdown().await;
    }
}

#[tokio::test]
async fn manage_access_groups_connections_by_type_counts_users_for_security_officials_and_lists_feedback_organizations(
) {
    let [practice, entity, group, registry] = ORGANIZATIONS;
    for h in harnesses().await {
        let projector = h.projector();
        let views = Views::new(h.database.clone());
        h.run(
            practice,
            request(practice, "alice", Role::SecurityOfficial, Some(GOOD_TIN)),
        )
        .await;
        h.run(
            registry,
            request(registry, "alice", Role::SecurityOfficial, Some(GOOD_TIN)),
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
        h.run(practice, request(practice, "carol", Role::StaffUser, None))
            .await;
        h.run(
            entity,
            request(entity, "carol", Role::SecurityOfficial, Some("987654321")),
        )
        .await;
        for organization in [practice, entity, group] {
            let command = OrganizationCommand::GrantClinicianRole {
                person: person("henry"),
                npi: npi(7),
            };
            h.run(organization, command).await;
        }
        h.caught_up(&projector).await;

        let alice = views.manage_access(&person("alice")).await.unwrap();
        let kinds: Vec<_> = alice.tabs.iter().map(|tab| tab.kind).collect();
        assert_eq!(
            kinds,
            [OrganizationKind::Practice, OrganizationKind::Registry],
            "{}",
            h.label
        );
        let at_practice = &alice.tabs[0].connections[0];
        assert_eq!(at_practice.role, Role::SecurityOfficial);
        // alice, bob and henry hold a role there; carol waits.
        assert_eq!(
            at_practice.users,
            Some(UserCounts {
                connected: 3,
                pending: 1
            }),
            "{}",
            h.label
        );
        assert!(
            alice.open_requests.is_empty() && alice.performance_feedback_organizations.is_empty()
        );

        let bob = views.manage_access(&person("bob")).await.unwrap();
        assert_eq!(bob.tabs[0].connections[0].role, Role::StaffUser);
        assert_eq!(bob.tabs[0].connections[0].users, None, "{}", h.label);

        let carol = views.manage_access(&person("carol")).await.unwrap();
        assert!(carol.tabs.is_empty(), "{}", h.label);
        let open: Vec<_> = carol
            .open_requests
            .iter()
            .map(|r| (r.id.organization.to_string(), r.state))
            .collect();
        assert_eq!(
            open,
            [
                (practice.to_owned(), RequestState::Pending),
                (entity.to_owned(), RequestState::ProofRejected)
            ],
            "{}",
            h.label
        );

        let henry = views.manage_access(&person("henry")).await.unwrap();
        assert_eq!(henry.tabs.len(), 1, "{}: {henry:?}", h.label);
        assert_eq!(henry.tabs[0].connections[0].role, Role::Clinician);
        assert_eq!(
            henry.performance_feedback_organizations,
            [organization(entity), organization(group)],
            "{}",
            h.label
        );
        projector.shutdown().await;
    }
}

#[tokio::test]
async fn support_sees_blocked_accounts_with_their_ticket_and_masked_attempts_until_the_ticket_is_resolved(
) {
    let registry = ORGANIZATIONS[3];
    for h in harnesses().await {
        let projector = h.projector();
        let views = Views::new(h.database.clone());
        let mut last = None;
        for _ in 0..3 {
            last = Some(
                h.run(
                    registry,
                    request(registry, "erin", Role::SecurityOfficial, Some("987654321")),
                )
                .await,
            );
        }
        let last = last.unwrap();
        let number = ticket_of(&last).unwrap();
        h.caught_up(&projector).await;

        let blocked = views.blocked_accounts().await.unwrap();
        assert_eq!(blocked.len(), 1, "{}", h.label);
        let ticket = &blocked[0];
        assert_eq!(
            (ticket.number.clone(), ticket.state),
            (number.clone(), TicketState::Open)
        );
        assert_eq!(ticket.organization, organization(registry));
        assert_eq!(ticket.person, person("erin"));
        assert_eq!(ticket.attempts.len(), 3, "{}", h.label);
        for attempt in &ticket.attempts {
            assert_eq!(attempt.masked_proof, "tin *****4321");
            assert_eq!(attempt.mismatch, ProofMismatch::TinDoesNotMatchOrganization);
        }
        assert_eq!(
            views.support_ticket(&number).await.unwrap().as_ref(),
            Some(ticket)
        );

        let command = OrganizationCommand::ResolveTicket {
            ticket: number.clone(),
            approve: true,
            by: person("support"),
            note: Some("proof checked by phone".into()),
        };
        let resolved = h.run(registry, command).await;
        projector
            .wait_for(resolved.position.unwrap(), crate::common::WAIT)
            .await
            .unwrap();
        assert!(
            views.blocked_accounts().await.unwrap().is_empty(),
            "{}",
            h.label
        );
        let ticket = views.support_ticket(&number).await.unwrap().unwrap();
        assert_eq!(ticket.state, TicketState::ResolvedApproved, "{}", h.label);
        let id = RoleRequestId {
            organization: organization(registry),
            request: request_id(&last),
        };
        let request = views.role_request(&id).await.unwrap().unwrap();
        assert_eq!(request.state, RequestState::Approved);
        assert_eq!((request.failed_attempts, request.ticket), (3, Some(number)));
        assert_eq!(request.decided_by, Some(person("support")));
        assert_eq!(request.reason.as_deref(), Some("proof checked by phone"));
        projector.shutdown().await;
    }
}

#[tokio::test]
async fn the_audit_log_filters_by_organization_person_type_and_time_and_pages_stay_put_while_events_arrive(
) {
    let [practice, entity, _, _] = ORGANIZATIONS;
    for h in harnesses().await {
        let projector = h.projector();
        let views = Views::new(h.database.clone());
        h.run(
            practice,
            request(practice, "alice", Role::SecurityOfficial, Some(GOOD_TIN)),
        )
        .await;
        let bob = h
            .run(practice, request(practice, "bob", Role::StaffUser, None))
            .await;
        h.run(
            entity,
            request(entity, "carol", Role::SecurityOfficial, Some(GOOD_TIN)),
        )
        .await;
        let approval = OrganizationCommand::ApproveRequest {
            request_id: request_id(&bob),
            approver: person("alice"),
        };
        h.run(practice, approval).await;
        h.caught_up(&projector).await;

        let everything = views
            .audit_log(&AuditFilter::default(), 100, None)
            .await
            .unwrap();
        let types: Vec<_> = everything
            .edges
            .iter()
            .map(|edge| edge.node.event_type.as_str())
            .collect();
        assert_eq!(
            types,
            [
                "RoleRequested",
                "ProofAccepted",
                "RoleGranted",
                "RoleRequested",
                "RoleRequested",
                "ProofAccepted",
                "RoleGranted",
                "RoleRequestApproved",
                "RoleGranted"
            ],
            "{}",
            h.label
        );
        let approval = &everything.edges[7].node;
        assert_eq!(approval.actor, Some(person("alice")));
        assert_eq!(approval.subject, Some(person("bob")));
        assert!(approval.payload.starts_with("{\"RoleRequestApproved\":"));

        let of = |filter: AuditFilter| {
            let views = views.clone();
            async move {
                let page = views.audit_log(&filter, 100, None).await.unwrap();
                page.edges
                    .into_iter()
                    .map(|edge| edge.node.position)
                    .collect::<Vec<_>>()
            }
        };
        let positions: Vec<i64> = everything
            .edges
            .iter()
            .map(|edge| edge.node.position)
            .collect();
        let at = |index: usize| positions[index];
        let entity_only = AuditFilter {
            organization: Some(organization(entity)),
            ..AuditFilter::default()
        };
        assert_eq!(of(entity_only).await, [at(4), at(5), at(6)], "{}", h.label);
        let bob_only = AuditFilter {
            person: Some(person("bob")),
            ..AuditFilter::default()
        };
        assert_eq!(of(bob_only).await, [at(3), at(7), at(8)], "{}", h.label);
        let alice_acts = AuditFilter {
            person: Some(person("alice")),
            event_types: Some(vec!["RoleRequestApproved".into(), "ProofAccepted".into()]),
            ..AuditFilter::default()
        };
        assert_eq!(of(alice_acts).await, [at(1), at(7)], "{}", h.label);
        let none = AuditFilter {
            event_types: Some(vec![]),
            ..AuditFilter::default()
        };
        assert!(of(none).await.is_empty());
        // Commands 2 and 3 (clock steps 2 and 3): bob's request and carol's approval.
        let window = AuditFilter {
            from: Some(SteppingClock::instant(2)),
            to: Some(SteppingClock::instant(3)),
            ..AuditFilter::default()
        };
        assert_eq!(
            of(window).await,
            [at(3), at(4), at(5), at(6)],
            "{}",
            h.label
        );

        let first = views
            .audit_log(&AuditFilter::default(), 4, None)
            .await
            .unwrap();
        assert!(first.has_next_page);
        h.run(practice, request(practice, "dan", Role::StaffUser, None))
            .await;
        h.caught_up(&projector).await;
        let rest = views
            .audit_log(&AuditFilter::default(), 100, first.end_cursor())
            .await
            .unwrap();
        let continued: Vec<i64> = rest.edges.iter().map(|edge| edge.node.position).collect();
        assert_eq!(&continued[..5], &positions[4..], "{}", h.label);
        assert_eq!(continued.len(), 6, "{}", h.label);
        assert!(!rest.has_next_page);
        let refused = views
            .audit_log(&AuditFilter::default(), 1, Some("-3"))
            .await;
        assert!(matches!(refused, Err(Error::InvalidCursor)));
        projector.shutdown().await;
    }
}
