//! GraphQL documents parsed once per text: clients send the same few documents
//! over and over (their variables change, the text does not), and parsing one
//! took a fifth of an `authorize` call's CPU (docs/performance.md, workload c).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_graphql::parser::{parse_query, types::ExecutableDocument};

/// Past this many texts, every kept document is dropped at once: clients
/// that inline their arguments send a new text each time, and would otherwise
/// grow the map without end. They pay one parse per request, as without it.
const DOCUMENTS: usize = 512;
/// Longer texts are parsed every time: the contract's largest query is a
/// fraction of this.
const LONGEST_KEPT: usize = 4 * 1024;

#[derive(Default)]
pub(crate) struct ParsedDocuments {
    parsed: Mutex<HashMap<String, Arc<ExecutableDocument>>>,
}

impl ParsedDocuments {
    /// The document `query` parses to; `None` when it is not valid GraphQL.
    pub(crate) fn parse(&self, query: &str) -> Option<Arc<ExecutableDocument>> {
        if let Some(document) = self.kept().get(query) {
            return Some(document.clone());
        }
        let document = Arc::new(parse_query(query).ok()?);
        if query.len() <= LONGEST_KEPT {
            let mut kept = self.kept();
            if kept.len() >= DOCUMENTS {
                kept.clear();
            }
            kept.insert(query.to_owned(), document.clone());
        }
        Some(document)
    }

    fn kept(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<ExecutableDocument>>> {
        // A map of parsed texts is whole between two statements: a panic
        // elsewhere while it was held leaves nothing half-written.
        self.parsed
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept(documents: &ParsedDocuments) -> usize {
        documents.kept().len()
    }

    #[test]
    fn a_document_is_parsed_once_and_the_same_text_answers_the_same_document() {
        let documents = ParsedDocuments::default();
        let query = "{ authorize(organizationId: $org) { allowed } }";
        let first = documents.parse(query).unwrap();
        assert_eq!(kept(&documents), 1);
        let again = documents.parse(query).unwrap();
        assert_eq!(format!("{again:?}"), format!("{first:?}"));
        assert_eq!(kept(&documents), 1);
    }

    #[test]
    fn a_text_that_is_not_graphql_is_refused_and_not_kept() {
        let documents = ParsedDocuments::default();
        assert!(documents.parse("{ manageAccess { ").is_none());
        assert_eq!(kept(&documents), 0);
    }

    #[test]
    fn past_its_bound_every_kept_document_is_dropped_at_once() {
        let documents = ParsedDocuments::default();
        for number in 0..DOCUMENTS {
            documents.parse(&format!("{{ f{number} }}")).unwrap();
        }
        assert_eq!(kept(&documents), DOCUMENTS);
        documents.parse("{ oneMore }").unwrap();
        assert_eq!(kept(&documents), 1);
    }

    #[test]
    fn a_long_document_is_parsed_every_time_and_not_kept() {
        let documents = ParsedDocuments::default();
        let long = format!("{{ a {} }}", "b ".repeat(LONGEST_KEPT));
        assert!(documents.parse(&long).is_some());
        assert_eq!(kept(&documents), 0);
    }
}
