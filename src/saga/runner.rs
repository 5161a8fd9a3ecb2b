//! Step four: running a validated [`Saga`].
//!
//! The runner sees only traits: a [`Repository`], an [`EventStore`] and a
//! [`HandlerRegistry`]. Every transition is appended before the runner acts on it
//! ("step started" is written before the action is called), and the runner's
//! state is only ever changed by applying the events it appended, so a run can be
//! continued from its log ([`Runner::resume`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde_json::{Map, Value as Json};
use tokio::time::Instant;
use uuid::Uuid;

use super::events::{
    Event, EventKind, EventStore, SagaState, SagaStatus, StepStatus, StoreError, fold,
};
use super::handlers::{HandlerCall, HandlerRegistry};
use super::model::{Action, Filter, Saga, Step, Undo};
use super::scope::{EntityScope, Scope, eval_context, id_string};
use crate::repo::{FindError, RepoError, Repository, UnitOfWork, Write};
use crate::rules::Context;

/// Fault injection: make actions or compensations fail without editing handlers.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// Step name → number of attempts that fail (`None`: every attempt).
    pub actions: HashMap<String, Option<u32>>,
    /// Step name → number of compensation attempts that fail (`None`: every attempt).
    pub compensations: HashMap<String, Option<u32>>,
}

impl Faults {
    fn hits(map: &HashMap<String, Option<u32>>, step: &str, attempt: u32) -> bool {
        map.get(step)
            .is_some_and(|t| t.is_none_or(|t| attempt <= t))
    }
}

/// Why a run could not start or continue.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The input does not match the saga's input schema (every problem listed).
    #[error("invalid input: {}", .0.join("; "))]
    Input(Vec<String>),
    /// The event store failed: the saga stopped without advancing.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The events do not belong to this saga definition.
    #[error("{0}")]
    Mismatch(String),
}

/// Runs sagas.
#[derive(Clone)]
pub struct Runner {
    repo: Arc<dyn Repository>,
    events: Arc<dyn EventStore>,
    handlers: Arc<HandlerRegistry>,
    faults: Faults,
}

/// Why an attempt failed.
struct Failure {
    message: String,
    retryable: bool,
    timed_out: bool,
}

impl Failure {
    fn permanent(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            retryable: false,
            timed_out: false,
        }
    }
    fn transient(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            retryable: true,
            timed_out: false,
        }
    }
}

impl From<RepoError> for Failure {
    fn from(e: RepoError) -> Failure {
        Failure {
            retryable: e.is_transient(),
            message: e.to_string(),
            timed_out: false,
        }
    }
}

impl Runner {
    /// A runner over these traits.
    pub fn new(
        repo: Arc<dyn Repository>,
        events: Arc<dyn EventStore>,
        handlers: Arc<HandlerRegistry>,
    ) -> Runner {
        Runner {
            repo,
            events,
            handlers,
            faults: Faults::default(),
        }
    }

    /// With fault injection.
    pub fn with_faults(mut self, faults: Faults) -> Runner {
        self.faults = faults;
        self
    }

    /// Check `input` against the saga's input schema: every problem, or nothing.
    pub fn check_input(saga: &Saga, input: &Json) -> Result<(), RunError> {
        let Json::Object(fields) = input else {
            return Err(RunError::Input(vec![
                "the input must be a JSON object".into(),
            ]));
        };
        let mut problems = Vec::new();
        for f in &saga.input {
            match fields.get(&f.name) {
                None | Some(Json::Null) if f.optional => {}
                None => problems.push(format!("missing field `{}`", f.name)),
                Some(v) if !f.ty.accepts(v) => problems.push(format!(
                    "field `{}` must be {}, found `{v}`",
                    f.name,
                    serde_json::to_value(f.ty)
                        .ok()
                        .and_then(|t| t.as_str().map(str::to_string))
                        .unwrap_or_default()
                )),
                Some(_) => {}
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(RunError::Input(problems))
        }
    }

    /// Start a new saga with a fresh id and run it to a final status.
    pub async fn run(&self, saga: &Saga, input: Json) -> Result<SagaState, RunError> {
        self.run_with_id(saga, Uuid::new_v4(), input).await
    }

    /// Start a new saga with the given id and run it to a final status.
    pub async fn run_with_id(
        &self,
        saga: &Saga,
        saga_id: Uuid,
        input: Json,
    ) -> Result<SagaState, RunError> {
        Runner::check_input(saga, &input)?;
        self.events
            .save_definition(&saga.definition_hash, &saga.source.text)
            .await?;
        let mut run = Run::new(self, saga, SagaState::default(), saga_id);
        run.append(EventKind::SagaStarted {
            saga: saga.name.clone(),
            version: saga.version,
            definition_hash: saga.definition_hash.clone(),
            input,
        })
        .await?;
        run.drive().await?;
        Ok(run.state)
    }

    /// Continue a saga from its events (a step started but not finished runs again
    /// with the same idempotency key; a compensating saga keeps compensating).
    pub async fn resume(&self, saga: &Saga, events: &[Event]) -> Result<SagaState, RunError> {
        let state = fold(events);
        if state.definition_hash != saga.definition_hash {
            return Err(RunError::Mismatch(format!(
                "saga `{}` was started with definition {}, not {}",
                state.saga_id, state.definition_hash, saga.definition_hash
            )));
        }
        let saga_id = state.saga_id;
        let mut run = Run::new(self, saga, state, saga_id);
        run.drive().await?;
        Ok(run.state)
    }
}

/// One run in progress.
struct Run<'r> {
    runner: &'r Runner,
    saga: &'r Saga,
    state: SagaState,
    saga_id: Uuid,
    deadline: Option<Instant>,
    ctx: Context,
}

enum Next {
    /// Go on to the next step.
    Continue,
    /// The step failed for good: stop going forward.
    Failed(String),
}

impl<'r> Run<'r> {
    fn new(runner: &'r Runner, saga: &'r Saga, state: SagaState, saga_id: Uuid) -> Run<'r> {
        Run {
            runner,
            saga,
            state,
            saga_id,
            deadline: saga.deadline.map(|d| Instant::now() + d),
            ctx: eval_context(),
        }
    }

    async fn append(&mut self, kind: EventKind) -> Result<(), StoreError> {
        let event = Event {
            saga_id: self.saga_id,
            seq: self.state.last_seq + 1,
            at: Utc::now(),
            kind,
        };
        self.runner.events.append(&event).await?;
        self.state.apply(&event);
        Ok(())
    }

    fn scope(&self) -> Scope<'_> {
        Scope {
            input: &self.state.input,
            steps: &self.state.outputs,
            entity: None,
            result: None,
        }
    }

    fn deadline_passed(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    async fn drive(&mut self) -> Result<(), StoreError> {
        if self.state.status == SagaStatus::Running {
            for (idx, step) in self.saga.steps.iter().enumerate() {
                let status = self
                    .state
                    .step(&step.name)
                    .map(|s| s.status)
                    .unwrap_or_default();
                let next = match status {
                    StepStatus::Completed | StepStatus::Skipped => Next::Continue,
                    StepStatus::Failed => Next::Failed(
                        self.state
                            .step(&step.name)
                            .and_then(|s| s.error.clone())
                            .unwrap_or_default(),
                    ),
                    _ => self.forward(step).await?,
                };
                if let Next::Failed(reason) = next {
                    return self.after_failure(idx, step, reason).await;
                }
            }
            return self.append(EventKind::SagaCompleted).await;
        }
        if self.state.status == SagaStatus::Compensating {
            return self.compensate_all().await;
        }
        Ok(())
    }

    /// Run one step forward: `when`, then attempts until success or a final failure.
    async fn forward(&mut self, step: &Step) -> Result<Next, StoreError> {
        let name = step.name.clone();
        if let Some(when) = &step.when {
            if self.state.step(&name).is_none() {
                match when.matches(&self.scope(), &self.ctx) {
                    Ok(true) => {}
                    Ok(false) => {
                        self.append(EventKind::StepSkipped { step: name }).await?;
                        return Ok(Next::Continue);
                    }
                    Err(e) => {
                        let error = format!("`when` failed: `{}`: {e}", when.text);
                        self.append(EventKind::StepFailed {
                            step: name,
                            attempt: 0,
                            error: error.clone(),
                            timed_out: false,
                            will_retry: false,
                        })
                        .await?;
                        return Ok(Next::Failed(error));
                    }
                }
            }
        }
        let mut attempt = self.state.step(&name).map_or(0, |s| s.attempts);
        loop {
            attempt += 1;
            if self.deadline_passed() {
                let error = "the saga's deadline passed".to_string();
                self.append(EventKind::StepFailed {
                    step: name,
                    attempt,
                    error: error.clone(),
                    timed_out: false,
                    will_retry: false,
                })
                .await?;
                return Ok(Next::Failed(error));
            }
            self.append(EventKind::StepStarted {
                step: name.clone(),
                attempt,
            })
            .await?;
            let result = if Faults::hits(&self.runner.faults.actions, &name, attempt) {
                Err(Failure::transient(format!(
                    "injected failure (attempt {attempt})"
                )))
            } else {
                self.attempt(step, attempt).await
            };
            match result {
                Ok(output) => {
                    self.append(EventKind::StepSucceeded {
                        step: name,
                        attempt,
                        output,
                    })
                    .await?;
                    return Ok(Next::Continue);
                }
                Err(f) => {
                    let will_retry = f.retryable
                        && step.retry.allows_another(attempt)
                        && !self.deadline_passed();
                    self.append(EventKind::StepFailed {
                        step: name.clone(),
                        attempt,
                        error: f.message.clone(),
                        timed_out: f.timed_out,
                        will_retry,
                    })
                    .await?;
                    if !will_retry {
                        return Ok(Next::Failed(f.message));
                    }
                    self.sleep(
                        step.retry
                            .backoff(attempt, self.jitter_unit(&name, attempt)),
                    )
                    .await;
                }
            }
        }
    }

    fn jitter_unit(&self, step: &str, attempt: u32) -> f64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in self
            .saga_id
            .as_bytes()
            .iter()
            .chain(step.as_bytes())
            .chain(&attempt.to_le_bytes())
        {
            h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
        (h % 10_000) as f64 / 10_000.0
    }

    async fn sleep(&self, d: Duration) {
        let d = match self.deadline {
            Some(deadline) => d.min(deadline.saturating_duration_since(Instant::now())),
            None => d,
        };
        if !d.is_zero() {
            tokio::time::sleep(d).await;
        }
    }

    /// The timeout of one attempt: the step's, capped by the saga's deadline.
    fn attempt_timeout(&self, step: &Step, compensating: bool) -> Option<Duration> {
        let remaining = if compensating {
            None
        } else {
            self.deadline
                .map(|d| d.saturating_duration_since(Instant::now()))
        };
        match (step.timeout, remaining) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// One attempt of a step's action: `require`, the action, then `outputs`.
    async fn attempt(&self, step: &Step, attempt: u32) -> Result<Json, Failure> {
        if let Some(req) = &step.require {
            self.check_require(req)?;
        }
        let key = format!("{}/{}", self.saga_id, step.name);
        let result = self
            .with_timeout(
                self.attempt_timeout(step, false),
                self.perform(&step.action, &step.name, attempt, key),
            )
            .await?;
        if step.outputs.is_empty() {
            return Ok(result);
        }
        let scope = Scope {
            result: Some(&result),
            ..self.scope()
        };
        let mut out = Map::new();
        for (name, v) in &step.outputs {
            if let Some(j) = scope.eval(v, &self.ctx).map_err(Failure::permanent)? {
                out.insert(name.clone(), j);
            }
        }
        Ok(Json::Object(out))
    }

    async fn with_timeout(
        &self,
        timeout: Option<Duration>,
        fut: impl std::future::Future<Output = Result<Json, Failure>>,
    ) -> Result<Json, Failure> {
        match timeout {
            None => fut.await,
            Some(t) => match tokio::time::timeout(t, fut).await {
                Ok(r) => r,
                Err(_) => Err(Failure {
                    message: format!("timed out after {}", super::model::format_duration(t)),
                    retryable: true,
                    timed_out: true,
                }),
            },
        }
    }

    fn check_require(&self, req: &super::model::Require) -> Result<(), Failure> {
        let scope = self.scope();
        let entity;
        let record: &dyn crate::value::Record = match &req.entity {
            None => &self.state.input,
            Some(e) => {
                let id = id_string(
                    scope.eval(&e.id, &self.ctx).map_err(Failure::permanent)?,
                    "`require` entity id",
                )
                .map_err(Failure::permanent)?;
                entity =
                    self.runner.repo.get(&e.repo, &id)?.ok_or_else(|| {
                        Failure::permanent(format!("`{}/{id}` not found", e.repo))
                    })?;
                &entity
            }
        };
        match req.rule.program.matches(record, &self.ctx) {
            Ok(true) => Ok(()),
            Ok(false) => {
                let on = match &req.entity {
                    None => "the input".to_string(),
                    Some(e) => format!("the `{}` entity", e.repo),
                };
                let why = match req.rule.program.explain(record, &self.ctx) {
                    Ok(ex) if !ex.reasons().is_empty() => format!(": {}", ex.reasons().join("; ")),
                    _ => String::new(),
                };
                Err(Failure::permanent(format!(
                    "rule `{}` does not hold for {on}{why}",
                    req.rule.name
                )))
            }
            Err(e) => Err(Failure::permanent(format!("rule `{}`: {e}", req.rule.name))),
        }
    }

    /// Perform an action and return its result.
    async fn perform(
        &self,
        action: &Action,
        step: &str,
        attempt: u32,
        key: String,
    ) -> Result<Json, Failure> {
        let scope = self.scope();
        let ctx = &self.ctx;
        let eval = |v| scope.eval(v, ctx).map_err(Failure::permanent);
        let repo = &*self.runner.repo;
        match action {
            Action::Noop => Ok(Json::Null),
            Action::Handler { name, args } => {
                let handler = self
                    .runner
                    .handlers
                    .get(name)
                    .ok_or_else(|| Failure::permanent(format!("unknown handler `{name}`")))?
                    .clone();
                let call = HandlerCall {
                    saga_id: self.saga_id,
                    step: step.to_string(),
                    attempt,
                    idempotency_key: key,
                    args: eval(args)?.unwrap_or(Json::Null),
                };
                handler.call(call).await.map_err(|e| Failure {
                    message: e.message,
                    retryable: e.retryable,
                    timed_out: false,
                })
            }
            Action::Get { repo: name, id } => {
                let id = id_string(eval(id)?, "id").map_err(Failure::permanent)?;
                match repo.get(name, &id)? {
                    Some(e) => Ok(Json::Object(e)),
                    None => Err(Failure::permanent(format!("`{name}/{id}` not found"))),
                }
            }
            Action::Insert {
                repo: name,
                id,
                values,
            } => {
                let id = id_string(eval(id)?, "id").map_err(Failure::permanent)?;
                let entity = object(eval(values)?)?;
                let unit = UnitOfWork {
                    key,
                    writes: vec![Write::Insert {
                        repo: name.clone(),
                        id,
                        entity: entity.clone(),
                    }],
                };
                repo.commit(&unit)?;
                Ok(Json::Object(entity))
            }
            Action::Update {
                repo: name,
                id,
                values,
                expect,
            } => {
                let id = id_string(eval(id)?, "id").map_err(Failure::permanent)?;
                let current = repo
                    .get(name, &id)?
                    .ok_or_else(|| Failure::permanent(format!("`{name}/{id}` not found")))?;
                let with_entity = Scope {
                    entity: Some(&current),
                    ..scope
                };
                if let Some(expect) = expect {
                    let ok = expect
                        .matches(&with_entity, ctx)
                        .map_err(|e| Failure::permanent(format!("`{}`: {e}", expect.text)))?;
                    if !ok {
                        return Err(Failure::permanent(format!(
                            "expected `{}` for `{name}/{id}`",
                            expect.text
                        )));
                    }
                }
                let patch = object(with_entity.eval(values, ctx).map_err(Failure::permanent)?)?;
                let mut merged = current.clone();
                for (k, v) in &patch {
                    merged.insert(k.clone(), v.clone());
                }
                let unit = UnitOfWork {
                    key,
                    writes: vec![Write::Update {
                        repo: name.clone(),
                        id,
                        patch,
                    }],
                };
                repo.commit(&unit)?;
                Ok(Json::Object(merged))
            }
            Action::Delete {
                repo: name,
                id,
                expect,
            } => {
                let id = id_string(eval(id)?, "id").map_err(Failure::permanent)?;
                let current = repo.get(name, &id)?;
                if let (Some(expect), Some(cur)) = (expect, &current) {
                    let with_entity = Scope {
                        entity: Some(cur),
                        ..scope
                    };
                    let ok = expect
                        .matches(&with_entity, ctx)
                        .map_err(|e| Failure::permanent(format!("`{}`: {e}", expect.text)))?;
                    if !ok {
                        return Err(Failure::permanent(format!(
                            "expected `{}` for `{name}/{id}`",
                            expect.text
                        )));
                    }
                }
                let unit = UnitOfWork {
                    key,
                    writes: vec![Write::Delete {
                        repo: name.clone(),
                        id,
                    }],
                };
                repo.commit(&unit)?;
                Ok(current.map_or(Json::Null, Json::Object))
            }
            Action::Find { repo: name, filter } => {
                let mut keep = |_id: &str, entity: &Map<String, Json>| -> Result<bool, String> {
                    match filter {
                        Filter::All => Ok(true),
                        Filter::Where(e) => e
                            .matches(
                                &EntityScope {
                                    entity,
                                    outer: scope,
                                },
                                ctx,
                            )
                            .map_err(|err| err.to_string()),
                        Filter::Rule(r) => r
                            .program
                            .matches(entity, ctx)
                            .map_err(|err| err.to_string()),
                    }
                };
                let found = repo.find(name, &mut keep).map_err(|e| match e {
                    FindError::Repo(r) => Failure::from(r),
                    other => Failure::permanent(other.to_string()),
                })?;
                Ok(Json::Array(
                    found
                        .into_iter()
                        .map(|(id, mut e)| {
                            e.entry("id").or_insert(Json::String(id));
                            Json::Object(e)
                        })
                        .collect(),
                ))
            }
        }
    }

    /// A step failed for good: compensate, or stop for an operator after the pivot.
    async fn after_failure(
        &mut self,
        idx: usize,
        step: &Step,
        reason: String,
    ) -> Result<(), StoreError> {
        if self.saga.pivot.is_some_and(|p| idx > p) {
            return self
                .append(EventKind::SagaFailed {
                    step: step.name.clone(),
                    reason: format!("step after the pivot could not complete: {reason}"),
                })
                .await;
        }
        self.append(EventKind::CompensationStarted {
            failed_step: step.name.clone(),
            reason,
        })
        .await?;
        self.compensate_all().await
    }

    /// Undo completed (and possibly-done) steps in strict reverse order.
    async fn compensate_all(&mut self) -> Result<(), StoreError> {
        let order: Vec<String> = self.state.done_order.iter().rev().cloned().collect();
        for name in order {
            let Some(step) = self.saga.steps.iter().find(|s| s.name == name) else {
                continue;
            };
            let Undo::Compensate(action) = &step.undo else {
                continue;
            };
            if self.state.step(&name).map(|s| s.status) == Some(StepStatus::Compensated) {
                continue;
            }
            if let Err(reason) = self.compensate(step, action).await? {
                return self
                    .append(EventKind::SagaFailed {
                        step: name.clone(),
                        reason: format!("compensation of `{name}` failed: {reason}"),
                    })
                    .await;
            }
        }
        self.append(EventKind::SagaCompensated).await
    }

    /// Run one compensation with the saga's compensation retry policy.
    async fn compensate(
        &mut self,
        step: &Step,
        action: &Action,
    ) -> Result<Result<(), String>, StoreError> {
        let name = step.name.clone();
        let policy = &self.saga.compensation_retry;
        let mut attempt = self
            .state
            .step(&name)
            .map_or(0, |s| s.compensation_attempts);
        loop {
            attempt += 1;
            self.append(EventKind::StepCompensationStarted {
                step: name.clone(),
                attempt,
            })
            .await?;
            let result = if Faults::hits(&self.runner.faults.compensations, &name, attempt) {
                Err(Failure::transient(format!(
                    "injected compensation failure (attempt {attempt})"
                )))
            } else {
                let key = format!("{}/{}/compensate", self.saga_id, name);
                self.with_timeout(
                    self.attempt_timeout(step, true),
                    self.perform(action, &name, attempt, key),
                )
                .await
            };
            match result {
                Ok(_) => {
                    self.append(EventKind::StepCompensated {
                        step: name,
                        attempt,
                    })
                    .await?;
                    return Ok(Ok(()));
                }
                Err(f) => {
                    let will_retry = f.retryable && policy.allows_another(attempt);
                    self.append(EventKind::CompensationFailed {
                        step: name.clone(),
                        attempt,
                        error: f.message.clone(),
                        will_retry,
                    })
                    .await?;
                    if !will_retry {
                        return Ok(Err(f.message));
                    }
                    let wait = policy.backoff(attempt, self.jitter_unit(&name, attempt));
                    if !wait.is_zero() {
                        tokio::time::sleep(wait).await;
                    }
                }
            }
        }
    }
}

fn object(v: Option<Json>) -> Result<Map<String, Json>, Failure> {
    match v {
        Some(Json::Object(m)) => Ok(m),
        _ => Err(Failure::permanent("`values` must compute an object")),
    }
}
