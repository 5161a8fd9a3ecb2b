//! What operators do to a saga left `failed`: each action is one event, with the
//! operator's reason, legal only where the transition table allows it.

use super::events::EventKind;
use super::state::{SagaState, SagaStatus, StepStatus};

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
                state.status.name()
            ));
        }
        let failed = state
            .stuck
            .as_ref()
            .map(|p| p.step.clone())
            .unwrap_or_default();
        let failed_status = state.step_status(&failed);
        let check_step = |step: &str, wanted: StepStatus| {
            if step != failed {
                return Err(format!(
                    "step `{step}` is not the failed step (`{failed}` is)"
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
                step: failed.into(),
                reason: reason.clone(),
            }),
            OperatorAction::Skip { step, reason } => {
                check_step(step, StepStatus::Failed)?;
                Ok(EventKind::StepSkippedByOperator {
                    step: step.into(),
                    reason: reason.clone(),
                })
            }
            OperatorAction::MarkCompensated { step, reason } => {
                check_step(step, StepStatus::CompensationFailed)?;
                Ok(EventKind::StepMarkedCompensated {
                    step: step.into(),
                    reason: reason.clone(),
                })
            }
        }
    }
}
