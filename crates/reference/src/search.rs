//! Organization search as the seeds' "Connect to an Organization" screen does
//! it: complete TINs and IDs only (a partial TIN must reveal nothing), and a
//! typeahead on legal business names.
//!
//! Names are indexed once per scope in a sorted word map whose postings are
//! positions in (legal name, id) order, so a prefix is a range scan and the
//! intersection of the query words comes out already in result order.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;

use access_domain::identifiers::{
    ApmEntityId, OrganizationId, OrganizationKind, Tin, VirtualGroupId,
};
use access_domain::proof::ApmModel;

use crate::data::{OrganizationRecord, ReferenceData};

/// Why a search was refused (as opposed to finding nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SearchError {
    #[error("Enter a legal business name or a complete ID to search")]
    EmptyQuery,
    /// The seeds' exact wording, shown under the entry field.
    #[error("Your Virtual Group ID is invalid")]
    InvalidVirtualGroupId,
    #[error("apmModel is required: choose the APM model before searching for an APM Entity")]
    ApmModelRequired,
}

/// The set of organizations one name search runs over: APM entities are only
/// ever searched within the model the person chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum NameScope {
    Practice,
    Registry,
    ApmEntity(ApmModel),
}

impl NameScope {
    fn of(record: &OrganizationRecord) -> Option<Self> {
        match record.kind {
            OrganizationKind::Practice => Some(Self::Practice),
            OrganizationKind::Registry => Some(Self::Registry),
            OrganizationKind::ApmEntity => record.apm_model.map(Self::ApmEntity),
            // Found by complete ID only, never by name.
            OrganizationKind::VirtualGroup => None,
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct NameIndex {
    /// Organization indexes in (lower-cased legal name, id) order.
    ordered: Vec<u32>,
    /// Each name word and the sorted positions (into `ordered`) of the names
    /// holding it.
    words: BTreeMap<String, Vec<u32>>,
}

/// Lower-cased words; apostrophes are dropped rather than split on, so
/// "St. Mary's" is found by "mary", "marys" and "mary's" alike.
fn words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    for c in text.chars() {
        if c == '\'' || c == '\u{2019}' {
            continue;
        }
        if c.is_alphanumeric() {
            current.extend(c.to_lowercase());
        } else if !current.is_empty() {
            words.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

impl NameIndex {
    pub(crate) fn build_all(organizations: &[OrganizationRecord]) -> HashMap<NameScope, NameIndex> {
        let mut members: HashMap<NameScope, Vec<(String, u32)>> = HashMap::new();
        for (index, record) in organizations.iter().enumerate() {
            if let Some(scope) = NameScope::of(record) {
                members
                    .entry(scope)
                    .or_default()
                    .push((record.legal_business_name.to_lowercase(), index as u32));
            }
        }
        members
            .into_iter()
            .map(|(scope, mut names)| {
                names.sort_unstable_by(|(a_name, a), (b_name, b)| {
                    a_name.cmp(b_name).then_with(|| {
                        organizations[*a as usize]
                            .id
                            .cmp(&organizations[*b as usize].id)
                    })
                });
                let mut index = NameIndex::default();
                for (position, (name, organization)) in names.into_iter().enumerate() {
                    let position = position as u32;
                    index.ordered.push(organization);
                    for word in words(&name) {
                        let postings = index.words.entry(word).or_default();
                        if postings.last() != Some(&position) {
                            postings.push(position);
                        }
                    }
                }
                (scope, index)
            })
            .collect()
    }

    /// Organizations every query word is a prefix of a name word of, at most
    /// `first`, in result order.
    fn find(&self, query: &str, first: usize) -> Vec<u32> {
        let mut query_words = words(query);
        // Longest first: usually the most selective, so the candidate set
        // shrinks early.
        query_words.sort_unstable_by_key(|word| std::cmp::Reverse(word.len()));
        query_words.dedup();
        let mut candidates: Option<Vec<u32>> = None;
        for word in &query_words {
            let mut postings: Vec<u32> = Vec::new();
            let mut ranges = 0;
            for (_, positions) in self
                .words
                .range::<str, _>((Bound::Included(word.as_str()), Bound::Unbounded))
                .take_while(|(key, _)| key.starts_with(word.as_str()))
            {
                ranges += 1;
                match &candidates {
                    // Once candidates exist only they can survive: keep the
                    // union small by collecting just those.
                    Some(current) => postings.extend(
                        positions
                            .iter()
                            .copied()
                            .filter(|position| current.binary_search(position).is_ok()),
                    ),
                    None => postings.extend_from_slice(positions),
                }
            }
            if ranges > 1 {
                postings.sort_unstable();
                postings.dedup();
            }
            if postings.is_empty() {
                return Vec::new();
            }
            candidates = Some(postings);
        }
        candidates
            .unwrap_or_default()
            .into_iter()
            .take(first)
            .map(|position| self.ordered[position as usize])
            .collect()
    }
}

impl ReferenceData {
    /// Finds organizations of `kind` as domain.md specifies, at most `first`.
    /// Finding nothing is an empty list; only a query that cannot be run is
    /// an error.
    pub fn search(
        &self,
        kind: OrganizationKind,
        query: &str,
        apm_model: Option<ApmModel>,
        first: usize,
    ) -> Result<Vec<&OrganizationRecord>, SearchError> {
        let query = query.trim();
        if !query.chars().any(char::is_alphanumeric) {
            return Err(SearchError::EmptyQuery);
        }
        match kind {
            OrganizationKind::Practice | OrganizationKind::Registry => {
                let compact: String = query
                    .chars()
                    .filter(|c| *c != '-' && !c.is_whitespace())
                    .collect();
                if compact.chars().all(|c| c.is_ascii_digit()) {
                    // A TIN is matched only when complete, so typing one
                    // digit at a time reveals nothing about which exist.
                    let Ok(tin) = Tin::parse(&compact) else {
                        return Ok(Vec::new());
                    };
                    let id = if kind == OrganizationKind::Practice {
                        OrganizationId::practice(tin)
                    } else {
                        OrganizationId::registry(tin)
                    };
                    return Ok(self.organization(&id).into_iter().take(first).collect());
                }
                let scope = if kind == OrganizationKind::Practice {
                    NameScope::Practice
                } else {
                    NameScope::Registry
                };
                Ok(self.find_names(scope, query, first))
            }
            OrganizationKind::VirtualGroup => {
                let id =
                    VirtualGroupId::parse(query).map_err(|_| SearchError::InvalidVirtualGroupId)?;
                let record = self
                    .organization(&OrganizationId::virtual_group(id))
                    .ok_or(SearchError::InvalidVirtualGroupId)?;
                Ok(std::iter::once(record).take(first).collect())
            }
            OrganizationKind::ApmEntity => {
                let model = apm_model.ok_or(SearchError::ApmModelRequired)?;
                let exact = ApmEntityId::parse(query)
                    .ok()
                    .and_then(|id| self.organization(&OrganizationId::apm_entity(id)))
                    .filter(|record| record.apm_model == Some(model));
                let mut results: Vec<&OrganizationRecord> = exact.into_iter().collect();
                // One more than needed, in case the exact match is among them.
                let named =
                    self.find_names(NameScope::ApmEntity(model), query, first.saturating_add(1));
                for record in named {
                    if results.len() >= first {
                        break;
                    }
                    if exact.is_none_or(|found| found.id != record.id) {
                        results.push(record);
                    }
                }
                results.truncate(first);
                Ok(results)
            }
        }
    }

    fn find_names(&self, scope: NameScope, query: &str, first: usize) -> Vec<&OrganizationRecord> {
        self.name_indexes
            .get(&scope)
            .map(|index| {
                index
                    .find(query, first)
                    .into_iter()
                    .map(|organization| self.organization_at(organization))
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture;

    fn ids(results: Result<Vec<&OrganizationRecord>, SearchError>) -> Vec<String> {
        results
            .unwrap()
            .iter()
            .map(|record| record.id.to_string())
            .collect()
    }

    fn practices(query: &str) -> Vec<String> {
        ids(fixture::data().search(OrganizationKind::Practice, query, None, 10))
    }

    #[test]
    fn a_complete_tin_finds_its_practice_with_or_without_separators() {
        for query in ["123456789", "123-45-6789", " 12 345 6789 "] {
            assert_eq!(practices(query), vec!["practice:123456789"], "{query:?}");
        }
    }

    #[test]
    fn a_partial_or_overlong_tin_finds_nothing() {
        for query in ["1", "1234", "12345678", "1234567890", "123-45-678"] {
            assert!(practices(query).is_empty(), "{query:?}");
        }
    }

    #[test]
    fn a_tin_finds_only_organizations_of_the_kind_searched() {
        let data = fixture::data();
        assert!(ids(data.search(OrganizationKind::Practice, "234567891", None, 10)).is_empty());
        assert_eq!(
            ids(data.search(OrganizationKind::Registry, "234567891", None, 10)),
            vec!["registry:234567891"]
        );
        assert!(ids(data.search(OrganizationKind::Registry, "123456789", None, 10)).is_empty());
    }

    #[test]
    fn a_name_is_found_by_the_prefix_of_any_of_its_words() {
        assert_eq!(
            practices("green"),
            vec![
                "practice:567891234",
                "practice:123456789",
                "practice:789123456"
            ]
        );
        assert_eq!(
            practices("clin"),
            vec!["practice:123456789", "practice:789123456"]
        );
        assert_eq!(
            practices("GREENVILLE"),
            vec!["practice:123456789", "practice:789123456"]
        );
    }

    #[test]
    fn every_query_word_must_start_a_word_of_the_name() {
        assert_eq!(
            practices("med cli"),
            vec!["practice:123456789", "practice:789123456"]
        );
        assert_eq!(
            practices("cli  med"),
            vec!["practice:123456789", "practice:789123456"]
        );
        assert!(practices("ville").is_empty());
        assert!(practices("green family").is_empty());
        assert_eq!(
            practices("family"),
            vec!["practice:678912345", "practice:345678912"]
        );
    }

    #[test]
    fn apostrophes_and_punctuation_in_names_do_not_get_in_the_way() {
        for query in ["mary", "mary's", "Marys", "st. mary", "st mary's medical"] {
            assert_eq!(practices(query), vec!["practice:456789123"], "{query:?}");
        }
    }

    #[test]
    fn results_are_ordered_by_legal_name_then_id_and_limited_to_first() {
        let data = fixture::data();
        let all = ids(data.search(OrganizationKind::Practice, "g", None, 10));
        assert_eq!(
            all,
            vec![
                "practice:567891234",
                "practice:123456789",
                "practice:789123456"
            ]
        );
        let two = ids(data.search(OrganizationKind::Practice, "g", None, 2));
        assert_eq!(two, all[..2].to_vec());
        assert!(ids(data.search(OrganizationKind::Practice, "g", None, 0)).is_empty());
    }

    #[test]
    fn registries_are_found_by_name_among_registries_only() {
        let data = fixture::data();
        assert_eq!(
            ids(data.search(OrganizationKind::Registry, "american med", None, 10)),
            vec!["registry:234567891"]
        );
        assert!(ids(data.search(OrganizationKind::Registry, "greenville", None, 10)).is_empty());
        assert!(ids(data.search(OrganizationKind::Practice, "american", None, 10)).is_empty());
    }

    #[test]
    fn a_blank_query_is_refused() {
        let data = fixture::data();
        for kind in OrganizationKind::ALL {
            for query in ["", "   ", " - -"] {
                assert_eq!(
                    data.search(kind, query, Some(ApmModel::CpcPlus), 10)
                        .unwrap_err(),
                    SearchError::EmptyQuery
                );
            }
        }
    }

    #[test]
    fn a_virtual_group_is_found_by_its_complete_id_only() {
        let data = fixture::data();
        for query in ["VG-00123", " vg-00123 "] {
            assert_eq!(
                ids(data.search(OrganizationKind::VirtualGroup, query, None, 10)),
                vec!["virtual-group:VG-00123"]
            );
        }
    }

    #[test]
    fn a_wrong_virtual_group_id_gets_the_guides_message() {
        let data = fixture::data();
        for query in ["VG-0012", "VG-99999", "Ohio Valley", "VG 00123"] {
            let error = data
                .search(OrganizationKind::VirtualGroup, query, None, 10)
                .unwrap_err();
            assert_eq!(error, SearchError::InvalidVirtualGroupId, "{query:?}");
            assert_eq!(error.to_string(), "Your Virtual Group ID is invalid");
        }
    }

    #[test]
    fn an_apm_entity_search_needs_the_model() {
        let error = fixture::data()
            .search(OrganizationKind::ApmEntity, "buckeye", None, 10)
            .unwrap_err();
        assert_eq!(error, SearchError::ApmModelRequired);
        assert!(error.to_string().contains("apmModel"));
    }

    #[test]
    fn apm_entities_are_found_by_name_within_the_chosen_model() {
        let data = fixture::data();
        let search =
            |query, model| ids(data.search(OrganizationKind::ApmEntity, query, Some(model), 10));
        assert_eq!(
            search("buckeye", ApmModel::SharedSavingsProgram),
            vec!["apm-entity:A1234"]
        );
        assert_eq!(
            search("buckeye", ApmModel::ComprehensiveEsrdCare),
            vec!["apm-entity:E1234"]
        );
        assert!(search("buckeye", ApmModel::CpcPlus).is_empty());
        assert!(search("anything", ApmModel::DirectContracting).is_empty());
    }

    #[test]
    fn an_apm_entity_is_found_by_its_exact_id_within_the_chosen_model() {
        let data = fixture::data();
        let search =
            |query, model| ids(data.search(OrganizationKind::ApmEntity, query, Some(model), 10));
        assert_eq!(
            search("t100001", ApmModel::CpcPlus),
            vec!["apm-entity:T100001"]
        );
        assert_eq!(
            search("OCM-1234", ApmModel::OncologyCareModel),
            vec!["apm-entity:OCM-1234"]
        );
        assert_eq!(
            search("A1234", ApmModel::SharedSavingsProgram),
            vec!["apm-entity:A1234"]
        );
        assert!(search("T100001", ApmModel::SharedSavingsProgram).is_empty());
        assert!(search("T10000", ApmModel::CpcPlus).is_empty());
    }

    #[test]
    fn an_exact_id_comes_first_and_is_not_repeated_by_the_name_match() {
        let mut value = fixture::json();
        value["apmEntities"][3]["legalBusinessName"] = serde_json::json!("T100001 Practice Site");
        let data = ReferenceData::from_json_str(&value.to_string()).unwrap();
        let found = ids(data.search(
            OrganizationKind::ApmEntity,
            "T100001",
            Some(ApmModel::CpcPlus),
            10,
        ));
        assert_eq!(found, vec!["apm-entity:T100001"]);
        let none = ids(data.search(
            OrganizationKind::ApmEntity,
            "T100001",
            Some(ApmModel::CpcPlus),
            0,
        ));
        assert!(none.is_empty());
    }

    #[test]
    fn name_words_are_lower_cased_and_split_on_punctuation() {
        assert_eq!(words("Ear, Nose & Throat"), vec!["ear", "nose", "throat"]);
        assert_eq!(words("St. Mary’s OB/GYN"), vec!["st", "marys", "ob", "gyn"]);
    }
}
