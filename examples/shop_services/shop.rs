//! The order, inventory and payment services of the shop, as axum routers over shared
//! state: each deduplicates by `Idempotency-Key` (a repeated key gets the first answer
//! again, and its effect is applied once), and may inject latency and transient
//! failures (503 before anything is applied). Used by `examples/shop_services` and by
//! `benches/saga_http.rs`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};
use serde_json::{Value as Json, json};

/// How a service misbehaves.
#[derive(Clone, Copy, Debug, Default)]
pub struct Faults {
    /// Share of requests answered 503 before anything is applied (0..=1).
    pub failure_rate: f64,
    /// Added to every request.
    pub latency: Duration,
}

/// One service's state: its records, and the answers it gave per idempotency key.
#[derive(Default)]
pub struct Service {
    pub faults: Mutex<Faults>,
    answers: Mutex<HashMap<String, (u16, Json)>>,
    pub records: Mutex<HashMap<String, Json>>,
    pub requests: AtomicU64,
    pub applied: AtomicU64,
    pub injected: AtomicU64,
}

/// The three services.
#[derive(Default)]
pub struct Shop {
    pub orders: Arc<Service>,
    pub inventory: Arc<Service>,
    pub payments: Arc<Service>,
    /// Units in stock per sku (a sku not listed has `default_stock`).
    pub stock: Mutex<HashMap<String, i64>>,
    pub default_stock: i64,
    /// Charges above this amount are declined (402, permanent).
    pub card_limit: i64,
    /// The payment service wants `Authorization: Bearer TOKEN` (401 otherwise).
    pub payments_token: Option<String>,
}

impl Shop {
    /// Everything the services hold, and how many requests each got, applied, failed.
    pub fn state(&self) -> Json {
        let counts = |s: &Service| {
            json!({
                "requests": s.requests.load(Ordering::Relaxed),
                "applied": s.applied.load(Ordering::Relaxed),
                "injected_failures": s.injected.load(Ordering::Relaxed),
            })
        };
        let stock = self.stock.lock().unwrap_or_else(|e| e.into_inner()).clone();
        json!({
            "orders": self.orders.snapshot(),
            "reservations": self.inventory.snapshot(),
            "charges": self.payments.snapshot(),
            "stock": stock,
            "counts": {
                "orders": counts(&self.orders),
                "inventory": counts(&self.inventory),
                "payments": counts(&self.payments),
            },
        })
    }

    fn authorized(&self, h: &HeaderMap) -> bool {
        self.payments_token.as_ref().is_none_or(|t| {
            h.get("authorization")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v == format!("Bearer {t}"))
        })
    }
}

type Answer = (u16, Json);

impl Service {
    /// Latency, an injected failure, then the answer to `key` (computed once by `apply`).
    async fn handle(&self, headers: &HeaderMap, apply: impl FnOnce() -> Answer) -> Response {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let faults = *self.faults.lock().unwrap_or_else(|e| e.into_inner());
        if !faults.latency.is_zero() {
            tokio::time::sleep(faults.latency).await;
        }
        if faults.failure_rate > 0.0 && chance() < faults.failure_rate {
            self.injected.fetch_add(1, Ordering::Relaxed);
            return reply((503, json!({"error": "injected failure"})));
        }
        let key = headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let Some(key) = key else {
            return reply((
                400,
                json!({"error": "an Idempotency-Key header is required"}),
            ));
        };
        let mut answers = self.answers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(a) = answers.get(&key) {
            return reply(a.clone());
        }
        let a = apply();
        if a.0 < 300 {
            self.applied.fetch_add(1, Ordering::Relaxed);
        }
        answers.insert(key, a.clone());
        reply(a)
    }

    fn record(&self, id: &str) -> Option<Json> {
        self.records
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    fn put(&self, id: &str, v: Json) {
        self.records
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.to_string(), v);
    }

    /// Every record, sorted by id.
    pub fn snapshot(&self) -> Json {
        let records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        let mut ids: Vec<&String> = records.keys().collect();
        ids.sort();
        Json::Object(
            ids.into_iter()
                .map(|id| (id.clone(), records[id].clone()))
                .collect(),
        )
    }
}

/// A random number in 0..1.
fn chance() -> f64 {
    (uuid::Uuid::new_v4().as_u128() % 1_000_000) as f64 / 1_000_000.0
}

fn reply((status, body): Answer) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(body)).into_response()
}

fn body(bytes: &Bytes) -> Json {
    serde_json::from_slice(bytes).unwrap_or(Json::Null)
}

fn text(v: &Json, key: &str) -> String {
    match &v[key] {
        Json::String(s) => s.clone(),
        Json::Null => String::new(),
        other => other.to_string(),
    }
}

/// `POST /orders {order_id, customer, amount}`, `DELETE /orders/{id}` (cancel),
/// `POST /orders/{id}/confirm`.
pub fn orders(shop: Arc<Shop>) -> Router {
    Router::new()
        .route("/orders", post(create_order))
        .route("/orders/{id}", delete(cancel_order))
        .route("/orders/{id}/confirm", post(confirm_order))
        .route("/state", axum::routing::get(state))
        .with_state(shop)
}

async fn state(State(shop): State<Arc<Shop>>) -> Response {
    axum::Json(shop.state()).into_response()
}

async fn create_order(State(shop): State<Arc<Shop>>, h: HeaderMap, b: Bytes) -> Response {
    let s = &shop.orders;
    let req = body(&b);
    s.handle(&h, || {
        let id = text(&req, "order_id");
        if id.is_empty() {
            return (422, json!({"error": "order_id is required"}));
        }
        if s.record(&id).is_some() {
            return (409, json!({"error": format!("order {id} exists")}));
        }
        let order = json!({"id": id, "customer": req["customer"], "amount": req["amount"], "status": "pending"});
        s.put(&id, order.clone());
        (201, order)
    })
    .await
}

async fn cancel_order(
    State(shop): State<Arc<Shop>>,
    Path(id): Path<String>,
    h: HeaderMap,
) -> Response {
    set_order_status(&shop, &id, &h, "cancelled").await
}

async fn confirm_order(
    State(shop): State<Arc<Shop>>,
    Path(id): Path<String>,
    h: HeaderMap,
) -> Response {
    set_order_status(&shop, &id, &h, "confirmed").await
}

async fn set_order_status(shop: &Shop, id: &str, h: &HeaderMap, status: &str) -> Response {
    let s = &shop.orders;
    s.handle(h, || match s.record(id) {
        None => (404, json!({"error": format!("no order {id}")})),
        Some(mut o) => {
            o["status"] = json!(status);
            s.put(id, o.clone());
            (200, o)
        }
    })
    .await
}

/// `POST /reservations {order_id, sku, qty}` (409 when out of stock),
/// `DELETE /reservations/{order_id}` (release).
pub fn inventory(shop: Arc<Shop>) -> Router {
    Router::new()
        .route("/reservations", post(reserve))
        .route("/reservations/{order}", delete(release))
        .with_state(shop)
}

async fn reserve(State(shop): State<Arc<Shop>>, h: HeaderMap, b: Bytes) -> Response {
    let s = &shop.inventory;
    let req = body(&b);
    s.handle(&h, || {
        let (order, sku) = (text(&req, "order_id"), text(&req, "sku"));
        let qty = req["qty"].as_i64().unwrap_or(0);
        if qty <= 0 {
            return (422, json!({"error": "qty must be positive"}));
        }
        let mut stock = shop.stock.lock().unwrap_or_else(|e| e.into_inner());
        let left = stock.entry(sku.clone()).or_insert(shop.default_stock);
        if *left < qty {
            return (
                409,
                json!({"error": format!("out of stock: {sku} has {left}, {qty} wanted")}),
            );
        }
        *left -= qty;
        let r = json!({"id": order, "sku": sku, "qty": qty, "status": "held"});
        s.put(&order, r.clone());
        (201, r)
    })
    .await
}

async fn release(
    State(shop): State<Arc<Shop>>,
    Path(order): Path<String>,
    h: HeaderMap,
) -> Response {
    let s = &shop.inventory;
    s.handle(&h, || match s.record(&order) {
        Some(mut r) if r["status"] == "held" => {
            let (sku, qty) = (text(&r, "sku"), r["qty"].as_i64().unwrap_or(0));
            let mut stock = shop.stock.lock().unwrap_or_else(|e| e.into_inner());
            *stock.entry(sku).or_insert(shop.default_stock) += qty;
            r["status"] = json!("released");
            s.put(&order, r.clone());
            (200, r)
        }
        Some(r) => (200, r),
        None => (404, json!({"error": format!("no reservation for {order}")})),
    })
    .await
}

/// `POST /charges {order_id, amount}` (402 above the card limit),
/// `POST /refunds {order_id}` (refunds the order's charge; 200 when there is none).
pub fn payments(shop: Arc<Shop>) -> Router {
    Router::new()
        .route("/charges", post(charge))
        .route("/refunds", post(refund))
        .with_state(shop)
}

fn unauthorized() -> Response {
    reply((
        401,
        json!({"error": "a valid Authorization header is required"}),
    ))
}

async fn charge(State(shop): State<Arc<Shop>>, h: HeaderMap, b: Bytes) -> Response {
    if !shop.authorized(&h) {
        return unauthorized();
    }
    let s = &shop.payments;
    let req = body(&b);
    s.handle(&h, || {
        let order = text(&req, "order_id");
        let amount = req["amount"].as_i64().unwrap_or(0);
        if amount > shop.card_limit {
            return (402, json!({"error": format!("card declined: {amount} is over the limit")}));
        }
        let c = json!({"id": format!("ch-{order}"), "order_id": order, "amount": amount, "status": "captured"});
        s.put(&order, c.clone());
        (201, c)
    })
    .await
}

async fn refund(State(shop): State<Arc<Shop>>, h: HeaderMap, b: Bytes) -> Response {
    if !shop.authorized(&h) {
        return unauthorized();
    }
    let s = &shop.payments;
    let req = body(&b);
    s.handle(&h, || {
        let order = text(&req, "order_id");
        match s.record(&order) {
            Some(mut c) => {
                c["status"] = json!("refunded");
                s.put(&order, c.clone());
                (200, c)
            }
            None => (
                200,
                json!({"order_id": order, "status": "nothing to refund"}),
            ),
        }
    })
    .await
}

/// Serve `router` on `127.0.0.1:port` (0: any free port); the address it got.
pub async fn serve(router: Router, port: u16) -> std::io::Result<std::net::SocketAddr> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok(addr)
}

/// Serve the three services of `shop` on `port`, `port + 1` and `port + 2` (0: any
/// free ports): the environment variables the shipped saga reads, with their values
/// (`ORDERS_URL`, `INVENTORY_URL`, `PAYMENTS_URL`).
pub async fn serve_all(
    shop: &Arc<Shop>,
    port: u16,
) -> std::io::Result<Vec<(&'static str, String)>> {
    let routers = [
        ("ORDERS_URL", orders(shop.clone())),
        ("INVENTORY_URL", inventory(shop.clone())),
        ("PAYMENTS_URL", payments(shop.clone())),
    ];
    let mut vars = Vec::new();
    for (i, (var, router)) in (0u16..).zip(routers) {
        let p = if port == 0 { 0 } else { port + i };
        let addr = serve(router, p).await?;
        vars.push((var, format!("http://{addr}")));
    }
    Ok(vars)
}
