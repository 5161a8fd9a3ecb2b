//! `rulesaga serve` through a real HTTP client against the real binary: decisions,
//! saga starts with idempotency and waits, events (SSE), operator actions, the list,
//! auth, limits and hostile requests, back-pressure, metrics, the OpenAPI document.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod support;

use serde_json::{Value as Json, json};
use support::server::{Server, answer, order, serve_examples, slow, world};

fn start(extra: &[&str]) -> Server {
    serve_examples(&world(), extra)
}

fn record(tier: &str, total: i64, days: i64) -> Json {
    json!({"name": "a", "tier": tier, "total": total, "days": days})
}

/// `discount` on one record.
async fn decide(s: &Server, record: Json) -> (u16, Json) {
    s.post("/v1/rules/discount:eval", json!({ "input": record }))
        .await
}

fn detail(body: &Json) -> &str {
    body["detail"].as_str().unwrap_or_default()
}

fn problem_type(body: &Json) -> &str {
    body["type"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn decisions_one_many_explained_and_records_that_do_not_fit() {
    let s = start(&[]);
    let (code, body) = decide(&s, record("premium", 5, 3)).await;
    assert_eq!((code, body), (200, json!({"result": true})));

    let (code, body) = s
        .post(
            "/v1/rules/discount:eval",
            json!({"inputs": [record("standard", 5, 3), record("standard", 150, 3), {"name": "b", "tier": "gold", "total": 1, "days": 1}]}),
        )
        .await;
    assert_eq!(code, 200);
    assert_eq!(body["results"], json!([false, true, null]));
    assert_eq!(
        body["errors"],
        json!([{"index": 2, "kind": "schema", "path": "tier",
                "message": "tier: `gold` is not one of standard | premium | vip"}])
    );

    let (code, body) = s
        .post(
            "/v1/rules/discount:eval?explain=true",
            json!({"input": record("standard", 30, 5)}),
        )
        .await;
    assert_eq!(code, 200);
    assert_eq!(body["result"], false);
    assert_eq!(body["explain"]["text"], "discount");
    assert_eq!(body["explain"]["matched"], false);
    let text = body["explain"].to_string();
    assert!(text.contains("needs total ≥ 100 (is 30)"), "{text}");

    // one record that does not fit: a problem naming the path, never a result
    let (code, body) = s
        .post(
            "/v1/rules/discount:eval",
            json!({"input": {"name": "a", "tier": "vip", "total": "lots", "days": 1}}),
        )
        .await;
    assert_eq!(code, 422);
    assert_eq!(problem_type(&body), "urn:rulesaga:problem:invalid-record");
    assert_eq!(body["path"], "total");
    assert_eq!(body["status"], 422);
    let (code, body) = s
        .post("/v1/rules/discount:eval", json!({"input": {"name": "a"}}))
        .await;
    assert_eq!(code, 422);
    assert_eq!(body["path"], "tier");
    // a record that is not an object is an error of its own; the others are evaluated
    let (code, body) = s
        .post(
            "/v1/rules/discount:eval",
            json!({"inputs": [5, record("vip", 1, 1)]}),
        )
        .await;
    assert_eq!(code, 200);
    assert_eq!(body["results"], json!([null, false]));
    assert_eq!(
        body["errors"][0]["message"],
        "a record must be a JSON object"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_eval_suffix_is_part_of_the_segment() {
    let s = start(&[]);
    let r = json!({"input": record("premium", 1, 1)});
    let (code, body) = s.post("/v1/rules/discont:eval", r.clone()).await;
    assert_eq!(code, 404);
    assert_eq!(problem_type(&body), "urn:rulesaga:problem:unknown-rule");
    assert_eq!(body["help"], "did you mean `discount`?");
    let (code, body) = s.post("/v1/rules/discount", r.clone()).await;
    assert_eq!(code, 404);
    assert_eq!(
        body["help"],
        "add the action to the segment: `discount:eval`"
    );
    let (code, body) = s.post("/v1/rules/discount:evaluate", r.clone()).await;
    assert_eq!(code, 404);
    assert!(detail(&body).contains(":evaluate"));
    // a rule named like the suffix still works: only the last `:` splits
    let (code, _) = s.post("/v1/rules/premium:eval", r).await;
    assert_eq!(code, 200);
    let (code, body) = s
        .post("/v1/rules/discount:eval", json!({"inputs": 5}))
        .await;
    assert_eq!(code, 400);
    assert!(
        detail(&body).starts_with("invalid body at line 1"),
        "{body}"
    );
    assert!(detail(&body).contains("expected a sequence"), "{body}");
    let (code, body) = s
        .post("/v1/rules/discount:eval", json!({"record": {}}))
        .await;
    assert_eq!(code, 400);
    assert!(detail(&body).contains("unknown field `record`, expected `input` or `inputs`"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_saga_started_twice_with_one_key_is_one_saga() {
    let s = start(&[]);
    let first = s
        .http
        .post(s.url("/v1/sagas/place_order?wait=20s"))
        .header("Idempotency-Key", "order-123")
        .json(&json!({"input": order()}))
        .send()
        .await
        .unwrap();
    let (code, first) = answer(first).await;
    assert_eq!(code, 200, "{first}");
    assert_eq!(first["status"], "completed");
    assert_eq!(first["existing"], false);
    assert_eq!(first["key"], "order-123");
    // the same key in the body: the same saga, nothing new ran
    let (code, again) = s
        .post(
            "/v1/sagas/place_order",
            json!({"input": order(), "key": "order-123"}),
        )
        .await;
    assert_eq!(code, 200);
    assert_eq!(again["saga_id"], first["saga_id"]);
    assert_eq!(again["existing"], true);
    let (_, list) = s.get("/v1/sagas?name=place_order").await;
    assert_eq!(list["sagas"].as_array().unwrap().len(), 1);

    // the status is the object of `saga status --output json`, by id or by key
    let id = first["saga_id"].as_str().unwrap();
    let (code, status) = s.get(&format!("/v1/sagas/{id}")).await;
    assert_eq!(code, 200);
    let (_, by_key) = s.get("/v1/sagas/order-123").await;
    assert_eq!(status, by_key);
    assert_eq!(status["status"], "completed");
    assert_eq!(status["steps"].as_array().unwrap().len(), 4);
    assert_eq!(status["lease"], Json::Null);
    let (code, events) = s.get(&format!("/v1/sagas/{id}/events")).await;
    assert_eq!(code, 200);
    let events = events["events"].as_array().unwrap();
    assert_eq!(events[0]["type"], "saga_started");
    assert_eq!(events.last().unwrap()["type"], "saga_completed");

    // a header and a body that disagree; an input that does not fit
    let r = s
        .http
        .post(s.url("/v1/sagas/place_order"))
        .header("Idempotency-Key", "a")
        .json(&json!({"input": order(), "key": "b"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let (code, body) = s
        .post("/v1/sagas/place_order", json!({"input": {"order_id": 5}}))
        .await;
    assert_eq!(code, 422);
    assert_eq!(problem_type(&body), "urn:rulesaga:problem:invalid-input");
    let paths: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert!(paths.contains(&"input.order_id"), "{paths:?}");
    assert!(paths.contains(&"input.sku"), "{paths:?}");
    let (code, body) = s.post("/v1/sagas/place_ordr", json!({})).await;
    assert_eq!(code, 404);
    assert_eq!(body["help"], "did you mean `place_order`?");
    let (code, _) = s.get("/v1/sagas/nothing-like-this").await;
    assert_eq!(code, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn starts_racing_with_one_key_are_one_saga() {
    let s = start(&[]);
    let mut body = slow(200);
    body["key"] = json!("race");
    let starts = (0..8).map(|_| s.post("/v1/sagas/slow?wait=20s", body.clone()));
    let answers = futures_util::future::join_all(starts).await;
    let ids: std::collections::BTreeSet<String> = answers
        .iter()
        .map(|(code, a)| {
            assert_eq!(*code, 200, "{a}");
            a["saga_id"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(ids.len(), 1, "{answers:?}");
    let fresh = answers
        .iter()
        .filter(|(_, a)| a["existing"] == false)
        .count();
    assert_eq!(fresh, 1, "{answers:?}");
    let (_, list) = s.get("/v1/sagas?name=slow").await;
    assert_eq!(list["sagas"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_start_answers_202_while_it_runs_and_its_events_stream_to_the_end() {
    let s = start(&[]);
    let (code, started) = s.post("/v1/sagas/slow", slow(3000)).await;
    assert_eq!(code, 202, "{started}");
    assert_eq!(started["status"], "running");
    let id = started["saga_id"].as_str().unwrap().to_string();
    let (_, status) = s.get(&format!("/v1/sagas/{id}")).await;
    assert_eq!(status["status"], "running");
    assert!(
        status["lease"]["owner"]
            .as_str()
            .unwrap()
            .starts_with("serve:")
    );
    let types = s.follow(&id, |_| false).await;
    assert_eq!(types.first().map(String::as_str), Some("saga_started"));
    assert_eq!(types.last().map(String::as_str), Some("saga_completed"));
    assert!(
        types.iter().filter(|t| *t == "step_succeeded").count() == 2,
        "{types:?}"
    );
    // following a finished saga replays its log and ends
    let again = s.follow(&id, |_| false).await;
    assert_eq!(again, types);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_server_answers_503_with_retry_after() {
    let s = start(&["--concurrency", "1"]);
    // a waited start answers once its slot is free: the next one finds it
    for _ in 0..20 {
        let (code, body) = s.post("/v1/sagas/slow?wait=20s", slow(0)).await;
        assert_eq!(code, 200, "{body}");
    }
    let (code, _) = s.post("/v1/sagas/slow", slow(60_000)).await;
    assert_eq!(code, 202);
    let r = s
        .http
        .post(s.url("/v1/sagas/slow"))
        .json(&slow(1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "1");
    let (_, body) = answer(r).await;
    assert_eq!(problem_type(&body), "urn:rulesaga:problem:busy");
    // decisions are not saga runs: they still answer
    let (code, _) = decide(&s, record("premium", 1, 1)).await;
    assert_eq!(code, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn operator_actions_follow_the_cli_rules() {
    let s = start(&[]);
    let (code, failed) = s
        .post("/v1/sagas/stuck?wait=20s", json!({"key": "s-1"}))
        .await;
    assert_eq!(code, 200, "{failed}");
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["failed_step"], "reserve");
    let (_, list) = s.get("/v1/sagas?status=failed&name=stuck").await;
    assert_eq!(list["sagas"][0]["key"], "s-1");
    // skip is for a failed forward step; this one failed compensating
    let (code, body) = s
        .post(
            "/v1/sagas/s-1:skip",
            json!({"step": "reserve", "reason": "x"}),
        )
        .await;
    assert_eq!(code, 409, "{body}");
    assert_eq!(problem_type(&body), "urn:rulesaga:problem:operator-refused");
    let (code, body) = s
        .post("/v1/sagas/s-1:mark-compensated", json!({"step": "reserve"}))
        .await;
    assert_eq!(code, 400);
    assert_eq!(
        body["detail"],
        "`:mark-compensated` needs `reason` in the body"
    );
    let (code, done) = s
        .post(
            "/v1/sagas/s-1:mark-compensated?wait=20s",
            json!({"step": "reserve", "reason": "refunded by hand"}),
        )
        .await;
    assert_eq!(code, 200, "{done}");
    assert_eq!(done["status"], "compensated");
    let (_, status) = s.get("/v1/sagas/s-1").await;
    let reserve = status["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|st| st["name"] == "reserve")
        .unwrap();
    assert_eq!(reserve["operator_reason"], "refunded by hand");
    // retry of a saga that is not failed
    let (code, _) = s.post("/v1/sagas/s-1:retry", json!({})).await;
    assert_eq!(code, 409);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_guards_every_route_but_health() {
    let dir = world();
    std::fs::write(dir.join("token"), "s3cret-token\n").unwrap();
    let s = serve_examples(&dir, &["--token-file", "token"]);
    assert_eq!(s.get("/healthz").await.0, 200);
    assert_eq!(s.get("/readyz").await.0, 200);
    for path in ["/v1/sagas", "/metrics", "/v1/openapi.json"] {
        for (token, expected) in [
            (None, 401),
            (Some("wrong"), 401),
            (Some("s3cret-token"), 200),
        ] {
            let mut req = s.http.get(s.url(path));
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), expected, "{path} with {token:?}");
            if expected == 401 {
                assert_eq!(r.headers()["www-authenticate"], "Bearer");
            }
        }
    }
    let r = s
        .http
        .post(s.url("/v1/rules/discount:eval"))
        .json(&json!({"input": record("premium", 1, 1)}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(!s.logs().contains("s3cret"), "the token is never logged");
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_requests_get_a_clean_4xx_and_the_server_keeps_serving() {
    let s = start(&["--body-limit", "4096", "--header-timeout", "300ms"]);
    // a connection per request: the header time also bounds how long the server
    // keeps an idle keep-alive connection, so a pooled one may be closing when a
    // loaded machine sends the next request late
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let send = |r: reqwest::RequestBuilder| async move { answer(r.send().await.unwrap()).await };
    let eval = s.url("/v1/rules/discount:eval");
    let huge = format!("{{\"input\": {{\"name\": \"{}\"}}}}", "x".repeat(10_000));
    let (code, body) = send(http.post(&eval).body(huge)).await;
    assert_eq!(code, 413);
    assert_eq!(problem_type(&body), "urn:rulesaga:problem:too-large");
    let deep = format!("{{\"input\": {}1{}}}", "[".repeat(100), "]".repeat(100));
    let (code, body) = send(http.post(&eval).body(deep)).await;
    assert_eq!(code, 400);
    assert!(detail(&body).contains("64 levels"));
    let (code, body) = send(
        s.http
            .post(&eval)
            .body(b"{\"input\": \"\xff\xfe\"}".to_vec()),
    )
    .await;
    assert_eq!(code, 400);
    assert!(detail(&body).starts_with("invalid JSON at line 1"));
    let (code, _) = send(http.post(&eval).body("{\"input\": ")).await;
    assert_eq!(code, 400);
    let (code, body) = send(http.get(s.url("/v2/nothing"))).await;
    assert_eq!(code, 404);
    assert_eq!(problem_type(&body), "urn:rulesaga:problem:not-found");
    let r = http.delete(s.url("/v1/sagas")).send().await.unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let (code, body) = send(http.get(s.url("/v1/sagas?limit=lots"))).await;
    assert_eq!(code, 400);
    assert!(detail(&body).starts_with("invalid query"));
    let (code, _) = send(http.get(s.url("/v1/sagas?status=gone"))).await;
    assert_eq!(code, 400);
    // slow headers: a connection that sends half a request and stops does not
    // hold the server up, and is closed once the header time is over
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = s.base.trim_start_matches("http://").to_string();
    let mut stalled = tokio::net::TcpStream::connect(addr).await.unwrap();
    stalled
        .write_all(b"POST /v1/rules/discount:eval HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let (code, body) = send(
        http.post(&eval)
            .json(&json!({"input": record("premium", 1, 1)})),
    )
    .await;
    assert_eq!((code, body), (200, json!({"result": true})));
    let mut rest = Vec::new();
    let _ = stalled.read_to_end(&mut rest).await;
    let rest = String::from_utf8_lossy(&rest);
    assert!(
        rest.is_empty() || rest.starts_with("HTTP/1.1 408"),
        "{rest}"
    );
    let r = http.get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_decisions_sagas_and_requests() {
    let s = start(&[]);
    for tier in ["premium", "premium", "standard"] {
        s.post(
            "/v1/rules/discount:eval",
            json!({"input": record(tier, 1, 1)}),
        )
        .await;
    }
    let (code, _) = s.post("/v1/sagas/slow?wait=20s", slow(1)).await;
    assert_eq!(code, 200);
    let r = s.http.get(s.url("/metrics")).send().await.unwrap();
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = r.text().await.unwrap();
    for line in [
        "rulesaga_decisions_total{rule=\"discount\",outcome=\"true\"} 2",
        "rulesaga_decisions_total{rule=\"discount\",outcome=\"false\"} 1",
        "rulesaga_decision_seconds_count{rule=\"discount\"} 3",
        "rulesaga_sagas_started_total{saga=\"slow\"} 1",
        "rulesaga_sagas_finished_total{saga=\"slow\",status=\"completed\"} 1",
        "rulesaga_events_total{type=\"step_succeeded\"} 2",
        "rulesaga_sagas_in_flight 0",
        "# TYPE rulesaga_decision_seconds histogram",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing `{line}` in\n{text}"
        );
    }
}

/// Every operation the OpenAPI document lists is served (none answers "no such
/// route" or "method not allowed"), and `readyz` names what was loaded.
#[tokio::test(flavor = "multi_thread")]
async fn the_openapi_document_matches_the_routes() {
    let s = start(&[]);
    let (code, doc) = s.get("/v1/openapi.json").await;
    assert_eq!(code, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    let (_, done) = s.post("/v1/sagas/slow?wait=20s", slow(1)).await;
    let id = done["saga_id"].as_str().unwrap();
    let mut n = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let concrete = path.replace("{rule}", "discount").replace(
                "{saga}",
                if method == "post" && !path.contains(':') {
                    "slow"
                } else {
                    id
                },
            );
            let req = match method.as_str() {
                "get" => s.http.get(s.url(&concrete)),
                "post" => s.http.post(s.url(&concrete)).json(&json!({})),
                m => panic!("method {m}"),
            };
            let (code, body) = answer(req.send().await.unwrap()).await;
            assert!(
                !matches!(
                    problem_type(&body),
                    "urn:rulesaga:problem:not-found" | "urn:rulesaga:problem:method-not-allowed"
                ),
                "{method} {concrete}: {code} {body}"
            );
            n += 1;
        }
    }
    assert_eq!(n, 12);
    let (code, ready) = s.get("/readyz").await;
    assert_eq!(code, 200);
    assert!(
        ready["sagas"]
            .as_array()
            .unwrap()
            .contains(&json!("place_order"))
    );
    assert!(
        ready["rules"]
            .as_array()
            .unwrap()
            .contains(&json!("discount"))
    );
}
