use access_domain::events::DecisionPath;
use access_domain::identifiers::{OrganizationKind, RoleRequestId};
use access_domain::proof::ProofMismatch;
use access_domain::roles::{RequestState, Role, TicketState};
use access_domain::{Organization, OrganizationCommand, OrganizationEvent};
use access_projections::{AuditFilter, Error, RoleRequest, UserCounts, Views};
use access_store::Database;
use chrono::{DateTime, Duration, TimeZone, Utc};
use cqrs_es::{Aggregate, DomainEvent};
use uuid::Uuid;

use crate::common::{
    append_to_log, harnesses, npi, organization, person, request, request_id, ticket_of, LogRow,
    SteppingClock, GOOD_TIN, ORGANIZATIONS,
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

/// Stores one `RoleRequested` per instant, straight into the log as the aggregate
/// serializes it, from the organization's sequence `first` on, and returns the positions
/// given.
async fn requested_at(
    database: &Database,
    org: &str,
    first: i64,
    instants: &[DateTime<Utc>],
) -> Vec<i64> {
    let rows: Vec<LogRow> = (first..)
        .zip(instants)
        .map(|(sequence, at)| {
            let event = OrganizationEvent::RoleRequested {
                request_id: Uuid::new_v4(),
                person: person(&format!("person-{sequence}")),
                role: Role::StaffUser,
                path: DecisionPath::SecurityOfficialApproval,
                at: *at,
            };
            let payload = serde_json::to_string(&event).unwrap();
            (
                org.to_owned(),
                sequence,
                event.event_type(),
                event.event_version(),
                payload,
            )
        })
        .collect();
    append_to_log(database, &rows).await;
    // Read back: SQLite's trigger sets the position once the row is in.
    let stored = database.events_of(Organization::TYPE, org).await.unwrap();
    stored
        .iter()
        .filter(|event| event.sequence >= first)
        .map(|event| event.position)
        .collect()
}

#[tokio::test]
async fn the_audit_logs_time_filter_is_exact_to_the_nanosecond_whatever_digits_the_stored_time_has()
{
    let second = Utc.with_ymd_and_hms(2024, 5, 1, 9, 0, 0).unwrap();
    // The payload's RFC 3339 text has 0, 3, 6 or 9 fractional digits, by the instant.
    let instants: Vec<DateTime<Utc>> = [0, 120_000_000, 123_456_000, 123_456_789, 100]
        .into_iter()
        .enumerate()
        .map(|(step, nanos)| {
            second + Duration::seconds(i64::try_from(step).unwrap()) + Duration::nanoseconds(nanos)
        })
        .collect();
    let nanosecond = Duration::nanoseconds(1);
    for h in harnesses().await {
        let views = Views::new(h.database.clone());
        let positions = requested_at(&h.database, ORGANIZATIONS[0], 1, &instants).await;
        for (at, position) in instants.iter().zip(&positions) {
            let between = |from: DateTime<Utc>, to: DateTime<Utc>| {
                let views = views.clone();
                async move {
                    let filter = AuditFilter {
                        from: Some(from),
                        to: Some(to),
                        ..AuditFilter::default()
                    };
                    let page = views.audit_log(&filter, 100, None).await.unwrap();
                    page.edges
                        .into_iter()
                        .map(|edge| edge.node.position)
                        .collect::<Vec<_>>()
                }
            };
            assert_eq!(between(*at, *at).await, [*position], "{}: {at}", h.label);
            assert!(
                between(*at + nanosecond, *at + nanosecond).await.is_empty(),
                "{}: {at}",
                h.label
            );
            assert!(
                between(*at - nanosecond, *at - nanosecond).await.is_empty(),
                "{}: {at}",
                h.label
            );
        }
    }
}

#[tokio::test]
async fn an_organizations_audit_log_pages_in_log_order_from_any_cursor() {
    let [practice, entity, _, _] = ORGANIZATIONS;
    for h in harnesses().await {
        let views = Views::new(h.database.clone());
        let mut ours = Vec::new();
        let mut theirs = Vec::new();
        for sequence in 1..=5 {
            let at = [SteppingClock::instant(sequence)];
            ours.extend(requested_at(&h.database, practice, sequence, &at).await);
            theirs.extend(requested_at(&h.database, entity, sequence, &at).await);
        }
        let only_ours = AuditFilter {
            organization: Some(organization(practice)),
            ..AuditFilter::default()
        };
        let mut read = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = views
                .audit_log(&only_ours, 2, after.as_deref())
                .await
                .unwrap();
            read.extend(page.edges.iter().map(|edge| edge.node.position));
            after = page.end_cursor().map(str::to_owned);
            if !page.has_next_page {
                break;
            }
        }
        assert_eq!(read, ours, "{}", h.label);
        // A cursor of another organization's event still pages after its position.
        let from_theirs = views
            .audit_log(&only_ours, 100, Some(&theirs[2].to_string()))
            .await
            .unwrap();
        let read: Vec<i64> = from_theirs
            .edges
            .iter()
            .map(|edge| edge.node.position)
            .collect();
        assert_eq!(read, ours[3..], "{}", h.label);
    }
}
