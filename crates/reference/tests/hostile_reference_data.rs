//! Hostile reference data: whatever the upstream file holds, loading it gives the
//! data or a refusal naming the JSON path of the first faulty value, never a
//! panic, and never quotes an SSN of the file.

use access_reference::{generate, GenerateOptions, ReferenceData, ReferenceDataError};
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{json, Value};

/// A small valid file, as JSON.
fn valid_file() -> Value {
    let options = GenerateOptions {
        practices: 6,
        registries: 3,
        virtual_groups: 3,
        apm_entities: 4,
        clinicians: 12,
        ..GenerateOptions::demo()
    };
    serde_json::from_str(&generate(&options).to_json_pretty()).unwrap()
}

/// Every value below the root, with its path as the loader writes it
/// (`clinicians[3].enrollments[0].ptan`) and its JSON pointer.
fn paths(value: &Value, path: &str, pointer: &str, found: &mut Vec<(String, String)>) {
    let children: Vec<(String, String, &Value)> = match value {
        Value::Object(fields) => fields
            .iter()
            .map(|(key, child)| {
                let child_path = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                (child_path, format!("{pointer}/{key}"), child)
            })
            .collect(),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(index, child)| {
                (
                    format!("{path}[{index}]"),
                    format!("{pointer}/{index}"),
                    child,
                )
            })
            .collect(),
        _ => Vec::new(),
    };
    for (child_path, child_pointer, child) in children {
        found.push((child_path.clone(), child_pointer.clone()));
        paths(child, &child_path, &child_pointer, found);
    }
}

fn all_paths(file: &Value) -> Vec<(String, String)> {
    let mut found = Vec::new();
    paths(file, "", "", &mut found);
    found
}

fn ssns(file: &Value) -> Vec<String> {
    file["clinicians"]
        .as_array()
        .unwrap()
        .iter()
        .map(|clinician| clinician["ssn"].as_str().unwrap().to_string())
        .collect()
}

/// A refusal names a path and what was expected there, and no SSN of the file.
fn clean_refusal(error: &ReferenceDataError, file: &Value) -> Result<(), TestCaseError> {
    let ReferenceDataError::Invalid { path, expected } = error else {
        return Err(TestCaseError::fail(format!(
            "not a refusal of the content: {error}"
        )));
    };
    prop_assert!(!path.is_empty() && !expected.is_empty(), "{error}");
    let message = error.to_string();
    prop_assert!(message.starts_with(path.as_str()), "{message}");
    for ssn in ssns(file) {
        prop_assert!(!message.contains(&ssn), "{message} quotes an SSN");
    }
    Ok(())
}

/// What an edit does to the value it picks.
#[derive(Clone, Debug)]
enum Edit {
    Remove,
    Replace(Value),
    /// A key no record has, added to the value when it is an object.
    AddKey(String),
    /// The value again, next to itself in its array (a duplicate record).
    Duplicate,
}

fn edit() -> impl Strategy<Value = Edit> {
    let scalar = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        any::<String>().prop_map(Value::from),
        "[0-9]{0,12}".prop_map(Value::from),
        Just(json!([])),
        Just(json!({})),
    ];
    prop_oneof![
        Just(Edit::Remove),
        scalar.prop_map(Edit::Replace),
        "[a-zA-Z]{1,12}".prop_map(Edit::AddKey),
        Just(Edit::Duplicate),
    ]
}

fn apply(file: &mut Value, pointer: &str, edit: &Edit) {
    let (parent, last) = pointer.rsplit_once('/').unwrap();
    let Some(parent) = file.pointer_mut(parent) else {
        return;
    };
    match (parent, edit) {
        (Value::Object(fields), Edit::Remove) => {
            fields.remove(last);
        }
        (Value::Array(items), Edit::Remove) => {
            items.remove(last.parse().unwrap());
        }
        (Value::Array(items), Edit::Duplicate) => {
            let index: usize = last.parse().unwrap();
            items.insert(index, items[index].clone());
        }
        (_, Edit::Remove | Edit::Duplicate) => {}
        (parent, Edit::Replace(_) | Edit::AddKey(_)) => {
            let target = match parent {
                Value::Object(fields) => fields.get_mut(last),
                Value::Array(items) => items.get_mut(last.parse::<usize>().unwrap()),
                _ => None,
            };
            match (target, edit) {
                (Some(target), Edit::Replace(value)) => *target = value.clone(),
                (Some(Value::Object(fields)), Edit::AddKey(key)) => {
                    fields.insert(key.clone(), Value::from(true));
                }
                _ => {}
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_bytes_are_loaded_or_refused_with_a_json_path(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let text = String::from_utf8_lossy(&bytes);
        if let Err(error) = ReferenceData::from_json_str(&text) {
            clean_refusal(&error, &valid_file())?;
        }
    }

    #[test]
    fn a_valid_file_cut_anywhere_is_refused_with_a_json_path(at in any::<Index>()) {
        let file = valid_file();
        let text = file.to_string();
        let cut: String = text.chars().take(at.index(text.chars().count())).collect();
        let error = ReferenceData::from_json_str(&cut).unwrap_err();
        clean_refusal(&error, &file)?;
    }

    #[test]
    fn a_value_of_a_kind_nothing_accepts_is_refused_at_its_own_path(at in any::<Index>()) {
        let original = valid_file();
        let mut file = original.clone();
        let found = all_paths(&file);
        let (path, pointer) = &found[at.index(found.len())];
        let target = file.pointer_mut(pointer).unwrap();
        // Records are objects and every field is text, a flag or a list: an
        // object fits no field, and text fits no record.
        *target = if target.is_object() { json!("text") } else { json!({ "unexpected": true }) };
        let error = ReferenceData::from_json_str(&file.to_string()).unwrap_err();
        clean_refusal(&error, &original)?;
        let ReferenceDataError::Invalid { path: refused, .. } = &error else { unreachable!() };
        prop_assert_eq!(refused, path, "{}", error);
    }

    #[test]
    fn random_edits_of_a_valid_file_are_loaded_or_refused_with_a_json_path(
        edits in proptest::collection::vec((any::<Index>(), edit()), 1..6),
    ) {
        let original = valid_file();
        let mut file = original.clone();
        for (at, edit) in &edits {
            let found = all_paths(&file);
            if found.is_empty() {
                break;
            }
            let (_, pointer) = &found[at.index(found.len())];
            apply(&mut file, pointer, edit);
        }
        if let Err(error) = ReferenceData::from_json_str(&file.to_string()) {
            clean_refusal(&error, &original)?;
        }
    }
}
