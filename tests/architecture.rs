//! Invariants of ARCHITECTURE.md that a test can check by reading the source.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

/// Every `.rs` file under `dir`, recursively, with its text.
fn sources(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push((
                path.display().to_string(),
                std::fs::read_to_string(&path).unwrap(),
            ));
        }
    }
    out
}

/// "No module of `rules/` below the facade imports `api.rs` or `ruleset.rs`":
/// the pipeline (parse, check, compile, flat, ops, explain) flows down, and only
/// the facade and the authoring tools on top of it use the facade.
#[test]
fn the_rules_pipeline_never_imports_the_facade() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/rules");
    let on_top = [
        "api.rs",
        "ruleset.rs",
        "bind.rs",
        "lint.rs",
        "testfile.rs",
        "format.rs",
        "mod.rs",
    ];
    let mut offenders = Vec::new();
    for (path, text) in sources(&root) {
        let file = Path::new(&path).file_name().unwrap().to_str().unwrap();
        // Relative to `src/rules`, so where the checkout lives never matters.
        let relative = Path::new(&path).strip_prefix(&root).unwrap();
        let nested = relative.starts_with("check");
        if on_top.contains(&file) && !nested {
            continue;
        }
        for needle in [
            "super::api",
            "super::ruleset",
            "rules::api",
            "rules::ruleset",
        ] {
            if text.contains(needle) {
                offenders.push(format!("{path} uses {needle}"));
            }
        }
    }
    assert!(offenders.is_empty(), "{offenders:#?}");
}
