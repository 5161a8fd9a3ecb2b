//! The saga commands on PostgreSQL (`--db postgres://...`), as real processes: the
//! README demo, the read model (list, status, history), an operator's retry, and
//! recovery after the run was killed mid-saga, and `serve` on the same store. Runs when `RULESAGA_TEST_POSTGRES`
//! names a server (each test in a schema of its own); otherwise says it was skipped.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value as Json;

#[path = "support/postgres.rs"]
mod postgres;
mod support;

const BIN: &str = env!("CARGO_BIN_EXE_rulesaga");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn repo_file(rel: &str) -> String {
    Path::new(ROOT).join(rel).display().to_string()
}

fn rulesaga(args: &[&str], crash_after: Option<u32>) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .current_dir(std::env::temp_dir())
        .env_remove("RUST_LOG");
    match crash_after {
        Some(n) => cmd.env("RULESAGA_CRASH_AFTER", n.to_string()),
        None => cmd.env_remove("RULESAGA_CRASH_AFTER"),
    };
    cmd.output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn json(args: &[&str]) -> Json {
    let out = rulesaga(args, None);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)))
}

/// Run `order_ok` on the database at `db`, seeded first; `crash_after` kills the
/// run after that many events.
fn run_order(db: &str, crash_after: Option<u32>) -> Output {
    let seeded = rulesaga(
        &["saga", "seed", &repo_file("sagas/store.json"), "--db", db],
        None,
    );
    assert!(seeded.status.success(), "{}", text(&seeded));
    let input = format!("@{}", repo_file("sagas/inputs/order_ok.json"));
    let saga = repo_file("sagas/place_order.yaml");
    let args = [
        "saga",
        "run",
        &saga,
        "--input",
        &input,
        "--db",
        db,
        "--lease-ttl",
        "100ms",
    ];
    rulesaga(&args, crash_after)
}

#[test]
fn the_readme_demo_and_the_read_model_work_on_postgres() {
    let Some(server) = postgres::server("the_readme_demo_and_the_read_model_work_on_postgres")
    else {
        return;
    };
    let schema = postgres::Schema::new(&server);
    let db = schema.url();
    let saga = repo_file("sagas/place_order.yaml");
    let seed = repo_file("sagas/store.json");
    let out_of_stock = format!("@{}", repo_file("sagas/inputs/order_out_of_stock.json"));
    let out = rulesaga(
        &[
            "saga",
            "run",
            &saga,
            "--input",
            &out_of_stock,
            "--db",
            &db,
            "--seed",
            &seed,
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("saga compensated"), "{}", text(&out));
    let ok = format!("@{}", repo_file("sagas/inputs/order_ok.json"));
    let out = rulesaga(
        &[
            "saga", "run", &saga, "--input", &ok, "--db", &db, "--seed", &seed, "--output", "json",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let done: Json = serde_json::from_slice(&out.stdout).unwrap();
    let id = done["saga_id"].as_str().unwrap().to_string();
    let repos = json(&["saga", "export", "--db", &db]);
    assert_eq!(repos["orders"]["order-456"]["status"], "cancelled");
    assert_eq!(repos["orders"]["order-123"]["status"], "confirmed");
    assert_eq!(repos["inventory"]["item1"]["qty"], 8);
    let listed = json(&["saga", "list", "--db", &db, "--output", "json"]);
    let statuses: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["completed", "compensated"], "most recent first");
    // status and history find the saga by a prefix of its id
    let status = rulesaga(&["saga", "status", &id[..13], "--db", &db], None);
    assert!(status.status.success(), "{}", text(&status));
    assert!(text(&status).contains("completed"), "{}", text(&status));
    let history = rulesaga(&["saga", "history", &id[..13], "--db", &db], None);
    assert!(history.status.success(), "{}", text(&history));
    assert!(
        text(&history).contains("confirm_order"),
        "{}",
        text(&history)
    );
    // the read model rebuilt from the log is the same
    let rebuilt = rulesaga(&["saga", "rebuild-projection", "--db", &db], None);
    assert!(rebuilt.status.success(), "{}", text(&rebuilt));
    assert_eq!(
        json(&["saga", "list", "--db", &db, "--output", "json"]),
        listed
    );
}

#[test]
fn a_run_killed_mid_saga_on_postgres_is_recovered_to_the_same_end() {
    let Some(server) =
        postgres::server("a_run_killed_mid_saga_on_postgres_is_recovered_to_the_same_end")
    else {
        return;
    };
    let clean = postgres::Schema::new(&server);
    let out = run_order(&clean.url(), None);
    assert!(out.status.success(), "{}", text(&out));
    let expected = json(&["saga", "export", "--db", &clean.url()]);
    for n in [1, 3, 6] {
        let schema = postgres::Schema::new(&server);
        let db = schema.url();
        let out = run_order(&db, Some(n));
        assert_eq!(
            out.status.signal(),
            Some(9),
            "crash after event {n}: {}",
            text(&out)
        );
        let listed = json(&["saga", "list", "--db", &db, "--output", "json"]);
        assert_eq!(listed[0]["status"], "running", "after event {n}");
        // the killed process's lease keeps others out until it expires
        std::thread::sleep(std::time::Duration::from_millis(150));
        let recover = rulesaga(&["saga", "recover", "--db", &db], None);
        assert!(
            recover.status.success(),
            "after event {n}: {}",
            text(&recover)
        );
        let listed = json(&["saga", "list", "--db", &db, "--output", "json"]);
        assert_eq!(listed[0]["status"], "completed", "after event {n}");
        assert_eq!(
            json(&["saga", "export", "--db", &db]),
            expected,
            "after event {n}"
        );
    }
}

#[test]
fn an_operator_fixes_a_failed_saga_on_postgres() {
    let Some(server) = postgres::server("an_operator_fixes_a_failed_saga_on_postgres") else {
        return;
    };
    let schema = postgres::Schema::new(&server);
    let db = schema.url();
    let input = format!(
        "@{}",
        repo_file("sagas/inputs/order_insufficient_funds.json")
    );
    // bob cannot pay; undoing the reservation fails every time: the saga is left failed
    let saga = repo_file("sagas/place_order.yaml");
    let seed = repo_file("sagas/store.json");
    let out = json(&[
        "saga",
        "run",
        &saga,
        "--input",
        &input,
        "--db",
        &db,
        "--seed",
        &seed,
        "--fail-compensation",
        "reserve_inventory",
        "--output",
        "json",
    ]);
    assert_eq!(out["status"], "failed");
    let id = out["saga_id"].as_str().unwrap().to_string();
    let retried = rulesaga(
        &[
            "saga",
            "retry",
            &id[..13],
            "--reason",
            "inventory is back",
            "--db",
            &db,
        ],
        None,
    );
    assert_eq!(retried.status.code(), Some(1), "{}", text(&retried));
    assert!(
        text(&retried).contains("saga compensated"),
        "{}",
        text(&retried)
    );
    let history = json(&["saga", "history", &id, "--db", &db, "--output", "json"]);
    let reasons: Vec<&Json> = history
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "saga_retried")
        .map(|e| &e["reason"])
        .collect();
    assert_eq!(reasons, [&Json::from("inventory is back")]);
    let repos = json(&["saga", "export", "--db", &db]);
    assert_eq!(repos["inventory"]["item2"]["qty"], 5);
    assert_eq!(repos["orders"]["order-789"]["status"], "cancelled");
    let recover = rulesaga(&["saga", "recover", "--db", &db], None);
    assert!(
        text(&recover).contains("nothing to recover"),
        "{}",
        text(&recover)
    );
}

#[tokio::test]
async fn serve_runs_sagas_on_postgres() {
    let Some(pg) = postgres::server("serve_runs_sagas_on_postgres") else {
        return;
    };
    let schema = postgres::Schema::new(&pg);
    let db = schema.url();
    let seeded = rulesaga(
        &["saga", "seed", &repo_file("sagas/store.json"), "--db", &db],
        None,
    );
    assert!(seeded.status.success(), "{}", text(&seeded));
    let dir = std::env::temp_dir();
    let sagas = repo_file("sagas");
    let rules = repo_file("specs");
    let srv =
        support::server::Server::start(&dir, &["--db", &db, "--sagas", &sagas, "--rules", &rules]);
    let input: Json = serde_json::from_str(
        &std::fs::read_to_string(repo_file("sagas/inputs/order_ok.json")).unwrap(),
    )
    .unwrap();
    let (code, body) = srv
        .post(
            "/v1/sagas/place_order?wait=30s",
            serde_json::json!({"input": input, "key": "o-pg"}),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["status"], "completed", "{body}");
    drop(srv);
    // the CLI sees what the server wrote
    let listed = json(&["saga", "list", "--db", &db, "--output", "json"]);
    assert_eq!(listed[0]["key"], "o-pg");
    let repos = json(&["saga", "export", "--db", &db]);
    assert_eq!(repos["orders"]["order-123"]["status"], "confirmed");
}
