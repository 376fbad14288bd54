//! Reference data the harness generates for each run (with the product's own
//! generator), writes for the server, and keeps to know which proofs are valid.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use access_reference::{generate, GenerateOptions, ReferenceFile};
use serde_json::{json, Value};

/// A practice and a valid first-Security-Official proof for it.
#[derive(Clone, Debug)]
pub struct Practice {
    /// `practice:<TIN>`, the organization (and aggregate) id.
    pub id: String,
    pub tin: String,
    pub npi: String,
    pub ptan: String,
}

impl Practice {
    pub fn proof(&self) -> Value {
        json!({ "tin": self.tin, "npi": self.npi, "ptan": self.ptan })
    }
}

/// A CMS-approved registry and its proof (TIN and vendor ID).
#[derive(Clone, Debug)]
pub struct Registry {
    pub id: String,
    pub tin: String,
    pub vendor_id: String,
}

impl Registry {
    pub fn proof(&self) -> Value {
        json!({ "tin": self.tin, "vendorId": self.vendor_id })
    }
}

pub struct Reference {
    pub path: PathBuf,
    pub practices: Vec<Practice>,
    pub registries: Vec<Registry>,
    pub organizations: usize,
    pub clinicians: usize,
}

/// Sizes of a generated data set.
#[derive(Clone, Copy, Debug)]
pub struct Size {
    pub practices: usize,
    pub registries: usize,
    pub virtual_groups: usize,
    pub apm_entities: usize,
    pub clinicians: usize,
}

impl Size {
    /// `practices` practices, two clinicians for each, and a few of the other kinds.
    pub fn practices(practices: usize) -> Size {
        Size {
            practices,
            registries: 20,
            virtual_groups: 20,
            apm_entities: 60,
            clinicians: practices * 2,
        }
    }
}

/// Generates the data set, writes it (compact JSON) to `dir/reference-<name>.json`.
pub fn write(dir: &Path, name: &str, size: Size) -> Result<Reference, String> {
    let file: ReferenceFile = generate(&GenerateOptions {
        seed: 7,
        version: format!("loadgen-{name}"),
        practices: size.practices,
        registries: size.registries,
        virtual_groups: size.virtual_groups,
        apm_entities: size.apm_entities,
        clinicians: size.clinicians,
    });
    let path = dir.join(format!("reference-{name}.json"));
    let out = std::fs::File::create(&path)
        .map_err(|error| format!("cannot write {}: {error}", path.display()))?;
    let mut out = std::io::BufWriter::new(out);
    serde_json::to_writer(&mut out, &file).map_err(|error| error.to_string())?;
    out.flush().map_err(|error| error.to_string())?;

    let mut enrolled: HashMap<String, (String, String)> = HashMap::new();
    for clinician in &file.clinicians {
        for enrollment in &clinician.enrollments {
            enrolled
                .entry(enrollment.tin.to_string())
                .or_insert_with(|| (clinician.npi.to_string(), enrollment.ptan.to_string()));
        }
    }
    let practices = file
        .practices
        .iter()
        .filter_map(|practice| {
            let tin = practice.tin.to_string();
            let (npi, ptan) = enrolled.get(&tin)?.clone();
            Some(Practice {
                id: format!("practice:{tin}"),
                tin,
                npi,
                ptan,
            })
        })
        .collect();
    let registries = file
        .registries
        .iter()
        .filter(|registry| registry.approved)
        .map(|registry| Registry {
            id: format!("registry:{}", registry.tin),
            tin: registry.tin.to_string(),
            vendor_id: registry.vendor_id.to_string(),
        })
        .collect();
    Ok(Reference {
        path,
        practices,
        registries,
        organizations: file.practices.len()
            + file.registries.len()
            + file.virtual_groups.len()
            + file.apm_entities.len(),
        clinicians: file.clinicians.len(),
    })
}
