//! House rules of the source tree: the layer order `src/lib.rs` declares holds (no module imports from a higher
//! layer, every module has a layer, no two source files import each other), and no source file is over 1,000
//! lines.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The declared layer of every top-level module, from `src/lib.rs`'s `//! - layer N: a b c` lines.
fn layers() -> BTreeMap<String, usize> {
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    let mut layers = BTreeMap::new();
    for line in lib.lines() {
        let Some(rest) = line.strip_prefix("//! - layer ") else {
            continue;
        };
        let (n, modules) = rest.split_once(':').unwrap();
        for module in modules.split_whitespace() {
            layers.insert(module.to_owned(), n.trim().parse::<usize>().unwrap());
        }
    }
    layers
}

/// Every source file, as its path under `src/`.
fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path.strip_prefix(src()).unwrap().to_owned());
        }
    }
}

/// The paths a file names with `crate::a::b...` or `super::x`, as module paths (`a::b`).
fn references(file: &Path, text: &str) -> BTreeSet<Vec<String>> {
    let own = module_path(file);
    let mut out = BTreeSet::new();
    for (prefix, base) in [("crate::", Vec::new()), ("super::", parent(&own))] {
        for (at, _) in text.match_indices(prefix) {
            let before = text[..at].chars().last();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let rest = &text[at + prefix.len()..];
            let mut path = base.clone();
            for segment in rest.split("::") {
                let name: String = segment
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if name.is_empty() || name.chars().next().is_some_and(char::is_uppercase) {
                    break;
                }
                path.push(name.clone());
                if segment.len() != name.len() {
                    break;
                }
            }
            out.insert(path);
        }
    }
    out
}

/// `http/chat.rs` → `["http", "chat"]`; `http/mod.rs` → `["http"]`.
fn module_path(file: &Path) -> Vec<String> {
    let mut parts: Vec<String> = file
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts
        .last()
        .is_some_and(|p| p == "mod" || p == "lib" || p == "main")
    {
        parts.pop();
    }
    parts
}

fn parent(module: &[String]) -> Vec<String> {
    module[..module.len().saturating_sub(1)].to_vec()
}

/// The source file a module path names, if it is one (the longest prefix that is a file).
fn file_of(path: &[String], known: &BTreeMap<Vec<String>, PathBuf>) -> Option<PathBuf> {
    (1..=path.len())
        .rev()
        .find_map(|n| known.get(&path[..n]).cloned())
}

#[test]
fn no_module_imports_from_a_higher_layer_and_no_files_import_each_other() {
    let layers = layers();
    let mut all = Vec::new();
    files(&src(), &mut all);
    let known: BTreeMap<Vec<String>, PathBuf> = all
        .iter()
        .map(|f| (module_path(f), f.clone()))
        .filter(|(m, _)| !m.is_empty())
        .collect();
    let mut imports: BTreeMap<PathBuf, BTreeSet<PathBuf>> = BTreeMap::new();
    let mut upward = Vec::new();
    for file in &all {
        let own = module_path(file);
        let Some(top) = own.first() else {
            continue;
        };
        let layer = *layers
            .get(top)
            .unwrap_or_else(|| panic!("src/lib.rs declares no layer for `{top}`"));
        let text = std::fs::read_to_string(src().join(file)).unwrap();
        for reference in references(file, &text) {
            let Some(dep) = reference.first() else {
                continue;
            };
            if dep != top {
                match layers.get(dep) {
                    Some(l) if *l > layer => upward.push(format!(
                        "{} (layer {layer}) uses {dep} (layer {l})",
                        file.display()
                    )),
                    _ => {}
                }
            }
            if let Some(target) = file_of(&reference, &known).filter(|t| t != file) {
                imports.entry(file.clone()).or_default().insert(target);
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports that run up the layers:\n{}",
        upward.join("\n")
    );
    let mutual: Vec<String> = imports
        .iter()
        .flat_map(|(a, targets)| targets.iter().map(move |b| (a, b)))
        .filter(|(a, b)| a < b && imports.get(*b).is_some_and(|t| t.contains(*a)))
        .map(|(a, b)| format!("{} ⇄ {}", a.display(), b.display()))
        .collect();
    assert!(
        mutual.is_empty(),
        "files that import each other:\n{}",
        mutual.join("\n")
    );
}

#[test]
fn no_source_file_is_over_a_thousand_lines() {
    let mut all = Vec::new();
    files(&src(), &mut all);
    let long: Vec<String> = all
        .iter()
        .filter_map(|f| {
            let lines = std::fs::read_to_string(src().join(f))
                .unwrap()
                .lines()
                .count();
            (lines > 1000).then(|| format!("{} has {lines} lines", f.display()))
        })
        .collect();
    assert!(long.is_empty(), "{}", long.join("\n"));
}
