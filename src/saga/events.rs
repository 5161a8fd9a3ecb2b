//! Events: every transition of a saga, appended to an [`EventStore`].
//!
//! The state of a saga is [`fold`] over its events and nothing else; the runner
//! keeps its state by applying each event it appends ([`SagaState::apply`]), so
//! a saga rebuilt from its log is the saga that was running.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use uuid::Uuid;

use crate::repo::{RepoError, Repository, UnitOfWork};

/// One event of one saga.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// The saga.
    pub saga_id: Uuid,
    /// Position in the saga's log: 1, 2, 3, ... with no gaps.
    pub seq: u64,
    /// When it was appended.
    pub at: DateTime<Utc>,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// What happened.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// The run began: the definition is pinned by its hash (the text is kept with
    /// [`EventStore::save_definition`]).
    SagaStarted {
        /// The saga's name.
        saga: String,
        /// The saga's version, when it declares one.
        version: Option<u32>,
        /// SHA-256 of the definition text, hex.
        definition_hash: String,
        /// The validated input.
        input: Json,
    },
    /// An attempt of a step's action is about to run (written before the call).
    StepStarted {
        /// Step name.
        step: String,
        /// 1-based attempt.
        attempt: u32,
    },
    /// The action succeeded.
    StepSucceeded {
        /// Step name.
        step: String,
        /// Attempt that succeeded.
        attempt: u32,
        /// The step's output, visible to later steps as `steps.<name>`.
        output: Json,
    },
    /// An attempt failed.
    StepFailed {
        /// Step name.
        step: String,
        /// Attempt that failed.
        attempt: u32,
        /// Why.
        error: String,
        /// The attempt timed out: its effects may have happened.
        timed_out: bool,
        /// Another attempt follows.
        will_retry: bool,
    },
    /// The step's `when` condition was false.
    StepSkipped {
        /// Step name.
        step: String,
    },
    /// A step failed for good: the saga starts undoing completed steps.
    CompensationStarted {
        /// The step that failed.
        failed_step: String,
        /// Its error.
        reason: String,
    },
    /// An attempt of a step's compensation is about to run.
    StepCompensationStarted {
        /// Step name.
        step: String,
        /// 1-based attempt.
        attempt: u32,
    },
    /// The step was undone.
    StepCompensated {
        /// Step name.
        step: String,
        /// Attempt that succeeded.
        attempt: u32,
    },
    /// An attempt of a compensation failed.
    CompensationFailed {
        /// Step name.
        step: String,
        /// Attempt that failed.
        attempt: u32,
        /// Why.
        error: String,
        /// Another attempt follows.
        will_retry: bool,
    },
    /// Every step completed or was skipped.
    SagaCompleted,
    /// Every completed step that needed undoing was undone.
    SagaCompensated,
    /// The saga stopped and needs an operator: a compensation kept failing, or a step
    /// after the pivot could not finish.
    SagaFailed {
        /// The step that could not be completed or compensated.
        step: String,
        /// Why.
        reason: String,
    },
    /// An operator asked a failed saga to try its failed step (or compensation) again,
    /// with a fresh retry budget.
    SagaRetried {
        /// The step tried again.
        step: String,
        /// Why, in the operator's words.
        reason: String,
    },
    /// An operator declared a failed step done without it: the saga goes on forward.
    StepSkippedByOperator {
        /// Step name.
        step: String,
        /// Why, in the operator's words.
        reason: String,
    },
    /// An operator declared a step undone by hand: the saga goes on compensating.
    StepMarkedCompensated {
        /// Step name.
        step: String,
        /// Why, in the operator's words.
        reason: String,
    },
}

impl EventKind {
    /// The event's type name, as in its JSON form (`step_started`).
    pub fn type_name(&self) -> &'static str {
        match self {
            EventKind::SagaStarted { .. } => "saga_started",
            EventKind::StepStarted { .. } => "step_started",
            EventKind::StepSucceeded { .. } => "step_succeeded",
            EventKind::StepFailed { .. } => "step_failed",
            EventKind::StepSkipped { .. } => "step_skipped",
            EventKind::CompensationStarted { .. } => "compensation_started",
            EventKind::StepCompensationStarted { .. } => "step_compensation_started",
            EventKind::StepCompensated { .. } => "step_compensated",
            EventKind::CompensationFailed { .. } => "compensation_failed",
            EventKind::SagaCompleted => "saga_completed",
            EventKind::SagaCompensated => "saga_compensated",
            EventKind::SagaFailed { .. } => "saga_failed",
            EventKind::SagaRetried { .. } => "saga_retried",
            EventKind::StepSkippedByOperator { .. } => "step_skipped_by_operator",
            EventKind::StepMarkedCompensated { .. } => "step_marked_compensated",
        }
    }
}

/// Errors of an event store.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum StoreError {
    /// Another writer appended first: the saga's last sequence number is not the expected one.
    #[error("sequence conflict on saga `{saga_id}`: expected next {expected}, found {found}")]
    Conflict {
        /// The saga.
        saga_id: Uuid,
        /// The sequence number the caller tried to write.
        expected: u64,
        /// The next free sequence number.
        found: u64,
    },
    /// Storage failed.
    #[error("event store error: {0}")]
    Io(String),
}

/// A future returned by [`EventStore`] methods (boxed so the trait stays object safe;
/// a durable store may wait for a group commit).
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// The append-only log of every saga.
pub trait EventStore: Send + Sync {
    /// Append `event`; its `seq` must be one more than the saga's last event
    /// (1 for a new saga), else [`StoreError::Conflict`].
    fn append<'a>(&'a self, event: &'a Event) -> StoreFuture<'a, ()>;
    /// All events of one saga, in order (empty for an unknown saga).
    fn load(&self, saga_id: Uuid) -> StoreFuture<'_, Vec<Event>>;
    /// Every saga id, in the order they started.
    fn list(&self) -> StoreFuture<'_, Vec<Uuid>>;
    /// Keep a definition text under its hash (idempotent).
    fn save_definition<'a>(&'a self, hash: &'a str, text: &'a str) -> StoreFuture<'a, ()>;
    /// A definition text by hash.
    fn load_definition<'a>(&'a self, hash: &'a str) -> StoreFuture<'a, Option<String>>;
}

/// Why [`TransactionalStore::append_with_writes`] wrote nothing.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum CommitError {
    /// The store failed: the saga must stop without advancing.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The writes do not apply (missing or existing entity, a concurrent change): the
    /// attempt failed, and nothing was written.
    #[error(transparent)]
    Repo(#[from] RepoError),
}

/// The future of [`TransactionalStore::append_with_writes`].
pub type CommitFuture<'a> = Pin<Box<dyn Future<Output = Result<(), CommitError>> + Send + 'a>>;

/// An event store that also holds the runner's repositories (one database): a built-in
/// step's writes and its outcome event commit in one transaction, so recovery never
/// repeats them (exactly-once effects for built-in steps).
///
/// The runner uses it when built with [`crate::saga::Runner::transactional`]; with
/// separate stores ([`crate::saga::Runner::new`]) it commits the writes first, then
/// appends the event (a crash in between repeats the step on recovery).
pub trait TransactionalStore: EventStore + Repository {
    /// Apply every write of `unit` and append `event`, in one transaction: both or
    /// neither. The event's `seq` rule is [`EventStore::append`]'s.
    fn append_with_writes<'a>(&'a self, event: &'a Event, unit: &'a UnitOfWork)
    -> CommitFuture<'a>;
}

/// A function called with every appended event (the in-process message bus).
pub type Subscriber = Arc<dyn Fn(&Event) + Send + Sync>;

#[derive(Default)]
struct MemoryLog {
    sagas: HashMap<Uuid, Vec<Event>>,
    order: Vec<Uuid>,
    definitions: HashMap<String, String>,
}

/// Events kept in memory, with subscribers called on every append.
#[derive(Default)]
pub struct MemoryEventStore {
    log: Mutex<MemoryLog>,
    subscribers: Mutex<Vec<Subscriber>>,
}

impl MemoryEventStore {
    /// An empty store.
    pub fn new() -> MemoryEventStore {
        MemoryEventStore::default()
    }

    /// Call `f` with every event appended from now on, after it is stored.
    pub fn subscribe(&self, f: Subscriber) {
        lock(&self.subscribers).push(f);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl EventStore for MemoryEventStore {
    fn append<'a>(&'a self, event: &'a Event) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            {
                let mut log = lock(&self.log);
                let log = &mut *log;
                let events = match log.sagas.get_mut(&event.saga_id) {
                    Some(events) => events,
                    None => {
                        log.order.push(event.saga_id);
                        log.sagas.entry(event.saga_id).or_default()
                    }
                };
                let next = events.len() as u64 + 1;
                if event.seq != next {
                    return Err(StoreError::Conflict {
                        saga_id: event.saga_id,
                        expected: event.seq,
                        found: next,
                    });
                }
                events.push(event.clone());
            }
            let subscribers = {
                let subs = lock(&self.subscribers);
                if subs.is_empty() {
                    return Ok(());
                }
                subs.clone()
            };
            for s in &subscribers {
                s(event);
            }
            Ok(())
        })
    }

    fn load(&self, saga_id: Uuid) -> StoreFuture<'_, Vec<Event>> {
        Box::pin(async move {
            Ok(lock(&self.log)
                .sagas
                .get(&saga_id)
                .cloned()
                .unwrap_or_default())
        })
    }

    fn list(&self) -> StoreFuture<'_, Vec<Uuid>> {
        Box::pin(async move { Ok(lock(&self.log).order.clone()) })
    }

    fn save_definition<'a>(&'a self, hash: &'a str, text: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut log = lock(&self.log);
            if !log.definitions.contains_key(hash) {
                log.definitions.insert(hash.to_string(), text.to_string());
            }
            Ok(())
        })
    }

    fn load_definition<'a>(&'a self, hash: &'a str) -> StoreFuture<'a, Option<String>> {
        Box::pin(async move { Ok(lock(&self.log).definitions.get(hash).cloned()) })
    }
}

/// Status of a saga.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SagaStatus {
    /// Steps are running.
    #[default]
    Running,
    /// Every step completed or was skipped.
    Completed,
    /// A step failed; completed steps are being undone.
    Compensating,
    /// Undone after a failure.
    Compensated,
    /// Stopped; needs an operator.
    Failed,
}

impl SagaStatus {
    /// True once the saga will not move by itself any more.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            SagaStatus::Completed | SagaStatus::Compensated | SagaStatus::Failed
        )
    }
}

/// Status of one step.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// Never started.
    #[default]
    NotStarted,
    /// An attempt is running (or was, when the process stopped).
    Running,
    /// Between attempts, after a failed attempt.
    Retrying,
    /// The action succeeded.
    Completed,
    /// Its `when` was false.
    Skipped,
    /// Failed for good.
    Failed,
    /// Its compensation is running.
    Compensating,
    /// Undone.
    Compensated,
    /// Its compensation failed for good.
    CompensationFailed,
}

/// One step as the events tell it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StepState {
    /// Step name.
    pub name: String,
    /// Where it stands.
    pub status: StepStatus,
    /// Action attempts started.
    pub attempts: u32,
    /// Output, once it succeeded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<Json>,
    /// Last error, if any attempt failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Some attempt timed out, so its effects may have happened.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub timed_out: bool,
    /// Compensation attempts started.
    #[serde(skip_serializing_if = "is_zero")]
    pub compensation_attempts: u32,
    /// Last compensation error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compensation_error: Option<String>,
    /// Action attempts before an operator's retry (the retry policy counts from here).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempt_base: u32,
    /// Compensation attempts before an operator's retry.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub compensation_attempt_base: u32,
    /// Why an operator skipped it or marked it compensated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator_reason: Option<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A saga as its events tell it: the only state there is.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SagaState {
    /// The saga id.
    pub saga_id: Uuid,
    /// The saga's name.
    pub saga: String,
    /// Hash of the pinned definition.
    pub definition_hash: String,
    /// Where the saga stands.
    pub status: SagaStatus,
    /// The input.
    pub input: Json,
    /// Steps in the order they were first seen.
    pub steps: Vec<StepState>,
    /// Outputs by step name (`steps.<name>` in expressions).
    #[serde(skip)]
    pub outputs: serde_json::Map<String, Json>,
    /// Steps that completed or timed out, in that order: the compensation order reversed.
    pub done_order: Vec<String>,
    /// The step that failed or could not be compensated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_step: Option<String>,
    /// Why the saga did not complete.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Sequence number of the last event applied.
    pub last_seq: u64,
}

impl SagaState {
    /// The step named `name`, created on first sight.
    fn step_mut(&mut self, name: &str) -> &mut StepState {
        let idx = match self.steps.iter().position(|s| s.name == name) {
            Some(idx) => idx,
            None => {
                self.steps.push(StepState {
                    name: name.to_string(),
                    ..StepState::default()
                });
                self.steps.len() - 1
            }
        };
        &mut self.steps[idx]
    }

    /// The step named `name`.
    pub fn step(&self, name: &str) -> Option<&StepState> {
        self.steps.iter().find(|s| s.name == name)
    }

    /// Apply one event (pure: the new state depends only on the old one and the event).
    pub fn apply(&mut self, event: &Event) {
        self.last_seq = event.seq;
        match &event.kind {
            EventKind::SagaStarted {
                saga,
                definition_hash,
                input,
                ..
            } => {
                self.saga_id = event.saga_id;
                self.saga = saga.clone();
                self.definition_hash = definition_hash.clone();
                self.input = input.clone();
                self.status = SagaStatus::Running;
            }
            EventKind::StepStarted { step, attempt } => {
                let s = self.step_mut(step);
                s.status = StepStatus::Running;
                s.attempts = *attempt;
            }
            EventKind::StepSucceeded { step, output, .. } => {
                let s = self.step_mut(step);
                s.status = StepStatus::Completed;
                s.output = Some(output.clone());
                self.outputs.insert(step.clone(), output.clone());
                self.done_order.push(step.clone());
            }
            EventKind::StepFailed {
                step,
                error,
                timed_out,
                will_retry,
                ..
            } => {
                let s = self.step_mut(step);
                s.error = Some(error.clone());
                let newly_possibly_done = *timed_out && !s.timed_out;
                s.timed_out |= *timed_out;
                s.status = if *will_retry {
                    StepStatus::Retrying
                } else {
                    StepStatus::Failed
                };
                if newly_possibly_done {
                    self.done_order.push(step.clone());
                }
            }
            EventKind::StepSkipped { step } => {
                self.step_mut(step).status = StepStatus::Skipped;
            }
            EventKind::CompensationStarted {
                failed_step,
                reason,
            } => {
                self.status = SagaStatus::Compensating;
                self.failed_step = Some(failed_step.clone());
                self.reason = Some(reason.clone());
            }
            EventKind::StepCompensationStarted { step, attempt } => {
                let s = self.step_mut(step);
                s.status = StepStatus::Compensating;
                s.compensation_attempts = *attempt;
            }
            EventKind::StepCompensated { step, .. } => {
                self.step_mut(step).status = StepStatus::Compensated;
            }
            EventKind::CompensationFailed {
                step,
                error,
                will_retry,
                ..
            } => {
                let s = self.step_mut(step);
                s.compensation_error = Some(error.clone());
                if !*will_retry {
                    s.status = StepStatus::CompensationFailed;
                }
            }
            EventKind::SagaCompleted => self.status = SagaStatus::Completed,
            EventKind::SagaCompensated => self.status = SagaStatus::Compensated,
            EventKind::SagaFailed { step, reason } => {
                self.status = SagaStatus::Failed;
                self.failed_step = Some(step.clone());
                self.reason = Some(reason.clone());
            }
            EventKind::SagaRetried { step, .. } => {
                let s = self.step_mut(step);
                if s.status == StepStatus::CompensationFailed {
                    s.status = StepStatus::Retrying;
                    s.compensation_attempt_base = s.compensation_attempts;
                    self.status = SagaStatus::Compensating;
                } else {
                    s.status = StepStatus::Retrying;
                    s.attempt_base = s.attempts;
                    self.status = SagaStatus::Running;
                }
            }
            EventKind::StepSkippedByOperator { step, reason } => {
                let s = self.step_mut(step);
                s.status = StepStatus::Skipped;
                s.operator_reason = Some(reason.clone());
                self.status = SagaStatus::Running;
            }
            EventKind::StepMarkedCompensated { step, reason } => {
                let s = self.step_mut(step);
                s.status = StepStatus::Compensated;
                s.operator_reason = Some(reason.clone());
                self.status = SagaStatus::Compensating;
            }
        }
    }
}

/// The state of a saga: a fold over its events.
pub fn fold<'a>(events: impl IntoIterator<Item = &'a Event>) -> SagaState {
    let mut state = SagaState::default();
    for e in events {
        state.apply(e);
    }
    state
}
