//! The saga routes, over the [`crate::saga::SagaService`]: start (`POST
//! /v1/sagas/{saga}`, idempotent by key), the operator actions (`POST
//! /v1/sagas/{id}:retry|:skip|:mark-compensated`), status, events (JSON, or
//! Server-Sent Events with `?follow=true`) and the list. Runs go on in this process
//! after the answer: a start answers once its first event is durable (or once it
//! ended), and `?wait=` waits for a final status.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value as Json, json};
use tokio::sync::broadcast::error::RecvError;
use uuid::Uuid;

use super::problem::Problem;
use super::rules::{query, split_verb};
use super::{App, body, finish_label};
use crate::saga::read_model::SagaFilter;
use crate::saga::runner::RunError;
use crate::saga::service::SagaReport;
use crate::saga::validate::parse_duration;
use crate::saga::{Event, OperatorAction, SagaState, SagaStatus, ServiceError, Start, StoreError};

/// The most sagas one list answers with.
const MAX_LIST: usize = 1000;

/// Longest business key.
const MAX_KEY: usize = 256;

/// `?wait=`
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct WaitQuery {
    wait: Option<String>,
}

/// `?follow=`
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct EventsQuery {
    #[serde(default)]
    follow: bool,
}

/// `GET /v1/sagas?status=&name=&limit=`
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    status: Option<String>,
    name: Option<String>,
    limit: Option<usize>,
}

/// A service error as a problem.
pub(super) fn service_problem(e: ServiceError) -> Problem {
    let detail = e.to_string();
    match e {
        ServiceError::NotFound(_) => Problem::new(
            StatusCode::NOT_FOUND,
            "unknown-saga",
            "no such saga",
            detail,
        ),
        ServiceError::Ambiguous { candidates, .. } => Problem::new(
            StatusCode::CONFLICT,
            "ambiguous-saga",
            "more than one saga answers",
            detail,
        )
        .with("candidates", json!(candidates)),
        ServiceError::Held(lease) => Problem::new(
            StatusCode::CONFLICT,
            "saga-held",
            "another process runs the saga",
            detail,
        )
        .with("lease", json!(lease)),
        ServiceError::Invalid { diagnostics, .. } => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-definition",
            "the saga's pinned definition does not validate here",
            detail,
        )
        .with_diagnostics(&[diagnostics]),
        ServiceError::Rules { errors, .. } => {
            let p = Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-rules",
                "the saga's pinned rule files do not compile",
                detail,
            );
            match errors {
                crate::rules::RuleErrors::Invalid(d) => p.with_diagnostics(&d),
                crate::rules::RuleErrors::Io { .. } => p,
            }
        }
        ServiceError::Run(RunError::Input(_)) => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-input",
            "the input does not fit the saga's input schema",
            detail,
        ),
        ServiceError::Run(RunError::Operator(_)) => Problem::new(
            StatusCode::CONFLICT,
            "operator-refused",
            "the action does not apply to the saga as it stands",
            detail,
        ),
        ServiceError::Run(RunError::TakenOver { .. })
        | ServiceError::Run(RunError::Store(StoreError::Fenced { .. }))
        | ServiceError::Store(StoreError::Fenced { .. }) => Problem::new(
            StatusCode::CONFLICT,
            "saga-held",
            "another process runs the saga",
            detail,
        ),
        ServiceError::Run(RunError::Services(_)) => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unresolved-services",
            "the saga's services cannot be resolved",
            detail,
        ),
        ServiceError::Run(RunError::Corrupt(_)) | ServiceError::Run(RunError::Mismatch(_)) => {
            Problem::internal(detail)
        }
        ServiceError::Run(RunError::Store(_)) | ServiceError::Store(_) => Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store-failed",
            "the saga store failed",
            detail,
        )
        .retry_after(1),
    }
}

/// A 503: every run slot is taken.
fn full(app: &App) -> Problem {
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "busy",
        "the server runs as many sagas as it may",
        format!(
            "{} sagas are running (`--concurrency`); try again",
            app.concurrency
        ),
    )
    .retry_after(1)
}

fn stopping() -> Problem {
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "stopping",
        "the server is shutting down",
        "the server is shutting down and starts no runs",
    )
    .retry_after(1)
}

/// The end of a run in the background, once its slot is free again.
type Done = tokio::sync::oneshot::Receiver<Result<SagaState, ServiceError>>;

/// Run `job` (a start or an operator action on `saga_id`) in the background, in a
/// run slot; answer once the saga has an event from it or the job ended. The id of
/// the saga the job ran (a start with a used key runs none: the first saga's), and
/// the run's end while it still runs.
async fn launch(
    app: &Arc<App>,
    saga_id: Uuid,
    name: String,
    job: impl Future<Output = Result<SagaState, ServiceError>> + Send + 'static,
) -> Result<(Uuid, Option<Done>), Problem> {
    if app.stop.load(std::sync::atomic::Ordering::Relaxed) {
        return Err(stopping());
    }
    let permit = app
        .slots
        .clone()
        .try_acquire_owned()
        .map_err(|_| full(app))?;
    let mut events = app.events.subscribe();
    let (tx, mut done) = tokio::sync::oneshot::channel();
    let runner = app.clone();
    app.spawn(async move {
        let result = job.await;
        drop(permit);
        if let Ok(state) = &result {
            runner.metrics.inc(
                "rulesaga_sagas_finished_total",
                &[
                    ("saga", &name),
                    ("status", finish_label(&state.status, &runner.stop)),
                ],
            );
        }
        let _ = tx.send(result);
    });
    loop {
        tokio::select! {
            ev = events.recv() => match ev {
                Ok(e) if e.saga_id == saga_id => return Ok((saga_id, Some(done))),
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => break,
            },
            r = &mut done => return match r {
                Ok(Ok(state)) => Ok((state.saga_id, None)),
                Ok(Err(e)) => Err(service_problem(e)),
                Err(_) => Err(stopping()),
            },
        }
    }
    match done.await {
        Ok(Ok(state)) => Ok((state.saga_id, None)),
        Ok(Err(e)) => Err(service_problem(e)),
        Err(_) => Err(stopping()),
    }
}

/// The saga's report once it is final, or when `wait` is over (or the server stops).
async fn wait_final(app: &App, id: Uuid, wait: Duration) -> Result<SagaReport, Problem> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut events = app.events.subscribe();
    let mut closing = app.closing.subscribe();
    loop {
        let report = app.service.status(id).await.map_err(service_problem)?;
        if report.summary.status.is_final() {
            return Ok(report);
        }
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => return Ok(report),
                _ = closing.wait_for(|c| *c) => return Ok(report),
                ev = events.recv() => match ev {
                    Ok(e) if e.saga_id == id && e.kind.is_final() => break,
                    Ok(_) => {}
                    Err(RecvError::Lagged(_)) => break,
                    Err(RecvError::Closed) => return Ok(report),
                },
            }
        }
    }
}

/// `?wait=5s`, capped below the request timeout.
fn wait_of(app: &App, uri: &Uri) -> Result<Option<Duration>, Problem> {
    let q: WaitQuery = query(uri)?;
    let Some(text) = q.wait else {
        return Ok(None);
    };
    let d = parse_duration(&text).ok_or_else(|| {
        Problem::bad_request(format!(
            "invalid `wait={text}`: give a duration (`500ms`, `5s`)"
        ))
    })?;
    let cap = app
        .request_timeout
        .saturating_sub(Duration::from_millis(100));
    Ok(Some(d.min(cap)))
}

/// The answer to a start or an action: 200 with a final status, else 202.
async fn answer(
    app: &App,
    id: Uuid,
    wait: Option<Duration>,
    run: Option<Done>,
    existing: bool,
) -> Result<Response, Problem> {
    let report = match (wait, run) {
        // this request's own run: its end (its slot free again, so the client's
        // next start finds one), then the saga as it stands
        (Some(w), Some(run)) => {
            let mut closing = app.closing.subscribe();
            tokio::select! {
                _ = tokio::time::sleep(w) => {}
                _ = closing.wait_for(|c| *c) => {}
                _ = run => {}
            }
            app.service.status(id).await.map_err(service_problem)?
        }
        (Some(w), None) => wait_final(app, id, w).await?,
        (None, _) => app.service.status(id).await.map_err(service_problem)?,
    };
    let status = report.summary.status;
    let code = if status.is_final() {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    let mut body = json!({
        "saga_id": id,
        "saga": report.summary.saga,
        "key": report.summary.key,
        "status": status,
        "existing": existing,
    });
    if status.is_final() {
        body["failed_step"] = json!(report.summary.failed_step);
        body["reason"] = json!(report.summary.reason);
    }
    Ok((code, axum::Json(body)).into_response())
}

/// `POST /v1/sagas/{saga}` (start) and `POST /v1/sagas/{id}:{action}`.
pub(super) async fn post(
    State(app): State<Arc<App>>,
    Path(target): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, Problem> {
    if target.contains(':') {
        return operate(app, &target, &uri, &bytes).await;
    }
    let wait = wait_of(&app, &uri)?;
    let defs = app.defs();
    let Some(saga) = defs.sagas.get(&target).cloned() else {
        let help = crate::diag::did_you_mean(&target, defs.sagas.keys().map(String::as_str));
        let mut p = Problem::new(
            StatusCode::NOT_FOUND,
            "unknown-saga",
            "no such saga",
            format!("this server has no saga `{target}`"),
        );
        if let Some(h) = help {
            p = p.with("help", json!(h));
        }
        return Err(p);
    };
    let body = body::object(&bytes)?;
    body::only(&body, &["input", "key"])?;
    let header_key = match headers.get("idempotency-key") {
        Some(v) => Some(
            v.to_str()
                .map_err(|_| Problem::bad_request("`Idempotency-Key` must be visible ASCII"))?
                .to_string(),
        ),
        None => None,
    };
    let body_key = match body.get("key") {
        None | Some(Json::Null) => None,
        Some(Json::String(k)) => Some(k.clone()),
        Some(_) => return Err(Problem::bad_request("`key` must be a string")),
    };
    let key = match (header_key, body_key) {
        (Some(h), Some(b)) if h != b => {
            return Err(Problem::bad_request(
                "the `Idempotency-Key` header and the body's `key` differ",
            ));
        }
        (h, b) => h.or(b),
    };
    if let Some(k) = &key
        && (k.is_empty() || k.len() > MAX_KEY)
    {
        return Err(Problem::bad_request(format!(
            "a key is 1 to {MAX_KEY} bytes"
        )));
    }
    let input = body.get("input").cloned().unwrap_or_else(|| json!({}));
    let errors = saga.input_errors(&input);
    if let Some(first) = errors.first() {
        let all: Vec<Json> = errors
            .iter()
            .map(|e| json!({"path": e.path, "message": e.to_string()}))
            .collect();
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-input",
            "the input does not fit the saga's input schema",
            first.to_string(),
        )
        .with("path", json!(first.path))
        .with("errors", Json::Array(all)));
    }
    if let Some(k) = &key {
        let found = app
            .service
            .store()
            .by_key(k, 16)
            .await
            .map_err(|e| service_problem(e.into()))?;
        if let Some(first) = found.iter().find(|s| s.saga == saga.name()) {
            return answer(&app, first.saga_id, wait, None, true).await;
        }
    }
    let saga_id = Uuid::now_v7();
    let start = Start {
        saga_id,
        input,
        key,
    };
    let service = app.service.clone();
    let name = saga.name().to_string();
    let counted = app.clone();
    let (ran, run) = launch(&app, saga_id, name.clone(), async move {
        let started = service.start(&saga, start).await?;
        if !started.existing {
            counted
                .metrics
                .inc("rulesaga_sagas_started_total", &[("saga", &name)]);
        }
        Ok(started.state)
    })
    .await?;
    answer(&app, ran, wait, run, ran != saga_id).await
}

/// `{"step", "reason"}` of an operator action.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionBody {
    step: Option<String>,
    reason: Option<String>,
}

async fn operate(
    app: Arc<App>,
    target: &str,
    uri: &Uri,
    bytes: &[u8],
) -> Result<Response, Problem> {
    let (id_text, verb) = split_verb(target, &["retry", "skip", "mark-compensated"])?;
    let wait = wait_of(&app, uri)?;
    let body = body::object(bytes)?;
    let body: ActionBody = serde_json::from_value(Json::Object(body))
        .map_err(|e| Problem::bad_request(format!("invalid body: {e}")))?;
    let needs = |what: &str| Problem::bad_request(format!("`:{verb}` needs `{what}` in the body"));
    let action = match verb {
        "retry" => OperatorAction::Retry {
            reason: body
                .reason
                .unwrap_or_else(|| "retried by an operator".to_string()),
        },
        "skip" => OperatorAction::Skip {
            step: body.step.ok_or_else(|| needs("step"))?,
            reason: body.reason.ok_or_else(|| needs("reason"))?,
        },
        _ => OperatorAction::MarkCompensated {
            step: body.step.ok_or_else(|| needs("step"))?,
            reason: body.reason.ok_or_else(|| needs("reason"))?,
        },
    };
    let id = app
        .service
        .resolve(id_text)
        .await
        .map_err(service_problem)?;
    let name = app
        .service
        .status(id)
        .await
        .map_err(service_problem)?
        .summary
        .saga;
    let service = app.service.clone();
    let (ran, run) = launch(
        &app,
        id,
        name,
        async move { service.operate(id, &action).await },
    )
    .await?;
    answer(&app, ran, wait, run, false).await
}

/// `GET /v1/sagas/{id}`: the object of `saga status --output json`.
pub(super) async fn get(
    State(app): State<Arc<App>>,
    Path(target): Path<String>,
) -> Result<Response, Problem> {
    let id = app
        .service
        .resolve(&target)
        .await
        .map_err(service_problem)?;
    let report = app.service.status(id).await.map_err(service_problem)?;
    Ok(axum::Json(report.to_json()).into_response())
}

/// `GET /v1/sagas?status=&name=&limit=`
pub(super) async fn list(State(app): State<Arc<App>>, uri: Uri) -> Result<Response, Problem> {
    let q: ListQuery = query(&uri)?;
    let status = match &q.status {
        Some(s) => Some(SagaStatus::parse(s).ok_or_else(|| {
            Problem::bad_request(format!(
                "unknown status `{s}`: use running, completed, compensating, compensated or failed"
            ))
        })?),
        None => None,
    };
    let filter = SagaFilter {
        status,
        name: q.name,
        since: None,
        limit: Some(q.limit.unwrap_or(100).min(MAX_LIST)),
    };
    let sagas = app.service.list(&filter).await.map_err(service_problem)?;
    Ok(axum::Json(json!({ "sagas": sagas })).into_response())
}

/// `GET /v1/sagas/{id}/events`: the log as JSON, or with `?follow=true` as
/// Server-Sent Events (`id:` the sequence number, `event:` its type, `data:` the
/// event), new ones as they are appended, ending after a final event.
pub(super) async fn events(
    State(app): State<Arc<App>>,
    Path(target): Path<String>,
    uri: Uri,
) -> Result<Response, Problem> {
    let q: EventsQuery = query(&uri)?;
    let id = app
        .service
        .resolve(&target)
        .await
        .map_err(service_problem)?;
    if !q.follow {
        let events = app.service.history(id).await.map_err(service_problem)?;
        return Ok(axum::Json(json!({ "events": events })).into_response());
    }
    let follow = Follow {
        rx: app.events.subscribe(),
        closing: app.closing.subscribe(),
        app: app.clone(),
        id,
        pending: VecDeque::new(),
        last_seq: 0,
        done: false,
    };
    let mut follow = follow;
    follow.catch_up().await.map_err(service_problem)?;
    let stream = futures_util::stream::unfold(follow, |mut f| async move {
        f.next().await.map(|e| (Ok::<_, Infallible>(e), f))
    });
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// The state of one followed saga.
struct Follow {
    app: Arc<App>,
    rx: tokio::sync::broadcast::Receiver<Arc<Event>>,
    closing: tokio::sync::watch::Receiver<bool>,
    id: Uuid,
    pending: VecDeque<Event>,
    last_seq: u64,
    /// A final event was queued: the stream ends after it.
    done: bool,
}

impl Follow {
    fn push(&mut self, e: Event) {
        if e.seq > self.last_seq && !self.done {
            self.last_seq = e.seq;
            self.done = e.kind.is_final();
            self.pending.push_back(e);
        }
    }

    /// Queue what the log has beyond what was sent.
    async fn catch_up(&mut self) -> Result<(), ServiceError> {
        for e in self.app.service.history(self.id).await? {
            self.push(e);
        }
        Ok(())
    }

    async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(e) = self.pending.pop_front() {
                let data = serde_json::to_string(&e).unwrap_or_default();
                return Some(
                    SseEvent::default()
                        .id(e.seq.to_string())
                        .event(e.kind.type_name())
                        .data(data),
                );
            }
            if self.done || *self.closing.borrow() {
                return None;
            }
            enum Next {
                Event(Arc<Event>),
                Reread,
                End,
                Nothing,
            }
            let next = tokio::select! {
                ev = self.rx.recv() => match ev {
                    Ok(e) if e.saga_id == self.id => Next::Event(e),
                    Ok(_) => Next::Nothing,
                    Err(RecvError::Lagged(_)) => Next::Reread,
                    Err(RecvError::Closed) => Next::End,
                },
                // events appended by another process (an operator's CLI)
                _ = tokio::time::sleep(Duration::from_secs(1)) => Next::Reread,
                _ = self.closing.wait_for(|c| *c) => Next::End,
            };
            match next {
                Next::Event(e) => self.push((*e).clone()),
                Next::Reread => {
                    let _ = self.catch_up().await;
                }
                Next::End => return None,
                Next::Nothing => {}
            }
        }
    }
}
