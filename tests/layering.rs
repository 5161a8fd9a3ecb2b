//! The layering invariants of ARCHITECTURE.md, checked on the source tree: the core
//! (`rules/`, `repo/`, `saga/`) never imports `adapters/` or `cli/`; only `cli/`
//! prints; the runner and `decide` see the store only through its traits.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The lines of a file that are code (not comments).
fn code_lines(path: &Path) -> Vec<(usize, String)> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .enumerate()
        .filter(|(_, l)| {
            let t = l.trim_start();
            !t.starts_with("//")
        })
        .map(|(i, l)| (i + 1, l.to_string()))
        .collect()
}

fn offenders(dirs: &[&str], forbidden: &[&str]) -> Vec<String> {
    let mut files = Vec::new();
    for d in dirs {
        rust_files(&Path::new(ROOT).join("src").join(d), &mut files);
    }
    let mut out = Vec::new();
    for f in files {
        for (n, line) in code_lines(&f) {
            for bad in forbidden {
                if line.contains(bad) {
                    out.push(format!("{}:{n}: `{bad}`: {}", f.display(), line.trim()));
                }
            }
        }
    }
    out
}

#[test]
fn the_core_never_imports_adapters_or_the_cli() {
    let found = offenders(
        &["rules", "repo", "saga"],
        &[
            "crate::adapters",
            "crate::cli",
            "crate::serve",
            "rulesaga::adapters",
            "rulesaga::cli",
            "rulesaga::serve",
        ],
    );
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn only_the_cli_prints() {
    let found = offenders(
        &["rules", "repo", "saga", "adapters", "serve"],
        &[
            "println!",
            "eprintln!",
            "print!(",
            "eprint!(",
            "std::io::stdout",
            "std::io::stderr",
        ],
    );
    assert!(found.is_empty(), "{}", found.join("\n"));
    // and the CLI prints only through its never-panicking macros
    let found = offenders(&["cli"], &["println!", "eprintln!"]);
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn the_runner_and_decide_know_no_concrete_store() {
    let mut found = Vec::new();
    for f in ["saga/runner.rs", "saga/decide.rs", "saga/service.rs"] {
        for (n, line) in code_lines(&Path::new(ROOT).join("src").join(f)) {
            for bad in ["MemoryStore", "SqliteStore", "JsonStore", "rusqlite"] {
                if line.contains(bad) {
                    found.push(format!("{f}:{n}: `{bad}`"));
                }
            }
        }
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn decide_is_pure() {
    // no clock, no I/O, no async: time comes in as an argument
    let mut found = Vec::new();
    for (n, line) in code_lines(&Path::new(ROOT).join("src/saga/decide.rs")) {
        for bad in [
            "Utc::now",
            "Instant::now",
            "async ",
            ".await",
            "tokio::",
            "std::fs",
            "rand",
        ] {
            if line.contains(bad) {
                found.push(format!("decide.rs:{n}: `{bad}`"));
            }
        }
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
}
