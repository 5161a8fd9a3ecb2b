//! `rulesaga serve` stopped and started again: SIGTERM lets the step in flight
//! finish and parks the saga with its lease released (exit 0); a step longer than
//! the grace period is stopped and its lease released too; SIGKILL is recovered by
//! the next start; SIGHUP reloads, and a broken file keeps the previous set.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod support;

use std::path::Path;

use serde_json::{Value as Json, json};
use support::server::{Server, root, serve_examples, slow, world};

/// The saga's status as the CLI reads it from the database, without a server.
fn cli_status(dir: &Path, key: &str) -> Json {
    let out = support::cli::run_in(
        dir,
        &["saga", "status", key, "--db", "demo.db", "--output", "json"],
    );
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

fn step_status(status: &Json, step: &str) -> String {
    status["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == step)
        .map(|s| s["status"].as_str().unwrap().to_string())
        .unwrap_or_else(|| "not_started".to_string())
}

/// Start `slow` with `key` and return once its first step started.
async fn start_slow(s: &Server, key: &str, ms: u64) {
    let mut body = slow(ms);
    body["key"] = json!(key);
    let (code, started) = s.post("/v1/sagas/slow", body).await;
    assert_eq!(code, 202, "{started}");
    s.follow(key, |t| t == "step_started").await;
}

/// The same start again, waiting for its final status (the first saga's).
async fn wait_for(s: &Server, key: &str) -> Json {
    let mut body = slow(1);
    body["key"] = json!(key);
    let (code, done) = s.post("/v1/sagas/slow?wait=25s", body).await;
    assert_eq!(code, 200, "{done}");
    assert_eq!(done["existing"], true);
    done
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_the_step_finish_parks_the_saga_and_exits_0() {
    let dir = world();
    let s = serve_examples(&dir, &["--grace", "20s"]);
    start_slow(&s, "t-1", 1500).await;
    s.signal("TERM");
    let exit = s.wait();
    assert!(exit.success(), "{exit:?}");
    let status = cli_status(&dir, "t-1");
    assert_eq!(status["status"], "running");
    assert_eq!(step_status(&status, "wait"), "completed", "{status}");
    // the outcome of `wait` committed with the start of `done` (one commit a step);
    // `done` was not called: the next process calls it, with the same key
    assert_eq!(step_status(&status, "done"), "running");
    assert_eq!(status["lease"], Json::Null, "the lease was released");
    // the next start finishes it
    let s = serve_examples(&dir, &[]);
    let done = wait_for(&s, "t-1").await;
    assert_eq!(done["status"], "completed");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_step_longer_than_the_grace_is_stopped_and_its_lease_released() {
    let dir = world();
    let s = serve_examples(&dir, &["--grace", "200ms"]);
    start_slow(&s, "g-1", 600_000).await;
    s.signal("TERM");
    assert!(s.wait().success());
    let status = cli_status(&dir, "g-1");
    assert_eq!(status["status"], "running");
    assert_eq!(step_status(&status, "wait"), "running");
    assert_eq!(status["lease"], Json::Null, "the lease was released");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sigkilled_server_is_recovered_by_the_next_start() {
    let dir = world();
    let s = serve_examples(&dir, &["--lease-ttl", "1s"]);
    start_slow(&s, "k-1", 1000).await;
    s.kill();
    let status = cli_status(&dir, "k-1");
    assert_eq!(status["status"], "running");
    // the next server takes it over once the dead one's lease expired
    let s = serve_examples(&dir, &["--lease-ttl", "1s"]);
    let done = wait_for(&s, "k-1").await;
    assert_eq!(done["status"], "completed");
    let (_, history) = s.get("/v1/sagas/k-1/events").await;
    let starts = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "step_started" && e["step"] == "wait")
        .count();
    assert_eq!(starts, 2, "the interrupted step ran again: {history}");
}

/// A server on a copy of `specs/discount.rules` in `dir/rules`, and the text copied.
fn serve_rules(dir: &Path, extra: &[&str]) -> (Server, String) {
    std::fs::create_dir_all(dir.join("rules")).unwrap();
    let text = std::fs::read_to_string(root().join("specs/discount.rules")).unwrap();
    std::fs::write(dir.join("rules/discount.rules"), &text).unwrap();
    let mut args = vec!["--db", "demo.db", "--rules", "rules"];
    args.extend(extra);
    (Server::start(dir, &args), text)
}

/// `discount` for a vip customer who bought little, recently: false with the shipped
/// rules, true once `premium` means `vip`.
async fn vip(s: &Server) -> (u16, Json) {
    s.post(
        "/v1/rules/discount:eval",
        json!({"input": {"name": "a", "tier": "vip", "total": 1, "days": 1}}),
    )
    .await
}

/// Write the rules with `premium` meaning `vip`.
fn premium_means_vip(dir: &Path, text: &str) {
    let changed = text.replace(
        "rule premium = tier == premium",
        "rule premium = tier == vip",
    );
    assert_ne!(changed, text);
    std::fs::write(dir.join("rules/discount.rules"), changed).unwrap();
}

/// Wait until the text of `/metrics` has `line` (a reload happens after the signal
/// is delivered; a minute without it is a failure, not a slow machine).
async fn until_metric(s: &Server, line: &str) {
    for _ in 0..3000 {
        let (_, text) = s.text("/metrics").await;
        if text.lines().any(|l| l == line) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("no `{line}` in /metrics; logs:\n{}", s.logs());
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_reloads_and_a_broken_file_keeps_the_previous_rules() {
    let dir = world();
    let (s, text) = serve_rules(&dir, &[]);
    assert_eq!(vip(&s).await, (200, json!({"result": false})));
    // a broken file: the previous rules stay, the diagnostics are logged
    std::fs::write(dir.join("rules/discount.rules"), "rule discount = tier ==").unwrap();
    s.signal("HUP");
    until_metric(&s, "rulesaga_reloads_total{outcome=\"error\"} 1").await;
    assert_eq!(vip(&s).await, (200, json!({"result": false})));
    assert!(s.logs().contains("reload failed"), "{}", s.logs());
    assert!(s.logs().contains("E001"), "{}", s.logs());
    // a fixed file with a new rule body
    premium_means_vip(&dir, &text);
    s.signal("HUP");
    until_metric(&s, "rulesaga_reloads_total{outcome=\"ok\"} 1").await;
    assert_eq!(vip(&s).await, (200, json!({"result": true})));
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_reloads_when_a_file_changes() {
    let dir = world();
    let (s, text) = serve_rules(&dir, &["--watch"]);
    assert_eq!(vip(&s).await, (200, json!({"result": false})));
    // the modification time may not move within one second: change the length too
    premium_means_vip(&dir, &(text.clone() + "\n"));
    until_metric(&s, "rulesaga_reloads_total{outcome=\"ok\"} 1").await;
    assert_eq!(vip(&s).await, (200, json!({"result": true})));
}
