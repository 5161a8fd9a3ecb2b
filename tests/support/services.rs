//! Scripted HTTP services on 127.0.0.1 for the saga tests: every request is recorded
//! (method, path, query, idempotency key, headers, body); replies come from a script
//! (one per request, then a default), with latency, 5xx bursts, 429 with `Retry-After`,
//! a hung response (until released), a cut body; the server tracks its maximum
//! concurrency and applies each idempotency key's effect once.
#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use serde_json::{Value as Json, json};

/// One reply of the script.
#[derive(Clone, Debug)]
pub enum Reply {
    /// A JSON body with this status (`{"id": ..., "path": ...}` added when it is an object).
    Json(u16, Json),
    /// A text body.
    Text(u16, String),
    /// A status with `Retry-After: secs`.
    RetryAfter(u16, u64),
    /// Wait, then reply.
    Delay(Duration, Box<Reply>),
    /// Never answer until [`Server::release`] (then 200).
    Hang,
    /// Send the headers and part of a body, then cut the connection.
    Cut,
    /// A 200 with a body of this many bytes.
    Big(usize),
    /// Echo the request's headers as the body (to check what a service can leak).
    EchoHeaders(u16),
    /// Wait until this many requests are in flight (or a second passed), then 200.
    Gather(usize),
    /// A 200 whose body comes in `chunks` pieces, each after `every`.
    SlowBody(usize, Duration),
}

/// One recorded request.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub key: Option<String>,
    pub headers: HashMap<String, String>,
    pub body: Json,
}

#[derive(Default)]
pub struct Shared {
    pub requests: Mutex<Vec<Request>>,
    script: Mutex<VecDeque<Reply>>,
    by_path: Mutex<HashMap<String, VecDeque<Reply>>>,
    default: Mutex<Option<Reply>>,
    in_flight: AtomicUsize,
    pub max_in_flight: AtomicUsize,
    /// Idempotency key → times its effect was applied: the server deduplicates by key,
    /// so at most once however often the key is sent.
    pub effects: Mutex<HashMap<String, usize>>,
    released: tokio::sync::Notify,
    released_flag: std::sync::atomic::AtomicBool,
    gathered: tokio::sync::Notify,
}

pub struct Server {
    pub addr: SocketAddr,
    pub shared: Arc<Shared>,
}

impl Server {
    /// A server whose replies are 200 with a JSON echo unless scripted.
    pub async fn start() -> Server {
        let shared = Arc::new(Shared::default());
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Server { addr, shared }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Replies for the next requests, in order (whatever their path).
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.shared.script.lock().unwrap().extend(replies);
    }

    /// Replies for the next requests to `path`, before the general script.
    pub fn script_path(&self, path: &str, replies: impl IntoIterator<Item = Reply>) {
        self.shared
            .by_path
            .lock()
            .unwrap()
            .entry(path.to_string())
            .or_default()
            .extend(replies);
    }

    /// The reply once the script is spent.
    pub fn default_reply(&self, r: Reply) {
        *self.shared.default.lock().unwrap() = Some(r);
    }

    /// Answer every hung request (and every later one at once).
    pub fn release(&self) {
        self.shared
            .released_flag
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.shared.released.notify_waiters();
    }

    pub fn requests(&self) -> Vec<Request> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// `METHOD path` of every request, in order.
    pub fn calls(&self) -> Vec<String> {
        self.requests()
            .iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect()
    }

    /// How many effects the key's requests applied (0 or 1: deduplicated).
    pub fn effects(&self, key: &str) -> usize {
        self.shared
            .effects
            .lock()
            .unwrap()
            .get(key)
            .copied()
            .unwrap_or(0)
    }

    pub fn max_in_flight(&self) -> usize {
        self.shared.max_in_flight.load(Ordering::SeqCst)
    }
}

struct InFlight<'a>(&'a Shared);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    shared.max_in_flight.fetch_max(now, Ordering::SeqCst);
    shared.gathered.notify_waiters();
    let _guard = InFlight(&shared);
    let header_map: HashMap<String, String> = headers
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let key = header_map.get("idempotency-key").cloned();
    let request = Request {
        method: method.to_string(),
        path: uri.path().to_string(),
        query: uri.query().map(str::to_string),
        key: key.clone(),
        headers: header_map.clone(),
        body: serde_json::from_slice(&body).unwrap_or(Json::Null),
    };
    shared.requests.lock().unwrap().push(request);
    let reply = {
        let by_path = shared
            .by_path
            .lock()
            .unwrap()
            .get_mut(uri.path())
            .and_then(VecDeque::pop_front);
        by_path
            .or_else(|| shared.script.lock().unwrap().pop_front())
            .or_else(|| shared.default.lock().unwrap().clone())
    };
    let reply = reply.unwrap_or_else(|| Reply::Json(200, json!({})));
    let response = respond(&shared, reply, uri.path(), &header_map).await;
    if response.status().is_success()
        && let Some(k) = key
    {
        shared.effects.lock().unwrap().entry(k).or_insert(1);
    }
    response
}

async fn respond(
    shared: &Shared,
    mut reply: Reply,
    path: &str,
    headers: &HashMap<String, String>,
) -> Response {
    loop {
        match reply {
            Reply::Delay(d, next) => {
                tokio::time::sleep(d).await;
                reply = *next;
            }
            Reply::Hang => {
                let wait = shared.released.notified();
                if !shared.released_flag.load(Ordering::SeqCst) {
                    wait.await;
                }
                reply = Reply::Json(200, json!({}));
            }
            Reply::Gather(n) => {
                let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
                while shared.in_flight.load(Ordering::SeqCst) < n {
                    let wait = shared.gathered.notified();
                    if tokio::time::timeout_at(deadline, wait).await.is_err() {
                        break;
                    }
                }
                shared.gathered.notify_waiters();
                reply = Reply::Json(200, json!({}));
            }
            Reply::Json(status, mut body) => {
                if let Json::Object(m) = &mut body {
                    m.entry("id").or_insert(json!(format!(
                        "id-{}",
                        path.trim_matches('/').replace('/', "-")
                    )));
                    m.entry("path").or_insert(json!(path));
                }
                return Response::builder()
                    .status(StatusCode::from_u16(status).unwrap())
                    .header("content-type", "application/json")
                    .body(Body::from(body.to_string()))
                    .unwrap();
            }
            Reply::Text(status, text) => {
                return Response::builder()
                    .status(StatusCode::from_u16(status).unwrap())
                    .header("content-type", "text/plain")
                    .body(Body::from(text))
                    .unwrap();
            }
            Reply::RetryAfter(status, secs) => {
                return Response::builder()
                    .status(StatusCode::from_u16(status).unwrap())
                    .header("retry-after", secs.to_string())
                    .body(Body::from("slow down"))
                    .unwrap();
            }
            Reply::Big(n) => {
                return Response::builder()
                    .status(200)
                    .header("content-type", "text/plain")
                    .body(Body::from("x".repeat(n)))
                    .unwrap();
            }
            Reply::EchoHeaders(status) => {
                let body = json!({"id": "echo", "headers": headers}).to_string();
                return Response::builder()
                    .status(StatusCode::from_u16(status).unwrap())
                    .header("content-type", "application/json")
                    .body(Body::from(body))
                    .unwrap();
            }
            Reply::SlowBody(chunks, every) => {
                let pieces = futures_util::stream::unfold(0, move |i| async move {
                    if i == chunks {
                        return None;
                    }
                    tokio::time::sleep(every).await;
                    Some((Ok::<_, std::io::Error>(Bytes::from_static(b"x")), i + 1))
                });
                return Response::builder()
                    .status(200)
                    .header("content-type", "text/plain")
                    .body(Body::from_stream(pieces))
                    .unwrap();
            }
            Reply::Cut => {
                // promise 100 bytes, send 5, then fail the body: hyper cuts the
                // connection before the body ends (a body of a known, shorter length
                // would trip hyper's own length check in the server task instead)
                let chunks: [Result<Bytes, std::io::Error>; 2] = [
                    Ok(Bytes::from_static(b"short")),
                    Err(std::io::Error::other("cut")),
                ];
                return Response::builder()
                    .status(200)
                    .header("content-length", "100")
                    .body(Body::from_stream(futures_util::stream::iter(chunks)))
                    .unwrap();
            }
        }
    }
}
