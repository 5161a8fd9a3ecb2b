//! Handlers: actions written in Rust, registered by name, called by `handler:` steps.
//!
//! Every call gets the saga id, the step name, the attempt number and an
//! idempotency key `"{saga_id}/{step}"` that stays the same across retries and
//! restarts, so a handler can deduplicate its side effects.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value as Json;
use uuid::Uuid;

/// What a handler receives.
#[derive(Clone, Debug, PartialEq)]
pub struct HandlerCall {
    /// The saga.
    pub saga_id: Uuid,
    /// The step.
    pub step: String,
    /// 1-based attempt of this action (or of this compensation).
    pub attempt: u32,
    /// The call undoes the step (its `compensate:` action).
    pub compensating: bool,
    /// `"{saga_id}/{step}"` for actions, `"{saga_id}/{step}/compensate"` for compensations.
    pub idempotency_key: String,
    /// The step's `args`, computed from the input and earlier outputs.
    pub args: Json,
}

/// A handler's failure.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct HandlerError {
    /// Why.
    pub message: String,
    /// Another attempt may succeed (false: fail the step now).
    pub retryable: bool,
}

impl HandlerError {
    /// A failure worth retrying.
    pub fn transient(message: impl Into<String>) -> HandlerError {
        HandlerError {
            message: message.into(),
            retryable: true,
        }
    }
    /// A failure no retry will fix.
    pub fn permanent(message: impl Into<String>) -> HandlerError {
        HandlerError {
            message: message.into(),
            retryable: false,
        }
    }
}

/// The future a handler returns.
pub type HandlerFuture = Pin<Box<dyn Future<Output = Result<Json, HandlerError>> + Send>>;

type AsyncFn = dyn Fn(HandlerCall) -> HandlerFuture + Send + Sync;
type SyncFn = dyn Fn(HandlerCall) -> Result<Json, HandlerError> + Send + Sync;

/// A registered handler.
#[derive(Clone)]
pub(crate) enum Handler {
    /// Awaited on the runtime.
    Async(Arc<AsyncFn>),
    /// Run on the blocking pool, so a hung one can be timed out.
    Sync(Arc<SyncFn>),
}

/// Handlers by name.
#[derive(Clone, Default)]
pub struct HandlerRegistry {
    handlers: BTreeMap<String, Handler>,
}

impl HandlerRegistry {
    /// An empty registry.
    pub fn new() -> HandlerRegistry {
        HandlerRegistry::default()
    }

    /// A registry with the standard handlers: `echo` (returns its args) and
    /// `sleep` (waits `args.ms` milliseconds, then returns its args).
    pub fn with_builtins() -> HandlerRegistry {
        let mut r = HandlerRegistry::new();
        r.register_sync("echo", |call| Ok(call.args));
        r.register_async("sleep", |call| async move {
            let ms = call.args.get("ms").and_then(Json::as_u64).unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(ms.min(86_400_000))).await;
            Ok(call.args)
        });
        r
    }

    /// Register an async handler (replacing one of the same name).
    pub fn register_async<F, Fut>(&mut self, name: &str, f: F)
    where
        F: Fn(HandlerCall) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Json, HandlerError>> + Send + 'static,
    {
        let f: Arc<AsyncFn> = Arc::new(move |call| Box::pin(f(call)));
        self.handlers.insert(name.to_string(), Handler::Async(f));
    }

    /// Register a blocking handler (replacing one of the same name); it runs on
    /// tokio's blocking pool.
    pub fn register_sync<F>(&mut self, name: &str, f: F)
    where
        F: Fn(HandlerCall) -> Result<Json, HandlerError> + Send + Sync + 'static,
    {
        self.handlers
            .insert(name.to_string(), Handler::Sync(Arc::new(f)));
    }

    /// Registered names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.handlers.keys().map(String::as_str)
    }

    /// True when `name` is registered.
    pub fn contains(&self, name: &str) -> bool {
        self.handlers.contains_key(name)
    }

    pub(crate) fn get(&self, name: &str) -> Option<&Handler> {
        self.handlers.get(name)
    }
}

impl Handler {
    /// Call the handler.
    pub(crate) async fn call(&self, call: HandlerCall) -> Result<Json, HandlerError> {
        match self {
            Handler::Async(f) => f(call).await,
            Handler::Sync(f) => {
                let f = f.clone();
                match tokio::task::spawn_blocking(move || f(call)).await {
                    Ok(result) => result,
                    Err(e) => Err(HandlerError::transient(format!("handler crashed: {e}"))),
                }
            }
        }
    }
}
