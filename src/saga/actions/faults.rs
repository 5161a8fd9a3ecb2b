//! Fault injection as a layer: make a step's action or compensation fail a number
//! of times before the wrapped executor is called (`--fail`, `--fail-compensation`).

use std::collections::HashMap;
use std::sync::Arc;

use super::{ActionCall, ActionError, ActionFuture, Executor, Layer, Phase};

/// Which attempts fail.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Faults {
    /// Step name → number of attempts that fail (`None`: every attempt).
    pub actions: HashMap<String, Option<u32>>,
    /// Step name → number of compensation attempts that fail (`None`: every attempt).
    pub compensations: HashMap<String, Option<u32>>,
}

impl Faults {
    /// True when `attempt` of `step`'s `phase` is to fail.
    pub fn hits(&self, step: &str, phase: Phase, attempt: u32) -> bool {
        let map = match phase {
            Phase::Action => &self.actions,
            Phase::Compensation => &self.compensations,
        };
        map.get(step)
            .is_some_and(|t| t.is_none_or(|t| attempt <= t))
    }

    /// True when nothing is injected.
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty() && self.compensations.is_empty()
    }
}

/// The layer that injects [`Faults`].
#[derive(Clone, Debug)]
pub struct FaultLayer {
    faults: Arc<Faults>,
}

impl FaultLayer {
    /// Inject `faults`.
    pub fn new(faults: Faults) -> FaultLayer {
        FaultLayer {
            faults: Arc::new(faults),
        }
    }
}

impl Layer for FaultLayer {
    fn wrap(&self, inner: Arc<dyn Executor>) -> Arc<dyn Executor> {
        Arc::new(Faulty {
            faults: self.faults.clone(),
            inner,
        })
    }
}

struct Faulty {
    faults: Arc<Faults>,
    inner: Arc<dyn Executor>,
}

impl Executor for Faulty {
    fn execute<'a>(&'a self, call: &'a ActionCall<'a>) -> ActionFuture<'a> {
        if self.faults.hits(call.step, call.phase, call.attempt) {
            let what = match call.phase {
                Phase::Action => "injected failure",
                Phase::Compensation => "injected compensation failure",
            };
            let e = ActionError::transient(format!("{what} (attempt {})", call.attempt));
            return Box::pin(std::future::ready(Err(e)));
        }
        self.inner.execute(call)
    }
}
