//! Memory a process keeps per person (rate limits, recent failures, names lately
//! recorded). Every such map meets new people for as long as the process lives, so each
//! drops what has gone stale once it has grown.

use std::collections::HashMap;

use access_domain::identifiers::PersonId;

/// People tracked before the first pruning.
pub(crate) const FIRST_PRUNING_AT: usize = 10_000;

pub(crate) struct PerPerson<V> {
    pub(crate) entries: HashMap<PersonId, V>,
    prune_at: usize,
}

impl<V> Default for PerPerson<V> {
    fn default() -> Self {
        Self {
            entries: HashMap::new(),
            prune_at: FIRST_PRUNING_AT,
        }
    }
}

impl<V> PerPerson<V> {
    /// Drops the entries `stale` picks once the map holds twice the people the last
    /// pruning kept, so the map stays within twice the people still in use, and pruning
    /// stays rare when most of them are.
    pub(crate) fn prune_when_grown(&mut self, mut stale: impl FnMut(&V) -> bool) {
        if self.entries.len() >= self.prune_at {
            self.entries.retain(|_, entry| !stale(entry));
            self.prune_at = FIRST_PRUNING_AT.max(self.entries.len() * 2);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(number: usize) -> PersonId {
        PersonId::parse(&format!("person-{number}")).unwrap()
    }

    #[test]
    fn stale_entries_are_dropped_once_the_map_reaches_the_first_pruning() {
        let mut map = PerPerson::default();
        for number in 0..FIRST_PRUNING_AT - 1 {
            map.entries.insert(person(number), number % 2 == 0);
        }
        map.prune_when_grown(|&stale| stale);
        assert_eq!(map.entries.len(), FIRST_PRUNING_AT - 1, "not grown yet");
        map.entries.insert(person(FIRST_PRUNING_AT), false);
        map.prune_when_grown(|&stale| stale);
        assert_eq!(map.entries.len(), FIRST_PRUNING_AT / 2);
        assert!(map.entries.values().all(|&stale| !stale));
    }

    #[test]
    fn a_map_of_people_all_in_use_is_pruned_again_only_at_twice_its_size() {
        let mut map = PerPerson::default();
        for number in 0..FIRST_PRUNING_AT {
            map.entries.insert(person(number), ());
        }
        map.prune_when_grown(|_| false);
        let mut prunings = 0;
        for number in FIRST_PRUNING_AT..2 * FIRST_PRUNING_AT {
            map.entries.insert(person(number), ());
            map.prune_when_grown(|_| {
                prunings += 1;
                false
            });
        }
        assert_eq!(
            prunings,
            2 * FIRST_PRUNING_AT,
            "one pass, at twice the size"
        );
    }
}
