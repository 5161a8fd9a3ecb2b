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
    CommitError, Event, EventKind, EventStore, SagaState, SagaStatus, StepStatus, StoreError,
    TransactionalStore, fold,
};
use super::handlers::{HandlerCall, HandlerRegistry};
use super::model::{Action, Filter, Saga, Step, Undo};
use super::scope::{EntityScope, Scope, eval_context, id_string};
use crate::repo::{FindError, Read, RepoError, Repository, UnitOfWork, Write};
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
    /// An operator command does not apply to the saga as it stands.
    #[error("{0}")]
    Operator(String),
}

/// What an operator does to a saga left `failed`.
#[derive(Clone, Debug, PartialEq)]
pub enum OperatorAction {
    /// Try the failed step (or its compensation) again, with a fresh retry budget.
    Retry {
        /// Why.
        reason: String,
    },
    /// Declare the failed forward step done without it; the saga goes on.
    Skip {
        /// The step.
        step: String,
        /// Why.
        reason: String,
    },
    /// Declare the step whose compensation failed undone by hand; compensation goes on.
    MarkCompensated {
        /// The step.
        step: String,
        /// Why.
        reason: String,
    },
}

impl OperatorAction {
    /// The event that records this action, when it applies to `state`.
    pub fn event(&self, state: &SagaState) -> Result<EventKind, String> {
        if state.status != SagaStatus::Failed {
            return Err(format!(
                "saga `{}` is {}, not failed: operator commands apply only to failed sagas",
                state.saga_id,
                status_name(state.status)
            ));
        }
        let failed = state.failed_step.clone().unwrap_or_default();
        let failed_status = state.step(&failed).map(|s| s.status).unwrap_or_default();
        let check_step = |step: &str, wanted: StepStatus, what: &str| {
            if step != failed {
                return Err(format!(
                    "step `{step}` is not the failed step (`{failed}` is){}",
                    if what.is_empty() { "" } else { what }
                ));
            }
            if failed_status != wanted {
                return Err(match wanted {
                    StepStatus::Failed => format!(
                        "step `{step}` failed while compensating: use `mark-compensated` or `retry`"
                    ),
                    _ => format!("step `{step}` failed going forward: use `skip` or `retry`"),
                });
            }
            Ok(())
        };
        match self {
            OperatorAction::Retry { reason } => Ok(EventKind::SagaRetried {
                step: failed,
                reason: reason.clone(),
            }),
            OperatorAction::Skip { step, reason } => {
                check_step(step, StepStatus::Failed, "")?;
                Ok(EventKind::StepSkippedByOperator {
                    step: step.clone(),
                    reason: reason.clone(),
                })
            }
            OperatorAction::MarkCompensated { step, reason } => {
                check_step(step, StepStatus::CompensationFailed, "")?;
                Ok(EventKind::StepMarkedCompensated {
                    step: step.clone(),
                    reason: reason.clone(),
                })
            }
        }
    }
}

use super::read_model::status_name;

/// Runs sagas.
#[derive(Clone)]
pub struct Runner {
    repo: Arc<dyn Repository>,
    events: Arc<dyn EventStore>,
    handlers: Arc<HandlerRegistry>,
    faults: Faults,
    /// Set when the event store also holds the repositories: writes and outcome
    /// events commit together.
    atomic: Option<Arc<dyn TransactionalStore>>,
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
            atomic: None,
        }
    }

    /// A runner whose event store also holds its repositories: a built-in step's
    /// writes and its outcome event commit in one transaction.
    pub fn transactional<S: TransactionalStore + 'static>(
        store: Arc<S>,
        handlers: Arc<HandlerRegistry>,
    ) -> Runner {
        Runner {
            repo: store.clone(),
            events: store.clone(),
            handlers,
            faults: Faults::default(),
            atomic: Some(store),
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
        self.run_with_id(saga, Uuid::now_v7(), input).await
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
        let state = Runner::checked_fold(saga, events)?;
        let saga_id = state.saga_id;
        let mut run = Run::new(self, saga, state, saga_id);
        run.drive().await?;
        Ok(run.state)
    }

    /// Apply an operator's action to a failed saga (appending its event, with the
    /// reason), then continue the saga from there.
    pub async fn operate(
        &self,
        saga: &Saga,
        events: &[Event],
        action: &OperatorAction,
    ) -> Result<SagaState, RunError> {
        let state = Runner::checked_fold(saga, events)?;
        let kind = action.event(&state).map_err(RunError::Operator)?;
        let saga_id = state.saga_id;
        let mut run = Run::new(self, saga, state, saga_id);
        run.append(kind).await?;
        run.drive().await?;
        Ok(run.state)
    }

    fn checked_fold(saga: &Saga, events: &[Event]) -> Result<SagaState, RunError> {
        let state = fold(events);
        if state.definition_hash != saga.definition_hash {
            return Err(RunError::Mismatch(format!(
                "saga `{}` was started with definition {}, not {}",
                state.saga_id, state.definition_hash, saga.definition_hash
            )));
        }
        Ok(state)
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

    fn event(&self, kind: EventKind) -> Event {
        Event {
            saga_id: self.saga_id,
            seq: self.state.last_seq + 1,
            at: Utc::now(),
            kind,
        }
    }

    async fn append(&mut self, kind: EventKind) -> Result<(), StoreError> {
        let event = self.event(kind);
        self.runner.events.append(&event).await?;
        self.state.apply(&event);
        Ok(())
    }

    /// Append `kind` together with the writes of `unit`: in one transaction when the
    /// store holds the repositories, else the writes first, then the event.
    /// `Ok(Err(_))`: the writes do not apply; nothing was written or appended.
    async fn append_with(
        &mut self,
        kind: EventKind,
        unit: UnitOfWork,
    ) -> Result<Result<(), Failure>, StoreError> {
        if unit.writes.is_empty() {
            self.append(kind).await?;
            return Ok(Ok(()));
        }
        let event = self.event(kind);
        match &self.runner.atomic {
            Some(store) => match store.append_with_writes(&event, &unit).await {
                Ok(()) => {}
                Err(CommitError::Repo(e)) => return Ok(Err(e.into())),
                Err(CommitError::Store(e)) => return Err(e),
            },
            None => {
                if let Err(e) = self.runner.repo.commit(&unit) {
                    return Ok(Err(e.into()));
                }
                self.runner.events.append(&event).await?;
            }
        }
        self.state.apply(&event);
        Ok(Ok(()))
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
        if let Some(when) = &step.when
            && self.state.step(&name).is_none()
        {
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
        let (mut attempt, base) = self
            .state
            .step(&name)
            .map_or((0, 0), |s| (s.attempts, s.attempt_base));
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
            let f: Failure = match result {
                Ok((output, unit)) => {
                    let kind = EventKind::StepSucceeded {
                        step: name.clone(),
                        attempt,
                        output,
                    };
                    match self.append_with(kind, unit).await? {
                        Ok(()) => return Ok(Next::Continue),
                        Err(f) => f,
                    }
                }
                Err(f) => f,
            };
            {
                {
                    let will_retry = f.retryable
                        && step.retry.allows_another(attempt - base)
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
                            .backoff(attempt - base, self.jitter_unit(&name, attempt)),
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
    async fn attempt(&self, step: &Step, attempt: u32) -> Result<(Json, UnitOfWork), Failure> {
        if let Some(req) = &step.require {
            self.check_require(req)?;
        }
        let key = format!("{}/{}", self.saga_id, step.name);
        let (result, unit) = self
            .with_timeout(
                self.attempt_timeout(step, false),
                self.perform(&step.action, &step.name, attempt, key),
            )
            .await?;
        if step.outputs.is_empty() {
            return Ok((result, unit));
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
        Ok((Json::Object(out), unit))
    }

    async fn with_timeout<T>(
        &self,
        timeout: Option<Duration>,
        fut: impl std::future::Future<Output = Result<T, Failure>>,
    ) -> Result<T, Failure> {
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

    /// Perform an action: its result, and the writes to commit with its outcome
    /// (built-in repository actions write nothing until then).
    async fn perform(
        &self,
        action: &Action,
        step: &str,
        attempt: u32,
        key: String,
    ) -> Result<(Json, UnitOfWork), Failure> {
        let no_writes = |key: String| UnitOfWork {
            key,
            ..UnitOfWork::default()
        };
        let scope = self.scope();
        let ctx = &self.ctx;
        let eval = |v| scope.eval(v, ctx).map_err(Failure::permanent);
        let repo = &*self.runner.repo;
        match action {
            Action::Noop => Ok((Json::Null, no_writes(key))),
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
                let result = handler.call(call).await.map_err(|e| Failure {
                    message: e.message,
                    retryable: e.retryable,
                    timed_out: false,
                })?;
                Ok((result, UnitOfWork::default()))
            }
            Action::Get { repo: name, id } => {
                let id = id_string(eval(id)?, "id").map_err(Failure::permanent)?;
                match repo.get(name, &id)? {
                    Some(e) => Ok((Json::Object(e), no_writes(key))),
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
                    reads: Vec::new(),
                };
                Ok((Json::Object(entity), unit))
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
                        id: id.clone(),
                        patch,
                    }],
                    reads: vec![Read {
                        repo: name.clone(),
                        id,
                        entity: Some(current),
                    }],
                };
                Ok((Json::Object(merged), unit))
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
                let reads = match expect {
                    Some(_) => vec![Read {
                        repo: name.clone(),
                        id: id.clone(),
                        entity: current.clone(),
                    }],
                    None => Vec::new(),
                };
                let unit = UnitOfWork {
                    key,
                    writes: vec![Write::Delete {
                        repo: name.clone(),
                        id,
                    }],
                    reads,
                };
                Ok((current.map_or(Json::Null, Json::Object), unit))
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
                let list = found
                    .into_iter()
                    .map(|(id, mut e)| {
                        e.entry("id").or_insert(Json::String(id));
                        Json::Object(e)
                    })
                    .collect();
                Ok((Json::Array(list), no_writes(key)))
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
        let (mut attempt, base) = self.state.step(&name).map_or((0, 0), |s| {
            (s.compensation_attempts, s.compensation_attempt_base)
        });
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
            let f: Failure = match result {
                Ok((_, unit)) => {
                    let kind = EventKind::StepCompensated {
                        step: name.clone(),
                        attempt,
                    };
                    match self.append_with(kind, unit).await? {
                        Ok(()) => return Ok(Ok(())),
                        Err(f) => f,
                    }
                }
                Err(f) => f,
            };
            {
                {
                    let will_retry = f.retryable && policy.allows_another(attempt - base);
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
                    let wait = policy.backoff(attempt - base, self.jitter_unit(&name, attempt));
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
