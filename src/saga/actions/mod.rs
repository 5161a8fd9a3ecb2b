//! Action executors: what runs a step's action or compensation.
//!
//! The runner hands every attempt to one [`Executor`] as an [`ActionCall`] and gets
//! back an [`ActionOutput`] (the result, and the repository writes to commit with the
//! outcome event) or an [`ActionError`] with its [`ErrorClass`] (which decides
//! retries). Executors: [`Builtin`] (the repository verbs), [`Handlers`] (functions
//! registered from Rust), [`Http`] (requests to the saga's services, with their
//! breakers and bulkheads), and [`Dispatch`], which routes each action to one of them.
//! A [`Layer`] wraps any executor in another ([`FaultLayer`] injects failures; timeouts,
//! circuit breakers and bulkheads are layers too), so new kinds of actions and policies
//! never touch the runner.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value as Json;
use uuid::Uuid;

use super::model::{Action, ValueExpr};
use super::scope::Scope;
use crate::repo::{RepoError, UnitOfWork};
use crate::rules::Context;

mod builtin;
mod faults;
mod handler;
mod http;

pub use builtin::Builtin;
pub use faults::{FaultLayer, Faults};
pub use handler::Handlers;
pub use http::{
    BreakerState, Endpoints, Http, MAX_BODY_BYTES, ResolveError, ServiceStatus, Services, Vars,
    process_vars,
};

/// Which half of a step an attempt runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// The step's action.
    Action,
    /// Its compensation.
    Compensation,
}

/// One attempt of an action, as an executor sees it.
pub struct ActionCall<'a> {
    /// The saga.
    pub saga_id: Uuid,
    /// The saga's name.
    pub saga: &'a str,
    /// The step.
    pub step: &'a str,
    /// Action or compensation.
    pub phase: Phase,
    /// 1-based attempt of this phase.
    pub attempt: u32,
    /// What to do.
    pub action: &'a Action,
    pub(crate) scope: Scope<'a>,
    pub(crate) ctx: &'a Context,
    /// The run's HTTP services.
    pub(crate) endpoints: &'a Endpoints,
}

impl ActionCall<'_> {
    /// `saga_id/step` for actions, `saga_id/step/compensate` for compensations: the
    /// same across retries and restarts, so the effect can be deduplicated.
    pub fn idempotency_key(&self) -> String {
        match self.phase {
            Phase::Action => format!("{}/{}", self.saga_id, self.step),
            Phase::Compensation => format!("{}/{}/compensate", self.saga_id, self.step),
        }
    }

    /// The saga's input.
    pub fn input(&self) -> &Json {
        self.scope.input
    }

    /// Compute a value of the action (`None`: missing).
    pub fn evaluate(&self, v: &ValueExpr) -> Result<Option<Json>, ActionError> {
        self.scope.eval(v, self.ctx).map_err(ActionError::permanent)
    }
}

/// What an attempt produced.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ActionOutput {
    /// The action's result (`result` in `outputs`).
    pub result: Json,
    /// Repository writes, committed with the outcome event.
    pub writes: UnitOfWork,
}

impl ActionOutput {
    /// A result with no writes.
    pub fn result(result: Json) -> ActionOutput {
        ActionOutput {
            result,
            writes: UnitOfWork::default(),
        }
    }
}

/// How a failure behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// Another attempt may succeed: retried by the step's policy.
    Transient,
    /// No retry will fix it: the step fails now.
    Permanent,
    /// An optimistic-concurrency conflict: retried at once with fresh reads, without
    /// spending the retry policy (up to [`crate::saga::decide::MAX_CONFLICTS`]).
    Conflict,
    /// The attempt did not answer in time: its effects may have happened (the step is
    /// compensated if the saga is undone); retried by the policy.
    TimedOut,
}

/// Why an attempt failed.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ActionError {
    /// Why, for people.
    pub message: String,
    /// How it behaves.
    pub class: ErrorClass,
    /// The earliest the next attempt may start (a service's `Retry-After`).
    pub retry_after: Option<Duration>,
}

impl ActionError {
    /// A failure of `class`.
    pub fn new(class: ErrorClass, message: impl Into<String>) -> ActionError {
        ActionError {
            message: message.into(),
            class,
            retry_after: None,
        }
    }
    /// A failure worth retrying.
    pub fn transient(message: impl Into<String>) -> ActionError {
        ActionError::new(ErrorClass::Transient, message)
    }
    /// A failure no retry fixes.
    pub fn permanent(message: impl Into<String>) -> ActionError {
        ActionError::new(ErrorClass::Permanent, message)
    }
}

impl From<RepoError> for ActionError {
    fn from(e: RepoError) -> ActionError {
        let class = match &e {
            RepoError::Changed { .. } => ErrorClass::Conflict,
            RepoError::Storage(_) => ErrorClass::Transient,
            _ => ErrorClass::Permanent,
        };
        ActionError::new(class, e.to_string())
    }
}

/// The future an executor returns.
pub type ActionFuture<'a> =
    Pin<Box<dyn Future<Output = Result<ActionOutput, ActionError>> + Send + 'a>>;

/// Runs actions.
pub trait Executor: Send + Sync {
    /// Run one attempt.
    fn execute<'a>(&'a self, call: &'a ActionCall<'a>) -> ActionFuture<'a>;
}

/// Wraps an executor in another (tower's `Layer`).
pub trait Layer: Send + Sync {
    /// The wrapped executor.
    fn wrap(&self, inner: Arc<dyn Executor>) -> Arc<dyn Executor>;
}

/// Routes each action to the executor for its kind: handlers to [`Handlers`], HTTP
/// requests to [`Http`], the repository verbs (and `noop`) to [`Builtin`].
pub struct Dispatch {
    /// The repository verbs.
    pub builtin: Builtin,
    /// Registered handlers.
    pub handlers: Handlers,
    /// HTTP requests.
    pub http: Http,
}

impl Executor for Dispatch {
    fn execute<'a>(&'a self, call: &'a ActionCall<'a>) -> ActionFuture<'a> {
        match call.action {
            Action::Handler { .. } => self.handlers.execute(call),
            Action::Http(_) => self.http.execute(call),
            _ => self.builtin.execute(call),
        }
    }
}

/// `inner` wrapped in `layers`, the first the outermost.
pub fn stack(inner: Arc<dyn Executor>, layers: &[Arc<dyn Layer>]) -> Arc<dyn Executor> {
    layers.iter().rev().fold(inner, |acc, l| l.wrap(acc))
}
