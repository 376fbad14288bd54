//! Checking a first Security Official's proof against the reference data,
//! per organization type and APM model (domain.md, "Organizations").

use access_domain::identifiers::{Npi, OrganizationId, OrganizationKind, Tin};
use access_domain::proof::{
    required_proof, ApmModel, ProofMismatch, ProofVerdict, SecurityOfficialProof,
};
use access_domain::services::ReferenceLookup;

use crate::data::{Enrollment, OrganizationRecord, ReferenceData};

impl ReferenceLookup for ReferenceData {
    fn check_proof(
        &self,
        organization: &OrganizationId,
        proof: &SecurityOfficialProof,
    ) -> ProofVerdict {
        let Some(record) = self.organization(organization) else {
            return ProofVerdict::UnknownOrganization;
        };
        if !record.approved {
            return ProofVerdict::NotConnectable;
        }
        let missing = proof.missing(required_proof(
            record.kind,
            record.apm_model,
            record.single_tin,
        ));
        if !missing.is_empty() {
            return ProofVerdict::Incomplete(missing);
        }
        match self.match_proof(record, proof) {
            Ok(()) => ProofVerdict::Accepted,
            Err(mismatch) => ProofVerdict::Mismatch(mismatch),
        }
    }
}

/// Participant TINs must be distinct (two TINs means two practices) and all
/// participants of the organization.
fn match_participants(record: &OrganizationRecord, tins: &[Tin]) -> Result<(), ProofMismatch> {
    if tins
        .iter()
        .enumerate()
        .any(|(position, tin)| tins[..position].contains(tin))
    {
        return Err(ProofMismatch::ParticipantTinsNotDistinct);
    }
    if tins.iter().all(|tin| record.participant_tins.contains(tin)) {
        Ok(())
    } else {
        Err(ProofMismatch::ParticipantTinNotInOrganization)
    }
}

impl ReferenceData {
    /// Assumes the required fields are present (checked by the caller); an
    /// absent one simply fails to match.
    fn match_proof(
        &self,
        record: &OrganizationRecord,
        proof: &SecurityOfficialProof,
    ) -> Result<(), ProofMismatch> {
        match record.kind {
            OrganizationKind::Practice => {
                let tin = proof
                    .tin
                    .as_ref()
                    .filter(|tin| record.tin.as_ref() == Some(*tin))
                    .ok_or(ProofMismatch::TinDoesNotMatchOrganization)?;
                let enrollments: Vec<&Enrollment> =
                    self.enrollments(proof.npi.as_ref(), tin).collect();
                if enrollments.is_empty() {
                    return Err(ProofMismatch::ClinicianNotEnrolledWithTin);
                }
                if enrollments
                    .iter()
                    .any(|enrollment| proof.ptan.as_ref() == Some(&enrollment.ptan))
                {
                    Ok(())
                } else {
                    Err(ProofMismatch::PtanDoesNotMatchEnrollment)
                }
            }
            OrganizationKind::Registry => {
                if proof.tin.is_none() || proof.tin != record.tin {
                    Err(ProofMismatch::TinDoesNotMatchOrganization)
                } else if proof.vendor_id.is_none() || proof.vendor_id != record.vendor_id {
                    Err(ProofMismatch::VendorIdDoesNotMatchRegistry)
                } else {
                    Ok(())
                }
            }
            OrganizationKind::VirtualGroup => match_participants(record, &proof.participant_tins),
            OrganizationKind::ApmEntity => {
                if proof.apm_entity_id.is_none() || proof.apm_entity_id != record.apm_entity_id {
                    return Err(ProofMismatch::ApmEntityIdDoesNotMatch);
                }
                if record
                    .apm_model
                    .is_some_and(ApmModel::searchable_by_entity_id)
                {
                    self.match_site_clinician(record, proof)
                } else {
                    match_participants(record, &proof.participant_tins)
                }
            }
        }
    }

    /// CPC+, CEC and OCM: any TIN of the site with any NPI of a clinician
    /// enrolled with that TIN who is a member of the site.
    fn match_site_clinician(
        &self,
        record: &OrganizationRecord,
        proof: &SecurityOfficialProof,
    ) -> Result<(), ProofMismatch> {
        let tin = proof
            .tin
            .as_ref()
            .filter(|tin| record.participant_tins.contains(tin))
            .ok_or(ProofMismatch::ParticipantTinNotInOrganization)?;
        let member = proof
            .npi
            .as_ref()
            .and_then(|npi| self.clinician(npi))
            .is_some_and(|clinician| {
                record
                    .apm_entity_id
                    .as_ref()
                    .is_some_and(|id| clinician.apm_entity_ids.contains(id))
                    && clinician
                        .enrollments
                        .iter()
                        .any(|enrollment| &enrollment.tin == tin)
            });
        if member {
            Ok(())
        } else {
            Err(ProofMismatch::ClinicianNotEnrolledWithTin)
        }
    }

    fn enrollments<'a>(
        &'a self,
        npi: Option<&Npi>,
        tin: &'a Tin,
    ) -> impl Iterator<Item = &'a Enrollment> + 'a {
        npi.and_then(|npi| self.clinician(npi))
            .into_iter()
            .flat_map(|clinician| clinician.enrollments.iter())
            .filter(move |enrollment| &enrollment.tin == tin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture;
    use access_domain::identifiers::{ApmEntityId, Ptan, VendorId};
    use access_domain::proof::ProofField;

    fn tin(value: &str) -> Tin {
        Tin::parse(value).unwrap()
    }

    fn npi(value: &str) -> Npi {
        Npi::parse(value).unwrap()
    }

    fn check(organization: &str, proof: SecurityOfficialProof) -> ProofVerdict {
        fixture::data().check_proof(&OrganizationId::parse(organization).unwrap(), &proof)
    }

    fn practice_proof(tin_value: &str, npi_value: &str, ptan: &str) -> SecurityOfficialProof {
        SecurityOfficialProof {
            tin: Some(tin(tin_value)),
            npi: Some(npi(npi_value)),
            ptan: Some(Ptan::parse(ptan).unwrap()),
            ..Default::default()
        }
    }

    fn registry_proof(tin_value: &str, vendor: &str) -> SecurityOfficialProof {
        SecurityOfficialProof {
            tin: Some(tin(tin_value)),
            vendor_id: Some(VendorId::parse(vendor).unwrap()),
            ..Default::default()
        }
    }

    fn participants_proof(entity: Option<&str>, tins: &[&str]) -> SecurityOfficialProof {
        SecurityOfficialProof {
            apm_entity_id: entity.map(|id| ApmEntityId::parse(id).unwrap()),
            participant_tins: tins.iter().map(|value| tin(value)).collect(),
            ..Default::default()
        }
    }

    fn site_proof(entity: &str, tin_value: &str, npi_value: &str) -> SecurityOfficialProof {
        SecurityOfficialProof {
            apm_entity_id: Some(ApmEntityId::parse(entity).unwrap()),
            tin: Some(tin(tin_value)),
            npi: Some(npi(npi_value)),
            ..Default::default()
        }
    }

    fn mismatch(reason: ProofMismatch) -> ProofVerdict {
        ProofVerdict::Mismatch(reason)
    }

    #[test]
    fn a_proof_for_an_organization_not_in_the_data_is_refused() {
        let proof = practice_proof("999999999", fixture::LAURA, "AB1234");
        assert_eq!(
            check("practice:999999999", proof),
            ProofVerdict::UnknownOrganization
        );
    }

    #[test]
    fn a_practice_proof_of_tin_npi_and_ptan_of_an_enrollment_is_accepted() {
        let proof = practice_proof("123456789", fixture::LAURA, "ab1234");
        assert_eq!(check("practice:123456789", proof), ProofVerdict::Accepted);
    }

    #[test]
    fn a_practice_proof_without_a_ptan_is_incomplete() {
        let mut proof = practice_proof("123456789", fixture::LAURA, "AB1234");
        proof.ptan = None;
        assert_eq!(
            check("practice:123456789", proof),
            ProofVerdict::Incomplete(vec![ProofField::Ptan])
        );
        assert_eq!(
            check("practice:123456789", SecurityOfficialProof::default()),
            ProofVerdict::Incomplete(vec![ProofField::Tin, ProofField::Npi, ProofField::Ptan])
        );
    }

    #[test]
    fn a_practice_proof_with_the_tin_of_another_practice_is_a_mismatch() {
        let proof = practice_proof("345678912", &fixture::marcus(), "RF5678");
        assert_eq!(
            check("practice:123456789", proof),
            mismatch(ProofMismatch::TinDoesNotMatchOrganization)
        );
    }

    #[test]
    fn a_practice_proof_with_a_clinician_of_another_practice_is_a_mismatch() {
        let proof = practice_proof("123456789", &fixture::marcus(), "RF5678");
        assert_eq!(
            check("practice:123456789", proof),
            mismatch(ProofMismatch::ClinicianNotEnrolledWithTin)
        );
        let unknown = practice_proof("123456789", &fixture::npi("999999999"), "AB1234");
        assert_eq!(
            check("practice:123456789", unknown),
            mismatch(ProofMismatch::ClinicianNotEnrolledWithTin)
        );
    }

    #[test]
    fn a_practice_proof_with_a_ptan_of_another_enrollment_is_a_mismatch() {
        // PS0001 is Priya's PTAN at St. Mary's, not at Greenville.
        let proof = practice_proof("123456789", &fixture::priya(), "PS0001");
        assert_eq!(
            check("practice:123456789", proof),
            mismatch(ProofMismatch::PtanDoesNotMatchEnrollment)
        );
        let own = practice_proof("123456789", &fixture::priya(), "PS0002");
        assert_eq!(check("practice:123456789", own), ProofVerdict::Accepted);
    }

    #[test]
    fn a_registry_proof_of_tin_and_vendor_id_is_accepted() {
        assert_eq!(
            check("registry:234567891", registry_proof("234567891", "v000123")),
            ProofVerdict::Accepted
        );
    }

    #[test]
    fn a_registry_cms_has_not_approved_cannot_be_connected_whatever_the_proof() {
        assert_eq!(
            check("registry:891234567", registry_proof("891234567", "V000456")),
            ProofVerdict::NotConnectable
        );
        assert_eq!(
            check("registry:891234567", SecurityOfficialProof::default()),
            ProofVerdict::NotConnectable
        );
    }

    #[test]
    fn a_registry_proof_without_a_vendor_id_is_incomplete() {
        let mut proof = registry_proof("234567891", "V000123");
        proof.vendor_id = None;
        assert_eq!(
            check("registry:234567891", proof),
            ProofVerdict::Incomplete(vec![ProofField::VendorId])
        );
    }

    #[test]
    fn a_registry_proof_with_a_wrong_tin_or_vendor_id_is_a_mismatch() {
        assert_eq!(
            check("registry:234567891", registry_proof("123456789", "V000123")),
            mismatch(ProofMismatch::TinDoesNotMatchOrganization)
        );
        assert_eq!(
            check("registry:234567891", registry_proof("234567891", "V000456")),
            mismatch(ProofMismatch::VendorIdDoesNotMatchRegistry)
        );
    }

    #[test]
    fn a_virtual_group_proof_of_two_participant_tins_is_accepted_in_any_order() {
        for tins in [["123456789", "345678912"], ["345678912", "123456789"]] {
            assert_eq!(
                check("virtual-group:VG-00123", participants_proof(None, &tins)),
                ProofVerdict::Accepted
            );
        }
    }

    #[test]
    fn a_virtual_group_proof_with_one_tin_is_incomplete() {
        assert_eq!(
            check(
                "virtual-group:VG-00123",
                participants_proof(None, &["123456789"])
            ),
            ProofVerdict::Incomplete(vec![ProofField::ParticipantTins(2)])
        );
    }

    #[test]
    fn a_virtual_group_proof_with_the_same_tin_twice_is_a_mismatch() {
        assert_eq!(
            check(
                "virtual-group:VG-00123",
                participants_proof(None, &["123456789", "123456789"])
            ),
            mismatch(ProofMismatch::ParticipantTinsNotDistinct)
        );
    }

    #[test]
    fn a_virtual_group_proof_with_a_practice_outside_the_group_is_a_mismatch() {
        assert_eq!(
            check(
                "virtual-group:VG-00123",
                participants_proof(None, &["123456789", "456789123"])
            ),
            mismatch(ProofMismatch::ParticipantTinNotInOrganization)
        );
    }

    #[test]
    fn an_aco_proof_of_its_id_and_two_participant_tins_is_accepted() {
        let proof = participants_proof(Some("a1234"), &["345678912", "123456789"]);
        assert_eq!(check("apm-entity:A1234", proof), ProofVerdict::Accepted);
        let next_generation = participants_proof(Some("V123"), &["456789123", "567891234"]);
        assert_eq!(
            check("apm-entity:V123", next_generation),
            ProofVerdict::Accepted
        );
    }

    #[test]
    fn an_aco_proof_with_one_tin_is_incomplete_unless_the_aco_is_single_tin() {
        assert_eq!(
            check(
                "apm-entity:A1234",
                participants_proof(Some("A1234"), &["123456789"])
            ),
            ProofVerdict::Incomplete(vec![ProofField::ParticipantTins(2)])
        );
        assert_eq!(
            check(
                "apm-entity:A5678",
                participants_proof(Some("A5678"), &["678912345"])
            ),
            ProofVerdict::Accepted
        );
        assert_eq!(
            check("apm-entity:A5678", participants_proof(None, &[])),
            ProofVerdict::Incomplete(vec![
                ProofField::ApmEntityId,
                ProofField::ParticipantTins(1)
            ])
        );
    }

    #[test]
    fn an_aco_proof_with_another_entitys_id_is_a_mismatch() {
        let proof = participants_proof(Some("A5678"), &["123456789", "345678912"]);
        assert_eq!(
            check("apm-entity:A1234", proof),
            mismatch(ProofMismatch::ApmEntityIdDoesNotMatch)
        );
    }

    #[test]
    fn an_aco_proof_with_a_repeated_or_outside_tin_is_a_mismatch() {
        assert_eq!(
            check(
                "apm-entity:A1234",
                participants_proof(Some("A1234"), &["123456789", "123456789"])
            ),
            mismatch(ProofMismatch::ParticipantTinsNotDistinct)
        );
        assert_eq!(
            check(
                "apm-entity:A1234",
                participants_proof(Some("A1234"), &["123456789", "678912345"])
            ),
            mismatch(ProofMismatch::ParticipantTinNotInOrganization)
        );
        assert_eq!(
            check(
                "apm-entity:A5678",
                participants_proof(Some("A5678"), &["123456789"])
            ),
            mismatch(ProofMismatch::ParticipantTinNotInOrganization)
        );
    }

    #[test]
    fn a_site_proof_accepts_any_tin_and_npi_pair_of_the_site() {
        assert_eq!(
            check(
                "apm-entity:T100001",
                site_proof("T100001", "123456789", fixture::LAURA)
            ),
            ProofVerdict::Accepted
        );
        assert_eq!(
            check(
                "apm-entity:T100001",
                site_proof("T100001", "456789123", &fixture::priya())
            ),
            ProofVerdict::Accepted
        );
        assert_eq!(
            check(
                "apm-entity:T100001",
                site_proof("T100001", "123456789", &fixture::priya())
            ),
            ProofVerdict::Accepted
        );
    }

    #[test]
    fn esco_and_oncology_proofs_follow_the_site_rule() {
        let marcus = fixture::marcus();
        assert_eq!(
            check(
                "apm-entity:E1234",
                site_proof("E1234", "345678912", &marcus)
            ),
            ProofVerdict::Accepted
        );
        assert_eq!(
            check(
                "apm-entity:OCM-1234",
                site_proof("OCM-1234", "345678912", &marcus)
            ),
            ProofVerdict::Accepted
        );
        assert_eq!(
            check(
                "apm-entity:OCM-1234",
                site_proof("OCM-1234", "345678912", fixture::LAURA)
            ),
            mismatch(ProofMismatch::ClinicianNotEnrolledWithTin)
        );
    }

    #[test]
    fn a_site_proof_without_tin_and_npi_is_incomplete() {
        let proof = SecurityOfficialProof {
            apm_entity_id: Some(ApmEntityId::parse("T100001").unwrap()),
            participant_tins: vec![tin("123456789"), tin("456789123")],
            ..Default::default()
        };
        assert_eq!(
            check("apm-entity:T100001", proof),
            ProofVerdict::Incomplete(vec![ProofField::Tin, ProofField::Npi])
        );
    }

    #[test]
    fn a_site_proof_with_a_wrong_site_id_is_a_mismatch() {
        assert_eq!(
            check(
                "apm-entity:T100001",
                site_proof("E1234", "123456789", fixture::LAURA)
            ),
            mismatch(ProofMismatch::ApmEntityIdDoesNotMatch)
        );
    }

    #[test]
    fn a_site_proof_with_a_tin_outside_the_site_is_a_mismatch() {
        assert_eq!(
            check(
                "apm-entity:T100001",
                site_proof("T100001", "345678912", &fixture::marcus())
            ),
            mismatch(ProofMismatch::ParticipantTinNotInOrganization)
        );
    }

    #[test]
    fn a_site_proof_with_a_clinician_of_the_tin_who_is_not_at_the_site_is_a_mismatch() {
        assert_eq!(
            check(
                "apm-entity:T100001",
                site_proof("T100001", "123456789", &fixture::john_at_greenville())
            ),
            mismatch(ProofMismatch::ClinicianNotEnrolledWithTin)
        );
    }

    #[test]
    fn a_site_proof_with_a_site_clinician_of_another_site_tin_is_a_mismatch() {
        // Laura is at the site, but through Greenville, not St. Mary's.
        assert_eq!(
            check(
                "apm-entity:T100001",
                site_proof("T100001", "456789123", fixture::LAURA)
            ),
            mismatch(ProofMismatch::ClinicianNotEnrolledWithTin)
        );
    }

    #[test]
    fn other_models_need_the_entity_id_and_one_participant_tin() {
        assert_eq!(
            check(
                "apm-entity:PCF00001",
                participants_proof(Some("PCF00001"), &["123456789"])
            ),
            ProofVerdict::Accepted
        );
        assert_eq!(
            check(
                "apm-entity:PCF00001",
                participants_proof(Some("PCF00001"), &[])
            ),
            ProofVerdict::Incomplete(vec![ProofField::ParticipantTins(1)])
        );
        assert_eq!(
            check(
                "apm-entity:PCF00001",
                participants_proof(Some("PCF00001"), &["345678912"])
            ),
            mismatch(ProofMismatch::ParticipantTinNotInOrganization)
        );
        assert_eq!(
            check(
                "apm-entity:PCF00001",
                participants_proof(Some("A1234"), &["123456789"])
            ),
            mismatch(ProofMismatch::ApmEntityIdDoesNotMatch)
        );
    }
}
