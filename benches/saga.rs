//! Runner overhead: a 10-step saga of no-op built-in actions on the in-memory
//! repository and event store (21 events per run: start, 10 × started/succeeded,
//! completed), and the same with a `get` on every step. Per-step overhead =
//! median per run / 10.

#![allow(clippy::expect_used, clippy::unwrap_used, missing_docs)]

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rulesaga::Source;
use rulesaga::saga::{Catalog, HandlerRegistry, MemoryStore, Runner, validate};
use serde_json::json;

fn saga_text(action: &str) -> String {
    let mut s = String::from("saga: bench\ninput: {id: string}\nsteps:\n");
    for i in 0..10 {
        s.push_str(&format!(
            "  - name: s{i}\n    action: {action}\n    compensation: none\n"
        ));
    }
    s
}

fn bench(c: &mut Criterion) {
    let handlers = HandlerRegistry::new();
    let catalog = Catalog::new(&handlers);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("saga_10_steps");
    group.throughput(Throughput::Elements(10));
    for (name, action) in [
        ("noop", "{noop: true}"),
        ("get", "{get: items, id: input.id}"),
    ] {
        let saga = validate::load(Source::new("bench.yaml", saga_text(action)), &catalog).unwrap();
        let handlers = Arc::new(HandlerRegistry::new());
        let fresh = || {
            let store =
                MemoryStore::with_repositories(&json!({"items": {"i1": {"qty": 1}}})).unwrap();
            Runner::with_handlers(Arc::new(store), handlers.clone(), &[])
        };
        if let Ok(only) = std::env::var("SAGA_BENCH_ONCE") {
            if only == name {
                let runners: Vec<Runner> = (0..RUNS).map(|_| fresh()).collect();
                let done = measured(&mut || {
                    runners
                        .iter()
                        .map(|runner| {
                            (rt.block_on(runner.run(&saga, json!({"id": "i1"})))
                                .unwrap()
                                .status
                                == rulesaga::saga::SagaStatus::Completed)
                                as usize
                        })
                        .sum()
                });
                println!("{name}: {done} of {RUNS} sagas completed");
            }
            continue;
        }
        group.bench_function(name, |b| {
            b.iter_batched(
                &fresh,
                |runner| {
                    let state = rt.block_on(runner.run(&saga, json!({"id": "i1"}))).unwrap();
                    black_box(state)
                },
                criterion::BatchSize::SmallInput,
            );
        });
    }
    group.finish();
}

/// Sagas per run of `SAGA_BENCH_ONCE` mode.
const RUNS: usize = 1_000;

/// When `SAGA_BENCH_ONCE` names a case, [`RUNS`] sagas of it run through this and
/// nothing else, for `valgrind --tool=callgrind --toggle-collect=saga::measured`:
/// instructions per step = the total / (10 × RUNS), repeatable under load.
#[inline(never)]
fn measured(routine: &mut dyn FnMut() -> usize) -> usize {
    routine()
}

criterion_group!(benches, bench);
criterion_main!(benches);
