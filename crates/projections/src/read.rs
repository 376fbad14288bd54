//! The read side: [`Views`] answers the contract's queries from the view tables.

use std::sync::Arc;

use access_domain::identifiers::{OrganizationId, PersonId};
use access_store::Database;

use crate::remembered::{ReadTicket, Remembered};

/// Reads over the views, and the one change people make to them (marking a notification
/// read); authorization stays with the caller.
///
/// What a read returns is as fresh as the views: right after a command, call
/// [`Projector::wait_for`](crate::Projector::wait_for) with the command's position first.
#[derive(Clone, Debug)]
pub struct Views {
    /// For the reads: on SQLite, connections apart from the one that writes.
    pub(crate) database: Database,
    /// For the one write.
    pub(crate) writes: Database,
    /// Manage Access pages and pending queues, while this process writes the access view.
    pub(crate) remembered: Arc<Remembered>,
}

impl Views {
    /// Reads every answer from the tables; [`Projector::views`](crate::Projector::views)
    /// also remembers some while its process writes them.
    pub fn new(database: Database) -> Self {
        Views {
            database: database.for_reads(),
            writes: database,
            remembered: Arc::default(),
        }
    }

    /// Taken before a read whose whole answer's text may then be kept
    /// ([`keep_answer_text`](Self::keep_answer_text),
    /// [`keep_answer_text_about`](Self::keep_answer_text_about)); `None` when these views
    /// remember nothing.
    pub fn read_ticket(&self) -> Option<ReadTicket> {
        self.remembered.ticket()
    }

    /// The text of an answer given to `person` for `key`, kept since and still true.
    pub fn answer_text(&self, person: &PersonId, key: &str) -> Option<Arc<str>> {
        self.remembered.text(person, key)
    }

    /// Keeps the text of an answer to `person` for `key`: the caller's document,
    /// operation and variables, which must read nothing but the person's Manage Access
    /// page and pending queue (and what never changes). It is forgotten with them
    /// (docs/adr/13-remembered-answer-texts.md).
    pub fn keep_answer_text(
        &self,
        ticket: ReadTicket,
        person: &PersonId,
        key: String,
        text: Arc<str>,
    ) {
        self.remembered.keep_text(ticket, person, key, text);
    }

    /// Keeps the text of an answer to `person` for `key` that reads nothing but the
    /// grants of `organizations` (and what never changes): `authorize` about the caller.
    /// It is forgotten when the access view changes any of them, as the pages are.
    pub fn keep_answer_text_about(
        &self,
        ticket: ReadTicket,
        person: &PersonId,
        key: String,
        text: Arc<str>,
        organizations: Vec<OrganizationId>,
    ) {
        self.remembered
            .keep_text_about(ticket, person, key, text, organizations);
    }
}

/// One page of a cursor-paginated list.
#[derive(Clone, Debug, PartialEq)]
pub struct Page<T> {
    pub edges: Vec<Edge<T>>,
    pub has_next_page: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Edge<T> {
    /// Opaque; pass it back as `after` to continue after this item.
    pub cursor: String,
    pub node: T,
}

impl<T> Page<T> {
    /// Keeps the first `first` of up to `first + 1` items fetched: the extra one only says
    /// whether there is a next page.
    pub(crate) fn of(mut items: Vec<T>, first: usize, cursor: impl Fn(&T) -> String) -> Self {
        let has_next_page = items.len() > first;
        items.truncate(first);
        Page {
            edges: items
                .into_iter()
                .map(|node| Edge {
                    cursor: cursor(&node),
                    node,
                })
                .collect(),
            has_next_page,
        }
    }

    pub fn end_cursor(&self) -> Option<&str> {
        self.edges.last().map(|edge| edge.cursor.as_str())
    }
}

/// `first + 1` as a SQL limit.
pub(crate) fn limit(first: usize) -> i64 {
    i64::try_from(first).unwrap_or(i64::MAX - 1) + 1
}
