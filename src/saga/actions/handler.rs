//! Registered handlers as an executor: a `handler:` action calls the function
//! registered under its name with the step's computed `args`.

use std::sync::Arc;

use serde_json::Value as Json;

use super::{ActionCall, ActionError, ActionFuture, ActionOutput, ErrorClass, Executor, Phase};
use crate::saga::handlers::{HandlerCall, HandlerRegistry};
use crate::saga::model::Action;

/// Calls registered handlers.
#[derive(Clone)]
pub struct Handlers {
    registry: Arc<HandlerRegistry>,
}

impl Handlers {
    /// The handlers of `registry`.
    pub fn new(registry: Arc<HandlerRegistry>) -> Handlers {
        Handlers { registry }
    }
}

impl Executor for Handlers {
    fn execute<'a>(&'a self, call: &'a ActionCall<'a>) -> ActionFuture<'a> {
        Box::pin(async move {
            let Action::Handler { name, args } = call.action else {
                return Err(ActionError::permanent(format!(
                    "`{}` is not a handler action",
                    call.action.summary()
                )));
            };
            let handler = self
                .registry
                .get(name)
                .ok_or_else(|| ActionError::permanent(format!("unknown handler `{name}`")))?
                .clone();
            let hcall = HandlerCall {
                saga_id: call.saga_id,
                step: call.step.to_string(),
                attempt: call.attempt,
                compensating: call.phase == Phase::Compensation,
                idempotency_key: call.idempotency_key(),
                args: call.evaluate(args)?.unwrap_or(Json::Null),
            };
            let result = handler.call(hcall).await.map_err(|e| {
                let class = if e.retryable {
                    ErrorClass::Transient
                } else {
                    ErrorClass::Permanent
                };
                ActionError::new(class, e.message)
            })?;
            Ok(ActionOutput::result(result))
        })
    }
}
