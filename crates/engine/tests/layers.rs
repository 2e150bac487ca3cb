//! The engine's modules form layers: a module may name (`crate::x`) only modules of a lower
//! layer, so there is no import cycle and the shared types stay at the bottom. This test reads
//! the sources and fails with the file and the offending path when an import runs upward.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Top-level modules of `hearth-engine`, from the bottom layer up.
const LAYERS: &[&[&str]] = &[
    &["model", "viz", "backend", "gguf", "dynamics"],
    &["events"],
    &["data"],
    &["eval"],
    &["objective"],
    &["spec"],
    &["project", "preview"],
    &["train", "export"],
    &["improve", "sweep"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

/// Every `.rs` file of a module: `src/<module>.rs` or everything under `src/<module>/`.
fn files_of(src: &Path, module: &str) -> Vec<PathBuf> {
    let file = src.join(format!("{module}.rs"));
    if file.is_file() {
        return vec![file];
    }
    let mut files = Vec::new();
    let mut stack = vec![src.join(module)];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files
}

/// The modules a source text names as `crate::<module>`.
fn named_modules(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (i, _) in text.match_indices("crate::") {
        let rest = &text[i + "crate::".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            found.insert(name);
        }
    }
    found
}

#[test]
fn engine_modules_import_only_lower_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut declared: Vec<String> = std::fs::read_to_string(src.join("lib.rs"))
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("pub mod "))
        .map(|l| l.trim_end_matches(';').to_string())
        .collect();
    declared.sort();
    let mut layered: Vec<String> = LAYERS
        .iter()
        .flat_map(|l| l.iter().map(|m| m.to_string()))
        .collect();
    layered.sort();
    assert_eq!(
        declared, layered,
        "every module declared in lib.rs must be placed in exactly one layer of this test"
    );
    let mut upward = Vec::new();
    for module in &declared {
        let own = layer_of(module).unwrap();
        for file in files_of(&src, module) {
            let text = std::fs::read_to_string(&file).unwrap();
            for named in named_modules(&text) {
                if named == *module {
                    continue;
                }
                match layer_of(&named) {
                    Some(layer) if layer < own => {}
                    Some(_) => upward.push(format!(
                        "{} (module {module}) names crate::{named}, which is not below it",
                        file.display()
                    )),
                    None => upward.push(format!(
                        "{} names crate::{named}, which is no module of the engine",
                        file.display()
                    )),
                }
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports that run upward:\n{}",
        upward.join("\n")
    );
}

#[test]
fn the_scanner_sees_imports_in_braces_and_paths() {
    let text = "use crate::data::{Corpus, Split};\nlet x = crate::model::Model::new();\n";
    let names: Vec<String> = named_modules(text).into_iter().collect();
    assert_eq!(names, ["data", "model"]);
}
