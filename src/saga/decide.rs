//! Deciding what a saga does next, as a pure function of its state and definition.
//!
//! [`decide`] looks at the folded state and the validated saga and returns one
//! [`Command`]: append an event, run an attempt (of an action or a compensation), or
//! stop. The runner only executes commands; it never decides. [`will_retry`] is the
//! other decision: whether a failed attempt is followed by another. Both read time
//! only through `now`, and everything else from the log, so a resumed saga decides
//! exactly as the process that stopped would have: the deadline counts from
//! `saga_started`, a backoff from the failure it follows.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::actions::{ErrorClass, Phase};
use super::events::EventKind;
use super::model::{RetryPolicy, Saga, Step, Undo};
use super::state::{SagaState, SagaStatus, StepState, StepStatus};
use super::store::lease::after;

/// Conflicts retried per step and phase before a conflict counts as an ordinary
/// transient failure. Generous: a conflict means another saga made progress.
pub const MAX_CONFLICTS: u32 = 1000;

/// The longest pause before retrying after a conflict.
pub const MAX_CONFLICT_PAUSE: Duration = Duration::from_millis(20);

/// What the runner does next.
#[derive(Debug)]
pub enum Command<'s> {
    /// Append this event; no action is involved.
    Append(EventKind),
    /// Run one attempt.
    Attempt(Attempt<'s>),
    /// Nothing to do: the saga is final (or failed, waiting for an operator).
    Stop,
}

/// One attempt to run.
#[derive(Debug)]
pub struct Attempt<'s> {
    /// The step.
    pub step: &'s Step,
    /// Its action or its compensation.
    pub phase: Phase,
    /// The attempt's number (1-based, per phase).
    pub number: u32,
    /// Not before this time (the backoff after the failure it follows).
    pub not_before: Option<DateTime<Utc>>,
    /// The step's `when` must be evaluated first (its first sight).
    pub check_when: bool,
}

/// The next command for a saga that stands at `state`.
pub fn decide<'s>(state: &SagaState, saga: &'s Saga, now: DateTime<Utc>) -> Command<'s> {
    match state.status {
        SagaStatus::Running => forward(state, saga, now),
        SagaStatus::Compensating => backward(state, saga),
        SagaStatus::Completed | SagaStatus::Compensated | SagaStatus::Failed => Command::Stop,
    }
}

fn forward<'s>(state: &SagaState, saga: &'s Saga, now: DateTime<Utc>) -> Command<'s> {
    let deadline = state.deadline(saga.deadline);
    // steps start in order and a running saga leaves a step behind only once it is
    // done, so the scan starts at the last step seen (when the log is in the
    // definition's order, as every log this runtime writes is)
    let last = state.steps.len().saturating_sub(1);
    let start = match (state.steps.get(last), saga.steps.get(last)) {
        (Some(seen), Some(def)) if seen.name == def.name => last,
        _ => 0,
    };
    for (idx, step) in saga.steps.iter().enumerate().skip(start) {
        let st = match state.steps.get(idx) {
            Some(s) if s.name == step.name => Some(s),
            _ => state.step(&step.name),
        };
        let status = st.map(|s| s.status).unwrap_or_default();
        match status {
            StepStatus::Completed | StepStatus::Skipped => continue,
            StepStatus::Failed => {
                let reason = st.and_then(|s| s.error.clone()).unwrap_or_default();
                return Command::Append(if saga.pivot.is_some_and(|p| idx > p) {
                    EventKind::SagaFailed {
                        step: step.name.clone(),
                        reason: format!("step after the pivot could not complete: {reason}"),
                    }
                } else {
                    EventKind::CompensationStarted {
                        failed_step: step.name.clone(),
                        reason,
                    }
                });
            }
            StepStatus::NotStarted | StepStatus::Running | StepStatus::Retrying => {
                if deadline.is_some_and(|d| now >= d) {
                    return Command::Append(EventKind::StepFailed {
                        step: step.name.clone(),
                        attempt: st.map_or(0, |s| s.attempts),
                        error: "the saga's deadline passed".to_string(),
                        timed_out: false,
                        will_retry: false,
                        conflict: false,
                        retry_after_ms: None,
                    });
                }
                // a backoff that ends after the deadline ends at it
                let not_before = (status == StepStatus::Retrying)
                    .then(|| st.and_then(|s| due(s, &step.retry, state, Phase::Action)))
                    .flatten()
                    .map(|t| deadline.map_or(t, |d| t.min(d)));
                return Command::Attempt(Attempt {
                    step,
                    phase: Phase::Action,
                    number: st.map_or(0, |s| s.attempts) + 1,
                    not_before,
                    check_when: status == StepStatus::NotStarted && step.when.is_some(),
                });
            }
            // a forward saga has no step in a compensation status (the transition
            // table keeps them out); stop rather than guess
            StepStatus::Compensating | StepStatus::Compensated | StepStatus::CompensationFailed => {
                return Command::Stop;
            }
        }
    }
    Command::Append(EventKind::SagaCompleted)
}

fn backward<'s>(state: &SagaState, saga: &'s Saga) -> Command<'s> {
    for name in state.done_order.iter().rev() {
        let Some(step) = saga.steps.iter().find(|s| &s.name == name) else {
            continue;
        };
        if !matches!(step.undo, Undo::Compensate(_)) {
            continue;
        }
        let Some(st) = state.step(name) else {
            continue;
        };
        match st.status {
            StepStatus::Compensated => continue,
            StepStatus::CompensationFailed => {
                let reason = st.compensation_error.clone().unwrap_or_default();
                return Command::Append(EventKind::SagaFailed {
                    step: name.clone(),
                    reason: format!("compensation of `{name}` failed: {reason}"),
                });
            }
            _ => {
                let retrying = st.last_failure.is_some_and(|f| f.compensation);
                return Command::Attempt(Attempt {
                    step,
                    phase: Phase::Compensation,
                    number: st.compensation_attempts + 1,
                    not_before: retrying
                        .then(|| due(st, &saga.compensation_retry, state, Phase::Compensation))
                        .flatten(),
                    check_when: false,
                });
            }
        }
    }
    Command::Append(EventKind::SagaCompensated)
}

/// When the attempt after `st`'s last failure is due.
fn due(
    st: &StepState,
    policy: &RetryPolicy,
    state: &SagaState,
    phase: Phase,
) -> Option<DateTime<Utc>> {
    let failure = st.last_failure?;
    let (number, counted) = match phase {
        Phase::Action => (st.attempts, st.counted_attempts()),
        Phase::Compensation => (st.compensation_attempts, st.counted_compensation_attempts()),
    };
    let unit = jitter_unit(state, &st.name, number);
    let wait = if failure.conflict {
        conflict_pause(unit, conflicts(st, phase))
    } else {
        policy.backoff(counted.max(1), unit)
    };
    // a service's `Retry-After` is honoured up to the policy's longest wait
    let wait = failure
        .retry_after
        .map_or(wait, |r| wait.max(r.min(policy.max_backoff)));
    Some(after(failure.at, wait))
}

fn conflicts(st: &StepState, phase: Phase) -> u32 {
    match phase {
        Phase::Action => st.conflicts,
        Phase::Compensation => st.compensation_conflicts,
    }
}

/// A short pause after the `n`-th conflict, spread by `unit` in 0..1, growing to
/// [`MAX_CONFLICT_PAUSE`]: sagas that collided do not collide again in lockstep.
fn conflict_pause(unit: f64, n: u32) -> Duration {
    let cap = MAX_CONFLICT_PAUSE.min(Duration::from_millis(u64::from(n.min(20))));
    cap.mul_f64(unit.clamp(0.0, 1.0))
}

/// A number in 0..1 that is the same for the same saga, step and attempt.
fn jitter_unit(state: &SagaState, step: &str, attempt: u32) -> f64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in state
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

/// Whether a failed attempt (number `attempt` of `phase`, failing with `class`) is
/// followed by another.
///
/// A conflict is retried until [`MAX_CONFLICTS`], without spending the policy; a
/// permanent failure never is; anything else while the policy allows another attempt
/// and, going forward, the saga's deadline has not passed.
pub fn will_retry(
    state: &SagaState,
    saga: &Saga,
    step: &Step,
    phase: Phase,
    class: ErrorClass,
    now: DateTime<Utc>,
) -> bool {
    let st = state.step(&step.name);
    let (policy, counted, conflicts) = match phase {
        Phase::Action => (
            &step.retry,
            st.map_or(0, StepState::counted_attempts),
            st.map_or(0, |s| s.conflicts),
        ),
        Phase::Compensation => (
            &saga.compensation_retry,
            st.map_or(0, StepState::counted_compensation_attempts),
            st.map_or(0, |s| s.compensation_conflicts),
        ),
    };
    let before_deadline =
        phase == Phase::Compensation || state.deadline(saga.deadline).is_none_or(|d| now < d);
    match class {
        ErrorClass::Permanent => false,
        ErrorClass::Conflict if conflicts < MAX_CONFLICTS => before_deadline,
        ErrorClass::Conflict | ErrorClass::Transient | ErrorClass::TimedOut => {
            before_deadline && policy.allows_another(counted)
        }
    }
}

/// The timeout of an attempt: the step's, capped (going forward) by what is left of
/// the saga's deadline.
pub fn attempt_timeout(
    state: &SagaState,
    saga: &Saga,
    step: &Step,
    phase: Phase,
    now: impl FnOnce() -> DateTime<Utc>,
) -> Option<Duration> {
    // the clock is read only for a saga with a deadline
    let remaining = match phase {
        Phase::Action => state
            .deadline(saga.deadline)
            .map(|d| (d - now()).to_std().unwrap_or(Duration::ZERO)),
        Phase::Compensation => None,
    };
    match (step.timeout, remaining) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
