//! HTTP sagas through the real binary against servers on 127.0.0.1: a saga that uses
//! no repository runs on a fresh database without `--seed`; a missing environment
//! variable refuses the run before its first event; a SIGKILL after a response arrived
//! but before its outcome was logged (`RULESAGA_CRASH_AFTER_RESPONSE`) is recovered by
//! repeating the request with the same idempotency key, so a deduplicating service
//! applies the effect once.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "support/services.rs"]
mod services;

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value as Json;
use services::Server;

const BIN: &str = env!("CARGO_BIN_EXE_rulesaga");

const SAGA: &str = r#"
saga: http_order
input: {order_id: string}
services:
  shop:
    base_url: env.SHOP_URL
    headers: {authorization: '"Bearer " + env.SHOP_TOKEN'}
steps:
  - name: order
    action: {http: {service: shop, method: POST, path: '"/orders"', body: {order: input.order_id}}}
    outputs: {id: result.body.id}
    compensate: {http: {service: shop, method: DELETE, path: '"/orders/" + steps.order.id'}}
  - name: reserve
    action: {http: {service: shop, method: POST, path: '"/reservations"', body: {order: input.order_id}}}
    compensate: {http: {service: shop, method: DELETE, path: '"/reservations/" + input.order_id'}}
  - name: charge
    action: {http: {service: shop, method: POST, path: '"/charges"', body: {order: input.order_id}}}
    pivot: true
"#;

const TOKEN: &str = "tok-0123456789";

struct Dir(PathBuf);

impl Dir {
    fn new() -> Dir {
        let d = std::env::temp_dir().join(format!("rulesaga-http-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("saga.yaml"), SAGA).unwrap();
        Dir(d)
    }
    fn db(&self) -> String {
        format!("sqlite:{}", self.0.join("sagas.db").display())
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn rulesaga(dir: &Path, args: &[&str], env: &[(&str, String)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .current_dir(dir)
        .env_remove("SHOP_URL")
        .env_remove("SHOP_TOKEN")
        .env_remove("RULESAGA_CRASH_AFTER_RESPONSE")
        .env_remove("RULESAGA_CRASH_AFTER");
    for (k, v) in env {
        cmd.env(k, v);
    }
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

fn vars(server: &Server) -> Vec<(&'static str, String)> {
    vec![
        ("SHOP_URL", server.url()),
        ("SHOP_TOKEN", TOKEN.to_string()),
    ]
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_saga_runs_on_a_fresh_database_without_seed() {
    let server = Server::start().await;
    let dir = Dir::new();
    let db = dir.db();
    let out = rulesaga(
        &dir.0,
        &[
            "saga",
            "run",
            "saga.yaml",
            "--db",
            &db,
            "--input",
            r#"{"order_id": "o-1"}"#,
            "--output",
            "json",
        ],
        &vars(&server),
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    let result: Json = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["status"], "completed", "{result}");
    assert_eq!(
        server.calls(),
        ["POST /orders", "POST /reservations", "POST /charges"]
    );
    // what the binary printed and stored never shows the token or the address
    let history = rulesaga(&dir.0, &["saga", "list", "--db", &db], &[]).await;
    for o in [&out, &history] {
        let t = text(o);
        assert!(
            !t.contains(TOKEN) && !t.contains(&server.addr.to_string()),
            "{t}"
        );
    }
    let db_bytes = std::fs::read(dir.0.join("sagas.db")).unwrap();
    let db_text = String::from_utf8_lossy(&db_bytes);
    assert!(!db_text.contains(TOKEN));
    assert!(!db_text.contains(&server.addr.to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_variable_refuses_the_run_naming_it() {
    let server = Server::start().await;
    let dir = Dir::new();
    let db = dir.db();
    let out = rulesaga(
        &dir.0,
        &[
            "saga",
            "run",
            "saga.yaml",
            "--db",
            &db,
            "--input",
            r#"{"order_id": "o-1"}"#,
        ],
        &[("SHOP_URL", server.url())],
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("environment variable not set: `SHOP_TOKEN` (read by service `shop`)"),
        "{err}"
    );
    assert!(server.requests().is_empty());
    let list = rulesaga(&dir.0, &["saga", "list", "--db", &db], &[]).await;
    assert!(!text(&list).contains("http_order"), "{}", text(&list));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_the_response_repeats_the_request_with_the_same_key() {
    let server = Server::start().await;
    let dir = Dir::new();
    let db = dir.db();
    let mut env = vars(&server);
    env.push(("RULESAGA_CRASH_AFTER_RESPONSE", "reserve".to_string()));
    let out = rulesaga(
        &dir.0,
        &[
            "saga",
            "run",
            "saga.yaml",
            "--db",
            &db,
            "--input",
            r#"{"order_id": "o-9"}"#,
            "--lease-ttl",
            "100ms",
        ],
        &env,
    )
    .await;
    assert_eq!(out.status.signal(), Some(9), "{}", text(&out));
    assert_eq!(server.calls(), ["POST /orders", "POST /reservations"]);
    // the lease of the killed process expires
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    let rec = rulesaga(&dir.0, &["saga", "recover", "--db", &db], &vars(&server)).await;
    assert!(rec.status.success(), "{}", text(&rec));
    assert!(text(&rec).contains("completed"), "{}", text(&rec));
    assert_eq!(
        server.calls(),
        [
            "POST /orders",
            "POST /reservations",
            "POST /reservations",
            "POST /charges"
        ]
    );
    let reqs = server.requests();
    let (first, again) = (reqs[1].key.clone().unwrap(), reqs[2].key.clone().unwrap());
    assert_eq!(first, again);
    assert!(first.ends_with("/reserve"), "{first}");
    // the service deduplicated by key: the reservation happened once
    assert_eq!(server.effects(&first), 1);
    let keys: std::collections::HashSet<_> = reqs.iter().map(|r| r.key.clone()).collect();
    assert_eq!(keys.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_run_shares_one_breaker_logs_its_changes_and_reports_its_state() {
    let server = Server::start().await;
    server.default_reply(services::Reply::Text(503, "down".into()));
    let dir = Dir::new();
    let saga = SAGA.replace(
        "    headers: {authorization: '\"Bearer \" + env.SHOP_TOKEN'}\n",
        "    headers: {authorization: '\"Bearer \" + env.SHOP_TOKEN'}\n    circuit_breaker: {window: 3, failure_rate: 1, open_for: 1h}\n",
    );
    assert_ne!(saga, SAGA);
    std::fs::write(dir.0.join("breaker.yaml"), saga).unwrap();
    let inputs: String = (0..5)
        .map(|i| format!("{{\"order_id\": \"b-{i}\"}}\n"))
        .collect();
    std::fs::write(dir.0.join("inputs.jsonl"), inputs).unwrap();
    let db = dir.db();
    let mut env = vars(&server);
    env.push(("RUST_LOG", "rulesaga=warn".into()));
    let out = rulesaga(
        &dir.0,
        &[
            "saga",
            "run",
            "breaker.yaml",
            "--db",
            &db,
            "--inputs",
            "inputs.jsonl",
        ],
        &env,
    )
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // three sagas filled the window; the other two never reached the service
    assert_eq!(server.requests().len(), 3, "{stdout}{stderr}");
    assert!(
        stdout.contains("service shop: circuit breaker open"),
        "{stdout}"
    );
    assert!(stderr.contains("circuit breaker changed state"), "{stderr}");
    assert!(stdout.contains("circuit open"), "{stdout}");
}
