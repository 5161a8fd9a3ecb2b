//! The shop's order, inventory and payment services on loopback, for
//! `sagas/place_order_http.yaml`:
//!
//! ```sh
//! cargo run --example shop_services -- --failure-rate 0.2 --latency 5
//! # in another shell, with the variables it prints:
//! rulesaga saga run sagas/place_order_http.yaml --input @sagas/inputs/order_http_ok.json --db /tmp/http.db
//! curl -s http://127.0.0.1:7301/state
//! ```
//!
//! Each service deduplicates by `Idempotency-Key` (a repeated key gets its first answer
//! again; its effect is applied once). `--failure-rate` answers that share of requests
//! to the `--faulty` services (default: all three) with 503 before anything is applied;
//! `--latency` delays every request. Charges above `--card-limit` are declined (402), a
//! reservation beyond the stock is refused (409): both are permanent, so the saga
//! compensates.

#![allow(missing_docs)]

mod shop;

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Parser;

#[derive(Parser)]
#[command(about = "order, inventory and payment services on 127.0.0.1")]
struct Args {
    /// Orders listen on this port, inventory on the next, payments on the one after (0: any free ports).
    #[arg(long, default_value_t = 7301)]
    port: u16,
    /// Share of requests answered 503 (0 to 1).
    #[arg(long, default_value_t = 0.0)]
    failure_rate: f64,
    /// The services that inject failures: orders, inventory, payments (default: all).
    #[arg(long)]
    faulty: Vec<String>,
    /// Milliseconds added to every request.
    #[arg(long, default_value_t = 0)]
    latency: u64,
    /// Units in stock of every sku.
    #[arg(long, default_value_t = 100)]
    stock: i64,
    /// Charges above this amount are declined.
    #[arg(long, default_value_t = 1000)]
    card_limit: i64,
    /// The bearer token the payment service wants.
    #[arg(long, default_value = "demo-token")]
    token: String,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if !(0.0..=1.0).contains(&args.failure_rate) {
        eprintln!("error: --failure-rate must be between 0 and 1");
        return ExitCode::from(2);
    }
    for f in &args.faulty {
        if !["orders", "inventory", "payments"].contains(&f.as_str()) {
            eprintln!("error: unknown service `{f}` (orders, inventory, payments)");
            return ExitCode::from(2);
        }
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let shop = Arc::new(shop::Shop {
        stock: Mutex::new(HashMap::new()),
        default_stock: args.stock,
        card_limit: args.card_limit,
        payments_token: Some(args.token.clone()),
        ..shop::Shop::default()
    });
    let faults = shop::Faults {
        failure_rate: args.failure_rate,
        latency: Duration::from_millis(args.latency),
    };
    for (name, s) in [
        ("orders", &shop.orders),
        ("inventory", &shop.inventory),
        ("payments", &shop.payments),
    ] {
        let faulty = args.faulty.is_empty() || args.faulty.iter().any(|f| f == name);
        *s.faults.lock().unwrap_or_else(|e| e.into_inner()) = shop::Faults {
            failure_rate: if faulty { faults.failure_rate } else { 0.0 },
            ..faults
        };
    }
    rt.block_on(async {
        let vars = match shop::serve_all(&shop, args.port).await {
            Ok(vars) => vars,
            Err(e) => {
                eprintln!(
                    "error: cannot listen on 127.0.0.1 from port {}: {e}",
                    args.port
                );
                return ExitCode::from(1);
            }
        };
        let mut exports: Vec<String> = vars.iter().map(|(k, v)| format!("{k}={v}")).collect();
        exports.push(format!("PAYMENTS_TOKEN={}", args.token));
        println!("export {}", exports.join(" "));
        println!(
            "# state: GET {}/state; stop with Ctrl-C",
            exports[0].trim_start_matches("ORDERS_URL=")
        );
        std::future::pending::<ExitCode>().await
    })
}
