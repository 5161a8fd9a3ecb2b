//! HTTP actions against real servers on 127.0.0.1 (`support/services.rs`): the
//! request a step sends (idempotency key, headers from the environment, query, body),
//! the outcome classes, compensation over HTTP in reverse order, retries honouring
//! `Retry-After`, the circuit breaker and the bulkhead shared by every saga of a
//! service, redaction of secrets, and validation of services and `http:` actions.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "support/services.rs"]
mod services;

#[path = "../examples/shop_services/shop.rs"]
#[allow(dead_code)]
mod shop;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rulesaga::saga::decide::{Command, decide};
use rulesaga::saga::{
    BreakerState, Catalog, EventKind, HandlerRegistry, MemoryStore, SagaStatus, fold, validate,
};
use rulesaga::{SagaService, Source};
use serde_json::{Value as Json, json};
use services::{Reply, Server};

/// A service over a memory store that reads `vars` as its environment.
fn service(vars: &[(&str, String)]) -> SagaService {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    SagaService::new(
        Arc::new(MemoryStore::new()),
        HandlerRegistry::with_builtins(),
    )
    .with_vars(Arc::new(move |n: &str| vars.get(n).cloned()))
}

fn load(service: &SagaService, text: &str) -> rulesaga::Saga {
    service
        .load(Source::new("test.yaml", text), None)
        .unwrap_or_else(|d| panic!("{d}"))
}

async fn run(service: &SagaService, text: &str, input: Json) -> rulesaga::SagaState {
    let saga = load(service, text);
    service
        .start(&saga, rulesaga::saga::Start::new(input))
        .await
        .unwrap()
        .state
}

async fn log_text(service: &SagaService, state: &rulesaga::SagaState) -> String {
    let events = service.history(state.saga_id).await.unwrap();
    serde_json::to_string(&events).unwrap()
}

const SHOP: &str = r#"
saga: shop
input: {order_id: string, amount: int}
services:
  shop:
    base_url: env.SHOP_URL
    timeout: 2s
    headers: {authorization: '"Bearer " + env.SHOP_TOKEN'}
steps:
  - name: order
    action:
      http: {service: shop, method: POST, path: '"/orders"', body: {order: input.order_id}}
    outputs: {order_ref: result.body.id, status: result.status}
    compensate:
      http: {service: shop, method: DELETE, path: '"/orders/" + steps.order.order_ref'}
  - name: reserve
    action:
      http: {service: shop, method: PUT, path: '"/reservations/" + input.order_id', query: {qty: 2, tags: ['"a"', '"b"']}}
    compensate:
      http: {service: shop, method: DELETE, path: '"/reservations/" + input.order_id', success: [200, 404]}
  - name: charge
    action:
      http: {service: shop, method: POST, path: '"/charges"', body: {order: steps.order.order_ref, amount: input.amount}}
    outputs: {charge_id: result.body.id}
    compensate:
      http: {service: shop, method: POST, path: '"/charges/" + steps.charge.charge_id + "/refund"'}
"#;

const TOKEN: &str = "s3cr3t-token-value";

fn shop_vars(server: &Server) -> Vec<(&'static str, String)> {
    vec![
        ("SHOP_URL", server.url()),
        ("SHOP_TOKEN", TOKEN.to_string()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn happy_path_sends_keys_headers_query_and_body_and_reads_the_response() {
    let server = Server::start().await;
    let svc = service(&shop_vars(&server));
    let state = run(&svc, SHOP, json!({"order_id": "o-1", "amount": 30})).await;
    assert_eq!(state.status, SagaStatus::Completed, "{state:?}");
    assert_eq!(
        server.calls(),
        ["POST /orders", "PUT /reservations/o-1", "POST /charges"]
    );
    let reqs = server.requests();
    let id = state.saga_id;
    let keys: Vec<String> = reqs.iter().map(|r| r.key.clone().unwrap()).collect();
    assert_eq!(
        keys,
        [
            format!("{id}/order"),
            format!("{id}/reserve"),
            format!("{id}/charge")
        ]
    );
    for r in &reqs {
        assert_eq!(r.headers["authorization"], format!("Bearer {TOKEN}"));
    }
    assert_eq!(reqs[0].body, json!({"order": "o-1"}));
    assert_eq!(reqs[0].headers["content-type"], "application/json");
    assert_eq!(reqs[1].query.as_deref(), Some("qty=2&tags=a&tags=b"));
    // the order's id from its response body flows into the charge
    assert_eq!(reqs[2].body, json!({"order": "id-orders", "amount": 30}));
    let order = state.steps.iter().find(|s| s.name == "order").unwrap();
    assert_eq!(
        order.output,
        Some(json!({"order_ref": "id-orders", "status": 200}))
    );
    // nothing read from the environment reaches the log
    let log = log_text(&svc, &state).await;
    assert!(!log.contains(TOKEN), "{log}");
    assert!(!log.contains(&server.addr.to_string()), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_4xx_in_the_third_step_compensates_the_first_two_in_reverse_order() {
    let server = Server::start().await;
    server.script_path(
        "/charges",
        [Reply::Json(
            422,
            json!({"error": "card declined", "detail": "insufficient funds"}),
        )],
    );
    // the reservation is already gone: the compensation tolerates 404
    server.script_path(
        "/reservations/o-2",
        [Reply::Json(200, json!({})), Reply::Json(404, json!({}))],
    );
    let svc = service(&shop_vars(&server));
    let state = run(&svc, SHOP, json!({"order_id": "o-2", "amount": 30})).await;
    assert_eq!(state.status, SagaStatus::Compensated, "{state:?}");
    assert_eq!(
        server.calls(),
        [
            "POST /orders",
            "PUT /reservations/o-2",
            "POST /charges",
            "DELETE /reservations/o-2",
            "DELETE /orders/id-orders",
        ]
    );
    let id = state.saga_id;
    let keys: Vec<String> = server.requests()[3..]
        .iter()
        .map(|r| r.key.clone().unwrap())
        .collect();
    assert_eq!(
        keys,
        [
            format!("{id}/reserve/compensate"),
            format!("{id}/order/compensate")
        ]
    );
    let events = svc.history(id).await.unwrap();
    let error = events
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::StepFailed {
                error, will_retry, ..
            } => Some((error.clone(), *will_retry)),
            _ => None,
        })
        .unwrap();
    assert!(!error.1);
    assert!(
        error
            .0
            .starts_with("permanent: POST shop /charges answered 422"),
        "{}",
        error.0
    );
    assert!(error.0.contains("card declined"), "{}", error.0);
}

const FLAKY: &str = r#"
saga: flaky
services:
  api:
    base_url: env.API_URL
    timeout: 300ms
steps:
  - name: call
    retry: {max_attempts: 4, initial_backoff: 5ms, max_backoff: 20ms}
    action:
      http: {service: api, method: POST, path: '"/work"'}
    compensate:
      http: {service: api, method: POST, path: '"/work/undo"'}
"#;

fn errors(events: &[rulesaga::saga::Event]) -> Vec<(String, bool, bool, Option<u64>)> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::StepFailed {
                error,
                timed_out,
                will_retry,
                retry_after_ms,
                ..
            } => Some((error.clone(), *timed_out, *will_retry, *retry_after_ms)),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_statuses_are_retried_with_the_same_key_then_succeed() {
    let server = Server::start().await;
    server.script([
        Reply::Text(503, "try later".into()),
        Reply::RetryAfter(429, 1),
        Reply::Text(502, "bad gateway".into()),
    ]);
    let svc = service(&[("API_URL", server.url())]);
    let state = run(&svc, FLAKY, json!({})).await;
    assert_eq!(state.status, SagaStatus::Completed, "{state:?}");
    let keys: Vec<Option<String>> = server.requests().iter().map(|r| r.key.clone()).collect();
    assert_eq!(keys.len(), 4);
    assert!(
        keys.iter()
            .all(|k| *k == Some(format!("{}/call", state.saga_id)))
    );
    let events = svc.history(state.saga_id).await.unwrap();
    let errs = errors(&events);
    assert_eq!(errs.len(), 3);
    assert!(
        errs[0]
            .0
            .starts_with("transient: POST api /work answered 503 Service Unavailable: try later"),
        "{}",
        errs[0].0
    );
    assert!(errs[1].0.contains("429"));
    // the service's Retry-After is recorded...
    assert_eq!(errs[1].3, Some(1000));
    assert!(errs.iter().all(|e| e.2 && !e.1));
    // ...and honoured only up to the policy's longest wait (20ms): decide, given the
    // log up to that failure, schedules the next attempt 20ms after it, not 1s
    let saga = load(&svc, FLAKY);
    let upto = events
        .iter()
        .position(|e| {
            matches!(
                &e.kind,
                EventKind::StepFailed {
                    retry_after_ms: Some(_),
                    ..
                }
            )
        })
        .unwrap();
    let st = fold(&events[..=upto]).unwrap();
    let failed_at = events[upto].at;
    match decide(&st, &saga, failed_at) {
        Command::Attempt(a) => {
            assert_eq!(
                a.not_before,
                Some(failed_at + chrono::Duration::milliseconds(20))
            )
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_response_times_out_and_the_step_itself_is_compensated() {
    let server = Server::start().await;
    server.script_path("/work", [Reply::Hang]);
    let text = FLAKY.replace("max_attempts: 4", "max_attempts: 1");
    let svc = service(&[("API_URL", server.url())]);
    let state = run(&svc, &text, json!({})).await;
    server.release();
    assert_eq!(state.status, SagaStatus::Compensated, "{state:?}");
    assert_eq!(server.calls(), ["POST /work", "POST /work/undo"]);
    let errs = errors(&svc.history(state.saga_id).await.unwrap());
    assert!(errs[0].1, "timed out: {errs:?}");
    assert!(
        errs[0]
            .0
            .starts_with("timed out: POST api /work: no complete answer within 300ms"),
        "{errs:?}"
    );
}

/// The service's timeout covers the whole response, body included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_body_times_out_as_possibly_done() {
    let server = Server::start().await;
    server.script_path("/work", [Reply::SlowBody(100, Duration::from_millis(20))]);
    let text = FLAKY.replace("max_attempts: 4", "max_attempts: 1");
    let svc = service(&[("API_URL", server.url())]);
    let state = run(&svc, &text, json!({})).await;
    assert_eq!(state.status, SagaStatus::Compensated, "{state:?}");
    let errs = errors(&svc.history(state.saga_id).await.unwrap());
    assert!(errs[0].1, "{errs:?}");
    assert!(
        errs[0]
            .0
            .starts_with("timed out: POST api /work: no complete answer within 300ms"),
        "{errs:?}"
    );
    assert_eq!(server.calls(), ["POST /work", "POST /work/undo"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_response_is_possibly_done_and_a_refused_connection_is_transient() {
    let server = Server::start().await;
    server.script_path("/work", [Reply::Cut]);
    let text = FLAKY.replace("max_attempts: 4", "max_attempts: 1");
    let svc = service(&[("API_URL", server.url())]);
    let state = run(&svc, &text, json!({})).await;
    assert_eq!(state.status, SagaStatus::Compensated, "{state:?}");
    let errs = errors(&svc.history(state.saga_id).await.unwrap());
    assert!(errs[0].1, "{errs:?}");
    assert!(
        errs[0].0.starts_with("possibly done: POST api /work"),
        "{errs:?}"
    );
    // the request may have been done: it is compensated
    assert_eq!(server.calls(), ["POST /work", "POST /work/undo"]);

    // nothing listens on a port just freed
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let svc = service(&[("API_URL", format!("http://127.0.0.1:{port}"))]);
    let state = run(&svc, &text, json!({})).await;
    let log = log_text(&svc, &state).await;
    let errs = errors(&svc.history(state.saga_id).await.unwrap());
    assert!(!errs[0].1, "{errs:?}");
    assert!(
        errs[0]
            .0
            .starts_with("transient: POST api /work: cannot connect"),
        "{errs:?}"
    );
    assert!(
        !log.contains(&port.to_string()),
        "the base URL is not logged: {log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_fail_and_text_bodies_are_text() {
    let server = Server::start().await;
    server.script_path(
        "/big",
        [Reply::Big(rulesaga::saga::actions::MAX_BODY_BYTES + 1)],
    );
    server.script_path("/text", [Reply::Text(200, "plain words".into())]);
    let text = r#"
saga: bodies
services:
  api: {base_url: env.API_URL}
steps:
  - name: text
    action: {http: {service: api, method: GET, path: '"/text"'}}
    outputs: {said: result.body, status: result.status}
  - name: big
    action: {http: {service: api, method: GET, path: '"/big"'}}
"#;
    let svc = service(&[("API_URL", server.url())]);
    let state = run(&svc, text, json!({})).await;
    assert_eq!(state.status, SagaStatus::Compensated);
    let t = state.steps.iter().find(|s| s.name == "text").unwrap();
    assert_eq!(
        t.output,
        Some(json!({"said": "plain words", "status": 200}))
    );
    let errs = errors(&svc.history(state.saga_id).await.unwrap());
    assert!(errs[0].0.contains("larger than 1048576 bytes"), "{errs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_the_log_even_when_a_service_echoes_them() {
    let server = Server::start().await;
    server.script_path("/orders", [Reply::EchoHeaders(200)]);
    server.script_path("/reservations/o-3", [Reply::EchoHeaders(400)]);
    let svc = service(&shop_vars(&server));
    let state = run(&svc, SHOP, json!({"order_id": "o-3", "amount": 1})).await;
    assert_eq!(state.status, SagaStatus::Compensated);
    // the server did get the token
    assert!(server.requests()[0].headers["authorization"].contains(TOKEN));
    let log = log_text(&svc, &state).await;
    assert!(!log.contains(TOKEN), "{log}");
    assert!(log.contains(r#"\"authorization\":\"***\""#), "{log}");
    assert!(!log.contains(&server.addr.to_string()), "{log}");
    let summary = svc.list(&Default::default()).await.unwrap();
    let read_model = format!("{summary:?}");
    assert!(!read_model.contains(TOKEN), "{read_model}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_variable_refuses_the_run_before_its_first_event() {
    let svc = service(&[("SHOP_URL", "http://127.0.0.1:9".into())]);
    let saga = load(&svc, SHOP);
    let err = svc
        .start(
            &saga,
            rulesaga::saga::Start::new(json!({"order_id": "o", "amount": 1})),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the saga's services cannot be resolved: environment variable not set: `SHOP_TOKEN` \
         (read by service `shop`); set it before the run"
    );
    assert!(svc.list(&Default::default()).await.unwrap().is_empty());
    // a value that is not a URL is refused without being said
    let svc = service(&[("SHOP_URL", "not a url".into()), ("SHOP_TOKEN", "t".into())]);
    let err = svc
        .start(
            &saga,
            rulesaga::saga::Start::new(json!({"order_id": "o", "amount": 1})),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("`base_url` is not an absolute URL"), "{err}");
    assert!(!err.contains("not a url"), "{err}");
}

const BREAKER: &str = r#"
saga: breaker
services:
  api:
    base_url: env.API_URL
    circuit_breaker: {window: 4, min_calls: 4, failure_rate: 0.5, open_for: 1s, half_open_calls: 1}
steps:
  - name: call
    retry: {max_attempts: 100, initial_backoff: 20ms, max_backoff: 100ms}
    action:
      http: {service: api, method: POST, path: '"/work"'}
    compensation: none
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_breaker_opens_after_the_window_fills_then_half_opens_and_closes() {
    let server = Server::start().await;
    server.script((0..4).map(|_| Reply::Text(500, "down".into())));
    let svc = service(&[("API_URL", server.url())]);
    let state = run(&svc, BREAKER, json!({})).await;
    assert_eq!(state.status, SagaStatus::Completed, "{state:?}");
    // four failures filled the window and opened the breaker; while open, attempts
    // failed without reaching the service; one trial call closed it
    assert_eq!(server.requests().len(), 5);
    let errs = errors(&svc.history(state.saga_id).await.unwrap());
    let open: Vec<_> = errs
        .iter()
        .filter(|e| e.0.contains("circuit open"))
        .collect();
    assert!(!open.is_empty(), "{errs:?}");
    assert_eq!(errs.len(), 4 + open.len());
    assert!(
        open.iter().all(|e| e.0 == "transient: POST api /work: circuit open (the service failed too often), not called"),
        "{open:?}"
    );
    let status = svc.service_status();
    assert_eq!(status.len(), 1);
    assert_eq!(status[0].breaker, Some(BreakerState::Closed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_breaker_is_shared_by_every_saga_of_the_service() {
    let server = Server::start().await;
    server.default_reply(Reply::Text(503, "down".into()));
    let text = BREAKER
        .replace("max_attempts: 100", "max_attempts: 1")
        .replace("open_for: 1s", "open_for: 1h");
    let svc = service(&[("API_URL", server.url())]);
    for _ in 0..6 {
        let state = run(&svc, &text, json!({})).await;
        assert_eq!(state.status, SagaStatus::Compensated);
    }
    // four sagas filled the window; the two after them never reached the service
    assert_eq!(server.requests().len(), 4);
    assert_eq!(svc.service_status()[0].breaker, Some(BreakerState::Open));
}

const BULKHEAD: &str = r#"
saga: bulk
services:
  slow:
    base_url: env.SLOW_URL
    bulkhead: {max_concurrent: 2, max_wait: 10s}
  fast:
    base_url: env.FAST_URL
steps:
  - name: call
    when: input.slow
    action: {http: {service: slow, method: POST, path: '"/work"'}}
    compensation: none
  - name: other
    when: not input.slow
    action: {http: {service: fast, method: POST, path: '"/work"'}}
    compensation: none
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bulkhead_bounds_calls_in_flight_across_sagas() {
    let slow = Server::start().await;
    // each request waits until two are in flight (a second at most): the bound is met
    slow.default_reply(Reply::Gather(2));
    let svc = service(&[("SLOW_URL", slow.url()), ("FAST_URL", slow.url())]);
    let saga = Arc::new(load(&svc, BULKHEAD));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (svc, saga) = (svc.clone(), saga.clone());
        tasks.push(tokio::spawn(async move {
            svc.start(&saga, rulesaga::saga::Start::new(json!({"slow": true})))
                .await
                .unwrap()
                .state
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().status, SagaStatus::Completed);
    }
    assert_eq!(slow.requests().len(), 8);
    assert_eq!(slow.max_in_flight(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_bulkhead_fails_fast_and_a_slow_service_does_not_starve_the_others() {
    let slow = Server::start().await;
    let fast = Server::start().await;
    slow.default_reply(Reply::Hang);
    let text = BULKHEAD.replace("max_wait: 10s", "max_wait: 0ms");
    let svc = service(&[("SLOW_URL", slow.url()), ("FAST_URL", fast.url())]);
    let saga = Arc::new(load(&svc, &text));
    // two sagas hold the slow service's two slots
    let mut held = Vec::new();
    for _ in 0..2 {
        let (svc, saga) = (svc.clone(), saga.clone());
        held.push(tokio::spawn(async move {
            svc.start(&saga, rulesaga::saga::Start::new(json!({"slow": true})))
                .await
                .unwrap()
                .state
        }));
    }
    while slow.requests().len() < 2 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // a third is refused at once, without reaching the service
    let refused = run(&svc, &text, json!({"slow": true})).await;
    // (a first step that fails has nothing to undo)
    assert_eq!(refused.status, SagaStatus::Compensated);
    let errs = errors(&svc.history(refused.saga_id).await.unwrap());
    assert_eq!(
        errs[0].0,
        "transient: POST slow /work: bulkhead full (2 calls in flight, waited 0ms), not called"
    );
    // while the slow service holds its calls, sagas of the fast one all complete
    for _ in 0..20 {
        let s = run(&svc, &text, json!({"slow": false})).await;
        assert_eq!(s.status, SagaStatus::Completed);
    }
    assert_eq!(fast.requests().len(), 20);
    assert_eq!(slow.requests().len(), 2);
    let status = svc.service_status();
    let slow_status = status.iter().find(|s| s.name == "slow").unwrap();
    assert_eq!(slow_status.in_flight, Some(2));
    slow.release();
    for h in held {
        assert_eq!(h.await.unwrap().status, SagaStatus::Completed);
    }
}

fn diagnostics(text: &str) -> Vec<(String, String, String, Option<String>)> {
    let catalog = Catalog::new(&HandlerRegistry::with_builtins());
    match validate::load(Source::new("bad.yaml", text), &catalog) {
        Ok(_) => panic!("expected errors"),
        Err(d) => d
            .items
            .iter()
            .map(|d| {
                (
                    d.code.to_string(),
                    d.label.clone().unwrap_or_default(),
                    d.message.clone(),
                    d.help.clone(),
                )
            })
            .collect(),
    }
}

#[test]
fn services_and_requests_are_validated() {
    let text = r#"
saga: bad
services:
  payments:
    base_url: env.PAY_URL
    timeout: soon
    headers: {Idempotency-Key: '"x"', "bad header": '"y"', auth: input.token}
    circuit_breaker: {window: 5, min_calls: 10, failure_rate: 2}
    bulkhead: {max_concurrent: 0}
steps:
  - name: charge
    action:
      http: {service: paymnts, method: post, path: '"/charges"', body: {token: env.PAY_TOKEN}}
    compensate:
      http: {service: payments, method: FETCH, path: '"charges"', success: [700]}
"#;
    let got = diagnostics(text);
    let find = |label: &str| {
        got.iter()
            .find(|d| d.1 == label)
            .unwrap_or_else(|| panic!("no diagnostic at {label}: {got:#?}"))
            .clone()
    };
    assert_eq!(find("services.payments.timeout").0, "S015");
    let h = find("services.payments.headers.Idempotency-Key");
    assert_eq!(
        (h.0.as_str(), h.2.as_str()),
        (
            "S024",
            "`Idempotency-Key` is set by rulesaga on every request"
        )
    );
    assert_eq!(
        find("services.payments.headers.bad header").2,
        "`bad header` is not a header name"
    );
    let auth = find("services.payments.headers.auth");
    assert_eq!(auth.0, "S013");
    assert_eq!(auth.2, "unknown name `input`");
    assert_eq!(auth.3.as_deref(), Some("expressions here read `env`"));
    assert_eq!(
        find("services.payments.circuit_breaker.min_calls").2,
        "`min_calls` (10) is larger than the window (5)"
    );
    assert_eq!(
        find("services.payments.circuit_breaker.failure_rate").0,
        "S024"
    );
    assert_eq!(find("services.payments.bulkhead.max_concurrent").0, "S024");
    let svc = find("steps[0].action.http.service");
    assert_eq!(
        (svc.0.as_str(), svc.2.as_str()),
        ("S023", "unknown service `paymnts`")
    );
    assert_eq!(svc.3.as_deref(), Some("did you mean `payments`?"));
    let m = find("steps[0].action.http.method");
    assert_eq!(
        (m.2.as_str(), m.3.as_deref()),
        ("unknown method `post`", Some("write `POST`"))
    );
    let env = find("steps[0].action.http.body.token");
    assert_eq!(
        (env.0.as_str(), env.2.as_str()),
        ("S013", "`env` is not available here")
    );
    assert!(
        env.3
            .unwrap()
            .starts_with("only the `services:` section reads `env`")
    );
    assert_eq!(
        find("steps[0].compensate.http.method").2,
        "unknown method `FETCH`"
    );
    assert_eq!(
        find("steps[0].compensate.http.path").2,
        "the path must be a string starting with `/`"
    );
    assert_eq!(
        find("steps[0].compensate.http.success[0]").2,
        "`700` is not an HTTP status (100 to 599)"
    );
}

#[test]
fn a_get_needs_no_compensation_and_other_methods_do() {
    let text = r#"
saga: reads
services:
  api: {base_url: env.API_URL}
steps:
  - name: look
    action: {http: {service: api, method: GET, path: '"/x"'}}
  - name: change
    action: {http: {service: api, method: POST, path: '"/x"'}}
"#;
    let got = diagnostics(text);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0, "S018");
    assert_eq!(
        got[0].2,
        "step `change` (http POST api) does not say how it is undone"
    );
}

/// The shipped saga against the example services: an order that completes, one whose
/// card is declined (compensated over HTTP), and the services' state after both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_http_saga_places_and_compensates_orders_against_the_example_services() {
    let shop = Arc::new(shop::Shop {
        default_stock: 10,
        card_limit: 1000,
        payments_token: Some("t0ken".into()),
        ..shop::Shop::default()
    });
    let mut vars = shop::serve_all(&shop, 0).await.unwrap();
    vars.push(("PAYMENTS_TOKEN", "t0ken".into()));
    let svc = service(&vars);
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/sagas/place_order_http.yaml"
    ))
    .unwrap();
    let input = |name: &str| -> Json {
        let path = format!("{}/sagas/inputs/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    };
    let ok = run(&svc, &text, input("order_http_ok.json")).await;
    assert_eq!(ok.status, SagaStatus::Completed, "{ok:?}");
    let declined = run(&svc, &text, input("order_http_declined.json")).await;
    assert_eq!(declined.status, SagaStatus::Compensated, "{declined:?}");
    let state = shop.state();
    assert_eq!(state["orders"]["h-1"]["status"], "confirmed");
    assert_eq!(state["orders"]["h-2"]["status"], "cancelled");
    assert_eq!(state["reservations"]["h-2"]["status"], "released");
    assert_eq!(state["charges"]["h-1"]["status"], "captured");
    // 2 units for h-1; h-2's unit came back
    assert_eq!(state["stock"]["item1"], 8);
}

/// A call abandoned (by its step's timeout) while it waits for a bulkhead slot never
/// reached the service: the breaker counts it as nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_abandoned_waiting_for_a_slot_does_not_count_for_the_breaker() {
    let server = Server::start().await;
    server.default_reply(Reply::Hang);
    let text = r#"
saga: wait
services:
  api:
    base_url: env.API_URL
    bulkhead: {max_concurrent: 1, max_wait: 1h}
    circuit_breaker: {window: 1, failure_rate: 1, open_for: 1h}
steps:
  - name: call
    timeout: 50ms
    when: not input.hold
    action: {http: {service: api, method: POST, path: '"/work"'}}
    compensation: none
  - name: hold
    when: input.hold
    action: {http: {service: api, method: POST, path: '"/hold"'}}
    compensation: none
"#;
    let svc = service(&[("API_URL", server.url())]);
    let saga = Arc::new(load(&svc, text));
    let holder = {
        let (svc, saga) = (svc.clone(), saga.clone());
        tokio::spawn(async move {
            svc.start(&saga, rulesaga::saga::Start::new(json!({"hold": true})))
                .await
                .unwrap()
                .state
        })
    };
    while server.requests().is_empty() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let waited = run(&svc, text, json!({"hold": false})).await;
    let errs = errors(&svc.history(waited.saga_id).await.unwrap());
    assert_eq!(errs[0].0, "timed out after 50ms");
    assert_eq!(server.calls(), ["POST /hold"]);
    server.release();
    assert_eq!(holder.await.unwrap().status, SagaStatus::Completed);
    // one success in a window of one: closed (the abandoned wait recorded nothing)
    assert_eq!(svc.service_status()[0].breaker, Some(BreakerState::Closed));
}
