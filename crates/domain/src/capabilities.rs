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

    /// The seeds' role tables, written out by hand cell by cell: (type, capability,
    /// Staff User, Security Official, Clinician).
    const SEED_TABLE: &[(OrganizationKind, Capability, bool, bool, bool)] = {
        use OrganizationKind::*;
        &[
            (Practice, ViewEligibility, true, true, true),
            (Practice, ViewClaimsMeasures, true, true, false),
            (Practice, PhysicianComparePreview, true, true, false),
            (Practice, SubmitData, true, true, false),
            (Practice, ViewPerformanceFeedback, true, true, true),
            (Practice, ViewApmIncentive, true, true, true),
            (Practice, RequestTargetedReview, true, true, false),
            (Practice, ViewParticipants, false, false, false),
            (Practice, RegisterWebInterface, false, true, false),
            (Practice, RegisterCahps, false, true, false),
            (Practice, DownloadApiToken, false, false, false),
            (Practice, SelfNomination, false, false, false),
            (Practice, ManageAccess, false, true, false),
            (ApmEntity, ViewEligibility, true, true, true),
            (ApmEntity, ViewClaimsMeasures, false, false, false),
            (ApmEntity, PhysicianComparePreview, true, true, false),
            (ApmEntity, SubmitData, true, true, false),
            (ApmEntity, ViewPerformanceFeedback, true, true, true),
            (ApmEntity, ViewApmIncentive, false, false, true),
            (ApmEntity, RequestTargetedReview, false, false, false),
            (ApmEntity, ViewParticipants, true, true, false),
            (ApmEntity, RegisterWebInterface, false, true, false),
            (ApmEntity, RegisterCahps, false, true, false),
            (ApmEntity, DownloadApiToken, false, false, false),
            (ApmEntity, SelfNomination, false, false, false),
            (ApmEntity, ManageAccess, false, true, false),
            (Registry, ViewEligibility, false, false, false),
            (Registry, ViewClaimsMeasures, false, false, false),
            (Registry, PhysicianComparePreview, false, false, false),
            (Registry, SubmitData, true, true, false),
            (Registry, ViewPerformanceFeedback, true, true, false),
            (Registry, ViewApmIncentive, false, false, false),
            (Registry, RequestTargetedReview, false, false, false),
            (Registry, ViewParticipants, false, false, false),
            (Registry, RegisterWebInterface, false, false, false),
            (Registry, RegisterCahps, false, false, false),
            (Registry, DownloadApiToken, false, true, false),
            (Registry, SelfNomination, false, true, false),
            (Registry, ManageAccess, false, true, false),
            (VirtualGroup, ViewEligibility, false, false, true),
            (VirtualGroup, ViewClaimsMeasures, false, false, false),
            (VirtualGroup, PhysicianComparePreview, true, true, false),
            (VirtualGroup, SubmitData, true, true, false),
            (VirtualGroup, ViewPerformanceFeedback, true, true, true),
            (VirtualGroup, ViewApmIncentive, false, false, true),
            (VirtualGroup, RequestTargetedReview, false, false, false),
            (VirtualGroup, ViewParticipants, true, true, false),
            (VirtualGroup, RegisterWebInterface, false, true, false),
            (VirtualGroup, RegisterCahps, false, true, false),
            (VirtualGroup, DownloadApiToken, false, false, false),
            (VirtualGroup, SelfNomination, false, false, false),
            (VirtualGroup, ManageAccess, false, true, false),
        ]
    };

    #[test]
    fn the_matrix_matches_the_seed_role_tables_cell_by_cell() {
        assert_eq!(
            SEED_TABLE.len(),
            OrganizationKind::ALL.len() * Capability::ALL.len()
        );
        for &(kind, capability, staff, security_official, clinician) in SEED_TABLE {
            for (role, expected) in [
                (Role::StaffUser, staff),
                (Role::SecurityOfficial, security_official),
                (Role::Clinician, clinician),
            ] {
                assert_eq!(
                    allows(role, kind, capability),
                    expected,
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
