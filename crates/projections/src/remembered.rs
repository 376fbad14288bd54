//! Manage Access pages and pending queues kept in memory by the process that writes the
//! access view (docs/adr/12-remembered-answers.md), and the texts of answers built from
//! them or from organizations' grants (docs/adr/13-remembered-answer-texts.md).
//!
//! That process applies every change to the view: it forgets the answers a change
//! touches before the change's transaction commits, and keeps no answer until the
//! commit is done, so a caller who saw the view's new position, wherever it read it
//! (read-your-writes), never gets an answer from before it. Processes that do not
//! write the view keep nothing and read the tables.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use access_domain::identifiers::{OrganizationId, PersonId};

use crate::access::{ManageAccess, PendingRequests};

/// Past this many people with answers kept, every answer is forgotten at once: their
/// next reads cost one query each, which is what they cost before, and memory stays
/// bounded without ordering the people by use (about 2 KB each).
const PEOPLE: usize = 20_000;
/// Past this many bytes of answer texts (keys included), every text is forgotten at once
/// and the pages stay: a text is rebuilt from its page at the cost of one GraphQL
/// execution.
const TEXT_BYTES: usize = 32 * 1024 * 1024;
/// A person asking for more differently-shaped reads than this (pages after many cursors,
/// say) has their texts forgotten and starts again: one person cannot take the memory.
const TEXTS_PER_PERSON: usize = 16;

#[derive(Default)]
pub(crate) struct Remembered {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Whether this process writes the access view: only then does it hear of every
    /// change before anyone can wait for it.
    writing: bool,
    /// Between a change's forgetting and the end of its commit.
    committing: bool,
    /// Counts the view's changes (and every forgetting of everything). An answer read
    /// from the tables is kept only when none came between the read's start and its
    /// keeping: a change in between may be missing from it and was forgotten already.
    changes: u64,
    people: HashMap<PersonId, Answers>,
    /// The length of every kept answer text and its key.
    text_bytes: usize,
    /// The people whose kept answers list or count something of each organization.
    watching: HashMap<OrganizationId, HashSet<PersonId>>,
}

/// One person's kept answers, and the organizations they depend on.
#[derive(Default)]
struct Answers {
    manage_access: Option<ManageAccess>,
    pending: HashMap<PendingKey, PendingRequests>,
    /// Whole GraphQL answers built from the pages above, or from the grants of some of
    /// the organizations below (`authorize`), by what asked for them (the caller's
    /// document, operation and variables): `crates/api` keeps them.
    texts: HashMap<String, Arc<str>>,
    organizations: HashSet<OrganizationId>,
}

impl Answers {
    fn text_bytes(&self) -> usize {
        self.texts
            .iter()
            .map(|(key, text)| key.len() + text.len())
            .sum()
    }
}

/// The arguments of one pending-queue page.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct PendingKey {
    pub organization: Option<OrganizationId>,
    pub first: usize,
    pub after: Option<String>,
}

/// Taken before a read; keeping what the read found needs it unexpired.
#[derive(Clone, Copy, Debug)]
pub struct ReadTicket(u64);

impl Remembered {
    fn state(&self) -> MutexGuard<'_, State> {
        // The state is a cache: whatever a panicking holder left is still consistent
        // enough to forget, which the next change or stop does.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// `None` when this process does not write the access view: its answers may not be
    /// kept.
    pub(crate) fn ticket(&self) -> Option<ReadTicket> {
        let state = self.state();
        state.writing.then_some(ReadTicket(state.changes))
    }

    pub(crate) fn manage_access(&self, person: &PersonId) -> Option<ManageAccess> {
        self.state()
            .people
            .get(person)
            .and_then(|answers| answers.manage_access.clone())
    }

    pub(crate) fn pending(&self, person: &PersonId, key: &PendingKey) -> Option<PendingRequests> {
        self.state()
            .people
            .get(person)
            .and_then(|answers| answers.pending.get(key).cloned())
    }

    pub(crate) fn text(&self, person: &PersonId, key: &str) -> Option<Arc<str>> {
        self.state()
            .people
            .get(person)
            .and_then(|answers| answers.texts.get(key).cloned())
    }

    /// Keeps the text of an answer built, under `ticket`, from pages of `person` that are
    /// kept: it depends on what they depend on, and goes when they go. Not kept when the
    /// person has no page kept (one was read while a change committed, say): its
    /// dependencies would be unknown.
    pub(crate) fn keep_text(
        &self,
        ticket: ReadTicket,
        person: &PersonId,
        key: String,
        text: Arc<str>,
    ) {
        let mut state = self.state();
        if state.may_keep(ticket) && state.people.contains_key(person) {
            state.keep_text(person, key, text);
        }
    }

    /// Keeps the text of an answer read under `ticket` that depends on nothing but the
    /// grants of `organizations` (`authorize` about the caller): it goes when any of them
    /// changes, whether or not `person` has pages kept.
    pub(crate) fn keep_text_about(
        &self,
        ticket: ReadTicket,
        person: &PersonId,
        key: String,
        text: Arc<str>,
        organizations: Vec<OrganizationId>,
    ) {
        let mut state = self.state();
        if state.keep(ticket, person, organizations, |_| {}) {
            state.keep_text(person, key, text);
        }
    }

    /// Keeps a Manage Access page read under `ticket`. It depends on the organizations
    /// it names: connections (counts included), feedback organizations, open requests.
    pub(crate) fn keep_manage_access(
        &self,
        ticket: ReadTicket,
        person: &PersonId,
        page: &ManageAccess,
    ) {
        let organizations = page
            .tabs
            .iter()
            .flat_map(|tab| &tab.connections)
            .map(|connection| &connection.organization)
            .chain(&page.performance_feedback_organizations)
            .chain(
                page.open_requests
                    .iter()
                    .map(|request| &request.id.organization),
            )
            .cloned();
        self.state().keep(ticket, person, organizations, |answers| {
            answers.manage_access = Some(page.clone());
        });
    }

    /// Keeps a page of the pending queue read under `ticket`; it depends on every
    /// organization `person` is Security Official of, listed or not, since a new request
    /// there belongs in it.
    pub(crate) fn keep_pending(
        &self,
        ticket: ReadTicket,
        person: &PersonId,
        key: PendingKey,
        page: &PendingRequests,
        official_of: Vec<OrganizationId>,
    ) {
        self.state().keep(ticket, person, official_of, |answers| {
            answers.pending.insert(key, page.clone());
        });
    }

    /// The view is about to commit a change to these organizations and people (the
    /// person each event is about): forgets every answer that may show it, and keeps
    /// none until [`settled`](Self::settled), since a read meanwhile may come from
    /// either side of the commit.
    pub(crate) fn changing<'a>(
        &self,
        touched: impl IntoIterator<Item = (&'a OrganizationId, Option<&'a PersonId>)>,
    ) {
        let mut state = self.state();
        state.changes += 1;
        state.committing = true;
        if state.people.is_empty() {
            return;
        }
        let mut forget = HashSet::new();
        for (organization, person) in touched {
            forget.extend(person.cloned());
            if let Some(watchers) = state.watching.get(organization) {
                forget.extend(watchers.iter().cloned());
            }
        }
        for person in forget {
            state.forget(&person);
        }
    }

    /// The commit announced by [`changing`](Self::changing) is done, or failed.
    pub(crate) fn settled(&self) {
        let mut state = self.state();
        state.changes += 1;
        state.committing = false;
    }

    /// Whether this process writes the access view from now on. Either way everything
    /// kept is forgotten: another process may have changed the view meanwhile.
    pub(crate) fn writing(&self, writing: bool) {
        let mut state = self.state();
        state.forget_everything();
        state.writing = writing;
    }

    /// The view changed in a way nobody here heard (another writer moved its
    /// checkpoint, or a rebuild swapped its tables in).
    pub(crate) fn forget_everything(&self) {
        self.state().forget_everything();
    }
}

impl State {
    fn keep(
        &mut self,
        ticket: ReadTicket,
        person: &PersonId,
        organizations: impl IntoIterator<Item = OrganizationId>,
        store: impl FnOnce(&mut Answers),
    ) -> bool {
        if !self.may_keep(ticket) {
            return false;
        }
        if self.people.len() >= PEOPLE && !self.people.contains_key(person) {
            self.forget_everything();
        }
        let answers = self.people.entry(person.clone()).or_default();
        store(answers);
        for organization in organizations {
            if answers.organizations.insert(organization.clone()) {
                self.watching
                    .entry(organization)
                    .or_default()
                    .insert(person.clone());
            }
        }
        true
    }

    /// Adds a text to the answers `person` has kept, within the bounds on texts.
    fn keep_text(&mut self, person: &PersonId, key: String, text: Arc<str>) {
        let length = key.len() + text.len();
        if self.text_bytes + length > TEXT_BYTES {
            self.forget_texts();
        }
        let Some(answers) = self.people.get_mut(person) else {
            return;
        };
        let mut freed = answers
            .texts
            .remove(&key)
            .map_or(0, |old| key.len() + old.len());
        if answers.texts.len() >= TEXTS_PER_PERSON {
            freed += answers.text_bytes();
            answers.texts.clear();
        }
        answers.texts.insert(key, text);
        self.text_bytes = self.text_bytes - freed + length;
    }

    /// Whether what was read under `ticket` may be kept: no change came since it was
    /// taken, and none is committing.
    fn may_keep(&self, ticket: ReadTicket) -> bool {
        self.writing && !self.committing && ticket.0 == self.changes
    }

    fn forget(&mut self, person: &PersonId) {
        let Some(answers) = self.people.remove(person) else {
            return;
        };
        self.text_bytes -= answers.text_bytes();
        for organization in answers.organizations {
            if let Some(watchers) = self.watching.get_mut(&organization) {
                watchers.remove(person);
                if watchers.is_empty() {
                    self.watching.remove(&organization);
                }
            }
        }
    }

    fn forget_everything(&mut self) {
        self.changes += 1;
        self.people.clear();
        self.watching.clear();
        self.text_bytes = 0;
    }

    fn forget_texts(&mut self) {
        for answers in self.people.values_mut() {
            answers.texts.clear();
        }
        self.text_bytes = 0;
    }
}

impl fmt::Debug for Remembered {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state();
        formatter
            .debug_struct("Remembered")
            .field("writing", &state.writing)
            .field("people", &state.people.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::Connection;
    use crate::access::ManageAccessTab;
    use crate::read::Page;
    use access_domain::identifiers::OrganizationKind;
    use access_domain::roles::Role;
    use chrono::Utc;

    fn person(name: &str) -> PersonId {
        PersonId::parse(name).unwrap()
    }

    fn organization(id: &str) -> OrganizationId {
        OrganizationId::parse(id).unwrap()
    }

    const PRACTICE: &str = "practice:123456789";
    const ENTITY: &str = "apm-entity:A1234";
    const REGISTRY: &str = "registry:234567891";

    fn connected_to(id: &str) -> ManageAccess {
        ManageAccess {
            tabs: vec![ManageAccessTab {
                kind: OrganizationKind::Practice,
                connections: vec![Connection {
                    organization: organization(id),
                    role: Role::StaffUser,
                    granted_at: Utc::now(),
                    users: None,
                }],
            }],
            open_requests: Vec::new(),
            performance_feedback_organizations: Vec::new(),
        }
    }

    fn writing() -> Remembered {
        let remembered = Remembered::default();
        remembered.writing(true);
        remembered
    }

    fn keep(remembered: &Remembered, name: &str, page: &ManageAccess) {
        let ticket = remembered.ticket().expect("writing");
        remembered.keep_manage_access(ticket, &person(name), page);
    }

    #[test]
    fn answers_are_kept_only_while_this_process_writes_the_access_view() {
        let remembered = Remembered::default();
        assert!(remembered.ticket().is_none());
        remembered.writing(true);
        keep(&remembered, "alice", &connected_to(PRACTICE));
        assert!(remembered.manage_access(&person("alice")).is_some());
        remembered.writing(false);
        assert!(remembered.manage_access(&person("alice")).is_none());
        assert!(remembered.ticket().is_none());
    }

    #[test]
    fn a_change_forgets_the_answers_that_show_its_organization_and_keeps_the_others() {
        let remembered = writing();
        keep(&remembered, "alice", &connected_to(PRACTICE));
        keep(&remembered, "bob", &connected_to(ENTITY));
        remembered.changing([(&organization(PRACTICE), Some(&person("carol")))]);
        remembered.settled();
        assert!(remembered.manage_access(&person("alice")).is_none());
        assert!(remembered.manage_access(&person("bob")).is_some());
    }

    #[test]
    fn a_change_about_a_person_forgets_their_answers_whichever_organization_it_is_in() {
        let remembered = writing();
        keep(&remembered, "alice", &connected_to(PRACTICE));
        remembered.changing([(&organization(ENTITY), Some(&person("alice")))]);
        remembered.settled();
        assert!(remembered.manage_access(&person("alice")).is_none());
    }

    #[test]
    fn an_answer_read_before_a_change_is_not_kept_even_when_the_change_seems_unrelated() {
        let remembered = writing();
        let ticket = remembered.ticket().unwrap();
        remembered.changing([(&organization(ENTITY), Some(&person("bob")))]);
        remembered.settled();
        remembered.keep_manage_access(ticket, &person("alice"), &connected_to(PRACTICE));
        assert!(remembered.manage_access(&person("alice")).is_none());
    }

    #[test]
    fn no_answer_is_kept_while_a_change_commits_and_untouched_ones_stay() {
        let remembered = writing();
        keep(&remembered, "bob", &connected_to(ENTITY));
        remembered.changing([(&organization(PRACTICE), Some(&person("carol")))]);
        let ticket = remembered.ticket().unwrap();
        remembered.keep_manage_access(ticket, &person("alice"), &connected_to(PRACTICE));
        assert!(remembered.manage_access(&person("alice")).is_none());
        assert!(remembered.manage_access(&person("bob")).is_some());
        remembered.settled();
        keep(&remembered, "alice", &connected_to(PRACTICE));
        assert!(remembered.manage_access(&person("alice")).is_some());
    }

    #[test]
    fn a_pending_queue_depends_on_every_organization_its_reader_is_security_official_of() {
        let remembered = writing();
        let key = PendingKey {
            organization: None,
            first: 20,
            after: None,
        };
        let empty = PendingRequests {
            page: Page::of(Vec::new(), 20, |_| String::new()),
            total_count: 0,
        };
        let ticket = remembered.ticket().unwrap();
        let alice = person("alice");
        remembered.keep_pending(
            ticket,
            &alice,
            key.clone(),
            &empty,
            vec![organization(PRACTICE)],
        );
        assert_eq!(remembered.pending(&alice, &key), Some(empty));
        remembered.changing([(&organization(PRACTICE), Some(&person("bob")))]);
        remembered.settled();
        assert_eq!(remembered.pending(&alice, &key), None);
    }

    #[test]
    fn past_its_bound_of_people_everything_kept_is_forgotten_at_once() {
        let remembered = writing();
        for number in 0..PEOPLE {
            keep(
                &remembered,
                &format!("person-{number}"),
                &connected_to(PRACTICE),
            );
        }
        assert!(remembered.manage_access(&person("person-0")).is_some());
        keep(&remembered, "one-more", &connected_to(PRACTICE));
        assert!(remembered.manage_access(&person("person-0")).is_none());
        assert!(remembered.manage_access(&person("one-more")).is_some());
    }

    fn keep_text(remembered: &Remembered, name: &str, key: &str, text: &str) {
        let ticket = remembered.ticket().expect("writing");
        remembered.keep_text(ticket, &person(name), key.to_owned(), Arc::from(text));
    }

    fn text(remembered: &Remembered, name: &str, key: &str) -> Option<String> {
        remembered
            .text(&person(name), key)
            .map(|text| text.to_string())
    }

    #[test]
    fn an_answer_text_is_forgotten_with_the_page_it_was_built_from() {
        let remembered = writing();
        keep(&remembered, "alice", &connected_to(PRACTICE));
        keep(&remembered, "bob", &connected_to(ENTITY));
        keep_text(&remembered, "alice", "page", "alice's page");
        keep_text(&remembered, "bob", "page", "bob's page");
        assert_eq!(
            text(&remembered, "alice", "page").as_deref(),
            Some("alice's page")
        );
        remembered.changing([(&organization(PRACTICE), None)]);
        remembered.settled();
        assert_eq!(text(&remembered, "alice", "page"), None);
        assert_eq!(
            text(&remembered, "bob", "page").as_deref(),
            Some("bob's page")
        );
    }

    #[test]
    fn an_answer_about_organizations_is_kept_without_pages_and_goes_when_one_of_them_changes() {
        let remembered = writing();
        let ticket = remembered.ticket().unwrap();
        remembered.keep_text_about(
            ticket,
            &person("alice"),
            "authorize".into(),
            Arc::from("allowed"),
            vec![organization(PRACTICE), organization(ENTITY)],
        );
        assert_eq!(
            text(&remembered, "alice", "authorize").as_deref(),
            Some("allowed")
        );
        remembered.changing([(&organization(REGISTRY), Some(&person("bob")))]);
        remembered.settled();
        assert!(text(&remembered, "alice", "authorize").is_some());
        remembered.changing([(&organization(ENTITY), Some(&person("bob")))]);
        remembered.settled();
        assert_eq!(text(&remembered, "alice", "authorize"), None);
        remembered.keep_text_about(
            ticket,
            &person("alice"),
            "authorize".into(),
            Arc::from("from before the change"),
            vec![organization(PRACTICE)],
        );
        assert_eq!(text(&remembered, "alice", "authorize"), None);
    }

    #[test]
    fn an_answer_text_is_not_kept_for_a_person_whose_pages_are_not() {
        let remembered = writing();
        keep_text(&remembered, "alice", "page", "alice's page");
        assert_eq!(text(&remembered, "alice", "page"), None);
    }

    #[test]
    fn an_answer_text_built_before_a_change_or_during_its_commit_is_not_kept() {
        let remembered = writing();
        keep(&remembered, "alice", &connected_to(PRACTICE));
        let before = remembered.ticket().unwrap();
        remembered.changing([(&organization(ENTITY), None)]);
        let during = remembered.ticket().unwrap();
        remembered.keep_text(during, &person("alice"), "page".into(), Arc::from("during"));
        assert_eq!(text(&remembered, "alice", "page"), None);
        remembered.settled();
        remembered.keep_text(before, &person("alice"), "page".into(), Arc::from("before"));
        assert_eq!(text(&remembered, "alice", "page"), None);
    }

    #[test]
    fn past_their_bound_in_bytes_the_texts_are_forgotten_and_the_pages_stay() {
        let remembered = writing();
        keep(&remembered, "alice", &connected_to(PRACTICE));
        keep(&remembered, "bob", &connected_to(ENTITY));
        let large = "x".repeat(TEXT_BYTES / 2);
        keep_text(&remembered, "alice", "page", &large);
        keep_text(&remembered, "alice", "page", &large);
        assert!(
            text(&remembered, "alice", "page").is_some(),
            "a text replaced counts once"
        );
        keep_text(&remembered, "bob", "page", &large);
        assert_eq!(text(&remembered, "alice", "page"), None);
        assert!(text(&remembered, "bob", "page").is_some());
        assert!(remembered.manage_access(&person("alice")).is_some());
        assert_eq!(remembered.state().text_bytes, "page".len() + large.len());
    }

    #[test]
    fn a_person_past_their_number_of_texts_starts_again_and_others_keep_theirs() {
        let remembered = writing();
        keep(&remembered, "alice", &connected_to(PRACTICE));
        keep(&remembered, "bob", &connected_to(ENTITY));
        keep_text(&remembered, "bob", "page", "bob's page");
        for number in 0..TEXTS_PER_PERSON {
            keep_text(&remembered, "alice", &format!("page {number}"), "text");
        }
        assert!(text(&remembered, "alice", "page 0").is_some());
        keep_text(&remembered, "alice", "one more", "text");
        assert_eq!(text(&remembered, "alice", "page 0"), None);
        assert!(text(&remembered, "alice", "one more").is_some());
        assert!(text(&remembered, "bob", "page").is_some());
        let bytes = "one more".len() + "text".len() + "page".len() + "bob's page".len();
        assert_eq!(remembered.state().text_bytes, bytes);
    }
}
