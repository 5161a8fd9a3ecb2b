//! Every saga store passes the same contract (`rulesaga::saga::store::contract`): the
//! sequence rule, atomic writes with their event, the read model, business keys,
//! leases and fencing, pinned texts, seeding.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::Arc;

use rulesaga::adapters::{self, SqliteStore};
use rulesaga::saga::store::contract::check_all;
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
    for bad in ["postgres://localhost/x", "redis:x", "sqlite:", "memory:x"] {
        let e = adapters::open(bad).err().map(|e| e.to_string());
        assert!(e.is_some(), "{bad} opened");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
