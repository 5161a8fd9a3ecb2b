//! The SQLite store through the API: transactional steps, sequence conflicts, store
//! failures at every append (nothing lost, resume finishes), operators, the read
//! model and its rebuild, concurrent sagas on shared entities.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use chrono::Utc;
use rulesaga::Source;
use rulesaga::adapters::SqliteStore;
use rulesaga::repo::{Entity, FindError, RepoError, Repository, UnitOfWork};
use rulesaga::saga::events::{CommitFuture, StoreFuture};
use rulesaga::saga::read_model::SagaFilter;
use rulesaga::saga::{
    Catalog, CommitError, Event, EventKind, EventStore, Faults, HandlerRegistry, OperatorAction,
    RunError, Runner, Saga, SagaStatus, StoreError, TransactionalStore, fold, validate,
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
    fn store(&self) -> Arc<SqliteStore> {
        let store = SqliteStore::open(&self.path()).unwrap();
        store.seed(&seed()).unwrap();
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
    Runner::transactional(store.clone(), Arc::new(HandlerRegistry::with_builtins()))
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
            EventKind::SagaStarted { .. } => "start".into(),
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
    let store = db.store();
    let saga = place_order(store.repositories());
    let state = runner(&store).run(&saga, input("order_ok")).await.unwrap();
    assert_eq!(state.status, SagaStatus::Completed);
    let repos = store.export().unwrap();
    assert_eq!(repos["orders"]["order-123"]["status"], json!("confirmed"));
    assert_eq!(repos["inventory"]["item1"]["qty"], json!(8));
    let log = store.load(state.saga_id).await.unwrap();
    assert_eq!(log.len(), 10);
    assert_clean_log(&log);
    assert_eq!(fold(&log).status, SagaStatus::Completed);
    let (summary, projected) = store.saga_status(state.saga_id).unwrap().unwrap();
    assert_eq!(summary.status, SagaStatus::Completed);
    assert_eq!(summary.last_seq, 10);
    assert_eq!(projected.steps, state.steps);
    // the definition is pinned under its hash
    let text = store.load_definition(&saga.definition_hash).await.unwrap();
    assert_eq!(text.as_deref(), Some(saga.source.text.as_str()));
}

#[tokio::test]
async fn out_of_stock_is_compensated_and_the_order_cancelled() {
    let db = TempDb::new();
    let store = db.store();
    let saga = place_order(store.repositories());
    let state = runner(&store)
        .run(&saga, input("order_out_of_stock"))
        .await
        .unwrap();
    assert_eq!(state.status, SagaStatus::Compensated);
    let repos = store.export().unwrap();
    assert_eq!(repos["orders"]["order-456"]["status"], json!("cancelled"));
    assert_eq!(repos["inventory"]["item3"]["qty"], json!(0));
    let log = store.load(state.saga_id).await.unwrap();
    assert_clean_log(&log);
}

#[tokio::test]
async fn appending_an_existing_or_skipped_seq_is_a_conflict() {
    let db = TempDb::new();
    let store = db.store();
    let id = Uuid::new_v4();
    let event = |seq| Event {
        saga_id: id,
        seq,
        at: Utc::now(),
        kind: EventKind::SagaCompleted,
    };
    store.append(&event(1)).await.unwrap();
    assert!(matches!(
        store.append(&event(1)).await,
        Err(StoreError::Conflict { .. })
    ));
    assert!(matches!(
        store.append(&event(3)).await,
        Err(StoreError::Conflict { .. })
    ));
    store.append(&event(2)).await.unwrap();
    assert_eq!(store.load(id).await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_failed_write_appends_nothing() {
    let db = TempDb::new();
    let store = db.store();
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
        store.export().unwrap()["orders"]["order-123"]["status"],
        json!("created")
    );
}

/// The SQLite store, failing every append from the `fail_at`-th on (1-based), like a
/// full disk.
struct FaultyStore {
    inner: Arc<SqliteStore>,
    fail_at: usize,
    seen: AtomicUsize,
}

impl FaultyStore {
    fn broken(&self) -> bool {
        self.seen.fetch_add(1, Ordering::SeqCst) + 1 >= self.fail_at
    }
}

impl EventStore for FaultyStore {
    fn append<'a>(&'a self, event: &'a Event) -> StoreFuture<'a, ()> {
        if self.broken() {
            return Box::pin(async { Err(StoreError::Io("disk I/O error".into())) });
        }
        self.inner.append(event)
    }
    fn load(&self, id: Uuid) -> StoreFuture<'_, Vec<Event>> {
        self.inner.load(id)
    }
    fn list(&self) -> StoreFuture<'_, Vec<Uuid>> {
        self.inner.list()
    }
    fn save_definition<'a>(&'a self, hash: &'a str, text: &'a str) -> StoreFuture<'a, ()> {
        self.inner.save_definition(hash, text)
    }
    fn load_definition<'a>(&'a self, hash: &'a str) -> StoreFuture<'a, Option<String>> {
        self.inner.load_definition(hash)
    }
}

impl TransactionalStore for FaultyStore {
    fn append_with_writes<'a>(
        &'a self,
        event: &'a Event,
        unit: &'a UnitOfWork,
    ) -> CommitFuture<'a> {
        if self.broken() {
            return Box::pin(async {
                Err(CommitError::Store(StoreError::Io("disk I/O error".into())))
            });
        }
        self.inner.append_with_writes(event, unit)
    }
}

impl Repository for FaultyStore {
    fn repositories(&self) -> Vec<String> {
        self.inner.repositories()
    }
    fn get(&self, repo: &str, id: &str) -> Result<Option<Entity>, RepoError> {
        self.inner.get(repo, id)
    }
    fn find(
        &self,
        repo: &str,
        keep: &mut dyn FnMut(&str, &Entity) -> Result<bool, String>,
    ) -> Result<Vec<(String, Entity)>, FindError> {
        self.inner.find(repo, keep)
    }
    fn commit(&self, unit: &UnitOfWork) -> Result<(), RepoError> {
        self.inner.commit(unit)
    }
}

#[tokio::test]
async fn a_store_failure_at_any_append_stops_the_saga_and_resume_finishes_it() {
    for scenario in ["order_ok", "order_out_of_stock"] {
        let clean_db = TempDb::new();
        let clean = clean_db.store();
        let saga = place_order(clean.repositories());
        let done = runner(&clean).run(&saga, input(scenario)).await.unwrap();
        let n_events = clean.load(done.saga_id).await.unwrap().len();
        let expected = clean.export().unwrap();
        for fail_at in 1..=n_events {
            let db = TempDb::new();
            let store = db.store();
            let faulty = Arc::new(FaultyStore {
                inner: store.clone(),
                fail_at,
                seen: AtomicUsize::new(0),
            });
            let id = Uuid::new_v4();
            let err = Runner::transactional(faulty, Arc::new(HandlerRegistry::with_builtins()))
                .run_with_id(&saga, id, input(scenario))
                .await
                .unwrap_err();
            assert!(matches!(err, RunError::Store(_)), "{err}");
            // everything appended before the failure is there, nothing after it
            let log = store.load(id).await.unwrap();
            assert_eq!(log.len(), fail_at - 1, "{scenario} at {fail_at}");
            if log.is_empty() {
                continue;
            }
            let state = runner(&store).resume(&saga, &log).await.unwrap();
            assert_eq!(state.status, done.status, "{scenario} at {fail_at}");
            assert_eq!(store.export().unwrap(), expected, "{scenario} at {fail_at}");
            assert_clean_log(&store.load(id).await.unwrap());
        }
    }
}

#[tokio::test]
async fn operators_retry_and_mark_compensated_with_reasons_in_the_log() {
    let db = TempDb::new();
    let store = db.store();
    let saga = place_order(store.repositories());
    // `charge_payment` fails (bob cannot pay), and undoing `reserve_inventory` keeps failing
    let mut faults = Faults::default();
    faults
        .compensations
        .insert("reserve_inventory".into(), None);
    let failed = runner(&store)
        .with_faults(faults.clone())
        .run(&saga, input("order_insufficient_funds"))
        .await
        .unwrap();
    assert_eq!(failed.status, SagaStatus::Failed);
    assert_eq!(failed.failed_step.as_deref(), Some("reserve_inventory"));
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
    let again = runner(&store)
        .with_faults(faults)
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
    let repos = store.export().unwrap();
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
    let store = db.store();
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
        store.export().unwrap()["orders"]["o1"],
        json!({"status": "paid", "closed": true})
    );
}

#[tokio::test]
async fn the_projection_is_rebuilt_from_the_log_and_filters_work() {
    let db = TempDb::new();
    let store = db.store();
    let saga = place_order(store.repositories());
    let ok = runner(&store).run(&saga, input("order_ok")).await.unwrap();
    let out = runner(&store)
        .run(&saga, input("order_out_of_stock"))
        .await
        .unwrap();
    let before = store.list_sagas(&SagaFilter::default()).unwrap();
    assert_eq!(before.len(), 2);
    assert_eq!(store.rebuild_projection().unwrap(), 2);
    assert_eq!(store.list_sagas(&SagaFilter::default()).unwrap(), before);
    let only = |status| {
        store
            .list_sagas(&SagaFilter {
                status: Some(status),
                ..SagaFilter::default()
            })
            .unwrap()
            .into_iter()
            .map(|s| s.saga_id)
            .collect::<Vec<_>>()
    };
    assert_eq!(only(SagaStatus::Completed), [ok.saga_id]);
    assert_eq!(only(SagaStatus::Compensated), [out.saga_id]);
    let later = store
        .list_sagas(&SagaFilter {
            since: Some(Utc::now() + chrono::Duration::hours(1)),
            ..SagaFilter::default()
        })
        .unwrap();
    assert!(later.is_empty());
    let by_name = store
        .list_sagas(&SagaFilter {
            name: Some("other".into()),
            ..SagaFilter::default()
        })
        .unwrap();
    assert!(by_name.is_empty());
    // a database whose projection table is gone gets it back on open
    drop(store);
    {
        let conn = rusqlite::Connection::open(db.path()).unwrap();
        conn.execute_batch("DROP TABLE sagas").unwrap();
    }
    let store = SqliteStore::open(&db.path()).unwrap();
    assert_eq!(store.list_sagas(&SagaFilter::default()).unwrap(), before);
    assert_eq!(store.unfinished().unwrap(), Vec::<Uuid>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sagas_on_one_item_never_lose_an_update() {
    let db = TempDb::new();
    let store = db.store();
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
    let repos = store.export().unwrap();
    assert_eq!(repos["inventory"]["item1"]["qty"], json!(10 - n as i64));
    assert_eq!(
        repos["accounts"]["alice"]["balance"],
        json!(1000 - n as i64)
    );
}
