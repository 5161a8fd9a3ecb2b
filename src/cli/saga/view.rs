//! How events read to people: the live view of a run and the `history` timeline.

use serde_json::{Value as Json, json};

use crate::saga::Saga;
use crate::saga::{Event, EventKind, SagaState};

/// The live step-by-step view: one line per event.
pub(super) fn live_view(e: &Event) {
    outln!("{}", event_line(e));
}

/// One event as a line of the live view (steps indented under their saga).
pub(super) fn event_line(e: &Event) -> String {
    match &e.kind {
        EventKind::SagaStarted(s) => format!("saga `{}` {} started", s.saga, e.saga_id),
        EventKind::StepStarted { step, attempt } if *attempt > 1 => {
            format!("  > {step} (attempt {attempt})")
        }
        EventKind::StepStarted { step, .. } => format!("  > {step}"),
        EventKind::StepSucceeded { step, output, .. } => {
            let mut out = output.to_string();
            if out.len() > 120 {
                let mut end = 117;
                while !out.is_char_boundary(end) {
                    end -= 1;
                }
                out.truncate(end);
                out.push_str("...");
            }
            format!("  ok {step} -> {out}")
        }
        EventKind::StepFailed {
            step,
            error,
            will_retry,
            conflict,
            ..
        } => {
            if *conflict && *will_retry {
                format!("  conflict {step}: {error}, retrying")
            } else {
                let then = if *will_retry { ", retrying" } else { "" };
                format!("  FAILED {step}: {error}{then}")
            }
        }
        EventKind::StepSkipped { step } => format!("  - {step} skipped (`when` is false)"),
        EventKind::CompensationStarted { failed_step, .. } => {
            format!("compensating after `{failed_step}` failed")
        }
        EventKind::StepCompensationStarted { step, attempt } if *attempt > 1 => {
            format!("  < undo {step} (attempt {attempt})")
        }
        EventKind::StepCompensationStarted { step, .. } => format!("  < undo {step}"),
        EventKind::StepCompensated { step, .. } => format!("  ok {step} compensated"),
        EventKind::CompensationFailed {
            step,
            error,
            will_retry,
            conflict,
            ..
        } => {
            if *conflict && *will_retry {
                format!("  conflict undo {step}: {error}, retrying")
            } else {
                let then = if *will_retry { ", retrying" } else { "" };
                format!("  FAILED undo {step}: {error}{then}")
            }
        }
        EventKind::SagaCompleted => "saga completed".to_string(),
        EventKind::SagaCompensated => "saga compensated".to_string(),
        EventKind::SagaFailed { step, reason } => {
            format!("saga FAILED at `{step}`: {reason} (needs intervention)")
        }
        EventKind::SagaRetried { step, reason } => {
            format!("operator: retry `{step}` (reason: {reason})")
        }
        EventKind::StepSkippedByOperator { step, reason } => {
            format!("operator: skip `{step}` (reason: {reason})")
        }
        EventKind::StepMarkedCompensated { step, reason } => {
            format!("operator: `{step}` marked compensated (reason: {reason})")
        }
    }
}

/// The final JSON object of a run: `saga_id`, `saga`, `status`, `failed_step`,
/// `reason`, `steps` (every step of the definition, in order) and `events`.
pub(super) fn result_json(saga: &Saga, state: &SagaState, log: &[Event]) -> Json {
    let steps: Vec<Json> = saga
        .steps()
        .iter()
        .map(|s| match state.step(s.name()) {
            Some(st) => serde_json::to_value(st).unwrap_or(Json::Null),
            None => json!({"name": s.name(), "status": "not_started", "attempts": 0}),
        })
        .collect();
    let problem = state.problem();
    json!({
        "saga_id": state.saga_id,
        "saga": state.saga,
        "key": state.key,
        "status": state.status,
        "failed_step": problem.map(|p| &p.step),
        "reason": problem.map(|p| &p.reason),
        "steps": steps,
        "events": log,
    })
}
