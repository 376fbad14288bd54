//! The loaded reference data: organizations and clinicians, validated once at
//! load time so that lookups, search and proof checking never meet a dangling
//! TIN or ID.

use std::collections::hash_map::{Entry, RandomState};
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};

use access_domain::identifiers::{
    ApmEntityId, Npi, OrganizationId, OrganizationKind, Ptan, Ssn, Tin, VendorId, VirtualGroupId,
};
use access_domain::proof::ApmModel;

use crate::file::{ClinicianEntry, ReferenceFile};
use crate::search::{NameIndex, NameScope};

/// Why a reference-data file was refused. `Display` is `<path>: <what is
/// expected>` so an operator can go straight to the faulty value; no variant
/// ever carries an SSN.
#[derive(Debug, thiserror::Error)]
pub enum ReferenceDataError {
    /// The file could not be read; `path` is the file's path.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The content is malformed or inconsistent; `path` is the JSON path of
    /// the first faulty value, e.g. `clinicians[12].npi`.
    #[error("{path}: {expected}")]
    Invalid { path: String, expected: String },
}

impl ReferenceDataError {
    fn invalid(path: impl Into<String>, expected: impl Into<String>) -> Self {
        Self::Invalid {
            path: path.into(),
            expected: expected.into(),
        }
    }

    fn from_json(error: serde_path_to_error::Error<serde_json::Error>) -> Self {
        let path = error.path().to_string();
        let inner = error.into_inner();
        let mut message = inner.to_string();
        // For a bad value the JSON path already says where; the line and
        // column only matter when the text itself is not JSON.
        if inner.is_data() {
            let location = format!(" at line {} column {}", inner.line(), inner.column());
            if let Some(stripped) = message.strip_suffix(&location) {
                message = stripped.to_string();
            }
        }
        Self::invalid(path, message)
    }
}

/// A practice, registry, virtual group or APM entity as the search and the
/// views show it. Fields that do not apply to the kind are `None`/empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrganizationRecord {
    pub id: OrganizationId,
    pub kind: OrganizationKind,
    pub legal_business_name: String,
    pub address: Option<String>,
    pub tin: Option<Tin>,
    pub apm_model: Option<ApmModel>,
    pub apm_entity_id: Option<ApmEntityId>,
    pub virtual_group_id: Option<VirtualGroupId>,
    pub vendor_id: Option<VendorId>,
    /// Whether CMS approved the registry; always true for the other kinds,
    /// which need no approval to be connected.
    pub approved: bool,
    /// A single-TIN ACO, whose first Security Official proves one TIN.
    pub single_tin: bool,
    pub participant_tins: Vec<Tin>,
}

/// A clinician's enrollment: the practice TIN they bill under and the PTAN
/// of that enrollment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrollment {
    pub tin: Tin,
    pub ptan: Ptan,
}

/// A clinician of the eligibility data. The SSN is deliberately absent: only
/// its keyed hash is kept, see [`ReferenceData::ssn_matches`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClinicianRecord {
    pub npi: Npi,
    pub first_name: String,
    pub last_name: String,
    pub enrollments: Vec<Enrollment>,
    pub apm_entity_ids: Vec<ApmEntityId>,
    pub virtual_group_ids: Vec<VirtualGroupId>,
}

/// The reference data in memory, indexed for lookups by id, search and
/// clinician verification. Immutable once built: a reload builds a new one.
pub struct ReferenceData {
    version: String,
    organizations: Vec<OrganizationRecord>,
    organization_index: HashMap<OrganizationId, u32>,
    pub(crate) name_indexes: HashMap<NameScope, NameIndex>,
    clinicians: Vec<ClinicianRecord>,
    clinician_index: HashMap<Npi, u32>,
    /// (hash of the normalized name, clinician index), sorted: one flat
    /// vector instead of half a million small allocations.
    clinicians_by_name: Vec<(u64, u32)>,
    /// A key drawn afresh for every data set, so the hashes below are useless
    /// outside this process and this load.
    ssn_key: RandomState,
    ssn_hashes: Vec<u64>,
}

/// Hand-written so that printing the data (e.g. in a failed test) shows
/// neither millions of records nor the SSN hashes.
impl fmt::Debug for ReferenceData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReferenceData")
            .field("version", &self.version)
            .field("organizations", &self.organizations.len())
            .field("clinicians", &self.clinicians.len())
            .finish_non_exhaustive()
    }
}

impl ReferenceData {
    /// Reads and validates a reference-data file.
    pub fn load(path: &Path) -> Result<Self, ReferenceDataError> {
        let json = std::fs::read_to_string(path).map_err(|source| ReferenceDataError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_json_str(&json)
    }

    /// Parses and validates reference data; the error names the JSON path of
    /// the first faulty value.
    pub fn from_json_str(json: &str) -> Result<Self, ReferenceDataError> {
        let mut deserializer = serde_json::Deserializer::from_str(json);
        let file: ReferenceFile = serde_path_to_error::deserialize(&mut deserializer)
            .map_err(ReferenceDataError::from_json)?;
        deserializer
            .end()
            .map_err(|error| ReferenceDataError::invalid(".", error.to_string()))?;
        Self::from_file(file)
    }

    /// Validates an already-parsed file: every key unique, every reference
    /// (participant TIN, enrollment TIN, membership ID) pointing at a record.
    pub fn from_file(file: ReferenceFile) -> Result<Self, ReferenceDataError> {
        let mut builder = Builder::default();
        builder.add_organizations(&file)?;
        builder.add_clinicians(file.clinicians)?;
        Ok(builder.finish(file.version))
    }

    /// The version string of the loaded file, e.g. `2026-11-01`.
    pub fn version(&self) -> &str {
        &self.version
    }

    pub fn organization(&self, id: &OrganizationId) -> Option<&OrganizationRecord> {
        self.organization_index
            .get(id)
            .map(|&index| &self.organizations[index as usize])
    }

    /// All organizations, in file order (practices, registries, virtual
    /// groups, APM entities).
    pub fn organizations(&self) -> &[OrganizationRecord] {
        &self.organizations
    }

    pub(crate) fn organization_at(&self, index: u32) -> &OrganizationRecord {
        &self.organizations[index as usize]
    }

    pub fn clinician(&self, npi: &Npi) -> Option<&ClinicianRecord> {
        self.clinician_index
            .get(npi)
            .map(|&index| &self.clinicians[index as usize])
    }

    /// Clinicians whose first and last names equal these, ignoring case and
    /// whitespace: the identity provider's spelling of a name may differ from
    /// PECOS in nothing else we can safely forgive.
    pub fn clinicians_named(&self, first: &str, last: &str) -> Vec<&ClinicianRecord> {
        let hash = name_hash(first, last);
        let start = self
            .clinicians_by_name
            .partition_point(|&(key, _)| key < hash);
        self.clinicians_by_name[start..]
            .iter()
            .take_while(|&&(key, _)| key == hash)
            .map(|&(_, index)| &self.clinicians[index as usize])
            // A hash collision must not pass for a namesake.
            .filter(|clinician| {
                same_name(&clinician.first_name, first) && same_name(&clinician.last_name, last)
            })
            .collect()
    }

    /// Whether `ssn` is the SSN of the clinician with this NPI; false for an
    /// unknown NPI.
    pub fn ssn_matches(&self, npi: &Npi, ssn: &Ssn) -> bool {
        self.clinician_index
            .get(npi)
            .is_some_and(|&index| self.ssn_hashes[index as usize] == self.ssn_hash(ssn))
    }

    fn ssn_hash(&self, ssn: &Ssn) -> u64 {
        self.ssn_key.hash_one(ssn.expose_digits())
    }
}

/// A name as compared: lower-case, without whitespace.
fn normalized(name: &str) -> impl Iterator<Item = char> + '_ {
    name.chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
}

fn same_name(a: &str, b: &str) -> bool {
    normalized(a).eq(normalized(b))
}

/// A fixed-key hash, so the index can be built without allocating a key per
/// clinician; [`same_name`] settles collisions.
fn name_hash(first: &str, last: &str) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    normalized(first).for_each(|c| hasher.write_u32(c as u32));
    // A separator that cannot occur in a name keeps "Ann Marie" + "Lee"
    // apart from "Ann" + "Marie Lee".
    hasher.write_u32(u32::MAX);
    normalized(last).for_each(|c| hasher.write_u32(c as u32));
    hasher.finish()
}

/// Collects records in file order, refusing the first inconsistency.
#[derive(Default)]
struct Builder {
    organizations: Vec<OrganizationRecord>,
    /// The JSON path of each organization's entry, for duplicate messages.
    organization_paths: Vec<(&'static str, u32)>,
    organization_index: HashMap<OrganizationId, u32>,
    /// Keys by reference, so checking the millions of references in the
    /// clinician list allocates nothing.
    practice_tins: HashSet<Tin>,
    apm_entity_ids: HashSet<ApmEntityId>,
    virtual_group_ids: HashSet<VirtualGroupId>,
    clinicians: Vec<ClinicianRecord>,
    clinician_index: HashMap<Npi, u32>,
    ssn_digits_hashes: Vec<u64>,
    ssn_key: RandomState,
}

fn path_of(section: &str, position: usize) -> String {
    format!("{section}[{position}]")
}

fn require_name(path: &str, field: &str, value: &str) -> Result<(), ReferenceDataError> {
    if value.trim().is_empty() {
        Err(ReferenceDataError::invalid(
            format!("{path}.{field}"),
            "must not be blank",
        ))
    } else {
        Ok(())
    }
}

impl Builder {
    fn add_organization(
        &mut self,
        section: &'static str,
        position: usize,
        key_field: &str,
        record: OrganizationRecord,
    ) -> Result<(), ReferenceDataError> {
        let path = path_of(section, position);
        require_name(&path, "legalBusinessName", &record.legal_business_name)?;
        let index = self.organizations.len() as u32;
        match self.organization_index.entry(record.id.clone()) {
            Entry::Occupied(existing) => {
                let (earlier_section, earlier) = self.organization_paths[*existing.get() as usize];
                Err(ReferenceDataError::invalid(
                    format!("{path}.{key_field}"),
                    format!(
                        "must be unique ({} has the same {key_field})",
                        path_of(earlier_section, earlier as usize)
                    ),
                ))
            }
            Entry::Vacant(slot) => {
                slot.insert(index);
                match record.kind {
                    OrganizationKind::Practice => {
                        self.practice_tins.extend(record.tin.clone());
                    }
                    OrganizationKind::ApmEntity => {
                        self.apm_entity_ids.extend(record.apm_entity_id.clone());
                    }
                    OrganizationKind::VirtualGroup => {
                        self.virtual_group_ids
                            .extend(record.virtual_group_id.clone());
                    }
                    OrganizationKind::Registry => {}
                }
                self.organizations.push(record);
                self.organization_paths.push((section, position as u32));
                Ok(())
            }
        }
    }

    fn is_practice(&self, tin: &Tin) -> bool {
        self.practice_tins.contains(tin)
    }

    /// Participants must be known practices, listed once each, and at least
    /// `minimum` of them so the first Security Official's proof can succeed.
    fn check_participants(
        &self,
        path: &str,
        tins: &[Tin],
        minimum: usize,
    ) -> Result<(), ReferenceDataError> {
        if tins.len() < minimum {
            let plural = if minimum == 1 { "" } else { "s" };
            return Err(ReferenceDataError::invalid(
                format!("{path}.participantTins"),
                format!("must list at least {minimum} practice TIN{plural}"),
            ));
        }
        for (position, tin) in tins.iter().enumerate() {
            let tin_path = format!("{path}.participantTins[{position}]");
            if !self.is_practice(tin) {
                return Err(ReferenceDataError::invalid(
                    tin_path,
                    "must be the TIN of a practice listed in practices",
                ));
            }
            if tins[..position].contains(tin) {
                return Err(ReferenceDataError::invalid(
                    tin_path,
                    "must not repeat a participant TIN",
                ));
            }
        }
        Ok(())
    }

    fn add_organizations(&mut self, file: &ReferenceFile) -> Result<(), ReferenceDataError> {
        for (position, practice) in file.practices.iter().enumerate() {
            self.add_organization(
                "practices",
                position,
                "tin",
                OrganizationRecord {
                    id: OrganizationId::practice(practice.tin.clone()),
                    kind: OrganizationKind::Practice,
                    legal_business_name: practice.legal_business_name.clone(),
                    address: practice.address.clone(),
                    tin: Some(practice.tin.clone()),
                    apm_model: None,
                    apm_entity_id: None,
                    virtual_group_id: None,
                    vendor_id: None,
                    approved: true,
                    single_tin: false,
                    participant_tins: Vec::new(),
                },
            )?;
        }
        for (position, registry) in file.registries.iter().enumerate() {
            self.add_organization(
                "registries",
                position,
                "tin",
                OrganizationRecord {
                    id: OrganizationId::registry(registry.tin.clone()),
                    kind: OrganizationKind::Registry,
                    legal_business_name: registry.legal_business_name.clone(),
                    address: registry.address.clone(),
                    tin: Some(registry.tin.clone()),
                    apm_model: None,
                    apm_entity_id: None,
                    virtual_group_id: None,
                    vendor_id: Some(registry.vendor_id.clone()),
                    approved: registry.approved,
                    single_tin: false,
                    participant_tins: Vec::new(),
                },
            )?;
        }
        for (position, group) in file.virtual_groups.iter().enumerate() {
            self.check_participants(
                &path_of("virtualGroups", position),
                &group.participant_tins,
                2,
            )?;
            self.add_organization(
                "virtualGroups",
                position,
                "virtualGroupId",
                OrganizationRecord {
                    id: OrganizationId::virtual_group(group.virtual_group_id.clone()),
                    kind: OrganizationKind::VirtualGroup,
                    legal_business_name: group.legal_business_name.clone(),
                    address: group.address.clone(),
                    tin: None,
                    apm_model: None,
                    apm_entity_id: None,
                    virtual_group_id: Some(group.virtual_group_id.clone()),
                    vendor_id: None,
                    approved: true,
                    single_tin: false,
                    participant_tins: group.participant_tins.clone(),
                },
            )?;
        }
        for (position, entity) in file.apm_entities.iter().enumerate() {
            let path = path_of("apmEntities", position);
            let is_aco = matches!(
                entity.model,
                ApmModel::SharedSavingsProgram | ApmModel::NextGenerationAco
            );
            if entity.single_tin {
                if !is_aco {
                    return Err(ReferenceDataError::invalid(
                        format!("{path}.singleTin"),
                        "must be false: only Shared Savings Program and Next Generation ACOs can be single-TIN",
                    ));
                }
                if entity.participant_tins.len() != 1 {
                    return Err(ReferenceDataError::invalid(
                        format!("{path}.participantTins"),
                        "must list exactly 1 practice TIN for a single-TIN ACO",
                    ));
                }
            }
            let minimum = if is_aco && !entity.single_tin { 2 } else { 1 };
            self.check_participants(&path, &entity.participant_tins, minimum)?;
            self.add_organization(
                "apmEntities",
                position,
                "apmEntityId",
                OrganizationRecord {
                    id: OrganizationId::apm_entity(entity.apm_entity_id.clone()),
                    kind: OrganizationKind::ApmEntity,
                    legal_business_name: entity.legal_business_name.clone(),
                    address: entity.address.clone(),
                    tin: None,
                    apm_model: Some(entity.model),
                    apm_entity_id: Some(entity.apm_entity_id.clone()),
                    virtual_group_id: None,
                    vendor_id: None,
                    approved: true,
                    single_tin: entity.single_tin,
                    participant_tins: entity.participant_tins.clone(),
                },
            )?;
        }
        Ok(())
    }

    fn add_clinicians(&mut self, entries: Vec<ClinicianEntry>) -> Result<(), ReferenceDataError> {
        self.clinicians.reserve(entries.len());
        self.clinician_index.reserve(entries.len());
        self.ssn_digits_hashes.reserve(entries.len());
        for (position, entry) in entries.into_iter().enumerate() {
            let path = path_of("clinicians", position);
            require_name(&path, "firstName", &entry.first_name)?;
            require_name(&path, "lastName", &entry.last_name)?;
            if entry.enrollments.is_empty() {
                return Err(ReferenceDataError::invalid(
                    format!("{path}.enrollments"),
                    "must list at least 1 enrollment",
                ));
            }
            for (index, enrollment) in entry.enrollments.iter().enumerate() {
                if !self.is_practice(&enrollment.tin) {
                    return Err(ReferenceDataError::invalid(
                        format!("{path}.enrollments[{index}].tin"),
                        "must be the TIN of a practice listed in practices",
                    ));
                }
            }
            for (index, id) in entry.apm_entities.iter().enumerate() {
                if !self.apm_entity_ids.contains(id) {
                    return Err(ReferenceDataError::invalid(
                        format!("{path}.apmEntities[{index}]"),
                        "must be the ID of an APM entity listed in apmEntities",
                    ));
                }
            }
            for (index, id) in entry.virtual_groups.iter().enumerate() {
                if !self.virtual_group_ids.contains(id) {
                    return Err(ReferenceDataError::invalid(
                        format!("{path}.virtualGroups[{index}]"),
                        "must be the ID of a virtual group listed in virtualGroups",
                    ));
                }
            }
            let index = self.clinicians.len() as u32;
            match self.clinician_index.entry(entry.npi.clone()) {
                Entry::Occupied(existing) => {
                    return Err(ReferenceDataError::invalid(
                        format!("{path}.npi"),
                        format!(
                            "must be unique ({} has the same npi)",
                            path_of("clinicians", *existing.get() as usize)
                        ),
                    ));
                }
                Entry::Vacant(slot) => {
                    slot.insert(index);
                }
            }
            self.ssn_digits_hashes
                .push(self.ssn_key.hash_one(entry.ssn.0.expose_digits()));
            self.clinicians.push(ClinicianRecord {
                npi: entry.npi,
                first_name: entry.first_name,
                last_name: entry.last_name,
                enrollments: entry
                    .enrollments
                    .into_iter()
                    .map(|enrollment| Enrollment {
                        tin: enrollment.tin,
                        ptan: enrollment.ptan,
                    })
                    .collect(),
                apm_entity_ids: entry.apm_entities,
                virtual_group_ids: entry.virtual_groups,
            });
        }
        Ok(())
    }

    fn finish(self, version: String) -> ReferenceData {
        let mut clinicians_by_name: Vec<(u64, u32)> = self
            .clinicians
            .iter()
            .enumerate()
            .map(|(index, clinician)| {
                (
                    name_hash(&clinician.first_name, &clinician.last_name),
                    index as u32,
                )
            })
            .collect();
        clinicians_by_name.sort_unstable();
        let name_indexes = NameIndex::build_all(&self.organizations);
        ReferenceData {
            version,
            organizations: self.organizations,
            organization_index: self.organization_index,
            name_indexes,
            clinicians: self.clinicians,
            clinician_index: self.clinician_index,
            clinicians_by_name,
            ssn_key: self.ssn_key,
            ssn_hashes: self.ssn_digits_hashes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture;
    use serde_json::{json, Value};

    fn error_after(change: impl FnOnce(&mut Value)) -> String {
        let mut value = fixture::json();
        change(&mut value);
        ReferenceData::from_json_str(&value.to_string())
            .expect_err("the changed file must be refused")
            .to_string()
    }

    fn id(text: &str) -> OrganizationId {
        OrganizationId::parse(text).unwrap()
    }

    #[test]
    fn the_fixture_loads_with_every_record_indexed() {
        let data = fixture::data();
        assert_eq!(data.version(), "2026-11-01");
        let practice = data.organization(&id("practice:123456789")).unwrap();
        assert_eq!(practice.kind, OrganizationKind::Practice);
        assert_eq!(practice.legal_business_name, "Greenville Medical Clinic");
        assert_eq!(
            practice.address.as_deref(),
            Some("5200 Manchester Ln, Greenville, OH 01234")
        );
        let registry = data.organization(&id("registry:891234567")).unwrap();
        assert_eq!(registry.vendor_id.as_ref().unwrap().as_str(), "V000456");
        assert!(!registry.approved);
        let group = data.organization(&id("virtual-group:vg-00123")).unwrap();
        assert_eq!(group.participant_tins.len(), 2);
        assert!(group.approved);
        let entity = data.organization(&id("apm-entity:A1234")).unwrap();
        assert_eq!(entity.apm_model, Some(ApmModel::SharedSavingsProgram));
        assert_eq!(entity.apm_entity_id.as_ref().unwrap().as_str(), "A1234");
        assert!(data.organization(&id("practice:999999999")).is_none());
    }

    #[test]
    fn the_server_md_example_loads() {
        let example = json!({
          "version": "2026-11-01",
          "practices": [
            {"tin": "123456789", "legalBusinessName": "Greenville Medical Clinic",
             "address": "5200 Manchester Ln, Greenville, OH 01234"},
            {"tin": "345678912", "legalBusinessName": "Riverside Family Practice"}
          ],
          "registries": [
            {"tin": "234567891", "legalBusinessName": "American College of Medical Standards Registry",
             "vendorId": "V000123", "approved": true, "address": "1500 K St NW, Washington, DC 20005"}
          ],
          "virtualGroups": [
            {"virtualGroupId": "VG-00123", "legalBusinessName": "Ohio Valley Virtual Group",
             "participantTins": ["123456789", "345678912"]}
          ],
          "apmEntities": [
            {"apmEntityId": "A1234", "model": "SHARED_SAVINGS_PROGRAM",
             "legalBusinessName": "Buckeye ACO", "singleTin": false,
             "participantTins": ["123456789", "345678912"]}
          ],
          "clinicians": [
            {"npi": "1234567893", "firstName": "Laura", "lastName": "Colburn", "ssn": "123456789",
             "enrollments": [{"tin": "123456789", "ptan": "AB1234"}],
             "apmEntities": ["A1234"], "virtualGroups": ["VG-00123"]}
          ]
        });
        let data = ReferenceData::from_json_str(&example.to_string()).unwrap();
        assert_eq!(data.organizations().len(), 5);
    }

    #[test]
    fn a_single_tin_aco_is_both_a_practice_and_an_apm_entity() {
        let data = fixture::data();
        let practice = data.organization(&id("practice:678912345")).unwrap();
        let entity = data.organization(&id("apm-entity:A5678")).unwrap();
        assert!(entity.single_tin && !practice.single_tin);
        assert_eq!(entity.participant_tins, vec![practice.tin.clone().unwrap()]);
    }

    #[test]
    fn a_malformed_npi_is_refused_with_its_json_path() {
        let message = error_after(|v| v["clinicians"][3]["npi"] = json!("1234567890"));
        assert_eq!(
            message,
            "clinicians[3].npi: NPI must be 10 digits with a valid check digit"
        );
    }

    #[test]
    fn a_malformed_participant_tin_is_refused_with_its_json_path() {
        let message = error_after(|v| v["virtualGroups"][0]["participantTins"][1] = json!("12345"));
        assert_eq!(
            message,
            "virtualGroups[0].participantTins[1]: TIN must be 9 digits (dashes and spaces are allowed)"
        );
    }

    #[test]
    fn a_malformed_ptan_vendor_id_or_model_is_refused_with_its_json_path() {
        let ptan = error_after(|v| v["clinicians"][0]["enrollments"][0]["ptan"] = json!("AB-12"));
        assert_eq!(
            ptan,
            "clinicians[0].enrollments[0].ptan: PTAN must be 6 to 10 letters and digits"
        );
        let vendor = error_after(|v| v["registries"][1]["vendorId"] = json!("V 1"));
        assert!(
            vendor.starts_with("registries[1].vendorId: Vendor ID must be"),
            "{vendor}"
        );
        let model = error_after(|v| v["apmEntities"][2]["model"] = json!("MSSP"));
        assert!(
            model.starts_with("apmEntities[2].model: unknown variant `MSSP`"),
            "{model}"
        );
    }

    #[test]
    fn a_missing_or_unknown_key_is_refused_with_the_path_of_its_object() {
        let missing = error_after(|v| {
            v["practices"][1]
                .as_object_mut()
                .unwrap()
                .remove("legalBusinessName");
        });
        assert_eq!(missing, "practices[1]: missing field `legalBusinessName`");
        let unknown = error_after(|v| v["practices"][1]["name"] = json!("Riverside"));
        assert!(
            unknown.starts_with("practices[1].name: unknown field `name`"),
            "{unknown}"
        );
        let approval = error_after(|v| {
            v["registries"][0]
                .as_object_mut()
                .unwrap()
                .remove("approved");
        });
        assert_eq!(approval, "registries[0]: missing field `approved`");
    }

    #[test]
    fn text_that_is_not_json_is_refused_with_where_it_broke() {
        let message = ReferenceData::from_json_str("{\"version\": \"1\",\n \"practices\": [}")
            .unwrap_err()
            .to_string();
        assert_eq!(message, "practices[0]: expected value at line 2 column 16");
        let trailing = ReferenceData::from_json_str("{\"version\": \"1\"} []")
            .unwrap_err()
            .to_string();
        assert!(trailing.starts_with(".: trailing characters"), "{trailing}");
    }

    #[test]
    fn a_malformed_ssn_is_refused_without_echoing_it() {
        for bad in [
            json!("12345678"),
            json!("12345678X"),
            json!(123456789),
            json!(null),
            json!(["1"]),
        ] {
            let message = error_after(|v| v["clinicians"][2]["ssn"] = bad.clone());
            assert_eq!(
                message,
                "clinicians[2].ssn: SSN must be 9 digits (dashes and spaces are allowed)"
            );
        }
    }

    #[test]
    fn a_clinician_without_an_ssn_is_refused() {
        let message = error_after(|v| {
            v["clinicians"][0].as_object_mut().unwrap().remove("ssn");
        });
        assert_eq!(message, "clinicians[0]: missing field `ssn`");
    }

    #[test]
    fn two_practices_with_the_same_tin_are_refused() {
        let message = error_after(|v| v["practices"][4]["tin"] = json!("123-45-6789"));
        assert_eq!(
            message,
            "practices[4].tin: must be unique (practices[0] has the same tin)"
        );
    }

    #[test]
    fn duplicate_registry_virtual_group_and_apm_entity_keys_are_refused() {
        let registry = error_after(|v| v["registries"][1]["tin"] = json!("234567891"));
        assert_eq!(
            registry,
            "registries[1].tin: must be unique (registries[0] has the same tin)"
        );
        let group = error_after(|v| {
            let copy = v["virtualGroups"][0].clone();
            v["virtualGroups"].as_array_mut().unwrap().push(copy);
        });
        assert_eq!(
            group,
            "virtualGroups[1].virtualGroupId: must be unique (virtualGroups[0] has the same virtualGroupId)"
        );
        let entity = error_after(|v| v["apmEntities"][6]["apmEntityId"] = json!("a1234"));
        assert_eq!(
            entity,
            "apmEntities[6].apmEntityId: must be unique (apmEntities[0] has the same apmEntityId)"
        );
    }

    #[test]
    fn a_practice_and_a_registry_may_share_a_tin() {
        let mut value = fixture::json();
        value["registries"][0]["tin"] = json!("123456789");
        assert!(ReferenceData::from_json_str(&value.to_string()).is_ok());
    }

    #[test]
    fn a_participant_tin_that_is_not_a_practice_is_refused() {
        let group =
            error_after(|v| v["virtualGroups"][0]["participantTins"][1] = json!("234567891"));
        assert_eq!(
            group,
            "virtualGroups[0].participantTins[1]: must be the TIN of a practice listed in practices"
        );
        let entity =
            error_after(|v| v["apmEntities"][3]["participantTins"][0] = json!("999999999"));
        assert_eq!(
            entity,
            "apmEntities[3].participantTins[0]: must be the TIN of a practice listed in practices"
        );
    }

    #[test]
    fn a_repeated_participant_tin_is_refused() {
        let message =
            error_after(|v| v["apmEntities"][0]["participantTins"][1] = json!("123456789"));
        assert_eq!(
            message,
            "apmEntities[0].participantTins[1]: must not repeat a participant TIN"
        );
    }

    #[test]
    fn groups_with_too_few_participants_for_their_proof_are_refused() {
        let group =
            error_after(|v| v["virtualGroups"][0]["participantTins"] = json!(["123456789"]));
        assert_eq!(
            group,
            "virtualGroups[0].participantTins: must list at least 2 practice TINs"
        );
        let aco = error_after(|v| v["apmEntities"][2]["participantTins"] = json!(["456789123"]));
        assert_eq!(
            aco,
            "apmEntities[2].participantTins: must list at least 2 practice TINs"
        );
        let site = error_after(|v| v["apmEntities"][4]["participantTins"] = json!([]));
        assert_eq!(
            site,
            "apmEntities[4].participantTins: must list at least 1 practice TIN"
        );
    }

    #[test]
    fn a_single_tin_entity_must_be_an_aco_with_exactly_one_tin() {
        let two = error_after(|v| {
            v["apmEntities"][1]["participantTins"] = json!(["678912345", "123456789"])
        });
        assert_eq!(
            two,
            "apmEntities[1].participantTins: must list exactly 1 practice TIN for a single-TIN ACO"
        );
        let site = error_after(|v| v["apmEntities"][5]["singleTin"] = json!(true));
        assert!(
            site.starts_with("apmEntities[5].singleTin: must be false"),
            "{site}"
        );
    }

    #[test]
    fn an_enrollment_with_a_tin_that_is_not_a_practice_is_refused() {
        let message =
            error_after(|v| v["clinicians"][1]["enrollments"][0]["tin"] = json!("234567891"));
        assert_eq!(
            message,
            "clinicians[1].enrollments[0].tin: must be the TIN of a practice listed in practices"
        );
    }

    #[test]
    fn a_clinician_without_enrollments_is_refused() {
        let message = error_after(|v| v["clinicians"][1]["enrollments"] = json!([]));
        assert_eq!(
            message,
            "clinicians[1].enrollments: must list at least 1 enrollment"
        );
    }

    #[test]
    fn a_clinician_membership_in_an_unknown_entity_or_group_is_refused() {
        let entity = error_after(|v| v["clinicians"][0]["apmEntities"][2] = json!("A9999"));
        assert_eq!(
            entity,
            "clinicians[0].apmEntities[2]: must be the ID of an APM entity listed in apmEntities"
        );
        let group = error_after(|v| v["clinicians"][1]["virtualGroups"][0] = json!("VG-99999"));
        assert_eq!(
            group,
            "clinicians[1].virtualGroups[0]: must be the ID of a virtual group listed in virtualGroups"
        );
    }

    #[test]
    fn two_clinicians_with_the_same_npi_are_refused() {
        let message = error_after(|v| v["clinicians"][4]["npi"] = json!(fixture::LAURA));
        assert_eq!(
            message,
            "clinicians[4].npi: must be unique (clinicians[0] has the same npi)"
        );
    }

    #[test]
    fn blank_names_are_refused() {
        let organization = error_after(|v| v["apmEntities"][0]["legalBusinessName"] = json!("  "));
        assert_eq!(
            organization,
            "apmEntities[0].legalBusinessName: must not be blank"
        );
        let clinician = error_after(|v| v["clinicians"][0]["lastName"] = json!(""));
        assert_eq!(clinician, "clinicians[0].lastName: must not be blank");
    }

    #[test]
    fn an_unreadable_file_is_reported_with_its_path() {
        let path = Path::new("/nonexistent/reference.json");
        let error = ReferenceData::load(path).unwrap_err();
        assert!(matches!(error, ReferenceDataError::Io { .. }));
        assert!(
            error
                .to_string()
                .starts_with("/nonexistent/reference.json: "),
            "{error}"
        );
    }

    #[test]
    fn a_file_on_disk_loads() {
        let path =
            std::env::temp_dir().join(format!("access-reference-{}.json", std::process::id()));
        std::fs::write(&path, fixture::json().to_string()).unwrap();
        let loaded = ReferenceData::load(&path);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(
            loaded
                .unwrap()
                .clinician(&Npi::parse(fixture::LAURA).unwrap())
                .unwrap()
                .first_name,
            "Laura"
        );
    }

    #[test]
    fn a_clinician_is_found_by_npi_with_enrollments_and_memberships() {
        let data = fixture::data();
        let priya = data
            .clinician(&Npi::parse(&fixture::priya()).unwrap())
            .unwrap();
        assert_eq!(
            (priya.first_name.as_str(), priya.last_name.as_str()),
            ("Priya", "Shah")
        );
        let enrolled: Vec<(&str, &str)> = priya
            .enrollments
            .iter()
            .map(|e| (e.tin.as_str(), e.ptan.as_str()))
            .collect();
        assert_eq!(
            enrolled,
            vec![("456789123", "PS0001"), ("123456789", "PS0002")]
        );
        assert_eq!(priya.apm_entity_ids.len(), 2);
        assert!(priya.virtual_group_ids.is_empty());
        assert!(data
            .clinician(&Npi::parse(&fixture::npi("999999999")).unwrap())
            .is_none());
    }

    #[test]
    fn clinicians_are_found_by_name_ignoring_case_and_whitespace() {
        let data = fixture::data();
        let found = data.clinicians_named(" laura ", "COL BURN");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].npi.as_str(), fixture::LAURA);
        assert_eq!(data.clinicians_named("John", "Smith").len(), 2);
        assert!(data.clinicians_named("Laura", "Colbur").is_empty());
        assert!(data.clinicians_named("Laur", "Colburn").is_empty());
    }

    #[test]
    fn a_name_split_differently_between_first_and_last_is_another_name() {
        let mut value = fixture::json();
        value["clinicians"][4]["firstName"] = json!("Ann Marie");
        value["clinicians"][4]["lastName"] = json!("Lee");
        let data = ReferenceData::from_json_str(&value.to_string()).unwrap();
        assert_eq!(data.clinicians_named("annmarie", "LEE").len(), 1);
        assert!(data.clinicians_named("Ann", "Marie Lee").is_empty());
    }

    #[test]
    fn an_ssn_matches_only_its_own_clinician() {
        let data = fixture::data();
        let laura = Npi::parse(fixture::LAURA).unwrap();
        let marcus = Npi::parse(&fixture::marcus()).unwrap();
        assert!(data.ssn_matches(&laura, &Ssn::parse("123-45-6789").unwrap()));
        assert!(data.ssn_matches(&marcus, &Ssn::parse("987654321").unwrap()));
        assert!(!data.ssn_matches(&laura, &Ssn::parse("987654321").unwrap()));
        let unknown = Npi::parse(&fixture::npi("999999999")).unwrap();
        assert!(!data.ssn_matches(&unknown, &Ssn::parse("123456789").unwrap()));
    }

    #[test]
    fn ssn_hashes_are_keyed_afresh_for_every_load() {
        let (first, second) = (fixture::data(), fixture::data());
        assert_ne!(first.ssn_hashes, second.ssn_hashes);
    }

    #[test]
    fn printing_the_data_shows_neither_ssns_nor_their_hashes() {
        let data = fixture::data();
        let printed = format!("{data:?}");
        assert!(
            !printed.contains("123456789") && !printed.contains(&data.ssn_hashes[0].to_string())
        );
        assert!(printed.contains("clinicians: 6"), "{printed}");
    }
}
