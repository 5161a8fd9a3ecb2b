//! Every saga store passes the same contract (`rulesaga::saga::store::contract`): the
//! sequence rule, atomic writes with their event, the read model, business keys,
//! leases and fencing, pinned texts, seeding.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::{Arc, Mutex};

use rulesaga::adapters::{self, PostgresStore, SqliteStore};
use rulesaga::saga::events::{Event, EventKind, SagaStart};
use rulesaga::saga::state::SagaState;
use rulesaga::saga::store::contract::check_all;
use rulesaga::saga::store::{Commit, CommitError, EventLog, LeaseOp, Leases, StoreError};
use rulesaga::saga::{MemoryStore, SagaStore};

#[tokio::test]
async fn the_memory_store_keeps_the_contract() {
    check_all(&|| Arc::new(MemoryStore::new()) as Arc<dyn SagaStore>).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sqlite_store_keeps_the_contract() {
    let dir = std::env::temp_dir().join(format!("rulesaga-contract-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let n = std::sync::atomic::AtomicUsize::new(0);
    let make = || {
        let i = n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Arc::new(SqliteStore::open(&dir.join(format!("{i}.db"))).unwrap()) as Arc<dyn SagaStore>
    };
    check_all(&make).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[path = "support/postgres.rs"]
mod postgres;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgres_store_keeps_the_contract() {
    let Some(server) = postgres::server("the_postgres_store_keeps_the_contract") else {
        return;
    };
    // every check gets a fresh schema; all are dropped at the end
    let schemas = Mutex::new(Vec::new());
    let make = || {
        let schema = postgres::Schema::new(&server);
        let store = PostgresStore::open(&schema.url()).unwrap();
        schemas.lock().unwrap().push(schema);
        Arc::new(store) as Arc<dyn SagaStore>
    };
    check_all(&make).await;
    // opened again, a store finds its tables and keeps what they hold (the schema of
    // the pinned-texts check has its text)
    let mut pinned = 0;
    let schemas = schemas.into_inner().unwrap();
    for schema in &schemas {
        let again = PostgresStore::open(&schema.url()).unwrap();
        if again.pinned("h1").await.unwrap().is_some() {
            pinned += 1;
        }
    }
    assert_eq!(pinned, 1);
}

/// A saga's first event.
fn first_event(id: uuid::Uuid, key: Option<String>) -> Event {
    Event {
        saga_id: id,
        seq: 1,
        at: chrono::Utc::now(),
        kind: EventKind::SagaStarted(Box::new(SagaStart {
            saga: "race".into(),
            version: Some(1),
            definition_hash: "d".repeat(64),
            input: serde_json::json!({}),
            key,
            rules: Vec::new(),
        })),
    }
}

/// Append a saga's first event straight to `store` (no read first, so that two
/// stores really race in the database).
async fn append_first(store: &dyn SagaStore, e: &Event) -> Result<(), CommitError> {
    let before = SagaState::default();
    let mut state = before.clone();
    state.apply(e).unwrap();
    store
        .append(Commit {
            events: vec![e.clone()],
            writes: None,
            lease: LeaseOp::default(),
            state: &state,
            before: before.phase(),
        })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_postgres_stores_on_one_database_never_both_win() {
    let Some(server) = postgres::server("two_postgres_stores_on_one_database_never_both_win")
    else {
        return;
    };
    let schema = postgres::Schema::new(&server);
    // two pools, as two processes would have
    let a = PostgresStore::open(&schema.url()).unwrap();
    let b = PostgresStore::open(&schema.url()).unwrap();
    let ttl = std::time::Duration::from_secs(60);
    for i in 0..16 {
        // the same saga's first event from both
        let id = uuid::Uuid::now_v7();
        let e = first_event(id, None);
        let (x, y) = tokio::join!(append_first(&a, &e), append_first(&b, &e));
        let lost = match (x, y) {
            (Ok(()), Err(l)) | (Err(l), Ok(())) => l,
            other => panic!("round {i}: exactly one append wins: {other:?}"),
        };
        assert!(
            matches!(lost, CommitError::Store(StoreError::Conflict { .. })),
            "{lost:?}"
        );
        assert_eq!(a.load(id).await.unwrap().len(), 1);
        // two sagas with one key
        let (p, q) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
        let key = Some(format!("k{i}"));
        let (ep, eq) = (first_event(p, key.clone()), first_event(q, key));
        let (x, y) = tokio::join!(append_first(&a, &ep), append_first(&b, &eq));
        let (winner, lost) = match (x, y) {
            (Ok(()), Err(l)) => (p, l),
            (Err(l), Ok(())) => (q, l),
            other => panic!("round {i}: exactly one saga gets the key: {other:?}"),
        };
        match lost {
            CommitError::Store(StoreError::DuplicateKey { saga_id, .. }) => {
                assert_eq!(saga_id, winner)
            }
            other => panic!("{other:?}"),
        }
        // one lease
        let (x, y) = tokio::join!(a.acquire(p, "a", ttl), b.acquire(p, "b", ttl));
        assert!(
            x.is_ok() != y.is_ok(),
            "round {i}: exactly one owner: {x:?} {y:?}"
        );
    }
}

#[tokio::test]
async fn the_postgres_store_refuses_a_newer_layout_and_a_missing_schema() {
    let Some(server) =
        postgres::server("the_postgres_store_refuses_a_newer_layout_and_a_missing_schema")
    else {
        return;
    };
    let schema = postgres::Schema::new(&server);
    let store = adapters::open(&schema.url()).unwrap();
    store
        .seed(&serde_json::json!({"items": {"a": {"n": 1}}}))
        .await
        .unwrap();
    drop(store);
    schema.sql("UPDATE rulesaga_schema SET version = version + 1");
    let e = PostgresStore::open(&schema.url())
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("layout version 2") && e.contains("reads up to 1"),
        "{e}"
    );
    // nothing was changed by the refused open
    schema.sql("DO $$ BEGIN IF (SELECT version FROM rulesaga_schema) <> 2 THEN RAISE 'changed'; END IF; END $$");
    let missing = format!(
        "{server}{}options=-c%20search_path%3Dno_such_schema_{}",
        if server.contains('?') { '&' } else { '?' },
        uuid::Uuid::new_v4().simple()
    );
    let e = PostgresStore::open(&missing).err().unwrap().to_string();
    assert!(e.contains("names no existing schema"), "{e}");
}

#[test]
fn stores_open_from_urls() {
    let dir = std::env::temp_dir().join(format!("rulesaga-urls-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("a.db");
    let s = adapters::open(&format!("sqlite:{}", path.display())).unwrap();
    assert_eq!(s.url(), format!("sqlite:{}", path.display()));
    let bare = adapters::open(&dir.join("b.db").display().to_string()).unwrap();
    assert!(bare.url().starts_with("sqlite:"));
    assert_eq!(adapters::open("memory:").unwrap().url(), "memory:");
    let json = dir.join("store.json");
    std::fs::write(&json, r#"{"items": {}}"#).unwrap();
    let j = adapters::open(&format!("json:{}", json.display())).unwrap();
    assert_eq!(j.repositories(), ["items"]);
    for bad in [
        "postgres://u:pw@localhost:notaport/x",
        "redis:x",
        "sqlite:",
        "memory:x",
    ] {
        let e = adapters::open(bad).err().map(|e| e.to_string());
        assert!(e.is_some(), "{bad} opened");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
