//! Steps per second with the SQLite store (WAL, `synchronous=FULL`, one group-commit
//! writer): a 10-step saga of no-op steps (21 durable events per saga), run by 1 saga
//! at a time and by 64 at once. Throughput is reported per step; the group commit is
//! what makes 64 concurrent sagas much faster than 64 × one (one fsync per batch).
//! The database lives under `CARGO_TARGET_TMPDIR` (a real disk, so fsync costs what
//! it costs).

#![allow(clippy::expect_used, clippy::unwrap_used, missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rulesaga::Source;
use rulesaga::adapters::SqliteStore;
use rulesaga::saga::{Catalog, HandlerRegistry, Runner, SagaStatus, validate};
use serde_json::json;

const STEPS: u64 = 10;

fn saga_text() -> String {
    let mut s = String::from("saga: bench\nsteps:\n");
    for i in 0..STEPS {
        s.push_str(&format!(
            "  - name: s{i}\n    action: {{noop: true}}\n    compensation: none\n"
        ));
    }
    s
}

fn bench(c: &mut Criterion) {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("bench-saga-sqlite-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let store = Arc::new(SqliteStore::open(&dir.join("bench.db")).unwrap());
    let handlers = Arc::new(HandlerRegistry::new());
    let saga = Arc::new(
        validate::load(
            Source::new("bench.yaml", saga_text()),
            &Catalog::new(&handlers),
        )
        .unwrap(),
    );
    let runner = Runner::with_handlers(store.clone(), handlers, &[]);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("saga_sqlite_steps");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(8));
    for concurrent in [1usize, 64] {
        group.throughput(Throughput::Elements(STEPS * concurrent as u64));
        group.bench_function(format!("{concurrent}_concurrent"), |b| {
            b.iter(|| {
                rt.block_on(async {
                    let mut tasks = Vec::with_capacity(concurrent);
                    for _ in 0..concurrent {
                        let (runner, saga) = (runner.clone(), saga.clone());
                        tasks.push(tokio::spawn(async move {
                            runner.run(&saga, json!({})).await.unwrap()
                        }));
                    }
                    for t in tasks {
                        assert_eq!(t.await.unwrap().status, SagaStatus::Completed);
                    }
                })
            });
        });
    }
    group.finish();

    // The disk's commit rate, in the same run: one small row per transaction on a
    // database with the store's pragmas (WAL, synchronous=FULL). A saga step costs
    // one commit, so this is the bound for one saga at a time.
    let mut raw = c.benchmark_group("sqlite_raw_commit");
    raw.sample_size(10);
    raw.measurement_time(Duration::from_secs(8));
    let conn = rusqlite::Connection::open(dir.join("raw.db")).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;
         CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT NOT NULL);",
    )
    .unwrap();
    raw.throughput(Throughput::Elements(STEPS));
    raw.bench_function("commits", |b| {
        b.iter(|| {
            for _ in 0..STEPS {
                conn.execute(
                    "INSERT INTO t (body) VALUES ('{\"kind\":\"step_succeeded\"}')",
                    [],
                )
                .unwrap();
            }
        })
    });
    raw.finish();
    drop(conn);
    drop(runner);
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);
