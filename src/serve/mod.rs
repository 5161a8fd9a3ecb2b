//! `rulesaga serve`: rules decisions and sagas over HTTP, from one process.
//!
//! The pipeline of a request: bound listener → tower layers (request id, trace span,
//! bearer token, request timeout, body limit, every error made a problem document)
//! → a route (`rules`: decisions; `sagas`: the [`SagaService`]) → JSON. The
//! definitions (rule files and saga files) are loaded once into [`Definitions`] and
//! swapped whole on reload, so a request sees one set from start to end; sagas keep
//! their pinned definitions whatever is reloaded. Sagas started over HTTP run in
//! this process, at most `concurrency` at once (`App::slots`); a full server
//! answers 503 with `Retry-After`. On start, and every lease time after, sagas
//! whose lease expired are recovered. SIGTERM or SIGINT: stop accepting, let runs
//! finish the step in flight within the grace period and park (their lease
//! released), abort the rest and release their leases, return. SIGHUP: reload.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tokio::sync::{Semaphore, broadcast, watch};
use tokio::task::JoinSet;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::diag::{Diagnostics, Source};
use crate::rules::{Env, RuleErrors, RuleSet};
use crate::saga::read_model::SagaFilter;
use crate::saga::{Event, HandlerRegistry, Saga, SagaService, SagaStatus, validate};

mod body;
mod metrics;
mod openapi;
mod problem;
mod rules;
mod sagas;

pub use problem::Problem;

use metrics::{Gauge, Metrics};

/// The header of request ids (set when the client sends none, echoed back).
const REQUEST_ID: &str = "x-request-id";

/// Where the server finds its rule and saga files, asked again at every reload (a
/// folder may hold new files by then).
pub type Discover = Arc<dyn Fn() -> Result<Files, String> + Send + Sync>;

/// The files to load.
#[derive(Clone, Debug, Default)]
pub struct Files {
    /// Rule files, compiled together.
    pub rules: Vec<PathBuf>,
    /// Saga files, each validated with the rules.
    pub sagas: Vec<PathBuf>,
}

/// How to serve.
#[derive(Clone)]
pub struct Config {
    /// The saga store URL (`sqlite:PATH`, a path, `memory:`).
    pub db: String,
    /// Where to listen.
    pub listen: SocketAddr,
    /// Sagas run at once.
    pub concurrency: usize,
    /// How long runs may take to reach a step boundary at shutdown.
    pub grace: Duration,
    /// Lease time to live of the sagas this server runs (also how often it looks for
    /// sagas to recover).
    pub lease_ttl: Duration,
    /// The bearer token every route but `/healthz` and `/readyz` requires.
    pub token: Option<String>,
    /// Largest request body, in bytes.
    pub body_limit: usize,
    /// Longest time a request may take (streams excepted, once they started).
    pub request_timeout: Duration,
    /// Longest time a client may take to send a request's headers.
    pub header_timeout: Duration,
    /// Also reload when a file changes (looked at once a second).
    pub watch: bool,
    /// The rule and saga files.
    pub discover: Discover,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The store could not be opened.
    #[error("cannot open the store `{url}`: {message}")]
    Store {
        /// Its URL.
        url: String,
        /// Why.
        message: String,
    },
    /// The definitions did not load.
    #[error("{0}")]
    Load(LoadError),
    /// The address could not be bound, or serving failed.
    #[error("{0}")]
    Io(String),
}

/// Why the rule and saga files did not load.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Finding or reading a file failed.
    #[error("{0}")]
    Io(String),
    /// The rule files do not compile.
    #[error("{0}")]
    Rules(RuleErrors),
    /// Saga files do not validate (every file's diagnostics).
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Sagas(Vec<Diagnostics>),
    /// Two saga files have the same saga name.
    #[error("saga `{name}` is defined by both `{first}` and `{second}`")]
    Duplicate {
        /// The saga.
        name: String,
        /// One file.
        first: String,
        /// The other.
        second: String,
    },
}

/// What the server serves: compiled rules and validated sagas, by name.
pub struct Definitions {
    /// The rule files, compiled together (none given: `None`).
    pub rules: Option<RuleSet>,
    /// The sagas, by name.
    pub sagas: BTreeMap<String, Saga>,
}

impl Definitions {
    /// Load every file: all of it or nothing.
    pub fn load(files: &Files, service: &SagaService) -> Result<Definitions, LoadError> {
        let rules = if files.rules.is_empty() {
            None
        } else {
            Some(RuleSet::load(&files.rules, &Env::default()).map_err(LoadError::Rules)?)
        };
        let mut sagas: BTreeMap<String, Saga> = BTreeMap::new();
        let mut failed = Vec::new();
        for file in &files.sagas {
            let bytes = crate::diag::read_bytes(file, validate::MAX_FILE_BYTES as u64)
                .map_err(|e| LoadError::Io(format!("`{}`: {e}", file.display())))?;
            let text = String::from_utf8(bytes)
                .map_err(|e| LoadError::Io(format!("`{}`: {e}", file.display())))?;
            let source = Source::new(file.display().to_string(), text);
            match service.load(source, rules.clone()) {
                Ok(saga) => {
                    if let Some(first) = sagas.get(saga.name()) {
                        return Err(LoadError::Duplicate {
                            name: saga.name().to_string(),
                            first: first.source().name.clone(),
                            second: file.display().to_string(),
                        });
                    }
                    sagas.insert(saga.name().to_string(), saga);
                }
                Err(d) => failed.push(d),
            }
        }
        if !failed.is_empty() {
            return Err(LoadError::Sagas(failed));
        }
        Ok(Definitions { rules, sagas })
    }
}

/// What every request shares.
pub(crate) struct App {
    service: SagaService,
    defs: RwLock<Arc<Definitions>>,
    /// Every event this server's runs append, for waiting and following.
    events: broadcast::Sender<Arc<Event>>,
    /// One permit per saga run in flight.
    slots: Arc<Semaphore>,
    concurrency: usize,
    tasks: Mutex<JoinSet<()>>,
    /// Set at shutdown: runs park at their next step boundary.
    stop: Arc<AtomicBool>,
    /// True once shutting down: waits and streams end.
    closing: watch::Sender<bool>,
    metrics: Arc<Metrics>,
    discover: Discover,
    token: Option<String>,
    request_timeout: Duration,
    owner: String,
}

impl App {
    /// The definitions now.
    fn defs(&self) -> Arc<Definitions> {
        self.defs.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Run `job` in the background, tracked for shutdown.
    fn spawn(&self, job: impl Future<Output = ()> + Send + 'static) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        while tasks.try_join_next().is_some() {}
        tasks.spawn(job);
    }

    /// Load the files again; keep the previous set when they do not load.
    fn reload(&self) -> Result<(), LoadError> {
        let loaded = (self.discover)()
            .map_err(LoadError::Io)
            .and_then(|files| Definitions::load(&files, &self.service));
        match loaded {
            Ok(defs) => {
                tracing::info!(
                    sagas = defs.sagas.len(),
                    rules = defs.rules.as_ref().map_or(0, |r| r.names().len()),
                    "reloaded"
                );
                *self.defs.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(defs);
                self.metrics
                    .inc("rulesaga_reloads_total", &[("outcome", "ok")]);
                Ok(())
            }
            Err(e) => {
                tracing::error!(error = %e, "reload failed: the previous rules and sagas stay");
                self.metrics
                    .inc("rulesaga_reloads_total", &[("outcome", "error")]);
                Err(e)
            }
        }
    }

    /// Continue every saga whose lease expired (those this server runs hold theirs).
    async fn recover(&self) {
        match self.service.recover(self.concurrency).await {
            Ok(done) => {
                for r in done {
                    match r.outcome {
                        Ok(state) => {
                            tracing::info!(saga_id = %r.saga_id, status = state.status.name(), "recovered");
                            self.metrics.inc(
                                "rulesaga_sagas_finished_total",
                                &[
                                    ("saga", &state.saga),
                                    ("status", finish_label(&state.status, &self.stop)),
                                ],
                            );
                        }
                        Err(crate::saga::ServiceError::Held(_)) => {}
                        Err(e) => tracing::warn!(saga_id = %r.saga_id, error = %e, "not recovered"),
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "recovery failed"),
        }
    }
}

/// What the files are now: each file's path, length and modification time (a
/// changed list or any changed file changes it).
fn fingerprint(discover: &Discover) -> Option<Vec<(PathBuf, u64, Option<std::time::SystemTime>)>> {
    let files = discover().ok()?;
    Some(
        files
            .rules
            .iter()
            .chain(&files.sagas)
            .map(|p| {
                let meta = std::fs::metadata(p).ok();
                (
                    p.clone(),
                    meta.as_ref().map_or(0, std::fs::Metadata::len),
                    meta.and_then(|m| m.modified().ok()),
                )
            })
            .collect(),
    )
}

impl App {
    /// `--watch`: reload when the files change, until shutdown.
    async fn watch(&self) {
        let mut seen = fingerprint(&self.discover);
        let mut closing = self.closing.subscribe();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = closing.wait_for(|c| *c) => return,
            }
            let now = fingerprint(&self.discover);
            if now != seen {
                seen = now;
                let _ = self.reload();
            }
        }
    }
}

/// The label of a run that ended: its status, or `parked` when shutdown stopped it.
fn finish_label(status: &SagaStatus, stop: &AtomicBool) -> &'static str {
    if !status.is_final() && stop.load(Ordering::Relaxed) {
        "parked"
    } else {
        status.name()
    }
}

/// The signals a server answers: SIGTERM and SIGINT stop it, SIGHUP reloads.
pub struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

/// A bound server, not serving yet.
pub struct Server {
    listener: tokio::net::TcpListener,
    app: Arc<App>,
    grace: Duration,
    lease_ttl: Duration,
    body_limit: usize,
    header_timeout: Duration,
    watch: bool,
}

impl Server {
    /// Open the store, load the files, bind the address.
    pub async fn bind(config: Config, handlers: HandlerRegistry) -> Result<Server, ServeError> {
        let store = crate::adapters::open(&config.db).map_err(|e| ServeError::Store {
            url: config.db.clone(),
            message: e.to_string(),
        })?;
        let (events, _) = broadcast::channel::<Arc<Event>>(4096);
        let metrics = Arc::new(Metrics::default());
        let stop = Arc::new(AtomicBool::new(false));
        let owner = format!("serve:{}", crate::saga::store::lease::process_owner());
        let sender = events.clone();
        let counted = metrics.clone();
        let service = SagaService::new(store, handlers)
            .with_owner(&owner)
            .with_lease_ttl(config.lease_ttl)
            .with_stop(stop.clone())
            .subscribe(Arc::new(move |e: &Event| {
                counted.inc("rulesaga_events_total", &[("type", e.kind.type_name())]);
                let _ = sender.send(Arc::new(e.clone()));
            }));
        let files = (config.discover)().map_err(|e| ServeError::Load(LoadError::Io(e)))?;
        let defs = Definitions::load(&files, &service).map_err(ServeError::Load)?;
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|e| ServeError::Io(format!("cannot listen on {}: {e}", config.listen)))?;
        let app = Arc::new(App {
            service,
            defs: RwLock::new(Arc::new(defs)),
            events,
            slots: Arc::new(Semaphore::new(config.concurrency.max(1))),
            concurrency: config.concurrency.max(1),
            tasks: Mutex::new(JoinSet::new()),
            stop,
            closing: watch::channel(false).0,
            metrics,
            discover: config.discover,
            token: config.token,
            request_timeout: config.request_timeout,
            owner,
        });
        Ok(Server {
            listener,
            app,
            grace: config.grace,
            lease_ttl: config.lease_ttl,
            body_limit: config.body_limit,
            header_timeout: config.header_timeout,
            watch: config.watch,
        })
    }

    /// The address it listens on (the port chosen when port 0 was asked for).
    pub fn local_addr(&self) -> Result<SocketAddr, ServeError> {
        self.listener
            .local_addr()
            .map_err(|e| ServeError::Io(e.to_string()))
    }

    /// The signals [`Server::run`] answers, caught from now on: take them before
    /// saying the server listens, so a signal sent right after is not missed.
    pub fn signals(&self) -> Result<Signals, ServeError> {
        use tokio::signal::unix::{SignalKind, signal};
        let io = |e: std::io::Error| ServeError::Io(format!("cannot handle signals: {e}"));
        Ok(Signals {
            term: signal(SignalKind::terminate()).map_err(io)?,
            int: signal(SignalKind::interrupt()).map_err(io)?,
            hup: signal(SignalKind::hangup()).map_err(io)?,
        })
    }

    /// Serve until SIGTERM or SIGINT of `signals` (SIGHUP reloads), then shut down
    /// gracefully.
    pub async fn run(self, signals: Signals) -> Result<(), ServeError> {
        let Signals {
            mut term,
            mut int,
            mut hup,
        } = signals;
        let app = self.app.clone();
        let reloads = tokio::spawn(async move {
            while hup.recv().await.is_some() {
                let _ = app.reload();
            }
        });
        let shutdown = async move {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
                _ = int.recv() => tracing::info!("SIGINT: shutting down"),
            }
        };
        let result = self.serve_until(shutdown).await;
        reloads.abort();
        result
    }

    /// Serve until `shutdown` completes, then shut down gracefully.
    pub async fn serve_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let app = self.app.clone();
        let every = self.lease_ttl;
        let sweeper = app.clone();
        app.spawn(async move {
            loop {
                if sweeper.stop.load(Ordering::Relaxed) {
                    break;
                }
                sweeper.recover().await;
                let mut closing = sweeper.closing.subscribe();
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = closing.wait_for(|c| *c) => break,
                }
            }
        });
        if self.watch {
            let watcher = app.clone();
            app.spawn(async move { watcher.watch().await });
        }
        let router = router(app.clone(), self.body_limit);
        let closing = app.clone();
        let signal = async move {
            shutdown.await;
            closing.stop.store(true, Ordering::Relaxed);
            closing.closing.send_replace(true);
        };
        accept(self.listener, router, self.header_timeout, signal).await;
        self.app.finish(self.grace).await;
        Ok(())
    }
}

/// Serve connections (HTTP/1.1, with a time limit on reading headers, so a client
/// that sends half a request loses its connection) until `signal`; then stop
/// accepting and let the open connections finish their requests.
async fn accept(
    listener: tokio::net::TcpListener,
    router: Router,
    header_timeout: Duration,
    signal: impl Future<Output = ()> + Send + 'static,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    let mut signal = std::pin::pin!(signal);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let service = hyper_util::service::TowerToHyperService::new(router.clone());
                    let conn = http.serve_connection(TokioIo::new(stream), service);
                    let conn = graceful.watch(conn);
                    tokio::spawn(async move {
                        if let Err(e) = conn.await {
                            tracing::debug!(error = %e, "connection closed");
                        }
                    });
                }
                // out of file descriptors, a reset before accept: wait a little
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            () = &mut signal => break,
        }
    }
    drop(listener);
    graceful.shutdown().await;
}

impl App {
    /// After the listener closed: wait up to `grace` for runs to park or end, abort
    /// the rest and release the leases this server still holds.
    async fn finish(&self, grace: Duration) {
        self.stop.store(true, Ordering::Relaxed);
        let mut tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        let drained =
            tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            tracing::warn!(
                runs = tasks.len(),
                "grace period over: stopping the runs still in a step"
            );
            tasks.shutdown().await;
        }
        let store = self.service.store();
        if let Ok(ids) = store.unfinished().await {
            for id in ids {
                if let Ok(Some(lease)) = store.holder(id).await
                    && lease.owner == self.owner
                {
                    let _ = store.release(&lease).await;
                }
            }
        }
        tracing::info!("stopped");
    }
}

/// Every route, with the layers.
fn router(app: Arc<App>, body_limit: usize) -> Router {
    let api = Router::new()
        .route("/v1/rules/{rule}", axum::routing::post(rules::post))
        .route("/v1/sagas", axum::routing::get(sagas::list))
        .route(
            "/v1/sagas/{target}",
            axum::routing::get(sagas::get).post(sagas::post),
        )
        .route("/v1/sagas/{id}/events", axum::routing::get(sagas::events))
        .route("/v1/openapi.json", axum::routing::get(openapi::get))
        .route("/metrics", axum::routing::get(metrics_text))
        .route_layer(middleware::from_fn_with_state(app.clone(), authorize));
    Router::new()
        .route("/healthz", axum::routing::get(healthz))
        .route("/readyz", axum::routing::get(readyz))
        .merge(api)
        .fallback(|req: Request| async move { Problem::no_route(req.uri().path()) })
        .layer(axum::extract::DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn_with_state(app.clone(), timeout))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(body_limit))
        .layer(middleware::from_fn_with_state(app.clone(), problems))
        .layer(PropagateRequestIdLayer::new(header::HeaderName::from_static(
            REQUEST_ID,
        )))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request| {
                let id = req
                    .headers()
                    .get(REQUEST_ID)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
            }),
        )
        .layer(SetRequestIdLayer::new(
            header::HeaderName::from_static(REQUEST_ID),
            MakeRequestUuid,
        ))
        .with_state(app)
}

/// Every answer that is an error and not a problem document yet (a body too large,
/// a wrong method, an extractor's refusal) becomes one; and it is counted.
async fn problems(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_string());
    let path = req.uri().path().to_string();
    let response = next.run(req).await;
    let status = response.status();
    app.metrics.inc(
        "rulesaga_http_requests_total",
        &[
            ("route", route.as_deref().unwrap_or("other")),
            ("status", status.as_str()),
        ],
    );
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v == problem::PROBLEM_JSON);
    if !(status.is_client_error() || status.is_server_error()) || is_problem {
        return response;
    }
    let (kind, title, detail) = match status {
        StatusCode::PAYLOAD_TOO_LARGE => (
            "too-large",
            "the body is too large",
            "the request body is larger than the server's limit (`--body-limit`)".to_string(),
        ),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method-not-allowed",
            "method not allowed",
            format!("`{path}` does not take this method"),
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "unsupported-media-type",
            "unsupported media type",
            "send JSON".to_string(),
        ),
        _ => (
            "bad-request",
            "the request is not valid",
            format!("the request to `{path}` was refused"),
        ),
    };
    let mut out = Problem::new(status, kind, title, detail).into_response();
    if let Some(allow) = response.headers().get(header::ALLOW) {
        out.headers_mut().insert(header::ALLOW, allow.clone());
    }
    out
}

/// The per-request time limit (a stream's limit ends when it starts).
async fn timeout(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(app.request_timeout, next.run(req)).await {
        Ok(r) => r,
        Err(_) => Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            "the request took too long",
            format!(
                "the request did not finish within {} ms (`--request-timeout`)",
                app.request_timeout.as_millis()
            ),
        )
        .retry_after(1)
        .into_response(),
    }
}

/// `Authorization: Bearer TOKEN` when the server has a token.
async fn authorize(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let Some(token) = &app.token else {
        return next.run(req).await;
    };
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if given.is_some_and(|g| same(g.as_bytes(), token.as_bytes())) {
        return next.run(req).await;
    }
    let mut r = Problem::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "a bearer token is required",
        "send `Authorization: Bearer TOKEN` with the token of `--token-file`",
    )
    .into_response();
    r.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    r
}

/// Equality that takes as long whatever the first difference.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn healthz() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({"status": "ok"}))
}

async fn readyz(State(app): State<Arc<App>>) -> Response {
    let filter = SagaFilter {
        limit: Some(1),
        ..SagaFilter::default()
    };
    match app.service.list(&filter).await {
        Ok(_) => {
            let defs = app.defs();
            axum::Json(serde_json::json!({
                "status": "ready",
                "store": app.service.store().url(),
                "rules": defs.rules.as_ref().map(|r| r.names()).unwrap_or_default(),
                "sagas": defs.sagas.keys().collect::<Vec<_>>(),
            }))
            .into_response()
        }
        Err(e) => Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not-ready",
            "the store is not reachable",
            e.to_string(),
        )
        .retry_after(1)
        .into_response(),
    }
}

async fn metrics_text(State(app): State<Arc<App>>) -> Response {
    let services = app.service.service_status();
    let in_flight = (app.concurrency - app.slots.available_permits()) as f64;
    let mut breakers = Vec::new();
    let mut bulkheads = Vec::new();
    for s in &services {
        if let Some(state) = s.breaker {
            for (name, v) in [
                ("closed", crate::saga::actions::BreakerState::Closed),
                ("open", crate::saga::actions::BreakerState::Open),
                ("half_open", crate::saga::actions::BreakerState::HalfOpen),
            ] {
                let on = if state == v { 1.0 } else { 0.0 };
                breakers.push((vec![("service", s.name.as_str()), ("state", name)], on));
            }
        }
        if let Some(n) = s.in_flight {
            bulkheads.push((vec![("service", s.name.as_str())], f64::from(n)));
        }
    }
    let text = app.metrics.render(&[
        Gauge {
            name: "rulesaga_sagas_in_flight",
            samples: vec![(vec![], in_flight)],
        },
        Gauge {
            name: "rulesaga_breaker_state",
            samples: breakers,
        },
        Gauge {
            name: "rulesaga_bulkhead_in_flight",
            samples: bulkheads,
        },
    ]);
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        text,
    )
        .into_response()
}
