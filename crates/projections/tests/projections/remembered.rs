//! Manage Access pages and pending queues remembered by the process that writes the
//! access view. Each test first shows the answer is served from memory (the row behind
//! it is erased and the answer stays), so the forgetting it checks cannot pass by
//! nothing having been kept.

use access_domain::identifiers::PersonId;
use access_domain::roles::Role;
use access_projections::{ManageAccess, Projector, View, Views};
use access_store::{Database, Pool};

use crate::common::{
    eventually, harnesses, options, person, request, Harness, GOOD_TIN, ORGANIZATIONS,
};

/// Deletes the person's grants from the view table directly, as no projector would:
/// an answer that still shows them came from memory.
async fn erase_grants_behind_the_views_back(h: &Harness, person: &PersonId) {
    // The two pools' queries are of different types: one text, bound and run on each.
    macro_rules! erase {
        ($pool:expr) => {
            sqlx::query("DELETE FROM view_grants WHERE person_id = $1")
                .bind(person.as_str())
                .execute($pool)
                .await
                .map(|_| ())
        };
    }
    match h.database.pool() {
        Pool::Postgres(pool) => erase!(pool),
        Pool::Sqlite(pool) => erase!(pool),
    }
    .unwrap();
}

fn connections(page: &ManageAccess) -> usize {
    page.tabs.iter().map(|tab| tab.connections.len()).sum()
}

fn pending_users(page: &ManageAccess) -> Vec<i64> {
    page.tabs
        .iter()
        .flat_map(|tab| &tab.connections)
        .filter_map(|connection| connection.users.map(|users| users.pending))
        .collect()
}

async fn security_official_of_the_practice(h: &Harness, projector: &Projector) {
    let practice = ORGANIZATIONS[0];
    h.run(
        practice,
        request(practice, "alice", Role::SecurityOfficial, Some(GOOD_TIN)),
    )
    .await;
    h.caught_up(projector).await;
}

/// Alice, Security Official of the practice, reads her page; then her grant is erased
/// from the table and the page she is answered is still the one she read.
async fn alices_page_served_from_memory(h: &Harness) -> (Projector, Views, ManageAccess) {
    let projector = h.projector();
    let views = projector.views();
    security_official_of_the_practice(h, &projector).await;
    let alice = person("alice");
    let before = views.manage_access(&alice).await.unwrap();
    erase_grants_behind_the_views_back(h, &alice).await;
    let remembered = views.manage_access(&alice).await.unwrap();
    assert_eq!(remembered, before, "{}: not served from memory", h.label);
    (projector, views, before)
}

#[tokio::test]
async fn a_remembered_manage_access_page_is_forgotten_when_its_organization_changes() {
    let practice = ORGANIZATIONS[0];
    for h in harnesses().await {
        let (projector, views, before) = alices_page_served_from_memory(&h).await;
        assert_eq!(pending_users(&before), [0], "{}", h.label);

        h.run(practice, request(practice, "bob", Role::StaffUser, None))
            .await;
        h.caught_up(&projector).await;
        let after = views.manage_access(&person("alice")).await.unwrap();
        assert_eq!(
            connections(&after),
            0,
            "{}: still the remembered page after bob's request",
            h.label
        );
        projector.shutdown().await;
    }
}

#[tokio::test]
async fn a_remembered_page_is_forgotten_when_its_reader_acts_in_an_organization_it_did_not_show() {
    let [practice, entity, ..] = ORGANIZATIONS;
    for h in harnesses().await {
        let (projector, views, before) = alices_page_served_from_memory(&h).await;
        assert!(before.open_requests.is_empty(), "{}", h.label);

        // A proof that does not match: the request stays open, proof rejected.
        h.run(
            entity,
            request(entity, "alice", Role::SecurityOfficial, Some("987654321")),
        )
        .await;
        h.caught_up(&projector).await;
        let after = views.manage_access(&person("alice")).await.unwrap();
        assert_eq!(
            (connections(&after), after.open_requests.len()),
            (0, 1),
            "{}: still the page from before alice's request to {entity} (read for {practice})",
            h.label
        );
        projector.shutdown().await;
    }
}

#[tokio::test]
async fn a_remembered_pending_queue_is_forgotten_when_a_request_arrives_where_its_reader_is_security_official(
) {
    let practice = ORGANIZATIONS[0];
    for h in harnesses().await {
        let projector = h.projector();
        let views = projector.views();
        security_official_of_the_practice(&h, &projector).await;
        h.run(practice, request(practice, "bob", Role::StaffUser, None))
            .await;
        h.caught_up(&projector).await;
        let alice = person("alice");
        let before = views
            .pending_requests(&alice, None, 20, None)
            .await
            .unwrap();
        assert_eq!(before.total_count, 1, "{}", h.label);
        // Without alice's grant the tables list nothing for her.
        erase_grants_behind_the_views_back(&h, &alice).await;
        let remembered = views
            .pending_requests(&alice, None, 20, None)
            .await
            .unwrap();
        assert_eq!(remembered, before, "{}: not served from memory", h.label);

        h.run(practice, request(practice, "carol", Role::StaffUser, None))
            .await;
        h.caught_up(&projector).await;
        let after = views
            .pending_requests(&alice, None, 20, None)
            .await
            .unwrap();
        assert_eq!(
            after.total_count, 0,
            "{}: still the remembered queue after carol's request",
            h.label
        );
        projector.shutdown().await;
    }
}

#[tokio::test]
async fn only_the_process_that_writes_the_access_view_remembers_answers() {
    for h in harnesses()
        .await
        .into_iter()
        .filter(|h| h.label == "postgres")
    {
        let writer = h.projector();
        assert!(
            eventually(|| writer.is_leading(View::Access)).await,
            "{}",
            h.label
        );
        let standing_by = Projector::start(Database::connect(&h.url).await.unwrap(), options());
        security_official_of_the_practice(&h, &writer).await;
        let alice = person("alice");
        let views: Views = standing_by.views();
        assert_eq!(connections(&views.manage_access(&alice).await.unwrap()), 1);

        erase_grants_behind_the_views_back(&h, &alice).await;
        assert_eq!(
            connections(&views.manage_access(&alice).await.unwrap()),
            0,
            "a process that does not write the view answered from memory"
        );
        standing_by.shutdown().await;
        writer.shutdown().await;
    }
}
