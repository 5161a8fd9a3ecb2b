//! The saga CLI on the SQLite database, as a real process: the README demo, seeding,
//! many sagas from JSON Lines, operators, and the read model (list, status, history).
//! Every run works in a temporary directory; the repository's files are only read.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value as Json;

const BIN: &str = env!("CARGO_BIN_EXE_rulesaga");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

struct Dir(PathBuf);

impl Dir {
    fn new() -> Dir {
        let dir = std::env::temp_dir().join(format!("rulesaga-cli-db-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        Dir(dir)
    }
    /// Run in this directory with the repository root's relative paths resolved.
    fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(BIN)
            .args(args)
            .current_dir(&self.0)
            .env_remove("RULESAGA_CRASH_AFTER")
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
    fn json(&self, args: &[&str]) -> Json {
        let (code, out, err) = self.run(args);
        assert!(code == 0 || code == 1, "{args:?}: {code} {err}");
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}\n{err}"))
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn repo_file(rel: &str) -> String {
    Path::new(ROOT).join(rel).display().to_string()
}

fn tree_digest() -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for dir in ["sagas", "sagas/inputs"] {
        for e in std::fs::read_dir(Path::new(ROOT).join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.is_file() {
                out.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn the_readme_demo_runs_on_a_fresh_database_and_leaves_the_repository_alone() {
    let before = tree_digest();
    let dir = Dir::new();
    let db = dir.0.join("demo.db").display().to_string();
    let saga = repo_file("sagas/place_order.yaml");
    let out_of_stock = format!("@{}", repo_file("sagas/inputs/order_out_of_stock.json"));
    let seed = repo_file("sagas/store.json");
    let (code, stdout, stderr) = dir.run(&[
        "saga",
        "run",
        &saga,
        "--input",
        &out_of_stock,
        "--db",
        &db,
        "--seed",
        &seed,
    ]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stdout.contains("saga compensated"), "{stdout}");
    // a second run reuses the database; `--seed` does not reload existing repositories
    let ok = format!("@{}", repo_file("sagas/inputs/order_ok.json"));
    let (code, stdout, _) = dir.run(&[
        "saga", "run", &saga, "--input", &ok, "--db", &db, "--seed", &seed,
    ]);
    assert_eq!(code, 0, "{stdout}");
    let repos = dir.json(&["saga", "export", "--db", &db]);
    assert_eq!(repos["orders"]["order-456"]["status"], "cancelled");
    assert_eq!(repos["orders"]["order-123"]["status"], "confirmed");
    assert_eq!(repos["inventory"]["item1"]["qty"], 8);
    assert_eq!(tree_digest(), before, "files in the repository changed");
}

#[test]
fn without_repositories_the_run_says_how_to_seed() {
    let dir = Dir::new();
    let saga = repo_file("sagas/place_order.yaml");
    let (code, _, stderr) = dir.run(&["saga", "run", &saga, "--input", "{}"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("unknown repository"), "{stderr}");
    assert!(stderr.contains("--seed"), "{stderr}");
    // the default database is `rulesaga.db` in the working directory
    assert!(dir.0.join("rulesaga.db").exists());
}

#[test]
fn many_sagas_from_json_lines_share_the_stock_without_lost_updates() {
    let dir = Dir::new();
    let mut lines = String::new();
    for i in 0..12 {
        lines.push_str(&format!(
            "{{\"order_id\": \"o{i}\", \"customer\": \"alice\", \"sku\": \"item2\", \"quantity\": 1, \"amount\": 10}}\n"
        ));
    }
    lines.push_str("\n{\"order_id\": \"bad\"}\n");
    std::fs::write(dir.0.join("orders.jsonl"), lines).unwrap();
    let (code, stdout, stderr) = dir.run(&[
        "saga",
        "run",
        &repo_file("sagas/place_order.yaml"),
        "--inputs",
        "orders.jsonl",
        "--concurrency",
        "8",
        "--seed",
        &repo_file("sagas/store.json"),
        "--output",
        "json",
    ]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    let results: Vec<Json> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(results.len(), 13);
    let count = |s: &str| results.iter().filter(|r| r["status"] == s).count();
    assert_eq!(count("rejected"), 1, "{stdout}");
    // 5 in stock: at most 5 orders complete, the others are compensated
    let completed = count("completed");
    assert!(completed <= 5, "{stdout}");
    assert_eq!(completed + count("compensated"), 12, "{stdout}");
    let repos = dir.json(&["saga", "export"]);
    assert_eq!(repos["inventory"]["item2"]["qty"], 5 - completed as i64);
    assert_eq!(
        repos["accounts"]["alice"]["balance"],
        1000 - 10 * completed as i64
    );
    let listed = dir.json(&["saga", "list", "--output", "json", "--status", "completed"]);
    assert_eq!(listed.as_array().unwrap().len(), completed);
    let named = dir.json(&[
        "saga",
        "list",
        "--output",
        "json",
        "--name",
        "place_order",
        "--since",
        "1h",
    ]);
    assert_eq!(named.as_array().unwrap().len(), 12);
    let (code, _, stderr) = dir.run(&["saga", "list", "--status", "done"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("unknown status"), "{stderr}");
}

#[test]
fn operators_fix_a_failed_saga_and_the_log_keeps_their_reasons() {
    let dir = Dir::new();
    let saga = repo_file("sagas/place_order.yaml");
    let input = format!(
        "@{}",
        repo_file("sagas/inputs/order_insufficient_funds.json")
    );
    let seed = repo_file("sagas/store.json");
    // bob cannot pay; undoing the reservation fails every time: the saga is left failed
    let out = dir.json(&[
        "saga",
        "run",
        &saga,
        "--input",
        &input,
        "--seed",
        &seed,
        "--fail-compensation",
        "reserve_inventory",
        "--output",
        "json",
    ]);
    assert_eq!(out["status"], "failed");
    assert_eq!(out["failed_step"], "reserve_inventory");
    let id = out["saga_id"].as_str().unwrap().to_string();
    let prefix = &id[..13];

    let failed = dir.json(&["saga", "list", "--status", "failed", "--output", "json"]);
    assert_eq!(failed[0]["saga_id"], id.as_str());
    let (code, status, _) = dir.run(&["saga", "status", prefix]);
    assert_eq!(code, 0);
    assert!(status.contains("failed"), "{status}");
    assert!(status.contains("compensation_failed"), "{status}");

    // skip applies to forward failures only; mark-compensated names the failed step
    let (code, _, stderr) =
        dir.run(&["saga", "skip", prefix, "reserve_inventory", "--reason", "x"]);
    assert_eq!(code, 2, "{stderr}");
    let (code, _, stderr) = dir.run(&[
        "saga",
        "mark-compensated",
        prefix,
        "create_order",
        "--reason",
        "x",
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("not the failed step"), "{stderr}");

    // the inventory service is back (no injected fault in this process): retry compensates
    let (code, stdout, stderr) =
        dir.run(&["saga", "retry", prefix, "--reason", "inventory is back"]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stdout.contains("saga compensated"), "{stdout}");
    let status = dir.json(&["saga", "status", &id, "--output", "json"]);
    assert_eq!(status["status"], "compensated");
    let history = dir.json(&["saga", "history", &id, "--output", "json"]);
    let retried: Vec<&Json> = history
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "saga_retried")
        .collect();
    assert_eq!(retried.len(), 1);
    assert_eq!(retried[0]["reason"], "inventory is back");
    let (_, timeline, _) = dir.run(&["saga", "history", prefix]);
    assert!(
        timeline.contains("operator: retry `reserve_inventory` (reason: inventory is back)"),
        "{timeline}"
    );
    let repos = dir.json(&["saga", "export"]);
    assert_eq!(repos["inventory"]["item2"]["qty"], 5);
    assert_eq!(repos["orders"]["order-789"]["status"], "cancelled");
    // nothing left to do
    let (code, stdout, _) = dir.run(&["saga", "recover"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("nothing to recover"), "{stdout}");
    let (code, stdout, _) = dir.run(&["saga", "rebuild-projection"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("1 sagas"), "{stdout}");
    let (code, _, stderr) = dir.run(&["saga", "retry", &id]);
    assert_eq!(code, 2);
    assert!(stderr.contains("not failed"), "{stderr}");
}

#[test]
fn queries_need_an_existing_database_and_a_known_saga() {
    let dir = Dir::new();
    let (code, _, stderr) = dir.run(&["saga", "list", "--db", "missing.db"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("no database"), "{stderr}");
    assert!(!dir.0.join("missing.db").exists());
    let (code, _, _) = dir.run(&["saga", "seed", &repo_file("sagas/store.json")]);
    assert_eq!(code, 0);
    let (code, _, stderr) = dir.run(&["saga", "status", "0123"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("no saga"), "{stderr}");
    let (code, _, stderr) = dir.run(&["saga", "history", "not-an-id!"]);
    assert_eq!(code, 2, "{stderr}");
    let (code, stdout, _) = dir.run(&["saga", "list"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("no sagas"));
}
