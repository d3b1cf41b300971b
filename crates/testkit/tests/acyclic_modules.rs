//! The workspace's architecture rule: inside each crate, the top-level
//! modules never import each other in a circle, so each can be read (and
//! tested) after the ones it uses. A module's edges are every `crate::name`
//! path in its files (doc links included) and every name in a
//! `use crate::{...}` group; a child module using its parent is no edge.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn identifier_at(text: &str) -> &str {
    let end = text.find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')).unwrap_or(text.len());
    &text[..end]
}

/// The names a file refers to as `crate::name`, or inside `use crate::{...}`.
fn referenced(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (pos, _) in text.match_indices("crate::") {
        let preceded_by_word = text[..pos].chars().next_back().is_some_and(|c| c.is_alphanumeric() || c == '_');
        if preceded_by_word {
            continue;
        }
        let rest = &text[pos + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find(';').unwrap_or(group.len())];
            for token in group.split(|c: char| !(c.is_alphanumeric() || c == '_')) {
                names.insert(token.to_owned());
            }
        } else {
            names.insert(identifier_at(rest).to_owned());
        }
    }
    names
}

/// The top-level modules of the crate whose sources are in `src`, with the modules each uses.
fn module_edges(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut modules: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for file in files {
        let relative = file.strip_prefix(src).unwrap();
        let first = relative.components().next().unwrap().as_os_str().to_string_lossy().into_owned();
        let top = first.strip_suffix(".rs").unwrap_or(&first).to_owned();
        if top != "lib" && top != "main" {
            modules.entry(top).or_default().push(file);
        }
    }
    let names: BTreeSet<String> = modules.keys().cloned().collect();
    modules
        .iter()
        .map(|(module, files)| {
            let used = files
                .iter()
                .flat_map(|f| referenced(&std::fs::read_to_string(f).unwrap()))
                .filter(|n| names.contains(n) && n != module)
                .collect();
            (module.clone(), used)
        })
        .collect()
}

/// A circle of imports, if there is one: the modules on it, in order.
fn find_cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        done: &mut BTreeSet<String>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|n| n == node) {
            let mut cycle = path[start..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in &edges[node] {
            if let Some(cycle) = visit(next, edges, done, path) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    edges.keys().find_map(|node| visit(node, edges, &mut done, &mut Vec::new()))
}

#[test]
fn no_crate_has_a_module_import_cycle() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut cycles = Vec::new();
    let mut checked = 0;
    for entry in std::fs::read_dir(&crates).unwrap() {
        let src = entry.unwrap().path().join("src");
        if !src.is_dir() {
            continue;
        }
        checked += 1;
        if let Some(cycle) = find_cycle(&module_edges(&src)) {
            cycles.push(format!("{}: {}", src.parent().unwrap().display(), cycle.join(" -> ")));
        }
    }
    assert!(checked >= 10, "found only {checked} crates under {}", crates.display());
    assert!(cycles.is_empty(), "module import cycles:\n{}", cycles.join("\n"));
}

#[test]
fn a_cycle_is_found_and_a_child_using_its_parent_is_not_one() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("a")).unwrap();
    std::fs::write(src.join("lib.rs"), "mod a; mod b;").unwrap();
    std::fs::write(src.join("a.rs"), "mod inner;\nuse crate::b::Thing;").unwrap();
    std::fs::write(src.join("a/inner.rs"), "use crate::a::Parent;").unwrap();
    std::fs::write(src.join("b.rs"), "//! Nothing here.").unwrap();
    assert_eq!(find_cycle(&module_edges(&src)), None);
    std::fs::write(src.join("b.rs"), "use crate::{a, c::X};").unwrap();
    assert_eq!(find_cycle(&module_edges(&src)), Some(vec!["a".into(), "b".into(), "a".into()]));
    // A doc link counts: it is a dependency a reader must follow.
    std::fs::write(src.join("b.rs"), "//! See [`crate::a::Parent`].").unwrap();
    assert!(find_cycle(&module_edges(&src)).is_some());
}
