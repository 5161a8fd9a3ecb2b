//! Conflicts are not failures: 2,000 orders of the shipped `place_order` saga on 3
//! SKUs, 64 at a time, through the binary. Every reservation, charge and compensation
//! fights over a handful of rows; optimistic-concurrency conflicts are retried with
//! fresh reads without spending the steps' retry budgets, so no saga ends `failed`,
//! and stock and money are conserved.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::HashMap;
use std::fmt::Write as _;
use std::process::Command;

use serde_json::{Value as Json, json};

const BIN: &str = env!("CARGO_BIN_EXE_rulesaga");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

const ORDERS: usize = 2000;
const STOCK: i64 = 1_000_000;

#[test]
fn two_thousand_orders_on_three_skus_at_64_leave_no_saga_failed() {
    let dir = std::env::temp_dir().join(format!("rulesaga-contention-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    // alice can pay for every order; bob for none, so half the sagas compensate
    // (their compensations fight over the same three inventory rows)
    let store = json!({
        "accounts": {"alice": {"balance": 1_000_000}, "bob": {"balance": 0}},
        "inventory": {
            "item1": {"qty": STOCK}, "item2": {"qty": STOCK}, "item3": {"qty": STOCK}
        },
        "orders": {}
    });
    std::fs::write(dir.join("store.json"), store.to_string()).unwrap();
    let mut lines = String::new();
    for i in 0..ORDERS {
        let customer = if i % 2 == 0 { "alice" } else { "bob" };
        let line = json!({
            "order_id": format!("o-{i}"),
            "customer": customer,
            "sku": format!("item{}", i % 3 + 1),
            "quantity": 1 + i % 2,
            "amount": 1,
        });
        writeln!(lines, "{line}").unwrap();
    }
    std::fs::write(dir.join("orders.jsonl"), lines).unwrap();
    let out = Command::new(BIN)
        .current_dir(&dir)
        .args([
            "saga",
            "run",
            &format!("{ROOT}/sagas/place_order.yaml"),
            "--inputs",
            "orders.jsonl",
            "--concurrency",
            "64",
            "--db",
            "test.db",
            "--seed",
            "store.json",
            "--output",
            "jsonl",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut by_status: HashMap<String, usize> = HashMap::new();
    let mut completed_per_sku: HashMap<String, i64> = HashMap::new();
    let mut completed_alice = 0i64;
    for line in stdout.lines() {
        let j: Json = serde_json::from_str(line).unwrap();
        let status = j["status"].as_str().unwrap().to_string();
        let n = j["line"].as_u64().unwrap() as usize - 1;
        if status == "completed" {
            assert_eq!(n % 2, 0, "bob cannot pay: {line}");
            *completed_per_sku
                .entry(format!("item{}", n % 3 + 1))
                .or_default() += 1;
            completed_alice += 1;
        }
        *by_status.entry(status).or_default() += 1;
    }
    assert_eq!(
        by_status.values().sum::<usize>(),
        ORDERS,
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(by_status.get("failed"), None, "{by_status:?}");
    assert_eq!(
        by_status.get("completed"),
        Some(&(ORDERS / 2)),
        "{by_status:?}"
    );
    assert_eq!(
        by_status.get("compensated"),
        Some(&(ORDERS / 2)),
        "{by_status:?}"
    );
    // stock and money: only completed orders (quantity 1, alice's) took anything
    let export = Command::new(BIN)
        .current_dir(&dir)
        .args(["saga", "export", "--db", "test.db"])
        .output()
        .unwrap();
    let repos: Json = serde_json::from_slice(&export.stdout).unwrap();
    for sku in ["item1", "item2", "item3"] {
        let taken = completed_per_sku.get(sku).copied().unwrap_or(0);
        assert_eq!(
            repos["inventory"][sku]["qty"],
            json!(STOCK - taken),
            "{sku}"
        );
    }
    assert_eq!(
        repos["accounts"]["alice"]["balance"],
        json!(1_000_000 - completed_alice)
    );
    assert_eq!(repos["accounts"]["bob"]["balance"], json!(0));
    let cancelled = repos["orders"]
        .as_object()
        .unwrap()
        .values()
        .filter(|o| o["status"] == "cancelled")
        .count();
    assert_eq!(cancelled, ORDERS / 2);
    // the conflicts were real, and are in the log
    let list = Command::new(BIN)
        .current_dir(&dir)
        .args([
            "saga", "list", "--db", "test.db", "--limit", "5000", "--output", "json",
        ])
        .output()
        .unwrap();
    let sagas: Json = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(sagas.as_array().unwrap().len(), ORDERS);
    let _ = std::fs::remove_dir_all(&dir);
}
