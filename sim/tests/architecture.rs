//! Architecture Invariant (ARCHITECTURE.md): a target sees only the interface; the harness sees no
//! target. Reads the sources: a target's code names the harness only through `crate::target` (and
//! the wire types `crate::proto`, `crate::rpc`), never another target nor `kvsim_model`; harness
//! code outside tests names no target but through the registry.

use std::fs;
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// Every `crate::a::b` path in `source` (comments included: a doc link to another target's code
/// is a smell too).
fn crate_paths(source: &str) -> Vec<String> {
    let mut paths = Vec::new();
    let mut rest = source;
    while let Some(at) = rest.find("crate::") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(tail.len());
        paths.push(tail[..end].to_string());
        rest = &tail[end..];
    }
    paths
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn targets() -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(src().join("targets"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// What a target may name besides itself.
fn allowed_for_a_target(path: &str) -> bool {
    ["crate::target", "crate::proto", "crate::rpc"]
        .iter()
        .any(|allowed| path == *allowed || path.starts_with(&format!("{allowed}::")))
}

fn violations_of_target(name: &str, files: &[(String, String)]) -> Vec<String> {
    let own = format!("crate::targets::{name}");
    let mut found = Vec::new();
    for (file, source) in files {
        for path in crate_paths(source) {
            if !(allowed_for_a_target(&path)
                || path == own
                || path.starts_with(&format!("{own}::")))
            {
                found.push(format!("{file}: {path}"));
            }
        }
        if source.contains("kvsim_model") {
            found.push(format!("{file}: kvsim_model"));
        }
    }
    found
}

fn read(files: Vec<PathBuf>) -> Vec<(String, String)> {
    files
        .into_iter()
        .map(|p| (p.display().to_string(), fs::read_to_string(&p).unwrap()))
        .collect()
}

#[test]
fn each_target_uses_the_harness_only_through_the_target_interface() {
    let names = targets();
    assert!(names.contains(&"raft_rs".to_string()), "{names:?}");
    for name in &names {
        let files = read(rust_files(&src().join("targets").join(name)));
        assert!(!files.is_empty());
        let found = violations_of_target(name, &files);
        assert!(
            found.is_empty(),
            "target {name} reaches past the interface: {found:#?}"
        );
    }
}

#[test]
fn the_harness_names_no_target_outside_the_registry_and_tests() {
    let targets_dir = src().join("targets");
    let names = targets();
    for (file, source) in read(rust_files(&src())) {
        if Path::new(&file).starts_with(&targets_dir) {
            continue;
        }
        // Unit tests may build a cluster of a concrete target.
        let code = source.split("#[cfg(test)]").next().unwrap();
        for name in &names {
            let needle = format!("targets::{name}");
            assert!(
                !code.contains(&needle),
                "{file} names target {name} ({needle})"
            );
        }
    }
}

#[test]
fn the_checks_catch_a_target_reaching_into_the_harness_or_the_model() {
    let files = vec![(
        "planted.rs".to_string(),
        "use crate::target::Member;\nuse crate::cluster::Cluster;\nuse crate::targets::other::X;\n\
         use kvsim_model::mvcc::Op;\n"
            .to_string(),
    )];
    let found = violations_of_target("mine", &files);
    assert_eq!(
        found,
        vec![
            "planted.rs: crate::cluster::Cluster",
            "planted.rs: crate::targets::other::X",
            "planted.rs: kvsim_model"
        ]
    );
}
