//! Tidy checks over the whole workspace: the rules of ARCHITECTURE.md and
//! STYLE that a compiler does not enforce.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let path = e.path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
    out
}

fn crates() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(root().join("crates"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("Cargo.toml").exists())
        .collect();
    out.sort();
    out
}

#[test]
fn every_module_opens_with_a_doc_comment() {
    let mut missing = Vec::new();
    for krate in crates() {
        for dir in ["src", "tests", "benches"] {
            for file in rust_files(&krate.join(dir)) {
                let text = std::fs::read_to_string(&file).unwrap();
                if !text.starts_with("//!") {
                    missing.push(file.display().to_string());
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "no `//!` opening:\n{}",
        missing.join("\n")
    );
}

/// The workspace crates a crate's `[dependencies]` name (dev-dependencies
/// aside).
fn workspace_dependencies(manifest: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(manifest).unwrap();
    let mut in_deps = false;
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_deps = line == "[dependencies]";
            continue;
        }
        if in_deps && line.starts_with("vexil") {
            let name: String = line
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            out.push(name);
        }
    }
    out.sort();
    out
}

// Issue 7: dependencies point one way (ARCHITECTURE.md, "Code map").
#[test]
fn crate_dependencies_point_one_way() {
    let allowed: &[(&str, &[&str])] = &[
        ("vexil-engine", &[]),
        ("vexil-flagd-grpc", &[]),
        ("vexil-protocol", &["vexil-engine"]),
        ("vexil-store", &["vexil-engine"]),
        ("vexil-sdk", &["vexil-engine", "vexil-protocol"]),
        (
            "vexil-server",
            &[
                "vexil-engine",
                "vexil-flagd-grpc",
                "vexil-protocol",
                "vexil-sdk",
                "vexil-store",
            ],
        ),
        (
            "vexil",
            &[
                "vexil-engine",
                "vexil-protocol",
                "vexil-server",
                "vexil-store",
            ],
        ),
        ("vexil-test-support", &["vexil-server", "vexil-store"]),
        ("vexil-bench", &["vexil-flagd-grpc", "vexil-sdk"]),
    ];
    let mut wrong = Vec::new();
    for krate in crates() {
        let name = krate.file_name().unwrap().to_string_lossy().into_owned();
        let Some((_, ok)) = allowed.iter().find(|(n, _)| *n == name) else {
            wrong.push(format!(
                "{name}: not in this test's table; add it with its allowed dependencies"
            ));
            continue;
        };
        for dep in workspace_dependencies(&krate.join("Cargo.toml")) {
            if !ok.contains(&dep.as_str()) {
                wrong.push(format!("{name} depends on {dep}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

// Issue 7: the server is rooms a newcomer can read whole.
#[test]
fn no_server_file_is_over_400_lines() {
    let mut long = Vec::new();
    for file in rust_files(&root().join("crates/vexil-server/src")) {
        let lines = std::fs::read_to_string(&file).unwrap().lines().count();
        if lines > 400 {
            long.push(format!("{}: {lines} lines", file.display()));
        }
    }
    assert!(long.is_empty(), "{}", long.join("\n"));
}
