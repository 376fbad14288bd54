//! What a first Security Official must prove, per organization type and APM
//! model (domain.md, "Organizations"), and the shape of a proof.

use serde::{Deserialize, Serialize};

use crate::identifiers::{ApmEntityId, Npi, OrganizationKind, Ptan, Tin, VendorId};

/// APM models; the serialized names are the contract's `ApmModel` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ApmModel {
    SharedSavingsProgram,
    NextGenerationAco,
    CpcPlus,
    ComprehensiveEsrdCare,
    OncologyCareModel,
    BpciAdvanced,
    IndependenceAtHome,
    MarylandTcoc,
    VermontAllPayerAco,
    ComprehensiveCareForJointReplacement,
    PrimaryCareFirst,
    DirectContracting,
}

impl ApmModel {
    pub const ALL: [ApmModel; 12] = [
        ApmModel::SharedSavingsProgram,
        ApmModel::NextGenerationAco,
        ApmModel::CpcPlus,
        ApmModel::ComprehensiveEsrdCare,
        ApmModel::OncologyCareModel,
        ApmModel::BpciAdvanced,
        ApmModel::IndependenceAtHome,
        ApmModel::MarylandTcoc,
        ApmModel::VermontAllPayerAco,
        ApmModel::ComprehensiveCareForJointReplacement,
        ApmModel::PrimaryCareFirst,
        ApmModel::DirectContracting,
    ];

    /// CPC+, CEC and OCM entities are searched by site/entity ID as well as name.
    pub fn searchable_by_entity_id(self) -> bool {
        matches!(
            self,
            ApmModel::CpcPlus | ApmModel::ComprehensiveEsrdCare | ApmModel::OncologyCareModel
        )
    }
}

/// One field a proof may have to carry; `name()` is the GraphQL input field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ProofField {
    Tin,
    Npi,
    Ptan,
    VendorId,
    ApmEntityId,
    /// `participantTins`, with the number of TINs required.
    ParticipantTins(u8),
}

impl ProofField {
    pub fn name(self) -> &'static str {
        match self {
            ProofField::Tin => "tin",
            ProofField::Npi => "npi",
            ProofField::Ptan => "ptan",
            ProofField::VendorId => "vendorId",
            ProofField::ApmEntityId => "apmEntityId",
            ProofField::ParticipantTins(_) => "participantTins",
        }
    }
}

/// The fields a first Security Official must supply. For the APM models the
/// seeds are silent on, this product asks for the APM Entity ID and one
/// participant TIN (docs/domain-decisions.md).
pub fn required_proof(
    kind: OrganizationKind,
    model: Option<ApmModel>,
    single_tin: bool,
) -> &'static [ProofField] {
    use ProofField::*;
    match (kind, model) {
        (OrganizationKind::Practice, _) => &[Tin, Npi, Ptan],
        (OrganizationKind::Registry, _) => &[Tin, VendorId],
        (OrganizationKind::VirtualGroup, _) => &[ParticipantTins(2)],
        (
            OrganizationKind::ApmEntity,
            Some(ApmModel::SharedSavingsProgram | ApmModel::NextGenerationAco),
        ) => {
            if single_tin {
                &[ApmEntityId, ParticipantTins(1)]
            } else {
                &[ApmEntityId, ParticipantTins(2)]
            }
        }
        (
            OrganizationKind::ApmEntity,
            Some(ApmModel::CpcPlus | ApmModel::ComprehensiveEsrdCare | ApmModel::OncologyCareModel),
        ) => &[ApmEntityId, Tin, Npi],
        (OrganizationKind::ApmEntity, _) => &[ApmEntityId, ParticipantTins(1)],
    }
}

/// A proof as parsed at the edge. It lives only while the command is handled:
/// events carry [`SecurityOfficialProof::masked`] and nothing else of it, and
/// `Debug` prints the masked form so a logged command leaks nothing.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecurityOfficialProof {
    pub tin: Option<Tin>,
    pub npi: Option<Npi>,
    pub ptan: Option<Ptan>,
    pub vendor_id: Option<VendorId>,
    pub apm_entity_id: Option<ApmEntityId>,
    pub participant_tins: Vec<Tin>,
}

impl SecurityOfficialProof {
    /// The fields of `required` this proof lacks.
    pub fn missing(&self, required: &[ProofField]) -> Vec<ProofField> {
        required
            .iter()
            .copied()
            .filter(|field| match field {
                ProofField::Tin => self.tin.is_none(),
                ProofField::Npi => self.npi.is_none(),
                ProofField::Ptan => self.ptan.is_none(),
                ProofField::VendorId => self.vendor_id.is_none(),
                ProofField::ApmEntityId => self.apm_entity_id.is_none(),
                ProofField::ParticipantTins(count) => {
                    self.participant_tins.len() < usize::from(*count)
                }
            })
            .collect()
    }

    /// The supplied values with all but their last digits hidden, e.g.
    /// `tin *****6789, npi ******7893, ptan ****34`.
    pub fn masked(&self) -> String {
        let mut parts = Vec::new();
        if let Some(tin) = &self.tin {
            parts.push(format!("tin {}", tin.masked()));
        }
        if let Some(npi) = &self.npi {
            parts.push(format!("npi {}", npi.masked()));
        }
        if let Some(ptan) = &self.ptan {
            parts.push(format!("ptan {}", ptan.masked()));
        }
        if let Some(vendor) = &self.vendor_id {
            parts.push(format!("vendorId {}", vendor.masked()));
        }
        if let Some(entity) = &self.apm_entity_id {
            parts.push(format!("apmEntityId {}", entity.masked()));
        }
        if !self.participant_tins.is_empty() {
            let tins: Vec<String> = self.participant_tins.iter().map(Tin::masked).collect();
            parts.push(format!("participantTins {}", tins.join(" ")));
        }
        parts.join(", ")
    }
}

impl std::fmt::Debug for SecurityOfficialProof {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecurityOfficialProof({})", self.masked())
    }
}

/// Why a proof did not match the reference data. Messages never quote values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ProofMismatch {
    TinDoesNotMatchOrganization,
    ClinicianNotEnrolledWithTin,
    PtanDoesNotMatchEnrollment,
    VendorIdDoesNotMatchRegistry,
    ApmEntityIdDoesNotMatch,
    ParticipantTinNotInOrganization,
    ParticipantTinsNotDistinct,
}

impl ProofMismatch {
    pub fn message(self) -> &'static str {
        match self {
            ProofMismatch::TinDoesNotMatchOrganization => {
                "the TIN does not match this organization"
            }
            ProofMismatch::ClinicianNotEnrolledWithTin => {
                "the NPI is not a clinician of that TIN in this organization"
            }
            ProofMismatch::PtanDoesNotMatchEnrollment => {
                "the PTAN does not match that clinician's enrollment"
            }
            ProofMismatch::VendorIdDoesNotMatchRegistry => {
                "the Vendor ID does not match this registry"
            }
            ProofMismatch::ApmEntityIdDoesNotMatch => {
                "the APM Entity ID does not match this entity"
            }
            ProofMismatch::ParticipantTinNotInOrganization => {
                "a participant TIN is not a participant of this organization"
            }
            ProofMismatch::ParticipantTinsNotDistinct => "the participant TINs must be different",
        }
    }
}

/// The reference data's answer to a proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProofVerdict {
    Accepted,
    /// Required fields are absent: the request is refused, no attempt counted.
    Incomplete(Vec<ProofField>),
    /// The proof does not match: a failed attempt.
    Mismatch(ProofMismatch),
    /// The organization is not in the reference data.
    UnknownOrganization,
    /// A registry that CMS has not approved cannot be connected.
    NotConnectable,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_practice_needs_tin_npi_and_ptan() {
        assert_eq!(
            required_proof(OrganizationKind::Practice, None, false),
            &[ProofField::Tin, ProofField::Npi, ProofField::Ptan]
        );
    }

    #[test]
    fn a_single_tin_aco_gives_one_tin_and_other_acos_two() {
        let aco = |single| {
            required_proof(
                OrganizationKind::ApmEntity,
                Some(ApmModel::SharedSavingsProgram),
                single,
            )
        };
        assert_eq!(
            aco(true),
            &[ProofField::ApmEntityId, ProofField::ParticipantTins(1)]
        );
        assert_eq!(
            aco(false),
            &[ProofField::ApmEntityId, ProofField::ParticipantTins(2)]
        );
    }

    #[test]
    fn site_based_models_need_the_site_id_a_tin_and_an_npi() {
        for model in [
            ApmModel::CpcPlus,
            ApmModel::ComprehensiveEsrdCare,
            ApmModel::OncologyCareModel,
        ] {
            assert_eq!(
                required_proof(OrganizationKind::ApmEntity, Some(model), false),
                &[ProofField::ApmEntityId, ProofField::Tin, ProofField::Npi],
                "{model:?}"
            );
        }
    }

    #[test]
    fn models_the_seeds_are_silent_on_need_the_entity_id_and_one_tin() {
        assert_eq!(
            required_proof(
                OrganizationKind::ApmEntity,
                Some(ApmModel::PrimaryCareFirst),
                false
            ),
            &[ProofField::ApmEntityId, ProofField::ParticipantTins(1)]
        );
    }

    #[test]
    fn the_masked_proof_never_holds_a_full_value() {
        let proof = SecurityOfficialProof {
            tin: Some(Tin::parse("123456789").unwrap()),
            npi: Some(Npi::parse("1234567893").unwrap()),
            ptan: Some(Ptan::parse("AB1234").unwrap()),
            ..Default::default()
        };
        let masked = proof.masked();
        assert_eq!(masked, "tin *****6789, npi ******7893, ptan ****34");
        assert!(!masked.contains("123456789") && !masked.contains("1234567893"));
    }

    #[test]
    fn missing_lists_absent_fields_and_short_participant_lists() {
        let proof = SecurityOfficialProof {
            participant_tins: vec![Tin::parse("123456789").unwrap()],
            ..Default::default()
        };
        assert_eq!(
            proof.missing(&[ProofField::ApmEntityId, ProofField::ParticipantTins(2)]),
            vec![ProofField::ApmEntityId, ProofField::ParticipantTins(2)]
        );
    }
}
