//! Grouped appends (docs/adr/14-grouped-appends.md), on both databases.

use std::collections::HashMap;
use std::sync::Arc;

use access_domain::roles::Role;
use access_domain::services::OrganizationServices;
use access_domain::Organization;
use access_projections::{checkpoints, Projector, View};
use access_store::{AggregateStore, Committed, Pool};
use cqrs_es::DomainEvent;
use tokio::task::JoinSet;

use crate::common::{
    eventually, harnesses, person, request, Harness, Proofs, Tickets, GOOD_TIN, ORGANIZATIONS, WAIT,
};
use crate::people::directory;

/// A store of its own (another cache, as in another process), appending through the
/// projector's queue.
fn grouped_store(h: &Harness, projector: &Projector) -> AggregateStore<Organization> {
    let services = OrganizationServices {
        reference: Arc::new(Proofs),
        tickets: Arc::new(Tickets(h.database.clone())),
        clock: h.clock.clone(),
    };
    AggregateStore::new(&h.database, services).appending_through(projector.append_queue())
}

/// Each database's harness, with its projector leading every view and a store appending
/// through the projector's queue.
async fn grouped_harnesses() -> Vec<(Harness, Projector, AggregateStore<Organization>)> {
    let mut grouped = Vec::new();
    for h in harnesses().await {
        let projector = h.projector();
        leading_every_view(&h, &projector).await;
        let store = grouped_store(&h, &projector);
        grouped.push((h, projector, store));
    }
    grouped
}

/// `person` asks `organization` for the Security Official role through `store`, with a
/// proof that matches.
async fn ask_to_be_security_official(
    store: &AggregateStore<Organization>,
    organization: &str,
    person: &str,
) -> Committed<Organization, ()> {
    let command = request(organization, person, Role::SecurityOfficial, Some(GOOD_TIN));
    store
        .execute(organization, command, HashMap::new(), |_, _| ())
        .await
        .unwrap_or_else(|error| panic!("{person} on {organization}: {error}"))
}

/// Has `store` hold `organization` in memory with no events, then appends as another
/// process would its first two events (a request with a rejected proof), which `store`
/// does not know of.
async fn stale_in_memory(
    h: &Harness,
    store: &AggregateStore<Organization>,
    organization: &str,
) -> Committed<Organization, ()> {
    store.read(organization, |_| ()).await.unwrap();
    let elsewhere = request(
        organization,
        "mallory",
        Role::SecurityOfficial,
        Some("999999999"),
    );
    let other = h.run(organization, elsewhere).await;
    assert_eq!(other.events.len(), 2, "a request and its rejected proof");
    other
}

async fn leading_every_view(h: &Harness, projector: &Projector) {
    let leading = eventually(|| View::ALL.iter().all(|view| projector.is_leading(*view)));
    assert!(leading.await, "the projector leads every view");
    // A view's task leads before it has made its checkpoint, and a group finding one
    // missing is appended without the views (on a loaded machine, the first groups).
    let deadline = tokio::time::Instant::now() + WAIT;
    while checkpoints(&h.database).await.unwrap().len() < View::ALL.len() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{}: every view has its checkpoint",
            h.label
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn commands_appended_together_are_answered_with_every_view_already_showing_them() {
    for h in harnesses().await {
        let projector = h.projector();
        leading_every_view(&h, &projector).await;
        let store = Arc::new(grouped_store(&h, &projector));
        for practice in ORGANIZATIONS {
            let first = request(practice, "alice", Role::SecurityOfficial, Some(GOOD_TIN));
            store
                .execute(practice, first, HashMap::new(), |_, _| ())
                .await
                .unwrap();
        }
        let mut commands = JoinSet::new();
        for staff in 0..8 {
            for practice in ORGANIZATIONS {
                let store = store.clone();
                let database = h.database.clone();
                commands.spawn(async move {
                    let name = format!("staff-{staff}");
                    let command = request(practice, &name, Role::StaffUser, None);
                    let committed = store
                        .execute(practice, command, HashMap::new(), |_, _| ())
                        .await
                        .unwrap();
                    let position = committed.position.expect("the command appended");
                    // No wait: the answer comes after the views' commit.
                    let behind: Vec<_> = checkpoints(&database)
                        .await
                        .unwrap()
                        .into_iter()
                        .filter(|(_, checkpoint)| *checkpoint < position)
                        .collect();
                    (position, behind)
                });
            }
        }
        let mut answered = 0;
        while let Some(joined) = commands.join_next().await {
            let (position, behind) = joined.unwrap();
            assert!(
                behind.is_empty(),
                "views behind position {position}: {behind:?}"
            );
            answered += 1;
        }
        assert_eq!(answered, 8 * ORGANIZATIONS.len());
        assert_eq!(h.views().await, h.expected().await);
        projector.shutdown().await;
    }
}

#[tokio::test]
async fn a_command_that_lost_its_sequence_numbers_to_another_process_is_stored_whole_or_not_at_all()
{
    for (h, projector, grouped) in grouped_harnesses().await {
        let [contested, quiet, ..] = ORGANIZATIONS;
        stale_in_memory(&h, &grouped, contested).await;
        // Three events from sequence 1: the first two are taken, the third is not. The
        // command is handled again on the real state and lands after them, whole, in a
        // group with a command on another organization.
        let (first, _) = tokio::join!(
            ask_to_be_security_official(&grouped, contested, "alice"),
            ask_to_be_security_official(&grouped, quiet, "bob"),
        );
        assert_eq!(
            sequences_of(&h, contested).await,
            (1..=2 + first.events.len() as i64).collect::<Vec<_>>()
        );
        assert_eq!(first.events[0].sequence, 3);
        h.caught_up(&projector).await;
        assert_eq!(h.views().await, h.expected().await);
        projector.shutdown().await;
    }
}

/// The sequence numbers stored for `organization`, in order.
async fn sequences_of(h: &Harness, organization: &str) -> Vec<i64> {
    h.events()
        .await
        .iter()
        .filter(|event| event.aggregate_id == organization)
        .map(|event| event.sequence)
        .collect()
}

/// Fails unless every event the commands were answered with is stored where they were
/// told, and the organization's sequence runs from 1 without a gap.
async fn stored_as_answered(
    h: &Harness,
    organization: &str,
    earlier_events: usize,
    committed: &[Committed<Organization, ()>],
) {
    let stored = h.events().await;
    let mut answered = earlier_events;
    for command in committed {
        for envelope in &command.events {
            let event = stored
                .iter()
                .find(|event| {
                    event.aggregate_id == organization && event.sequence == envelope.sequence as i64
                })
                .unwrap_or_else(|| panic!("no event stored at {}", envelope.sequence));
            assert_eq!(event.event_type, envelope.payload.event_type());
            answered += 1;
        }
    }
    assert_eq!(
        sequences_of(h, organization).await,
        (1..=answered as i64).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn commands_queued_behind_one_that_lost_its_sequence_numbers_are_handled_again_and_every_sequence_stays_whole(
) {
    for (h, projector, grouped) in grouped_harnesses().await {
        let contested = ORGANIZATIONS[0];
        let other = stale_in_memory(&h, &grouped, contested).await;
        // Alice's command is handled on the stale state and queued from sequence 1, then
        // Bob's and Carol's on the state it leaves, before it is refused: theirs follow
        // events that will never be stored, and must not be stored either. All three are
        // accepted in whichever order they are handled again.
        let (alice, bob, carol) = tokio::join!(
            ask_to_be_security_official(&grouped, contested, "alice"),
            ask_to_be_security_official(&grouped, contested, "bob"),
            ask_to_be_security_official(&grouped, contested, "carol"),
        );
        let committed = [alice, bob, carol];
        stored_as_answered(&h, contested, other.events.len(), &committed).await;
        h.caught_up(&projector).await;
        assert_eq!(h.views().await, h.expected().await);
        projector.shutdown().await;
    }
}

#[tokio::test]
async fn commands_on_one_organization_share_groups_instead_of_waiting_for_each_others_commit() {
    for (h, projector, grouped) in grouped_harnesses().await {
        let grouped = Arc::new(grouped);
        let hot = ORGANIZATIONS[3];
        let first = ask_to_be_security_official(&grouped, hot, "alice").await;
        const WRITERS: usize = 32;
        let mut commands = JoinSet::new();
        for staff in 0..WRITERS {
            let grouped = grouped.clone();
            commands.spawn(async move {
                let command = request(hot, &format!("staff-{staff}"), Role::StaffUser, None);
                grouped
                    .execute(hot, command, HashMap::new(), |_, _| ())
                    .await
                    .unwrap()
            });
        }
        let mut committed = vec![first];
        while let Some(joined) = commands.join_next().await {
            committed.push(joined.unwrap());
        }
        stored_as_answered(&h, hot, 0, &committed).await;
        // Rows inserted by one PostgreSQL transaction share its id; SQLite shows none.
        if let Pool::Postgres(pool) = h.database.pool() {
            let transactions: i64 = sqlx::query_scalar(
                "SELECT count(DISTINCT xmin::text) FROM events WHERE aggregate_id = $1",
            )
            .bind(hot)
            .fetch_one(pool)
            .await
            .unwrap();
            assert!(
                transactions < 1 + WRITERS as i64,
                "{WRITERS} commands queued together took {transactions} transactions"
            );
        }
        // A group may be appended without the views (ADR 14: when they are more than a batch
        // behind, or not all led by this process at that moment); they then catch up on
        // their own, and the service's read-your-writes wait covers the gap.
        h.caught_up(&projector).await;
        assert_eq!(h.views().await, h.expected().await);
        projector.shutdown().await;
    }
}

#[tokio::test]
async fn the_request_feed_tells_every_event_of_grouped_appends_once_and_in_the_log_order() {
    for (h, projector, store) in grouped_harnesses().await {
        let mut told = projector.appended();
        let store = Arc::new(store);
        for practice in ORGANIZATIONS {
            ask_to_be_security_official(&store, practice, "alice").await;
        }
        let mut commands = JoinSet::new();
        for staff in 0..8 {
            for practice in ORGANIZATIONS {
                let store = store.clone();
                commands.spawn(async move {
                    let command =
                        request(practice, &format!("staff-{staff}"), Role::StaffUser, None);
                    store
                        .execute(practice, command, HashMap::new(), |_, _| ())
                        .await
                        .unwrap();
                });
            }
        }
        while let Some(joined) = commands.join_next().await {
            joined.unwrap();
        }
        let stored: Vec<(String, i64)> = h
            .events()
            .await
            .iter()
            .map(|event| (event.aggregate_id.clone(), event.sequence))
            .collect();
        let mut heard = Vec::new();
        while heard.len() < stored.len() {
            let next = tokio::time::timeout(std::time::Duration::from_secs(10), told.recv())
                .await
                .unwrap_or_else(|_| {
                    panic!("told {} of {} events: {heard:?}", heard.len(), stored.len())
                })
                .unwrap();
            heard.push((next.organization.to_string(), next.sequence));
        }
        assert_eq!(heard, stored, "each event told once, in the log's order");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert!(told.try_recv().is_err(), "nothing told twice");
        projector.shutdown().await;
    }
}

#[tokio::test]
async fn a_callers_directory_row_handed_over_before_their_command_is_committed_no_later_than_it() {
    for (h, projector, store) in grouped_harnesses().await {
        let practice = ORGANIZATIONS[0];
        ask_to_be_security_official(&store, practice, "alice").await;
        let store = Arc::new(store);
        // Many at once, so that rows and commands reach the appender while it writes a
        // group, as under load: each row must go with its command's group or an earlier one.
        let mut callers = JoinSet::new();
        for n in 0..40 {
            let (people, store, database) = (projector.people(), store.clone(), h.database.clone());
            callers.spawn(async move {
                let name = format!("caller-{n}");
                let email = format!("{name}@example.org");
                let recorded = people
                    .record(&person(&name), Some(&name), Some(&email))
                    .unwrap();
                let command = request(practice, &name, Role::StaffUser, None);
                store
                    .execute(practice, command, HashMap::new(), |_, _| ())
                    .await
                    .unwrap();
                // The command answered: its row is there without waiting for the row's
                // own answer.
                let found = directory(&database).await.contains_key(&name);
                recorded.committed().await.unwrap();
                (name, found)
            });
        }
        while let Some(caller) = callers.join_next().await {
            let (name, found) = caller.unwrap();
            assert!(found, "{}: {name}'s row came after their command", h.label);
        }
        projector.shutdown().await;
    }
}

#[tokio::test]
async fn a_callers_directory_row_with_no_command_after_it_is_committed_by_itself() {
    for (h, projector, _) in grouped_harnesses().await {
        let recorded = projector
            .people()
            .record(&person("bob"), Some("Bob"), None)
            .unwrap();
        let committed = tokio::time::timeout(WAIT, recorded.committed()).await;
        assert!(
            matches!(committed, Ok(Ok(()))),
            "{}: {committed:?}",
            h.label
        );
        assert_eq!(
            directory(&h.database).await.get("bob"),
            Some(&(Some("Bob".to_string()), None)),
            "{}",
            h.label
        );
        projector.shutdown().await;
    }
}
