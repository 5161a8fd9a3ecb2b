//! HTTP steps against the example services (`examples/shop_services/shop.rs`) on
//! 127.0.0.1, in the same process and runtime:
//!
//! - `http_step_overhead`: a saga of three HTTP steps (create order, reserve, charge:
//!   breakers and bulkheads on) on the memory store, beside the same three requests made
//!   with a bare reqwest client (same headers, bodies and idempotency keys). The engine's
//!   overhead per step is (saga − bare) / 3 at the median.
//! - `http_sagas_sqlite`: 64 of those sagas at once on the SQLite store (throughput in
//!   sagas; steps are three times that), and the same with the inventory service
//!   answering 20% of its requests with 503 (retried by the steps' policy).

#![allow(clippy::expect_used, clippy::unwrap_used, missing_docs)]

#[path = "../examples/shop_services/shop.rs"]
#[allow(dead_code)]
mod shop;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rulesaga::Source;
use rulesaga::adapters::SqliteStore;
use rulesaga::saga::{
    Catalog, HandlerRegistry, MemoryStore, Runner, SagaStatus, SagaStore, validate,
};
use serde_json::json;

const SAGA: &str = r#"
saga: bench_http
input: {order_id: string, amount: int}
services:
  orders: {base_url: env.ORDERS_URL, timeout: 2s}
  inventory:
    base_url: env.INVENTORY_URL
    timeout: 2s
    circuit_breaker: {window: 100, min_calls: 50, failure_rate: 0.9, open_for: 1s, half_open_calls: 5}
    bulkhead: {max_concurrent: 64, max_wait: 1s}
  payments:
    base_url: env.PAYMENTS_URL
    timeout: 2s
    headers: {authorization: '"Bearer " + env.PAYMENTS_TOKEN'}
    circuit_breaker: {window: 100, min_calls: 50, failure_rate: 0.9, open_for: 1s, half_open_calls: 5}
    bulkhead: {max_concurrent: 64, max_wait: 1s}
steps:
  - name: create_order
    retry: {max_attempts: 20, initial_backoff: 2ms, max_backoff: 20ms}
    action: {http: {service: orders, method: POST, path: '"/orders"', body: {order_id: input.order_id, amount: input.amount}}}
    outputs: {id: result.body.id}
    compensate: {http: {service: orders, method: DELETE, path: '"/orders/" + input.order_id', success: [200, 404]}}
  - name: reserve
    retry: {max_attempts: 20, initial_backoff: 2ms, max_backoff: 20ms}
    action: {http: {service: inventory, method: POST, path: '"/reservations"', body: {order_id: input.order_id, sku: '"item1"', qty: 1}}}
    compensate: {http: {service: inventory, method: DELETE, path: '"/reservations/" + input.order_id', success: [200, 404]}}
  - name: charge
    retry: {max_attempts: 20, initial_backoff: 2ms, max_backoff: 20ms}
    action: {http: {service: payments, method: POST, path: '"/charges"', body: {order_id: input.order_id, amount: input.amount}}}
    outputs: {charge_id: result.body.id}
    pivot: true
"#;

struct Setup {
    shop: Arc<shop::Shop>,
    vars: HashMap<String, String>,
}

async fn services() -> Setup {
    let shop = Arc::new(shop::Shop {
        default_stock: i64::MAX / 2,
        card_limit: i64::MAX,
        payments_token: Some("bench-token".into()),
        ..shop::Shop::default()
    });
    let mut vars: HashMap<String, String> = shop::serve_all(&shop, 0)
        .await
        .unwrap()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    vars.insert("PAYMENTS_TOKEN".into(), "bench-token".into());
    Setup { shop, vars }
}

fn runner(store: Arc<dyn SagaStore>, vars: &HashMap<String, String>) -> Runner {
    let vars = vars.clone();
    Runner::with_handlers(store, Arc::new(HandlerRegistry::new()), &[])
        .with_vars(Arc::new(move |n: &str| vars.get(n).cloned()))
}

fn saga() -> Arc<rulesaga::Saga> {
    let handlers = HandlerRegistry::new();
    Arc::new(validate::load(Source::new("bench.yaml", SAGA), &Catalog::new(&handlers)).unwrap())
}

fn input() -> serde_json::Value {
    json!({"order_id": uuid::Uuid::new_v4().to_string(), "amount": 10})
}

/// The three requests of the saga, with a bare client.
async fn bare(client: &reqwest::Client, vars: &HashMap<String, String>) {
    let id = uuid::Uuid::new_v4().to_string();
    let calls = [
        (
            "ORDERS_URL",
            "/orders",
            json!({"order_id": id, "amount": 10}),
            "create_order",
        ),
        (
            "INVENTORY_URL",
            "/reservations",
            json!({"order_id": id, "sku": "item1", "qty": 1}),
            "reserve",
        ),
        (
            "PAYMENTS_URL",
            "/charges",
            json!({"order_id": id, "amount": 10}),
            "charge",
        ),
    ];
    for (var, path, body, step) in calls {
        let resp = client
            .post(format!("{}{path}", vars[var]))
            .header("authorization", "Bearer bench-token")
            .header("idempotency-key", format!("{id}/{step}"))
            .json(&body)
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success());
        let body: serde_json::Value = resp.json().await.unwrap();
        assert!(body["id"].is_string());
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let setup = rt.block_on(services());
    let saga = saga();

    let mut group = c.benchmark_group("http_step_overhead");
    group.throughput(Throughput::Elements(3));
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    group.bench_function("bare_reqwest_3_requests", |b| {
        b.iter(|| rt.block_on(bare(&client, &setup.vars)));
    });
    let memory = runner(Arc::new(MemoryStore::new()), &setup.vars);
    group.bench_function("saga_3_http_steps_memory", |b| {
        b.iter(|| {
            let state = rt.block_on(memory.run(&saga, input())).unwrap();
            assert_eq!(state.status, SagaStatus::Completed);
        });
    });
    group.finish();

    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("bench-saga-http-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let store = Arc::new(SqliteStore::open(&dir.join("bench.db")).unwrap());
    let sqlite = runner(store.clone(), &setup.vars);
    let mut group = c.benchmark_group("http_sagas_sqlite");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(64));
    for failure_rate in [0.0, 0.2] {
        *setup.shop.inventory.faults.lock().unwrap() = shop::Faults {
            failure_rate,
            latency: Duration::ZERO,
        };
        let name = format!(
            "64_concurrent_inventory_failing_{}pct",
            (failure_rate * 100.0) as u32
        );
        group.bench_function(name, |b| {
            b.iter(|| {
                rt.block_on(async {
                    let mut tasks = Vec::with_capacity(64);
                    for _ in 0..64 {
                        let (runner, saga) = (sqlite.clone(), saga.clone());
                        tasks.push(tokio::spawn(async move {
                            runner.run(&saga, input()).await.unwrap()
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
    let counts = setup.shop.state()["counts"].clone();
    eprintln!("requests per service over the whole run: {counts}");
    drop(sqlite);
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);
