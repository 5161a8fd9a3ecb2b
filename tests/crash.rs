//! Crash recovery through the real binary: for every event boundary of the example
//! saga (happy path and the out-of-stock compensation), and of a variant with
//! `outbox` handler steps, kill `rulesaga` with SIGKILL right after that event is
//! durable (`RULESAGA_CRASH_AFTER=n`), run `saga recover`, and compare with a run
//! that did not crash: same repositories, same final status, every handler effect
//! once per idempotency key, no duplicate transition in the log.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::HashSet;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use rulesaga::adapters::SqliteStore;
use rulesaga::saga::store::{EventLog, SagaIndex};
use rulesaga::saga::{Event, EventKind, SagaStatus, SagaStore, fold};
use serde_json::Value as Json;

const BIN: &str = env!("CARGO_BIN_EXE_rulesaga");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The lease of the processes that crash: short, so recovery may take over soon.
const LEASE_TTL: &str = "100ms";
const LEASE_WAIT: std::time::Duration = std::time::Duration::from_millis(150);

/// `place_order` with an `outbox` handler step before the pivot (undone by another
/// `outbox` call) and one after it.
const NOTIFY_STEPS: &str = r#"
  - name: announce
    action:
      handler: outbox
      args: {file: '"outbox.jsonl"', event: '"order received"', order: input.order_id}
    compensate:
      handler: outbox
      args: {file: '"outbox.jsonl"', event: '"order withdrawn"', order: input.order_id}
"#;

const NOTIFY_AFTER_PIVOT: &str = r#"
  - name: notify_customer
    retry: {max_attempts: unlimited, initial_backoff: 10ms}
    action:
      handler: outbox
      args: {file: '"outbox.jsonl"', event: '"order confirmed"', order: input.order_id}
"#;

struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        let dir =
            std::env::temp_dir().join(format!("rulesaga-crash-{tag}-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        Dir(dir)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The saga files of the test: the example, and the variant with handler steps.
fn write_sagas(dir: &Path) -> (PathBuf, PathBuf) {
    let example = PathBuf::from(ROOT).join("sagas/place_order.yaml");
    let text = std::fs::read_to_string(&example).unwrap();
    let with_notify =
        text.replacen("steps:\n", &format!("steps:{NOTIFY_STEPS}"), 1) + NOTIFY_AFTER_PIVOT;
    let notify = dir.join("place_order_notify.yaml");
    std::fs::write(&notify, with_notify).unwrap();
    (example, notify)
}

fn rulesaga(cwd: &Path, args: &[&str], crash_after: Option<usize>) -> std::process::Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args).current_dir(cwd);
    match crash_after {
        Some(n) => cmd.env("RULESAGA_CRASH_AFTER", n.to_string()),
        None => cmd.env_remove("RULESAGA_CRASH_AFTER"),
    };
    cmd.output().unwrap()
}

/// What a finished run left behind.
#[derive(Debug)]
struct Outcome {
    status: SagaStatus,
    repos: Json,
    events: Vec<Event>,
    /// Outbox lines: (key with the saga id replaced by `ID`, whole line).
    outbox: Vec<String>,
}

fn outcome(cwd: &Path) -> Outcome {
    let store = SqliteStore::open(&cwd.join("test.db")).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let ids: Vec<_> = rt
        .block_on(store.list(&Default::default()))
        .unwrap()
        .into_iter()
        .map(|s| s.saga_id)
        .collect();
    assert_eq!(ids.len(), 1, "one saga per database");
    let id = ids[0];
    let events = rt.block_on(store.load(id)).unwrap();
    let outbox = match std::fs::read_to_string(cwd.join("outbox.jsonl")) {
        Ok(text) => text
            .lines()
            .map(|l| {
                let j: Json = serde_json::from_str(l).unwrap();
                let key = j["key"].as_str().unwrap();
                assert!(
                    key.starts_with(&id.to_string()),
                    "stable key `{key}` for saga {id}"
                );
                key.replacen(&id.to_string(), "ID", 1)
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    Outcome {
        status: fold(&events).unwrap().status,
        repos: rt.block_on(store.export()).unwrap(),
        events,
        outbox,
    }
}

/// Seqs 1..=n; the saga started once; no step succeeded or was compensated twice; one
/// final event, the last one.
fn assert_clean_log(events: &[Event], what: &str) {
    let mut seen = HashSet::new();
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.seq, i as u64 + 1, "{what}");
        let key = match &e.kind {
            EventKind::SagaStarted(_) => "started".to_string(),
            EventKind::StepSucceeded { step, .. } => format!("ok {step}"),
            EventKind::StepCompensated { step, .. } => format!("undone {step}"),
            EventKind::CompensationStarted { .. } => "compensating".to_string(),
            EventKind::SagaCompleted
            | EventKind::SagaCompensated
            | EventKind::SagaFailed { .. } => {
                assert_eq!(i + 1, events.len(), "{what}: final event not last");
                "final".to_string()
            }
            _ => continue,
        };
        assert!(
            seen.insert(key.clone()),
            "{what}: duplicate `{key}`: {events:#?}"
        );
    }
    assert!(seen.contains("final"), "{what}: no final event");
}

fn run_case(
    case_dir: &Path,
    store_json: &Path,
    saga: &Path,
    input: &Path,
    crash_after: Option<usize>,
) {
    std::fs::create_dir_all(case_dir).unwrap();
    let seeded = rulesaga(
        case_dir,
        &[
            "saga",
            "seed",
            store_json.to_str().unwrap(),
            "--db",
            "test.db",
        ],
        None,
    );
    assert!(
        seeded.status.success(),
        "{}",
        String::from_utf8_lossy(&seeded.stderr)
    );
    let input = format!("@{}", input.display());
    let run = rulesaga(
        case_dir,
        &[
            "saga",
            "run",
            saga.to_str().unwrap(),
            "--input",
            &input,
            "--db",
            "test.db",
            "--lease-ttl",
            LEASE_TTL,
        ],
        crash_after,
    );
    if let Some(n) = crash_after {
        assert_eq!(
            run.status.signal(),
            Some(9),
            "crash after event {n}: the process must die of SIGKILL ({:?}, {})",
            run.status,
            String::from_utf8_lossy(&run.stderr)
        );
        // the killed process's lease keeps others out until it expires
        std::thread::sleep(LEASE_WAIT);
        let recover = rulesaga(case_dir, &["saga", "recover", "--db", "test.db"], None);
        assert!(
            recover.status.success(),
            "recover after event {n}: {}{}",
            String::from_utf8_lossy(&recover.stdout),
            String::from_utf8_lossy(&recover.stderr)
        );
    }
}

/// Crash at every event boundary of one scenario and recover.
fn crash_everywhere(tag: &str, saga: &Path, input: &str, expected: SagaStatus) {
    let dir = Dir::new(tag);
    let store_json = PathBuf::from(ROOT).join("sagas/store.json");
    let input = PathBuf::from(ROOT).join("sagas/inputs").join(input);
    let clean_dir = dir.0.join("clean");
    run_case(&clean_dir, &store_json, saga, &input, None);
    let clean = outcome(&clean_dir);
    assert_eq!(clean.status, expected);
    assert_clean_log(&clean.events, tag);
    let n_events = clean.events.len();
    for n in 1..=n_events {
        let case_dir = dir.0.join(format!("crash-{n}"));
        run_case(&case_dir, &store_json, saga, &input, Some(n));
        let what = format!("{tag}, crash after event {n}");
        let got = outcome(&case_dir);
        assert_eq!(got.status, clean.status, "{what}");
        assert_eq!(got.repos, clean.repos, "{what}");
        assert_clean_log(&got.events, &what);
        // every handler effect once per idempotency key, and the same effects
        let unique: HashSet<_> = got.outbox.iter().collect();
        assert_eq!(unique.len(), got.outbox.len(), "{what}: {:?}", got.outbox);
        assert_eq!(got.outbox, clean.outbox, "{what}");
        // the events logged before the crash are still there, unchanged
        for (a, b) in got.events.iter().zip(&clean.events).take(n) {
            assert_eq!(a.kind.type_name(), b.kind.type_name(), "{what}");
        }
        std::fs::remove_dir_all(&case_dir).unwrap();
    }
}

#[test]
fn crash_at_every_event_of_the_happy_path_then_recover() {
    let dir = Dir::new("sagas");
    let (example, notify) = write_sagas(&dir.0);
    crash_everywhere("ok", &example, "order_ok.json", SagaStatus::Completed);
    crash_everywhere("notify-ok", &notify, "order_ok.json", SagaStatus::Completed);
}

#[test]
fn crash_at_every_event_of_the_compensation_path_then_recover() {
    let dir = Dir::new("sagas");
    let (example, notify) = write_sagas(&dir.0);
    crash_everywhere(
        "out",
        &example,
        "order_out_of_stock.json",
        SagaStatus::Compensated,
    );
    crash_everywhere(
        "notify-out",
        &notify,
        "order_out_of_stock.json",
        SagaStatus::Compensated,
    );
}

#[test]
fn recovery_runs_the_pinned_definition_even_after_the_file_changed() {
    let dir = Dir::new("pinned");
    let saga = dir.0.join("place_order.yaml");
    std::fs::copy(PathBuf::from(ROOT).join("sagas/place_order.yaml"), &saga).unwrap();
    let case = dir.0.join("case");
    let store_json = PathBuf::from(ROOT).join("sagas/store.json");
    let input = PathBuf::from(ROOT).join("sagas/inputs/order_ok.json");
    std::fs::create_dir_all(&case).unwrap();
    let store_json = store_json.to_str().unwrap();
    assert!(
        rulesaga(
            &case,
            &["saga", "seed", store_json, "--db", "test.db"],
            None
        )
        .status
        .success()
    );
    // crash after `create_order` succeeded (events: started, step started, succeeded)
    let input = format!("@{}", input.display());
    let run = rulesaga(
        &case,
        &[
            "saga",
            "run",
            saga.to_str().unwrap(),
            "--input",
            &input,
            "--db",
            "test.db",
            "--lease-ttl",
            LEASE_TTL,
        ],
        Some(3),
    );
    assert_eq!(run.status.signal(), Some(9));
    let edited = std::fs::read_to_string(&saga)
        .unwrap()
        .replace(r#"status: '"confirmed"'"#, r#"status: '"edited"'"#);
    assert!(edited.contains("edited"));
    std::fs::write(&saga, edited).unwrap();
    std::thread::sleep(LEASE_WAIT);
    let recover = rulesaga(&case, &["saga", "recover", "--db", "test.db"], None);
    assert!(recover.status.success());
    let got = outcome(&case);
    assert_eq!(got.status, SagaStatus::Completed);
    assert_eq!(got.repos["orders"]["order-123"]["status"], "confirmed");
}
