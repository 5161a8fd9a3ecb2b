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
            .env_remove("RUST_LOG")
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
        "jsonl",
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

#[test]
fn rule_files_are_pinned_with_the_saga_so_recovery_needs_no_rules_flag() {
    let dir = Dir::new();
    let rules = dir.0.join("discount.rules");
    std::fs::copy(repo_file("specs/discount.rules"), &rules).unwrap();
    let saga = repo_file("sagas/apply_discount.yaml");
    let input = format!("@{}", repo_file("sagas/inputs/discount_vip.json"));
    let seed = repo_file("sagas/store.json");
    // crash right after the saga started, with the rule as it was
    let out = Command::new(BIN)
        .args([
            "saga",
            "run",
            &saga,
            "--input",
            &input,
            "--seed",
            &seed,
            "--rules",
            "discount.rules",
            "--lease-ttl",
            "100ms",
        ])
        .current_dir(&dir.0)
        .env("RULESAGA_CRASH_AFTER", "1")
        .output()
        .unwrap();
    assert!(!out.status.success());
    // the rule file is edited so that Vera would not get a discount, then removed
    let edited = std::fs::read_to_string(&rules)
        .unwrap()
        .replace("threshold = 100", "threshold = 100000");
    std::fs::write(&rules, edited).unwrap();
    let (code, status, _) = dir.run(&["saga", "list"]);
    assert_eq!(code, 0);
    assert!(status.contains("running"), "{status}");
    std::fs::remove_file(&rules).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(150));
    let (code, stdout, stderr) = dir.run(&["saga", "recover"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("completed"), "{stdout}");
    let repos = dir.json(&["saga", "export"]);
    assert_eq!(repos["discounts"]["order-900"]["percent"], 10);
    let listed = dir.json(&["saga", "list", "--output", "json"]);
    let id = listed[0]["saga_id"].as_str().unwrap().to_string();
    let status = dir.json(&["saga", "status", &id, "--output", "json"]);
    assert_eq!(status["rules"][0]["name"], "discount.rules");
}

#[test]
fn a_business_key_starts_one_saga_and_names_it_everywhere() {
    let dir = Dir::new();
    let saga = repo_file("sagas/place_order.yaml");
    let input = format!("@{}", repo_file("sagas/inputs/order_ok.json"));
    let seed = repo_file("sagas/store.json");
    let first = dir.json(&[
        "saga",
        "run",
        &saga,
        "--input",
        &input,
        "--seed",
        &seed,
        "--key",
        "order-123",
        "--output",
        "json",
    ]);
    assert_eq!(first["status"], "completed");
    assert_eq!(first["existing"], false);
    assert_eq!(first["key"], "order-123");
    // the same key again: the first saga, and nothing ran
    let (code, stdout, stderr) = dir.run(&[
        "saga",
        "run",
        &saga,
        "--input",
        &input,
        "--key",
        "order-123",
    ]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("exists"), "{stdout}");
    assert!(
        stdout.contains(first["saga_id"].as_str().unwrap()),
        "{stdout}"
    );
    let repos = dir.json(&["saga", "export"]);
    assert_eq!(repos["inventory"]["item1"]["qty"], 8, "reserved once");
    let status = dir.json(&["saga", "status", "order-123", "--output", "json"]);
    assert_eq!(status["saga_id"], first["saga_id"]);
    let history = dir.json(&["saga", "history", "order-123", "--output", "json"]);
    assert_eq!(history[0]["key"], "order-123");
    let (_, listed, _) = dir.run(&["saga", "list"]);
    assert!(listed.contains("order-123"), "{listed}");
    // a batch keyed by a field: a second run of the same file starts nothing new
    let lines = "{\"order_id\": \"k1\", \"customer\": \"alice\", \"sku\": \"item1\", \"quantity\": 1, \"amount\": 1}\n{\"order_id\": \"k2\", \"customer\": \"alice\", \"sku\": \"item1\", \"quantity\": 1, \"amount\": 1}\n";
    std::fs::write(dir.0.join("batch.jsonl"), lines).unwrap();
    let batch = [
        "saga",
        "run",
        &saga,
        "--inputs",
        "batch.jsonl",
        "--key-field",
        "order_id",
    ];
    let (code, stdout, _) = dir.run(&batch);
    assert_eq!(code, 0, "{stdout}");
    let (code, stdout, _) = dir.run(&batch);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("2 existing"), "{stdout}");
    let repos = dir.json(&["saga", "export"]);
    assert_eq!(repos["inventory"]["item1"]["qty"], 6);
}

#[test]
fn ids_may_be_abbreviated_by_their_random_end_and_fixed_failures_are_not_shown_as_failing() {
    let dir = Dir::new();
    let saga = repo_file("sagas/place_order.yaml");
    let input = format!(
        "@{}",
        repo_file("sagas/inputs/order_insufficient_funds.json")
    );
    let seed = repo_file("sagas/store.json");
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
    let id = out["saga_id"].as_str().unwrap().to_string();
    // another saga started in the same millisecond range shares the id's prefix
    let ok = format!("@{}", repo_file("sagas/inputs/order_ok.json"));
    dir.run(&["saga", "run", &saga, "--input", &ok]);
    let suffix = &id[id.len() - 6..];
    let status = dir.json(&["saga", "status", suffix, "--output", "json"]);
    assert_eq!(status["saga_id"], id.as_str());
    assert_eq!(status["failed_step"], "reserve_inventory");
    let (code, _, stderr) = dir.run(&["saga", "status", &id[..6]]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("more than one saga"), "{stderr}");
    // the operator marks the compensation done: the saga is compensated, and what
    // list and status show is the failure that was undone, not the one that was fixed
    let (code, _, stderr) = dir.run(&[
        "saga",
        "mark-compensated",
        suffix,
        "reserve_inventory",
        "--reason",
        "restocked by hand",
    ]);
    assert_eq!(code, 1, "{stderr}");
    let status = dir.json(&["saga", "status", suffix, "--output", "json"]);
    assert_eq!(status["status"], "compensated");
    assert_eq!(status["failed_step"], "charge_payment");
    let listed = dir.json(&[
        "saga",
        "list",
        "--status",
        "compensated",
        "--output",
        "json",
    ]);
    assert_eq!(listed[0]["failed_step"], "charge_payment");
}

/// Run with standard output read for `lines` lines, then closed (`| head -1`; with 0
/// lines `| true`).
fn run_closing_stdout(dir: &Dir, args: &[&str], lines: usize) -> (Option<i32>, String) {
    use std::io::BufRead as _;
    let mut child = Command::new(BIN)
        .args(args)
        .current_dir(&dir.0)
        .env_remove("RULESAGA_CRASH_AFTER")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut reader = std::io::BufReader::new(stdout);
    for _ in 0..lines {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
    }
    // the reader is gone: every later write fails with a broken pipe
    drop(reader);
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_closed_stdout_never_panics_and_never_stops_a_saga() {
    let dir = Dir::new();
    let saga = repo_file("sagas/place_order.yaml");
    let input = format!("@{}", repo_file("sagas/inputs/order_ok.json"));
    let seed = repo_file("sagas/store.json");
    // the live view's first line is read, then the pipe closes: the saga still completes
    let (code, stderr) = run_closing_stdout(
        &dir,
        &["saga", "run", &saga, "--input", &input, "--seed", &seed],
        1,
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let listed = dir.json(&["saga", "list", "--output", "json"]);
    assert_eq!(listed[0]["status"], "completed");
    let id = listed[0]["saga_id"].as_str().unwrap().to_string();
    for args in [
        vec!["saga", "history", id.as_str()],
        vec!["saga", "status", id.as_str()],
        vec!["saga", "list"],
        vec!["saga", "export"],
        vec!["saga", "graph", saga.as_str()],
    ] {
        let (code, stderr) = run_closing_stdout(&dir, &args, 0);
        assert_eq!(code, Some(0), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn logs_are_json_lines_on_stderr_with_saga_and_step_spans() {
    let dir = Dir::new();
    let out = Command::new(BIN)
        .args([
            "--log-format",
            "json",
            "saga",
            "run",
            &repo_file("sagas/place_order.yaml"),
            "--input",
            &format!("@{}", repo_file("sagas/inputs/order_out_of_stock.json")),
            "--seed",
            &repo_file("sagas/store.json"),
        ])
        .current_dir(&dir.0)
        .env("RUST_LOG", "rulesaga=info")
        .env_remove("RULESAGA_CRASH_AFTER")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let logs: Vec<Json> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let failed = logs
        .iter()
        .find(|l| l["fields"]["message"] == "attempt failed")
        .expect("a failed attempt is logged");
    assert_eq!(failed["span"]["step"], "reserve_inventory");
    assert_eq!(failed["span"]["attempt"], 1);
    assert_eq!(failed["spans"][0]["saga"], "place_order");
    assert!(failed["spans"][0]["saga_id"].is_string());
    // without RUST_LOG only errors are logged: none here
    let (_, _, stderr) = dir.run(&[
        "saga",
        "run",
        &repo_file("sagas/place_order.yaml"),
        "--input",
        &format!("@{}", repo_file("sagas/inputs/order_out_of_stock.json")),
    ]);
    assert!(stderr.is_empty(), "{stderr}");
}
