//! Connecting as a Clinician (domain.md, "Connecting as a Clinician"): the
//! automatic name match, manual verification by NPI + SSN + PTAN, and the
//! limit that keeps an SSN guesser from trying forever.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use access_domain::identifiers::{Npi, OrganizationId, PersonId, Ptan, Ssn};
use access_reference::{ClinicianRecord, ReferenceData};

use crate::error::{ApiError, ApiResult};
use crate::per_person::PerPerson;

/// Failed manual verifications allowed per person within [`FAILURE_WINDOW`].
pub const MAX_FAILURES: usize = 5;
pub const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);

/// Failed verifications per person in a sliding window, in this process's
/// memory: a restart forgets them, which costs a guesser a restart per five
/// tries at most.
#[derive(Default)]
pub struct FailureLimiter {
    failures: Mutex<PerPerson<VecDeque<Instant>>>,
}

impl FailureLimiter {
    /// Refuses while the person has used up their failures in the window.
    pub fn check(&self, person: &PersonId) -> ApiResult<()> {
        let mut failures = self.failures.lock().expect("limiter lock");
        let Some(recent) = failures.entries.get_mut(person) else {
            return Ok(());
        };
        let now = Instant::now();
        while recent
            .front()
            .is_some_and(|at| now.duration_since(*at) >= FAILURE_WINDOW)
        {
            recent.pop_front();
        }
        match recent.front() {
            Some(oldest) if recent.len() >= MAX_FAILURES => {
                let wait = FAILURE_WINDOW.saturating_sub(now.duration_since(*oldest));
                Err(ApiError::RateLimited {
                    retry_after_minutes: wait.as_secs().div_ceil(60).max(1),
                })
            }
            _ => Ok(()),
        }
    }

    pub fn record_failure(&self, person: &PersonId) {
        let mut failures = self.failures.lock().expect("limiter lock");
        let now = Instant::now();
        failures.prune_when_grown(|recent| {
            recent
                .back()
                .is_none_or(|latest| now.duration_since(*latest) >= FAILURE_WINDOW)
        });
        failures
            .entries
            .entry(person.clone())
            .or_default()
            .push_back(now);
    }
}

/// The one clinician whose first and last name equal the display name's,
/// ignoring case and spacing; any split of the name into first and last is
/// tried, so "Mary Ann Smith" finds "Mary Ann" + "Smith".
pub fn unique_name_match<'a>(
    reference: &'a ReferenceData,
    display_name: &str,
) -> Option<&'a ClinicianRecord> {
    let words: Vec<&str> = display_name.split_whitespace().collect();
    let mut found: Vec<&ClinicianRecord> = (1..words.len())
        .flat_map(|split| {
            reference.clinicians_named(&words[..split].join(" "), &words[split..].join(" "))
        })
        .collect();
    found.sort_by(|a, b| a.npi.cmp(&b.npi));
    found.dedup_by(|a, b| a.npi == b.npi);
    match found.as_slice() {
        [only] => Some(only),
        _ => None,
    }
}

/// The manual proof, all three fields present and well-formed.
pub struct ManualProof {
    pub npi: Npi,
    pub ssn: Ssn,
    pub ptan: Ptan,
}

fn present(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|value| !value.is_empty())
}

impl ManualProof {
    pub fn parse(npi: Option<&str>, ssn: Option<&str>, ptan: Option<&str>) -> ApiResult<Self> {
        let (Some(npi), Some(ssn), Some(ptan)) = (present(npi), present(ssn), present(ptan)) else {
            return Err(ApiError::ClinicianInfoMissing);
        };
        Ok(ManualProof {
            npi: Npi::parse(npi).map_err(|error| ApiError::invalid("manual.npi", error))?,
            ssn: Ssn::parse(ssn).map_err(|error| ApiError::invalid("manual.ssn", error))?,
            ptan: Ptan::parse(ptan).map_err(|error| ApiError::invalid("manual.ptan", error))?,
        })
    }

    /// The clinician the three values identify together, if they do.
    pub fn verify<'a>(&self, reference: &'a ReferenceData) -> Option<&'a ClinicianRecord> {
        let clinician = reference.clinician(&self.npi)?;
        let enrolled = clinician
            .enrollments
            .iter()
            .any(|enrollment| enrollment.ptan == self.ptan);
        (enrolled && reference.ssn_matches(&self.npi, &self.ssn)).then_some(clinician)
    }
}

/// Every organization the clinician is associated with, in a fixed order so
/// two people claiming one NPI meet at the same first organization.
pub fn associated_organizations(clinician: &ClinicianRecord) -> Vec<OrganizationId> {
    let mut organizations: Vec<OrganizationId> = clinician
        .enrollments
        .iter()
        .map(|enrollment| OrganizationId::practice(enrollment.tin.clone()))
        .chain(
            clinician
                .apm_entity_ids
                .iter()
                .cloned()
                .map(OrganizationId::apm_entity),
        )
        .chain(
            clinician
                .virtual_group_ids
                .iter()
                .cloned()
                .map(OrganizationId::virtual_group),
        )
        .collect();
    organizations.sort();
    organizations.dedup();
    organizations
}

pub fn display_name(clinician: &ClinicianRecord) -> String {
    format!("{} {}", clinician.first_name, clinician.last_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person() -> PersonId {
        PersonId::parse("guesser").unwrap()
    }

    #[test]
    fn the_limiter_refuses_after_five_failures_and_says_when_to_retry() {
        let limiter = FailureLimiter::default();
        for _ in 0..MAX_FAILURES {
            assert!(limiter.check(&person()).is_ok());
            limiter.record_failure(&person());
        }
        match limiter.check(&person()) {
            Err(ApiError::RateLimited {
                retry_after_minutes,
            }) => assert_eq!(retry_after_minutes, 15),
            other => panic!("expected a refusal, got {other:?}"),
        }
        assert!(limiter
            .check(&PersonId::parse("someone-else").unwrap())
            .is_ok());
    }

    #[test]
    fn the_automatic_match_ignores_case_and_spacing_but_nothing_fuzzier() {
        let reference = ReferenceData::demo();
        let laura = unique_name_match(&reference, "  laura   COLBURN ").expect("a match");
        assert_eq!(laura.npi.as_str(), "1234567893");
        assert!(unique_name_match(&reference, "Laura Colbur").is_none());
        assert!(unique_name_match(&reference, "Laura").is_none());
    }

    #[test]
    fn a_manual_proof_needs_all_three_fields() {
        for (npi, ssn, ptan) in [
            (None, Some("1"), Some("1")),
            (Some("1"), Some(" "), Some("1")),
            (Some("1"), Some("1"), None),
        ] {
            assert!(matches!(
                ManualProof::parse(npi, ssn, ptan),
                Err(ApiError::ClinicianInfoMissing)
            ));
        }
    }

    #[test]
    fn a_manual_proof_verifies_only_when_npi_ssn_and_ptan_agree() {
        let reference = ReferenceData::demo();
        let proof = |ssn: &str, ptan: &str| {
            ManualProof::parse(Some("1245319599"), Some(ssn), Some(ptan)).unwrap()
        };
        assert!(proof("987-65-4321", "rf5678").verify(&reference).is_some());
        assert!(proof("987-65-4320", "RF5678").verify(&reference).is_none());
        assert!(proof("987654321", "AB1234").verify(&reference).is_none());
    }
}
