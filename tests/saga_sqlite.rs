//! The SQLite store through the API: transactional steps, sequence conflicts, store
//! failures at every append (nothing lost, resume finishes), operators, the read
//! model and its rebuild, concurrent sagas on shared entities.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use chrono::Utc;
use rulesaga::Source;
use rulesaga::adapters::SqliteStore;
use rulesaga::repo::{Entity, Repository};
use rulesaga::saga::read_model::SagaFilter;
use rulesaga::saga::store::contract::FailingAppends;
use rulesaga::saga::store::{EventLog, SagaIndex};
use rulesaga::saga::{
    Catalog, Event, EventKind, FaultLayer, Faults, HandlerRegistry, Layer, OperatorAction,
    RunError, Runner, Saga, SagaStatus, SagaStore, Start, fold, validate,
};
use serde_json::{Value as Json, json};
use uuid::Uuid;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

struct TempDb {
    dir: PathBuf,
}

impl TempDb {
    fn new() -> TempDb {
        let dir = std::env::temp_dir().join(format!("rulesaga-sqlite-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDb { dir }
    }
    fn path(&self) -> PathBuf {
        self.dir.join("test.db")
    }
    /// A fresh store seeded with `sagas/store.json`.
    async fn store(&self) -> Arc<SqliteStore> {
        let store = SqliteStore::open(&self.path()).unwrap();
        store.seed(&seed()).await.unwrap();
        Arc::new(store)
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn seed() -> Json {
    serde_json::from_str(&std::fs::read_to_string(format!("{ROOT}/sagas/store.json")).unwrap())
        .unwrap()
}

fn input(name: &str) -> Json {
    serde_json::from_str(
        &std::fs::read_to_string(format!("{ROOT}/sagas/inputs/{name}.json")).unwrap(),
    )
    .unwrap()
}

fn place_order(repos: Vec<String>) -> Saga {
    let text = std::fs::read_to_string(format!("{ROOT}/sagas/place_order.yaml")).unwrap();
    let handlers = HandlerRegistry::with_builtins();
    let catalog = Catalog {
        repositories: Some(repos),
        ..Catalog::new(&handlers)
    };
    validate::load(Source::new("place_order.yaml", text), &catalog)
        .unwrap_or_else(|d| panic!("{d}"))
}

fn runner(store: &Arc<SqliteStore>) -> Runner {
    runner_with(store.clone(), &[])
}

fn runner_with(store: Arc<dyn SagaStore>, layers: &[Arc<dyn Layer>]) -> Runner {
    Runner::with_handlers(store, Arc::new(HandlerRegistry::with_builtins()), layers)
}

fn faults(f: Faults) -> Vec<Arc<dyn Layer>> {
    vec![Arc::new(FaultLayer::new(f))]
}

async fn export(store: &SqliteStore) -> Json {
    store.export().await.unwrap()
}

/// No step succeeded or was compensated twice; one final event, last; seqs 1..=n.
fn assert_clean_log(log: &[Event]) {
    for (i, e) in log.iter().enumerate() {
        assert_eq!(e.seq, i as u64 + 1);
    }
    let mut seen = std::collections::HashSet::new();
    for e in log {
        let key = match &e.kind {
            EventKind::StepSucceeded { step, .. } => format!("ok {step}"),
            EventKind::StepCompensated { step, .. } => format!("undone {step}"),
            EventKind::SagaStarted(_) => "start".into(),
            _ => continue,
        };
        assert!(seen.insert(key.clone()), "duplicate `{key}` in {log:#?}");
    }
    let finals = log
        .iter()
        .filter(|e| {
            matches!(
                e.kind,
                EventKind::SagaCompleted
                    | EventKind::SagaCompensated
                    | EventKind::SagaFailed { .. }
            )
        })
        .count();
    assert_eq!(finals, 1);
}

#[tokio::test]
async fn happy_path_commits_writes_with_events_and_projects_the_status() {
    let db = TempDb::new();
    let store = db.store().await;
    let saga = place_order(store.repositories());
    let state = runner(&store).run(&saga, input("order_ok")).await.unwrap();
    assert_eq!(state.status, SagaStatus::Completed);
    let repos = export(&store).await;
    assert_eq!(repos["orders"]["order-123"]["status"], json!("confirmed"));
    assert_eq!(repos["inventory"]["item1"]["qty"], json!(8));
    let log = store.load(state.saga_id).await.unwrap();
    assert_eq!(log.len(), 10);
    assert_clean_log(&log);
    assert_eq!(fold(&log).unwrap(), state);
    let rows = store.list(&SagaFilter::default()).await.unwrap();
    assert_eq!(rows[0].status, SagaStatus::Completed);
    assert_eq!(rows[0].last_seq, 10);
    // the definition is pinned under its hash
    let text = store.pinned(saga.definition_hash()).await.unwrap().unwrap();
    assert_eq!(text.text, saga.source().text);
}

#[tokio::test]
async fn out_of_stock_is_compensated_and_the_order_cancelled() {
    let db = TempDb::new();
    let store = db.store().await;
    let saga = place_order(store.repositories());
    let state = runner(&store)
        .run(&saga, input("order_out_of_stock"))
        .await
        .unwrap();
    assert_eq!(state.status, SagaStatus::Compensated);
    let repos = export(&store).await;
    assert_eq!(repos["orders"]["order-456"]["status"], json!("cancelled"));
    assert_eq!(repos["inventory"]["item3"]["qty"], json!(0));
    let log = store.load(state.saga_id).await.unwrap();
    assert_clean_log(&log);
}

#[tokio::test]
async fn a_failed_write_appends_nothing() {
    let db = TempDb::new();
    let store = db.store().await;
    let saga = place_order(store.repositories());
    // the order exists already: `create_order`'s insert fails, and its writes and
    // outcome event are rolled back together
    let mut order = Entity::new();
    order.insert("status".into(), json!("created"));
    store.insert("orders", "order-123", order).unwrap();
    let state = runner(&store).run(&saga, input("order_ok")).await.unwrap();
    assert_eq!(state.status, SagaStatus::Compensated);
    let log = store.load(state.saga_id).await.unwrap();
    assert!(
        !log.iter()
            .any(|e| matches!(e.kind, EventKind::StepSucceeded { .. }))
    );
    assert_eq!(
        export(&store).await["orders"]["order-123"]["status"],
        json!("created")
    );
}

#[tokio::test]
async fn a_store_failure_at_any_append_stops_the_saga_and_resume_finishes_it() {
    for scenario in ["order_ok", "order_out_of_stock"] {
        let clean_db = TempDb::new();
        let clean = clean_db.store().await;
        let saga = place_order(clean.repositories());
        let counted = Arc::new(FailingAppends::new(clean.clone(), usize::MAX));
        let done = runner_with(counted.clone(), &[])
            .run(&saga, input(scenario))
            .await
            .unwrap();
        let kinds = |log: &[rulesaga::saga::Event]| -> Vec<&'static str> {
            log.iter().map(|e| e.kind.type_name()).collect()
        };
        let clean_log = clean.load(done.saga_id).await.unwrap();
        let expected = export(&clean).await;
        let mut appended = 0;
        // one failing commit at a time (a commit holds a step's outcome and what
        // follows it up to the next start)
        for fail_at in 1..=counted.appends() {
            let db = TempDb::new();
            let store = db.store().await;
            let faulty = Arc::new(FailingAppends::new(store.clone(), fail_at - 1));
            let start = Start::new(input(scenario));
            let id = start.saga_id;
            let err = runner_with(faulty, &[])
                .start(&saga, start)
                .await
                .unwrap_err();
            assert!(matches!(err, RunError::Store(_)), "{err}");
            // everything appended before the failure is there, nothing after it
            let log = store.load(id).await.unwrap();
            assert_eq!(kinds(&log), kinds(&clean_log[..log.len()]));
            assert!(
                fail_at == 1 || log.len() > appended,
                "{scenario} at {fail_at}"
            );
            assert!(log.len() < clean_log.len(), "{scenario} at {fail_at}");
            appended = log.len();
            if log.is_empty() {
                continue;
            }
            let state = runner(&store).resume(&saga, &log).await.unwrap();
            assert_eq!(state.status, done.status, "{scenario} at {fail_at}");
            assert_eq!(export(&store).await, expected, "{scenario} at {fail_at}");
            assert_clean_log(&store.load(id).await.unwrap());
        }
    }
}

#[tokio::test]
async fn operators_retry_and_mark_compensated_with_reasons_in_the_log() {
    let db = TempDb::new();
    let store = db.store().await;
    let saga = place_order(store.repositories());
    // `charge_payment` fails (bob cannot pay), and undoing `reserve_inventory` keeps failing
    let mut injected = Faults::default();
    injected
        .compensations
        .insert("reserve_inventory".into(), None);
    let failed = runner_with(store.clone(), &faults(injected.clone()))
        .run(&saga, input("order_insufficient_funds"))
        .await
        .unwrap();
    assert_eq!(failed.status, SagaStatus::Failed);
    assert_eq!(
        failed.problem().map(|p| p.step.as_str()),
        Some("reserve_inventory")
    );
    let log = store.load(failed.saga_id).await.unwrap();

    // `skip` does not apply to a compensation that failed
    let skip = OperatorAction::Skip {
        step: "reserve_inventory".into(),
        reason: "x".into(),
    };
    assert!(matches!(
        runner(&store).operate(&saga, &log, &skip).await,
        Err(RunError::Operator(_))
    ));

    // retry with the fault still there: a fresh budget of attempts, failed again
    let again = runner_with(store.clone(), &faults(injected))
        .operate(
            &saga,
            &log,
            &OperatorAction::Retry {
                reason: "inventory service is back".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(again.status, SagaStatus::Failed);
    let log = store.load(failed.saga_id).await.unwrap();
    let attempts = log
        .iter()
        .filter(|e| matches!(&e.kind, EventKind::StepCompensationStarted { step, .. } if step == "reserve_inventory"))
        .count();
    assert_eq!(attempts, 10, "5 attempts, then 5 more after the retry");

    // mark it compensated by hand: compensation goes on and undoes `create_order`
    let done = runner(&store)
        .operate(
            &saga,
            &log,
            &OperatorAction::MarkCompensated {
                step: "reserve_inventory".into(),
                reason: "restocked by hand, ticket 42".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(done.status, SagaStatus::Compensated);
    let log = store.load(failed.saga_id).await.unwrap();
    assert!(log.iter().any(|e| matches!(&e.kind,
        EventKind::StepMarkedCompensated { reason, .. } if reason == "restocked by hand, ticket 42")));
    let repos = export(&store).await;
    assert_eq!(repos["orders"]["order-789"]["status"], json!("cancelled"));
    // the reservation was not undone by the runner: the operator did it outside
    assert_eq!(repos["inventory"]["item2"]["qty"], json!(4));
    // operator commands need a failed saga
    assert!(matches!(
        runner(&store)
            .operate(&saga, &log, &OperatorAction::Retry { reason: "x".into() })
            .await,
        Err(RunError::Operator(_))
    ));
}

#[tokio::test]
async fn operators_skip_a_step_after_the_pivot() {
    let db = TempDb::new();
    let store = db.store().await;
    let text = "saga: ship\nsteps:\n  - name: pay\n    pivot: true\n    action: {insert: orders, id: '\"o1\"', values: {status: '\"paid\"'}}\n  - name: ship\n    retry: {max_attempts: unlimited}\n    action: {update: orders, id: '\"o1\"', expect: entity.status == \"missing\", values: {status: '\"shipped\"'}}\n  - name: close\n    retry: {max_attempts: unlimited}\n    action: {update: orders, id: '\"o1\"', values: {closed: true}}\n";
    let handlers = HandlerRegistry::with_builtins();
    let catalog = Catalog {
        repositories: Some(store.repositories()),
        ..Catalog::new(&handlers)
    };
    let saga =
        validate::load(Source::new("ship.yaml", text), &catalog).unwrap_or_else(|d| panic!("{d}"));
    let failed = runner(&store).run(&saga, json!({})).await.unwrap();
    assert_eq!(failed.status, SagaStatus::Failed);
    let log = store.load(failed.saga_id).await.unwrap();
    let wrong = OperatorAction::Skip {
        step: "close".into(),
        reason: "x".into(),
    };
    assert!(runner(&store).operate(&saga, &log, &wrong).await.is_err());
    let done = runner(&store)
        .operate(
            &saga,
            &log,
            &OperatorAction::Skip {
                step: "ship".into(),
                reason: "shipped by courier".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(done.status, SagaStatus::Completed);
    assert_eq!(
        export(&store).await["orders"]["o1"],
        json!({"status": "paid", "closed": true})
    );
}

#[tokio::test]
async fn the_projection_is_rebuilt_from_the_log_and_filters_work() {
    let db = TempDb::new();
    let store = db.store().await;
    let saga = place_order(store.repositories());
    let ok = runner(&store).run(&saga, input("order_ok")).await.unwrap();
    let out = runner(&store)
        .run(&saga, input("order_out_of_stock"))
        .await
        .unwrap();
    let before = store.list(&SagaFilter::default()).await.unwrap();
    assert_eq!(before.len(), 2);
    assert_eq!(store.rebuild_projection().await.unwrap(), 2);
    assert_eq!(store.list(&SagaFilter::default()).await.unwrap(), before);
    for (status, id) in [
        (SagaStatus::Completed, ok.saga_id),
        (SagaStatus::Compensated, out.saga_id),
    ] {
        let only = store
            .list(&SagaFilter {
                status: Some(status),
                ..SagaFilter::default()
            })
            .await
            .unwrap();
        assert_eq!(only.iter().map(|s| s.saga_id).collect::<Vec<_>>(), [id]);
    }
    let later = store
        .list(&SagaFilter {
            since: Some(Utc::now() + chrono::Duration::hours(1)),
            ..SagaFilter::default()
        })
        .await
        .unwrap();
    assert!(later.is_empty());
    let by_name = store
        .list(&SagaFilter {
            name: Some("other".into()),
            ..SagaFilter::default()
        })
        .await
        .unwrap();
    assert!(by_name.is_empty());
    // a database whose projection table is gone gets it back on open
    drop(store);
    {
        let conn = rusqlite::Connection::open(db.path()).unwrap();
        conn.execute_batch("DROP TABLE sagas").unwrap();
    }
    let store = SqliteStore::open(&db.path()).unwrap();
    assert_eq!(store.list(&SagaFilter::default()).await.unwrap(), before);
    assert_eq!(store.unfinished().await.unwrap(), Vec::<Uuid>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sagas_on_one_item_never_lose_an_update() {
    let db = TempDb::new();
    let store = db.store().await;
    let saga = Arc::new(place_order(store.repositories()));
    let runner = runner(&store);
    let completed = Arc::new(Mutex::new(0u64));
    let mut tasks = Vec::new();
    for i in 0..16 {
        let (runner, saga, completed) = (runner.clone(), saga.clone(), completed.clone());
        tasks.push(tokio::spawn(async move {
            let input = json!({"order_id": format!("o{i}"), "customer": "alice", "sku": "item1", "quantity": 1, "amount": 1});
            let state = runner.run(&saga, input).await.unwrap();
            if state.status == SagaStatus::Completed {
                *completed.lock().unwrap() += 1;
            } else {
                assert_eq!(state.status, SagaStatus::Compensated);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let n = *completed.lock().unwrap();
    let repos = export(&store).await;
    assert_eq!(repos["inventory"]["item1"]["qty"], json!(10 - n as i64));
    assert_eq!(
        repos["accounts"]["alice"]["balance"],
        json!(1000 - n as i64)
    );
}

/// A database written by rulesaga before layout 2 (no keys, no leases, events without
/// a schema version) opens, migrates, and its sagas read and continue.
#[tokio::test]
async fn a_version_1_database_is_migrated_and_its_events_upcast() {
    let db = TempDb::new();
    let id = Uuid::now_v7();
    {
        let conn = rusqlite::Connection::open(db.path()).unwrap();
        conn.execute_batch(
            "CREATE TABLE events (saga_id TEXT NOT NULL, seq INTEGER NOT NULL, at TEXT NOT NULL,
                type TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (saga_id, seq)) WITHOUT ROWID;
             CREATE TABLE definitions (hash TEXT PRIMARY KEY, name TEXT NOT NULL, text TEXT NOT NULL);
             CREATE TABLE repositories (name TEXT PRIMARY KEY);
             CREATE TABLE sagas (saga_id TEXT PRIMARY KEY, name TEXT NOT NULL, status TEXT NOT NULL,
                started_at TEXT NOT NULL, updated_at TEXT NOT NULL, last_seq INTEGER NOT NULL,
                failed_step TEXT, reason TEXT);
             PRAGMA user_version = 1;",
        )
        .unwrap();
        let at = "2026-11-20T10:00:00.000000Z";
        let started = format!(
            r#"{{"saga_id":"{id}","seq":1,"at":"{at}","type":"saga_started","saga":"old","version":null,"definition_hash":"h1","input":{{}}}}"#
        );
        let failed = format!(
            r#"{{"saga_id":"{id}","seq":2,"at":"{at}","type":"step_failed","step":"a","attempt":0,"error":"x","timed_out":false,"will_retry":false}}"#
        );
        for (seq, ty, body) in [(1, "saga_started", started), (2, "step_failed", failed)] {
            conn.execute(
                "INSERT INTO events VALUES (?1, ?2, ?3, ?4, ?5)",
                rusqlite::params![id.to_string(), seq, at, ty, body],
            )
            .unwrap();
        }
        conn.execute(
            "INSERT INTO sagas VALUES (?1, 'old', 'running', ?2, ?2, 2, NULL, NULL)",
            rusqlite::params![id.to_string(), at],
        )
        .unwrap();
    }
    let store = SqliteStore::open(&db.path()).unwrap();
    let log = store.load(id).await.unwrap();
    assert_eq!(log.len(), 2);
    assert!(matches!(
        &log[0].kind,
        EventKind::SagaStarted(s) if s.key.is_none() && s.rules.is_empty()
    ));
    let state = fold(&log).unwrap();
    assert_eq!(state.step_status("a"), rulesaga::saga::StepStatus::Failed);
    assert_eq!(store.unfinished().await.unwrap(), [id]);
    let version: i64 = rusqlite::Connection::open(db.path())
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 2);
    // a layout newer than this binary reads is refused, and changes nothing
    drop(store);
    rusqlite::Connection::open(db.path())
        .unwrap()
        .execute_batch("PRAGMA user_version = 9")
        .unwrap();
    let err = SqliteStore::open(&db.path()).err().unwrap().to_string();
    assert!(err.contains("layout version 9"), "{err}");
}
