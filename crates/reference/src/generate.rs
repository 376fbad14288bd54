//! Realistic reference data for demos, tests and load tests: plausible US
//! practice, registry and ACO names, valid identifiers, and the links the
//! proof rules rely on (clinicians enrolled with practices, practices
//! participating in APM entities and virtual groups).
//!
//! Every data set starts with the same fixed records, so the README and the
//! docs can name them whatever the size or seed.

use std::collections::HashSet;

use access_domain::identifiers::{ApmEntityId, Npi, Ptan, Ssn, Tin, VendorId, VirtualGroupId};
use access_domain::proof::ApmModel;

#[rustfmt::skip]
mod words;

use words::*;

use crate::file::{
    ApmEntityEntry, ClinicianEntry, EnrollmentEntry, FileSsn, PracticeEntry, ReferenceFile,
    RegistryEntry, VirtualGroupEntry,
};

/// How much to generate. Sizes are totals that include the fixed demo
/// records, and are raised to what those records and the rules need: at
/// least 4 practices (so generated groups have practices of their own), 1
/// registry, 1 virtual group, 13 APM entities (one per model and a
/// single-TIN ACO) and 4 clinicians (every practice has at least 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerateOptions {
    pub seed: u64,
    pub version: String,
    pub practices: usize,
    pub registries: usize,
    pub virtual_groups: usize,
    pub apm_entities: usize,
    pub clinicians: usize,
}

impl GenerateOptions {
    /// The options `data/demo.json` was generated with.
    pub fn demo() -> Self {
        Self {
            seed: 20_261_101,
            version: "2026-11-01".to_string(),
            practices: 200,
            registries: 20,
            virtual_groups: 20,
            apm_entities: 60,
            clinicians: 1_000,
        }
    }
}

/// The fixed records every generated data set starts with.
pub mod fixed {
    /// Greenville Medical Clinic, the README's first search result.
    pub const PRACTICE_TIN: &str = "123456789";
    /// Riverside Family Practice, Greenville's partner in the demo groups.
    pub const SECOND_PRACTICE_TIN: &str = "345678912";
    pub const REGISTRY_TIN: &str = "234567891";
    pub const VENDOR_ID: &str = "V000123";
    pub const VIRTUAL_GROUP_ID: &str = "VG-00123";
    pub const APM_ENTITY_ID: &str = "A1234";
    /// Laura Colburn, enrolled with Greenville under PTAN AB1234.
    pub const CLINICIAN_NPI: &str = "1234567893";
    pub const CLINICIAN_SSN: &str = "123456789";
    pub const CLINICIAN_PTAN: &str = "AB1234";
    /// Marcus Okafor, enrolled with Riverside under PTAN RF5678.
    pub const SECOND_CLINICIAN_NPI: &str = "1245319599";
    pub const SECOND_CLINICIAN_SSN: &str = "987654321";
    pub const SECOND_CLINICIAN_PTAN: &str = "RF5678";
}

fn tin(value: &str) -> Tin {
    Tin::parse(value).expect("fixed TIN is valid")
}

fn fixed_file(version: &str) -> ReferenceFile {
    use fixed::*;
    let both = vec![tin(PRACTICE_TIN), tin(SECOND_PRACTICE_TIN)];
    let clinician = |npi: &str, first: &str, last: &str, ssn: &str, practice: &str, ptan: &str| {
        ClinicianEntry {
            npi: Npi::parse(npi).expect("fixed NPI is valid"),
            first_name: first.to_string(),
            last_name: last.to_string(),
            ssn: FileSsn(Ssn::parse(ssn).expect("fixed SSN is valid")),
            enrollments: vec![EnrollmentEntry {
                tin: tin(practice),
                ptan: Ptan::parse(ptan).expect("fixed PTAN is valid"),
            }],
            apm_entities: vec![ApmEntityId::parse(APM_ENTITY_ID).expect("fixed ID is valid")],
            virtual_groups: vec![
                VirtualGroupId::parse(VIRTUAL_GROUP_ID).expect("fixed ID is valid")
            ],
        }
    };
    ReferenceFile {
        version: version.to_string(),
        practices: vec![
            PracticeEntry {
                tin: tin(PRACTICE_TIN),
                legal_business_name: "Greenville Medical Clinic".to_string(),
                address: Some("5200 Manchester Ln, Greenville, OH 01234".to_string()),
            },
            PracticeEntry {
                tin: tin(SECOND_PRACTICE_TIN),
                legal_business_name: "Riverside Family Practice".to_string(),
                address: Some("118 River Rd, Marietta, OH 45750".to_string()),
            },
        ],
        registries: vec![RegistryEntry {
            tin: tin(REGISTRY_TIN),
            legal_business_name: "American College of Medical Standards Registry".to_string(),
            vendor_id: VendorId::parse(VENDOR_ID).expect("fixed ID is valid"),
            approved: true,
            address: Some("1500 K St NW, Washington, DC 20005".to_string()),
        }],
        virtual_groups: vec![VirtualGroupEntry {
            virtual_group_id: VirtualGroupId::parse(VIRTUAL_GROUP_ID).expect("fixed ID is valid"),
            legal_business_name: "Ohio Valley Virtual Group".to_string(),
            address: None,
            participant_tins: both.clone(),
        }],
        apm_entities: vec![ApmEntityEntry {
            apm_entity_id: ApmEntityId::parse(APM_ENTITY_ID).expect("fixed ID is valid"),
            model: ApmModel::SharedSavingsProgram,
            legal_business_name: "Buckeye ACO".to_string(),
            address: Some("250 E Broad St, Columbus, OH 43215".to_string()),
            single_tin: false,
            participant_tins: both,
        }],
        clinicians: vec![
            clinician(
                CLINICIAN_NPI,
                "Laura",
                "Colburn",
                CLINICIAN_SSN,
                PRACTICE_TIN,
                CLINICIAN_PTAN,
            ),
            clinician(
                SECOND_CLINICIAN_NPI,
                "Marcus",
                "Okafor",
                SECOND_CLINICIAN_SSN,
                SECOND_PRACTICE_TIN,
                SECOND_CLINICIAN_PTAN,
            ),
        ],
    }
}

struct Generator {
    rng: fastrand::Rng,
    tins: HashSet<String>,
    names: HashSet<String>,
    issued_ids: HashSet<String>,
}

impl Generator {
    fn pick<'a>(&mut self, words: &[&'a str]) -> &'a str {
        words[self.rng.usize(..words.len())]
    }

    fn digits(&mut self, count: usize) -> String {
        (0..count).map(|_| self.rng.digit(10)).collect()
    }

    fn unique_tin(&mut self) -> Tin {
        loop {
            let candidate = format!("{}{}", self.rng.u8(1..=9), self.digits(8));
            if self.tins.insert(candidate.clone()) {
                return tin(&candidate);
            }
        }
    }

    /// An ID as `prefix` + digits, at least `width` of them and more when
    /// `count` IDs of this shape would crowd that space.
    fn unique_id(&mut self, prefix: &str, width: usize, count: usize) -> String {
        let mut width = width;
        while 10usize.pow(width as u32) < count.saturating_mul(4) {
            width += 1;
        }
        loop {
            let candidate = format!("{prefix}{}", self.digits(width));
            if self.issued_ids.insert(candidate.clone()) {
                return candidate;
            }
        }
    }

    /// Legal names repeat in real data but rarely; a few redraws keep them
    /// mostly distinct without ever looping forever on a large data set.
    fn unique_name(&mut self, mut draw: impl FnMut(&mut Self) -> String) -> String {
        let mut name = draw(self);
        for _ in 0..20 {
            if !self.names.contains(&name) {
                break;
            }
            name = draw(self);
        }
        self.names.insert(name.clone());
        name
    }

    fn address(&mut self) -> String {
        let (city, state, zip_prefix) = CITIES[self.rng.usize(..CITIES.len())];
        let suite = if self.rng.u8(..4) == 0 {
            format!(", Suite {}", self.rng.u16(1..=9) * 100)
        } else {
            String::new()
        };
        format!(
            "{} {} {}{suite}, {city}, {state} {zip_prefix}{}",
            self.rng.u16(100..=9999),
            self.pick(STREETS),
            self.pick(STREET_TYPES),
            self.digits(2)
        )
    }

    fn practice_name(&mut self) -> String {
        let owner = if self.rng.u8(..4) == 0 {
            self.pick(LAST_NAMES)
        } else {
            self.pick(PLACES)
        };
        let base = format!(
            "{owner} {} {}",
            self.pick(SPECIALTIES),
            self.pick(PRACTICE_SUFFIXES)
        );
        if self.rng.u8(..10) < 3 {
            format!("{base}{}", self.pick(LEGAL_SUFFIXES))
        } else {
            base
        }
    }

    fn registry_name(&mut self) -> String {
        match self.rng.u8(..3) {
            0 => format!(
                "{} {} Registry",
                self.pick(REGISTRY_SOCIETIES),
                self.pick(REGISTRY_FIELDS)
            ),
            1 => format!("{} Outcomes QCDR", self.pick(REGISTRY_FIELDS)),
            _ => format!("{} Health Data Registry", self.pick(REGIONS)),
        }
    }

    fn apm_entity_name(&mut self, model: ApmModel) -> String {
        let place = match model {
            ApmModel::VermontAllPayerAco => self.pick(VERMONT_PLACES),
            ApmModel::MarylandTcoc => self.pick(MARYLAND_PLACES),
            _ if self.rng.bool() => self.pick(PLACES),
            _ => self.pick(REGIONS),
        };
        let kind = match model {
            ApmModel::SharedSavingsProgram => [
                "ACO",
                "Accountable Care Organization",
                "Health Partners ACO",
            ][self.rng.usize(..3)],
            ApmModel::NextGenerationAco => "Next Generation ACO",
            ApmModel::CpcPlus => "Primary Care Practice Site",
            ApmModel::ComprehensiveEsrdCare => "Kidney Care ESCO",
            ApmModel::OncologyCareModel => "Oncology Practice Site",
            ApmModel::BpciAdvanced => "Episode Care Partners",
            ApmModel::IndependenceAtHome => "Home Care Physicians",
            ApmModel::MarylandTcoc => "Care Transformation Organization",
            ApmModel::VermontAllPayerAco => "All-Payer ACO",
            ApmModel::ComprehensiveCareForJointReplacement => "Joint Replacement Hospital",
            ApmModel::PrimaryCareFirst => "Primary Care First Practice",
            ApmModel::DirectContracting => "Direct Contracting Entity",
        };
        format!("{place} {kind}")
    }

    /// The ID shape each model's program issues, e.g. `A1234` for an SSP ACO.
    fn apm_entity_id(&mut self, model: ApmModel, count: usize) -> ApmEntityId {
        let (prefix, width) = match model {
            ApmModel::SharedSavingsProgram => ("A", 4),
            ApmModel::NextGenerationAco => ("V", 3),
            ApmModel::CpcPlus => ("T", 6),
            ApmModel::ComprehensiveEsrdCare => ("E", 4),
            ApmModel::OncologyCareModel => ("OCM-", 4),
            ApmModel::BpciAdvanced => ("BP", 4),
            ApmModel::IndependenceAtHome => ("IAH", 3),
            ApmModel::MarylandTcoc => ("MD-CTO", 3),
            ApmModel::VermontAllPayerAco => ("VT", 3),
            ApmModel::ComprehensiveCareForJointReplacement => ("CJR", 5),
            ApmModel::PrimaryCareFirst => ("PCF", 5),
            ApmModel::DirectContracting => ("D", 4),
        };
        ApmEntityId::parse(&self.unique_id(prefix, width, count)).expect("generated ID is valid")
    }

    /// `count` distinct practices among `pool` (practice positions).
    fn participants(&mut self, pool: std::ops::Range<usize>, count: usize) -> Vec<usize> {
        let count = count.min(pool.len());
        let mut chosen: Vec<usize> = Vec::with_capacity(count);
        while chosen.len() < count {
            let candidate = self.rng.usize(pool.clone());
            if !chosen.contains(&candidate) {
                chosen.push(candidate);
            }
        }
        chosen
    }

    fn npi(&mut self, used: &mut HashSet<String>) -> Npi {
        loop {
            let body = format!("{}{}", self.rng.u8(1..=2), self.digits(8));
            let candidate = format!("{body}{}", Npi::check_digit(&body));
            if used.insert(candidate.clone()) {
                return Npi::parse(&candidate).expect("generated NPI is valid");
            }
        }
    }

    /// SSA-issuable shapes only: no area 000, 666 or 9xx, no zero group or
    /// serial.
    fn ssn(&mut self) -> Ssn {
        let mut area = self.rng.u16(1..=899);
        if area == 666 {
            area = 667;
        }
        let digits = format!(
            "{area:03}{:02}{:04}",
            self.rng.u8(1..=99),
            self.rng.u16(1..=9999)
        );
        Ssn::parse(&digits).expect("generated SSN is valid")
    }

    fn ptan(&mut self) -> Ptan {
        let value = match self.rng.u8(..10) {
            0..=4 => {
                let letters: String = (0..2).map(|_| self.rng.uppercase()).collect();
                let length = self.rng.usize(4..=6);
                format!("{letters}{}", self.digits(length))
            }
            5..=7 => self.digits(6),
            _ => {
                let length = self.rng.usize(6..=10);
                (0..length)
                    .map(|_| {
                        if self.rng.bool() {
                            self.rng.uppercase()
                        } else {
                            self.rng.digit(10)
                        }
                    })
                    .collect()
            }
        };
        Ptan::parse(&value).expect("generated PTAN is valid")
    }
}

/// A data set for `options`: the same options always give the same data.
pub fn generate(options: &GenerateOptions) -> ReferenceFile {
    let practice_count = options.practices.max(4);
    let registry_count = options.registries.max(1);
    let group_count = options.virtual_groups.max(1);
    let entity_count = options.apm_entities.max(ApmModel::ALL.len() + 1);
    let clinician_count = options.clinicians.max(4);

    let mut file = fixed_file(&options.version);
    let mut generator = Generator {
        rng: fastrand::Rng::with_seed(options.seed),
        tins: HashSet::new(),
        names: HashSet::new(),
        issued_ids: HashSet::new(),
    };
    for practice in &file.practices {
        generator.tins.insert(practice.tin.to_string());
        generator.names.insert(practice.legal_business_name.clone());
    }
    for registry in &file.registries {
        generator.tins.insert(registry.tin.to_string());
        generator.names.insert(registry.legal_business_name.clone());
        generator.issued_ids.insert(registry.vendor_id.to_string());
    }
    for group in &file.virtual_groups {
        generator.names.insert(group.legal_business_name.clone());
        generator
            .issued_ids
            .insert(group.virtual_group_id.to_string());
    }
    for entity in &file.apm_entities {
        generator.names.insert(entity.legal_business_name.clone());
        generator
            .issued_ids
            .insert(entity.apm_entity_id.to_string());
    }

    while file.practices.len() < practice_count {
        let tin = generator.unique_tin();
        let legal_business_name = generator.unique_name(Generator::practice_name);
        let address = Some(generator.address());
        file.practices.push(PracticeEntry {
            tin,
            legal_business_name,
            address,
        });
    }

    while file.registries.len() < registry_count {
        let tin = generator.unique_tin();
        let legal_business_name = generator.unique_name(Generator::registry_name);
        let vendor_id = VendorId::parse(&generator.unique_id("V", 6, registry_count))
            .expect("generated ID is valid");
        // Most registries are CMS-approved; a few are not, so the refusal
        // can be demonstrated.
        let approved = generator.rng.u8(..10) != 0;
        let address = Some(generator.address());
        file.registries.push(RegistryEntry {
            tin,
            legal_business_name,
            vendor_id,
            approved,
            address,
        });
    }

    // Generated groups draw from the generated practices only, so the fixed
    // clinicians' memberships stay exactly as documented.
    let pool = 2..practice_count;
    // For each practice: the groups and entities it participates in.
    let mut practice_groups: Vec<Vec<usize>> = vec![Vec::new(); practice_count];
    let mut practice_entities: Vec<Vec<usize>> = vec![Vec::new(); practice_count];
    // The two fixed practices belong to the fixed group and entity.
    for memberships in practice_groups[..2]
        .iter_mut()
        .chain(&mut practice_entities[..2])
    {
        memberships.push(0);
    }

    while file.virtual_groups.len() < group_count {
        let position = file.virtual_groups.len();
        let id = VirtualGroupId::parse(&generator.unique_id("VG-", 5, group_count))
            .expect("generated ID is valid");
        let legal_business_name = generator.unique_name(|generator| {
            let region = generator.pick(REGIONS);
            let kind = [
                "Virtual Group",
                "Physicians Virtual Group",
                "Independent Practices Virtual Group",
            ][generator.rng.usize(..3)];
            format!("{region} {kind}")
        });
        let size = generator.rng.usize(2..=6);
        let members = generator.participants(pool.clone(), size);
        for &member in &members {
            practice_groups[member].push(position);
        }
        file.virtual_groups.push(VirtualGroupEntry {
            virtual_group_id: id,
            legal_business_name,
            address: None,
            participant_tins: members
                .iter()
                .map(|&m| file.practices[m].tin.clone())
                .collect(),
        });
    }

    while file.apm_entities.len() < entity_count {
        let position = file.apm_entities.len();
        // The first twelve cover every model (the fixed entity is SSP) and
        // the thirteenth is a single-TIN ACO, so every data set has each.
        let (model, single_tin) = if position < ApmModel::ALL.len() {
            (ApmModel::ALL[position], false)
        } else if position == ApmModel::ALL.len() {
            (ApmModel::SharedSavingsProgram, true)
        } else {
            let model = ApmModel::ALL[generator.rng.usize(..ApmModel::ALL.len())];
            (
                model,
                model == ApmModel::SharedSavingsProgram && generator.rng.u8(..4) == 0,
            )
        };
        let apm_entity_id = generator.apm_entity_id(model, entity_count);
        let size = match model {
            _ if single_tin => 1,
            ApmModel::SharedSavingsProgram | ApmModel::NextGenerationAco => {
                generator.rng.usize(2..=8)
            }
            ApmModel::CpcPlus | ApmModel::ComprehensiveEsrdCare | ApmModel::OncologyCareModel => {
                generator.rng.usize(1..=3)
            }
            _ => generator.rng.usize(1..=4),
        };
        let members = generator.participants(pool.clone(), size);
        let legal_business_name = if single_tin {
            // A single-TIN ACO is the practice itself acting as an ACO.
            let practice = &file.practices[members[0]].legal_business_name;
            let base = practice.split(", ").next().unwrap_or(practice);
            format!("{base} ACO")
        } else {
            generator.unique_name(|generator| generator.apm_entity_name(model))
        };
        let address = Some(generator.address());
        for &member in &members {
            practice_entities[member].push(position);
        }
        file.apm_entities.push(ApmEntityEntry {
            apm_entity_id,
            model,
            legal_business_name,
            address,
            single_tin,
            participant_tins: members
                .iter()
                .map(|&m| file.practices[m].tin.clone())
                .collect(),
        });
    }

    // Enrollments: every practice gets two generated clinicians (cycling
    // through them when there are fewer than two per practice), the rest
    // join a random practice, and a few also work at a second one.
    let generated = clinician_count - file.clinicians.len();
    let mut enrollments: Vec<Vec<usize>> = vec![Vec::new(); generated];
    for slot in 0..2 * practice_count {
        let practices = &mut enrollments[slot % generated];
        if !practices.contains(&(slot / 2)) {
            practices.push(slot / 2);
        }
    }
    for practices in &mut enrollments {
        if practices.is_empty() {
            practices.push(generator.rng.usize(..practice_count));
        }
        if generator.rng.u8(..100) < 7 {
            let second = generator.rng.usize(..practice_count);
            if !practices.contains(&second) {
                practices.push(second);
            }
        }
    }

    let mut npis: HashSet<String> = file.clinicians.iter().map(|c| c.npi.to_string()).collect();
    file.clinicians.reserve(generated);
    for practices in enrollments {
        let npi = generator.npi(&mut npis);
        let first_name = generator.pick(FIRST_NAMES).to_string();
        let last_name = generator.pick(LAST_NAMES).to_string();
        let ssn = FileSsn(generator.ssn());
        let mut apm_entities: Vec<ApmEntityId> = Vec::new();
        let mut virtual_groups: Vec<VirtualGroupId> = Vec::new();
        let mut entries = Vec::with_capacity(practices.len());
        for practice in practices {
            for &entity in &practice_entities[practice] {
                let id = &file.apm_entities[entity].apm_entity_id;
                if !apm_entities.contains(id) {
                    apm_entities.push(id.clone());
                }
            }
            for &group in &practice_groups[practice] {
                let id = &file.virtual_groups[group].virtual_group_id;
                if !virtual_groups.contains(id) {
                    virtual_groups.push(id.clone());
                }
            }
            entries.push(EnrollmentEntry {
                tin: file.practices[practice].tin.clone(),
                ptan: generator.ptan(),
            });
        }
        file.clinicians.push(ClinicianEntry {
            npi,
            first_name,
            last_name,
            ssn,
            enrollments: entries,
            apm_entities,
            virtual_groups,
        });
    }
    file
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::{Duration, Instant};

    use access_domain::identifiers::{OrganizationId, OrganizationKind};
    use access_domain::proof::{ProofVerdict, SecurityOfficialProof};
    use access_domain::services::ReferenceLookup;

    use super::*;
    use crate::ReferenceData;

    fn options(seed: u64, practices: usize, clinicians: usize) -> GenerateOptions {
        GenerateOptions {
            seed,
            version: "test".to_string(),
            practices,
            registries: practices / 10,
            virtual_groups: practices / 10,
            apm_entities: practices / 4,
            clinicians,
        }
    }

    fn sizes() -> Vec<GenerateOptions> {
        vec![
            options(1, 0, 0),
            options(2, 5, 3),
            options(3, 40, 60),
            options(4, 300, 2_000),
            GenerateOptions::demo(),
        ]
    }

    /// A proof built from the file alone, the way a real Security Official
    /// would assemble it from their own records.
    fn valid_proof(
        file: &ReferenceFile,
        record: &crate::OrganizationRecord,
    ) -> SecurityOfficialProof {
        let clinician_of = |tin: &Tin, entity: Option<&ApmEntityId>| {
            file.clinicians.iter().find_map(|clinician| {
                let member = entity.is_none_or(|id| clinician.apm_entities.contains(id));
                clinician
                    .enrollments
                    .iter()
                    .find(|enrollment| &enrollment.tin == tin && member)
                    .map(|enrollment| (clinician.npi.clone(), enrollment.ptan.clone()))
            })
        };
        let mut proof = SecurityOfficialProof {
            apm_entity_id: record.apm_entity_id.clone(),
            vendor_id: record.vendor_id.clone(),
            tin: record.tin.clone(),
            participant_tins: record.participant_tins.iter().take(2).cloned().collect(),
            ..Default::default()
        };
        if record.kind == OrganizationKind::Practice {
            let (npi, ptan) =
                clinician_of(record.tin.as_ref().unwrap(), None).expect("practice has clinicians");
            proof.npi = Some(npi);
            proof.ptan = Some(ptan);
        }
        if record
            .apm_model
            .is_some_and(ApmModel::searchable_by_entity_id)
        {
            let (tin, npi) = record
                .participant_tins
                .iter()
                .find_map(|tin| {
                    clinician_of(tin, record.apm_entity_id.as_ref()).map(|(npi, _)| (tin, npi))
                })
                .expect("site has a clinician");
            proof.tin = Some(tin.clone());
            proof.npi = Some(npi);
        }
        proof
    }

    #[test]
    fn generated_data_always_loads_at_any_size_and_seed() {
        for options in sizes() {
            let file = generate(&options);
            let json = file.to_json_pretty();
            ReferenceData::from_json_str(&json)
                .unwrap_or_else(|error| panic!("{options:?}: {error}"));
        }
    }

    #[test]
    fn sizes_are_totals_raised_to_what_the_fixed_records_and_rules_need() {
        let small = generate(&options(1, 0, 0));
        assert_eq!(
            (
                small.practices.len(),
                small.registries.len(),
                small.virtual_groups.len()
            ),
            (4, 1, 1)
        );
        assert_eq!((small.apm_entities.len(), small.clinicians.len()), (13, 4));
        let demo = generate(&GenerateOptions::demo());
        assert_eq!(
            (
                demo.practices.len(),
                demo.registries.len(),
                demo.virtual_groups.len()
            ),
            (200, 20, 20)
        );
        assert_eq!(
            (demo.apm_entities.len(), demo.clinicians.len()),
            (60, 1_000)
        );
    }

    #[test]
    fn the_same_seed_gives_the_same_data_and_another_seed_other_data() {
        assert_eq!(
            generate(&options(9, 50, 150)),
            generate(&options(9, 50, 150))
        );
        assert_ne!(
            generate(&options(9, 50, 150)),
            generate(&options(10, 50, 150))
        );
    }

    #[test]
    fn the_fixed_records_come_first_whatever_the_size() {
        let fixed = fixed_file("test");
        for options in sizes() {
            let file = generate(&options);
            assert_eq!(file.practices[..2], fixed.practices[..]);
            assert_eq!(file.registries[..1], fixed.registries[..]);
            assert_eq!(file.virtual_groups[..1], fixed.virtual_groups[..]);
            assert_eq!(file.apm_entities[..1], fixed.apm_entities[..]);
            assert_eq!(file.clinicians[..2], fixed.clinicians[..]);
        }
        let laura = &fixed.clinicians[0];
        assert_eq!(
            (laura.npi.as_str(), laura.first_name.as_str()),
            ("1234567893", "Laura")
        );
        assert_eq!(laura.enrollments[0].ptan.as_str(), "AB1234");
    }

    #[test]
    fn laura_colburn_is_the_only_clinician_of_her_name() {
        let data = ReferenceData::from_file(generate(&options(4, 300, 2_000))).unwrap();
        assert_eq!(data.clinicians_named("Laura", "Colburn").len(), 1);
        assert_eq!(data.clinicians_named("Marcus", "Okafor").len(), 1);
    }

    #[test]
    fn every_practice_has_at_least_two_clinicians() {
        for options in sizes() {
            let file = generate(&options);
            let mut counts: HashMap<&Tin, usize> = HashMap::new();
            for clinician in &file.clinicians {
                for enrollment in &clinician.enrollments {
                    *counts.entry(&enrollment.tin).or_default() += 1;
                }
            }
            for practice in &file.practices {
                assert!(
                    counts.get(&practice.tin).copied().unwrap_or(0) >= 2,
                    "{options:?}"
                );
            }
        }
    }

    #[test]
    fn the_demo_covers_every_model_single_tin_acos_and_unapproved_registries() {
        let file = generate(&GenerateOptions::demo());
        for model in ApmModel::ALL {
            assert!(
                file.apm_entities.iter().any(|entity| entity.model == model),
                "{model:?}"
            );
        }
        assert!(file.apm_entities.iter().any(|entity| entity.single_tin));
        assert!(file.registries.iter().any(|registry| !registry.approved));
        assert!(
            file.registries
                .iter()
                .filter(|registry| registry.approved)
                .count()
                > 10
        );
    }

    #[test]
    fn clinicians_belong_to_exactly_the_groups_their_practices_participate_in() {
        let file = generate(&options(5, 120, 600));
        for clinician in &file.clinicians {
            let tins: Vec<&Tin> = clinician.enrollments.iter().map(|e| &e.tin).collect();
            let mut entities: Vec<&ApmEntityId> = file
                .apm_entities
                .iter()
                .filter(|entity| {
                    entity
                        .participant_tins
                        .iter()
                        .any(|tin| tins.contains(&tin))
                })
                .map(|entity| &entity.apm_entity_id)
                .collect();
            let mut held: Vec<&ApmEntityId> = clinician.apm_entities.iter().collect();
            entities.sort();
            held.sort();
            assert_eq!(held, entities, "{}", clinician.npi);
            let groups = file
                .virtual_groups
                .iter()
                .filter(|group| group.participant_tins.iter().any(|tin| tins.contains(&tin)))
                .count();
            assert_eq!(clinician.virtual_groups.len(), groups, "{}", clinician.npi);
        }
    }

    #[test]
    fn every_generated_organization_accepts_a_proof_built_from_the_data() {
        let file = generate(&options(6, 150, 500));
        let data = ReferenceData::from_file(file.clone()).unwrap();
        for record in data.organizations() {
            let verdict = data.check_proof(&record.id, &valid_proof(&file, record));
            let expected = if record.approved {
                ProofVerdict::Accepted
            } else {
                ProofVerdict::NotConnectable
            };
            assert_eq!(verdict, expected, "{}", record.id);
        }
    }

    #[test]
    fn generated_identifiers_are_unique_and_well_formed() {
        let file = generate(&options(7, 500, 3_000));
        let mut tins: Vec<&Tin> = file
            .practices
            .iter()
            .map(|p| &p.tin)
            .chain(file.registries.iter().map(|r| &r.tin))
            .collect();
        let count = tins.len();
        tins.sort();
        tins.dedup();
        assert_eq!(tins.len(), count);
        assert!(file
            .virtual_groups
            .iter()
            .all(|g| g.virtual_group_id.as_str().starts_with("VG-")));
        assert!(file
            .registries
            .iter()
            .all(|r| r.vendor_id.as_str().starts_with('V')));
        assert!(file
            .clinicians
            .iter()
            .all(|c| matches!(c.npi.as_str().as_bytes()[0], b'1' | b'2')));
    }

    /// Run with `cargo test --release -p access-reference -- --ignored`:
    /// start-up must stay well under 5 s with national-sized data.
    #[test]
    #[ignore = "slow: a national-sized data set; run in release mode"]
    fn loading_a_national_sized_file_and_searching_it_is_fast() {
        let options = GenerateOptions {
            seed: 42,
            version: "load-test".to_string(),
            practices: 80_000,
            registries: 2_000,
            virtual_groups: 3_000,
            apm_entities: 15_000,
            clinicians: 500_000,
        };
        let json = serde_json::to_string(&generate(&options)).unwrap();
        let started = Instant::now();
        let data = ReferenceData::from_json_str(&json).unwrap();
        let load = started.elapsed();
        eprintln!("loaded {} MB in {load:?}", json.len() / 1_000_000);
        assert!(load < Duration::from_secs(5), "{load:?}");
        assert_eq!(data.organizations().len(), 100_000);
        for query in [
            "a",
            "f",
            "family",
            "lakeside fam",
            "green med cli",
            "123456789",
            "s p c",
        ] {
            let started = Instant::now();
            let found = data
                .search(OrganizationKind::Practice, query, None, 20)
                .unwrap();
            let took = started.elapsed();
            eprintln!("{query:?}: {} results in {took:?}", found.len());
            assert!(took < Duration::from_millis(50), "{query:?} took {took:?}");
        }
        let id = OrganizationId::practice(Tin::parse("123456789").unwrap());
        assert!(data.organization(&id).is_some());
    }
}
