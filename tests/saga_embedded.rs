//! An application embedding the CLI (`examples/shop.rs`: `rulesaga` plus a handler
//! `ship`), and leases, through real processes: a saga whose handler only the
//! application has is run and recovered by the application; a second process never
//! runs a handler that a live process is running; a killed process's saga is taken
//! over once its lease expires (the handler runs once more, with the same key); a
//! process that paused past its lease is fenced off.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value as Json;

const RULESAGA: &str = env!("CARGO_BIN_EXE_rulesaga");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const TTL: &str = "1s";
/// Longer than a lease, so an abandoned one has surely expired.
const PAST_TTL: Duration = Duration::from_millis(1400);

/// The example binary, built by `cargo test` next to the test binaries.
fn shop() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let debug = exe.parent().unwrap().parent().unwrap();
    let shop = debug.join("examples").join("shop");
    assert!(shop.exists(), "{} is missing", shop.display());
    shop
}

struct Dir(PathBuf);

impl Dir {
    fn new() -> Dir {
        let d = std::env::temp_dir().join(format!("rulesaga-embed-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }
    fn path(&self, name: &str) -> String {
        self.0.join(name).display().to_string()
    }
    fn input(&self) -> String {
        serde_json::json!({
            "order": "o-1",
            "log": self.path("calls.jsonl"),
            "hold": self.path("hold"),
        })
        .to_string()
    }
    /// The calls `ship` recorded: (key, attempt, pid).
    fn calls(&self) -> Vec<(String, u64, u64)> {
        std::fs::read_to_string(self.0.join("calls.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| {
                let j: Json = serde_json::from_str(l).unwrap();
                (
                    j["key"].as_str().unwrap().to_string(),
                    j["attempt"].as_u64().unwrap(),
                    j["pid"].as_u64().unwrap(),
                )
            })
            .collect()
    }
    fn wait_for_calls(&self, n: usize) {
        let start = Instant::now();
        while self.calls().len() < n {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "no call to `ship`"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(bin: &Path, dir: &Dir, args: &[&str]) -> Output {
    Command::new(bin)
        .args(args)
        .current_dir(&dir.0)
        .env_remove("RULESAGA_CRASH_AFTER")
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `shop saga run` in the background, stuck inside `ship` (the hold file exists).
fn start_held(dir: &Dir) -> Child {
    std::fs::write(dir.0.join("hold"), "").unwrap();
    let saga = format!("{ROOT}/examples/shop.yaml");
    let input = dir.input();
    let child = Command::new(shop())
        .args([
            "saga",
            "run",
            &saga,
            "--input",
            &input,
            "--db",
            "test.db",
            "--lease-ttl",
            TTL,
            "--output",
            "json",
        ])
        .current_dir(&dir.0)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    dir.wait_for_calls(1);
    child
}

fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn the_plain_binary_checks_foreign_handlers_by_name_and_the_application_runs_them() {
    let dir = Dir::new();
    let saga = format!("{ROOT}/examples/shop.yaml");
    let plain = run(Path::new(RULESAGA), &dir, &["saga", "validate", &saga]);
    assert_eq!(plain.status.code(), Some(1));
    assert!(
        text(&plain).contains("unknown handler `ship`"),
        "{}",
        text(&plain)
    );
    let named = run(
        Path::new(RULESAGA),
        &dir,
        &["saga", "validate", &saga, "--handler", "ship"],
    );
    assert!(named.status.success(), "{}", text(&named));
    let graph = run(
        Path::new(RULESAGA),
        &dir,
        &["saga", "graph", &saga, "--handler", "ship"],
    );
    assert!(graph.status.success(), "{}", text(&graph));
    let input = dir.input().replace(&dir.path("hold"), &dir.path("no-hold"));
    let ran = run(
        &shop(),
        &dir,
        &["saga", "run", &saga, "--input", &input, "--db", "test.db"],
    );
    assert!(ran.status.success(), "{}", text(&ran));
    assert!(text(&ran).contains("saga completed"), "{}", text(&ran));
    assert_eq!(dir.calls().len(), 1);
}

#[test]
fn recover_leaves_a_live_saga_alone_and_takes_over_after_its_lease_expires() {
    let dir = Dir::new();
    let mut a = start_held(&dir);
    // B, while A is inside `ship`: the saga is left alone, the handler not called again
    let b = run(&shop(), &dir, &["saga", "recover", "--db", "test.db"]);
    assert!(b.status.success(), "{}", text(&b));
    assert!(text(&b).contains("alone"), "{}", text(&b));
    assert!(
        text(&b).contains(&format!(":{}:", a.id())),
        "names A: {}",
        text(&b)
    );
    let ids: Vec<String> = dir.calls().iter().map(|c| c.0.clone()).collect();
    let saga_id = ids[0].split('/').next().unwrap().to_string();
    let resume = run(
        &shop(),
        &dir,
        &["saga", "resume", &saga_id, "--db", "test.db"],
    );
    assert_eq!(resume.status.code(), Some(4), "{}", text(&resume));
    assert!(
        text(&resume).contains("is being run by"),
        "{}",
        text(&resume)
    );
    assert_eq!(dir.calls().len(), 1);
    // A dies; after its lease expires B finishes the saga, calling `ship` once more
    // with the same idempotency key
    a.kill().unwrap();
    a.wait().unwrap();
    std::fs::remove_file(dir.0.join("hold")).unwrap();
    std::thread::sleep(PAST_TTL);
    let b = run(&shop(), &dir, &["saga", "recover", "--db", "test.db"]);
    assert!(b.status.success(), "{}", text(&b));
    assert!(text(&b).contains("completed"), "{}", text(&b));
    let calls = dir.calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(calls[0].0, calls[1].0, "the same idempotency key");
    assert_eq!((calls[0].1, calls[1].1), (1, 2));
    assert_ne!(calls[0].2, calls[1].2, "two processes");
}

#[test]
fn a_process_that_paused_past_its_lease_is_fenced_off() {
    let dir = Dir::new();
    let a = start_held(&dir);
    signal(&a, "-STOP");
    std::fs::remove_file(dir.0.join("hold")).unwrap();
    std::thread::sleep(PAST_TTL);
    let b = run(&shop(), &dir, &["saga", "recover", "--db", "test.db"]);
    assert!(b.status.success(), "{}", text(&b));
    assert!(text(&b).contains("completed"), "{}", text(&b));
    // A wakes up inside `ship` and can no longer advance the saga
    signal(&a, "-CONT");
    let out = a.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(text(&out).contains("taken over"), "{}", text(&out));
    let calls = dir.calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    let saga_id = calls[0].0.split('/').next().unwrap();
    let history = run(
        &shop(),
        &dir,
        &[
            "saga", "history", saga_id, "--db", "test.db", "--output", "json",
        ],
    );
    let events: Json = serde_json::from_slice(&history.stdout).unwrap();
    let ship_done = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "step_succeeded" && e["step"] == "ship")
        .count();
    assert_eq!(ship_done, 1, "{events:#}");
    assert_eq!(
        events.as_array().unwrap().last().unwrap()["type"],
        "saga_completed"
    );
}

#[test]
fn the_plain_binary_cannot_continue_a_saga_with_a_foreign_handler_and_says_so() {
    let dir = Dir::new();
    let mut a = start_held(&dir);
    a.kill().unwrap();
    a.wait().unwrap();
    std::thread::sleep(PAST_TTL);
    let plain = run(
        Path::new(RULESAGA),
        &dir,
        &["saga", "recover", "--db", "test.db"],
    );
    assert_eq!(plain.status.code(), Some(1), "{}", text(&plain));
    assert!(
        text(&plain).contains("unknown handler `ship`"),
        "{}",
        text(&plain)
    );
    assert!(text(&plain).contains("run_with"), "{}", text(&plain));
}
