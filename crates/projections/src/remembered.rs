//! Manage Access pages and pending queues kept in memory by the process that writes the
//! access view (docs/adr/12-remembered-answers.md).
//!
//! That process applies every change to the view: it forgets the answers a change
//! touches before the change's transaction commits, and keeps no answer until the
//! commit is done, so a caller who saw the view's new position, wherever it read it
//! (read-your-writes), never gets an answer from before it. Processes that do not
//! write the view keep nothing and read the tables.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Mutex, MutexGuard};

use access_domain::identifiers::{OrganizationId, PersonId};

use crate::access::{ManageAccess, PendingRequests};

/// Past this many people with answers kept, every answer is forgotten at once: their
/// next reads cost one query each, which is what they cost before, and memory stays
/// bounded without ordering the people by use (about 2 KB each).
const PEOPLE: usize = 20_000;

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
    /// The people whose kept answers list or count something of each organization.
    watching: HashMap<OrganizationId, HashSet<PersonId>>,
}

/// One person's kept answers, and the organizations they depend on.
#[derive(Default)]
struct Answers {
    manage_access: Option<ManageAccess>,
    pending: HashMap<PendingKey, PendingRequests>,
    organizations: HashSet<OrganizationId>,
}

/// The arguments of one pending-queue page.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct PendingKey {
    pub organization: Option<OrganizationId>,
    pub first: usize,
    pub after: Option<String>,
}

/// Taken before a read of the tables; keeping its answer needs it unexpired.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ticket(u64);

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
    pub(crate) fn ticket(&self) -> Option<Ticket> {
        let state = self.state();
        state.writing.then_some(Ticket(state.changes))
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

    /// Keeps a Manage Access page read under `ticket`. It depends on the organizations
    /// it names: connections (counts included), feedback organizations, open requests.
    pub(crate) fn keep_manage_access(
        &self,
        ticket: Ticket,
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
        ticket: Ticket,
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
        ticket: Ticket,
        person: &PersonId,
        organizations: impl IntoIterator<Item = OrganizationId>,
        store: impl FnOnce(&mut Answers),
    ) {
        if !self.writing || self.committing || ticket.0 != self.changes {
            return;
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
    }

    fn forget(&mut self, person: &PersonId) {
        let Some(answers) = self.people.remove(person) else {
            return;
        };
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
}
