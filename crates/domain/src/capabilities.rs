//! What each role lets a person do, per organization type: the seeds' role
//! tables (domain.md, "Roles and what each lets you do") as data, in one place.

use serde::{Deserialize, Serialize};

use crate::identifiers::OrganizationKind;
use crate::roles::Role;

/// The contract's `Capability` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Capability {
    ViewEligibility,
    ViewClaimsMeasures,
    PhysicianComparePreview,
    SubmitData,
    ViewPerformanceFeedback,
    ViewApmIncentive,
    RequestTargetedReview,
    ViewParticipants,
    RegisterWebInterface,
    RegisterCahps,
    DownloadApiToken,
    SelfNomination,
    ManageAccess,
}

impl Capability {
    pub const ALL: [Capability; 13] = [
        Capability::ViewEligibility,
        Capability::ViewClaimsMeasures,
        Capability::PhysicianComparePreview,
        Capability::SubmitData,
        Capability::ViewPerformanceFeedback,
        Capability::ViewApmIncentive,
        Capability::RequestTargetedReview,
        Capability::ViewParticipants,
        Capability::RegisterWebInterface,
        Capability::RegisterCahps,
        Capability::DownloadApiToken,
        Capability::SelfNomination,
        Capability::ManageAccess,
    ];

    /// The contract's name, e.g. `SUBMIT_DATA`.
    pub fn name(self) -> &'static str {
        match self {
            Capability::ViewEligibility => "VIEW_ELIGIBILITY",
            Capability::ViewClaimsMeasures => "VIEW_CLAIMS_MEASURES",
            Capability::PhysicianComparePreview => "PHYSICIAN_COMPARE_PREVIEW",
            Capability::SubmitData => "SUBMIT_DATA",
            Capability::ViewPerformanceFeedback => "VIEW_PERFORMANCE_FEEDBACK",
            Capability::ViewApmIncentive => "VIEW_APM_INCENTIVE",
            Capability::RequestTargetedReview => "REQUEST_TARGETED_REVIEW",
            Capability::ViewParticipants => "VIEW_PARTICIPANTS",
            Capability::RegisterWebInterface => "REGISTER_WEB_INTERFACE",
            Capability::RegisterCahps => "REGISTER_CAHPS",
            Capability::DownloadApiToken => "DOWNLOAD_API_TOKEN",
            Capability::SelfNomination => "SELF_NOMINATION",
            Capability::ManageAccess => "MANAGE_ACCESS",
        }
    }
}

use Capability::*;

const PRACTICE_STAFF: &[Capability] = &[
    ViewEligibility,
    ViewClaimsMeasures,
    PhysicianComparePreview,
    SubmitData,
    ViewPerformanceFeedback,
    ViewApmIncentive,
    RequestTargetedReview,
];
const PRACTICE_SECURITY_OFFICIAL: &[Capability] = &[
    ViewEligibility,
    ViewClaimsMeasures,
    PhysicianComparePreview,
    SubmitData,
    ViewPerformanceFeedback,
    ViewApmIncentive,
    RequestTargetedReview,
    RegisterWebInterface,
    RegisterCahps,
    ManageAccess,
];
const APM_STAFF: &[Capability] = &[
    SubmitData,
    ViewParticipants,
    ViewEligibility,
    ViewPerformanceFeedback,
    PhysicianComparePreview,
];
const APM_SECURITY_OFFICIAL: &[Capability] = &[
    SubmitData,
    ViewParticipants,
    ViewEligibility,
    ViewPerformanceFeedback,
    PhysicianComparePreview,
    RegisterWebInterface,
    RegisterCahps,
    ManageAccess,
];
/// "Submit data for all clients; view preliminary feedback for clients."
const REGISTRY_STAFF: &[Capability] = &[SubmitData, ViewPerformanceFeedback];
const REGISTRY_SECURITY_OFFICIAL: &[Capability] = &[
    SubmitData,
    ViewPerformanceFeedback,
    DownloadApiToken,
    SelfNomination,
    ManageAccess,
];
const VIRTUAL_GROUP_STAFF: &[Capability] = &[
    ViewParticipants,
    SubmitData,
    ViewPerformanceFeedback,
    PhysicianComparePreview,
];
const VIRTUAL_GROUP_SECURITY_OFFICIAL: &[Capability] = &[
    ViewParticipants,
    SubmitData,
    ViewPerformanceFeedback,
    PhysicianComparePreview,
    RegisterWebInterface,
    RegisterCahps,
    ManageAccess,
];
/// View-only, about the clinician's own data: feedback, final score and payment
/// adjustment, eligibility, APM incentive.
const CLINICIAN: &[Capability] = &[ViewPerformanceFeedback, ViewEligibility, ViewApmIncentive];

/// Everything `role` lets a person do in an organization of type `kind`.
pub fn capabilities(role: Role, kind: OrganizationKind) -> &'static [Capability] {
    match (role, kind) {
        (Role::StaffUser, OrganizationKind::Practice) => PRACTICE_STAFF,
        (Role::SecurityOfficial, OrganizationKind::Practice) => PRACTICE_SECURITY_OFFICIAL,
        (Role::StaffUser, OrganizationKind::ApmEntity) => APM_STAFF,
        (Role::SecurityOfficial, OrganizationKind::ApmEntity) => APM_SECURITY_OFFICIAL,
        (Role::StaffUser, OrganizationKind::Registry) => REGISTRY_STAFF,
        (Role::SecurityOfficial, OrganizationKind::Registry) => REGISTRY_SECURITY_OFFICIAL,
        (Role::StaffUser, OrganizationKind::VirtualGroup) => VIRTUAL_GROUP_STAFF,
        (Role::SecurityOfficial, OrganizationKind::VirtualGroup) => VIRTUAL_GROUP_SECURITY_OFFICIAL,
        // Registries have no clinicians.
        (Role::Clinician, OrganizationKind::Registry) => &[],
        (Role::Clinician, _) => CLINICIAN,
    }
}

/// Whether `role` lets a person do `capability` in an organization of type `kind`.
pub fn allows(role: Role, kind: OrganizationKind, capability: Capability) -> bool {
    capabilities(role, kind).contains(&capability)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hand-written copy of the seeds' role tables, shared with the
    /// end-to-end test of `authorize`.
    const SEED_TABLE: &str = include_str!("../tests/fixtures/seed_role_table.txt");

    fn kind_named(name: &str) -> OrganizationKind {
        *OrganizationKind::ALL
            .iter()
            .find(|kind| format!("{kind:?}").to_uppercase() == name.replace('_', ""))
            .unwrap_or_else(|| panic!("unknown organization type {name}"))
    }

    fn capability_named(name: &str) -> Capability {
        *Capability::ALL
            .iter()
            .find(|capability| capability.name() == name)
            .unwrap_or_else(|| panic!("unknown capability {name}"))
    }

    #[test]
    fn the_matrix_matches_the_seed_role_tables_cell_by_cell() {
        let rows: Vec<Vec<&str>> = SEED_TABLE
            .lines()
            .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
            .map(|line| line.split_whitespace().collect())
            .collect();
        assert_eq!(
            rows.len(),
            OrganizationKind::ALL.len() * Capability::ALL.len()
        );
        for row in rows {
            let (kind, capability) = (kind_named(row[0]), capability_named(row[1]));
            for (role, expected) in [
                (Role::StaffUser, row[2]),
                (Role::SecurityOfficial, row[3]),
                (Role::Clinician, row[4]),
            ] {
                assert_eq!(
                    allows(role, kind, capability),
                    expected == "y",
                    "{role:?} {kind:?} {capability:?}"
                );
            }
        }
    }

    #[test]
    fn a_security_official_can_do_everything_a_staff_user_can() {
        for kind in OrganizationKind::ALL {
            for capability in capabilities(Role::StaffUser, kind) {
                assert!(
                    allows(Role::SecurityOfficial, kind, *capability),
                    "{kind:?} {capability:?}"
                );
            }
        }
    }

    #[test]
    fn a_clinician_never_submits_previews_or_manages() {
        for kind in OrganizationKind::ALL {
            for capability in [
                SubmitData,
                PhysicianComparePreview,
                ManageAccess,
                ViewParticipants,
            ] {
                assert!(
                    !allows(Role::Clinician, kind, capability),
                    "{kind:?} {capability:?}"
                );
            }
        }
    }
}
