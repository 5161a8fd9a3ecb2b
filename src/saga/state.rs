//! The state of a saga, folded from its events through an explicit transition table.
//!
//! [`SagaState::apply`] is the only way a state changes. It first checks the event
//! against the tables below ([`SAGA_TRANSITIONS`], [`STEP_TRANSITIONS`]) and the
//! attempt numbering; an event that is illegal where it stands (a corrupted or
//! hand-edited log, a bug) is an error naming its sequence number, never folded into
//! a wrong state. Everything a resumed run needs is here, derived from the log alone:
//! the input, the outputs, the compensation order, when the saga started (its
//! deadline is absolute), when each step last failed (its backoff is too).

use chrono::{DateTime, Duration as TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use uuid::Uuid;

use super::events::{Event, EventKind, EventType, PinnedRules, StepName};

/// Status of a saga.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
    /// Every status, in the order a saga usually meets them.
    pub const ALL: [SagaStatus; 5] = [
        SagaStatus::Running,
        SagaStatus::Completed,
        SagaStatus::Compensating,
        SagaStatus::Compensated,
        SagaStatus::Failed,
    ];

    /// True once the saga will not move by itself any more.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            SagaStatus::Completed | SagaStatus::Compensated | SagaStatus::Failed
        )
    }

    /// True when the saga can never move again (not even by an operator).
    pub fn is_terminal(self) -> bool {
        matches!(self, SagaStatus::Completed | SagaStatus::Compensated)
    }

    /// The status's name, as in JSON (`compensating`).
    pub fn name(self) -> &'static str {
        match self {
            SagaStatus::Running => "running",
            SagaStatus::Completed => "completed",
            SagaStatus::Compensating => "compensating",
            SagaStatus::Compensated => "compensated",
            SagaStatus::Failed => "failed",
        }
    }

    /// The status named `name`.
    pub fn parse(name: &str) -> Option<SagaStatus> {
        SagaStatus::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// Status of one step.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// Never started.
    #[default]
    NotStarted,
    /// An attempt is running (or was, when the process stopped).
    Running,
    /// Between attempts, after a failed attempt (of its action, or of its compensation
    /// when the saga is compensating).
    Retrying,
    /// The action succeeded.
    Completed,
    /// Its `when` was false, or an operator skipped it.
    Skipped,
    /// Failed for good.
    Failed,
    /// A compensation attempt is running, or failed and will be retried.
    Compensating,
    /// Undone.
    Compensated,
    /// Its compensation failed for good.
    CompensationFailed,
}

impl StepStatus {
    /// The status's name, as in JSON (`not_started`).
    pub fn name(self) -> &'static str {
        match self {
            StepStatus::NotStarted => "not_started",
            StepStatus::Running => "running",
            StepStatus::Retrying => "retrying",
            StepStatus::Completed => "completed",
            StepStatus::Skipped => "skipped",
            StepStatus::Failed => "failed",
            StepStatus::Compensating => "compensating",
            StepStatus::Compensated => "compensated",
            StepStatus::CompensationFailed => "compensation_failed",
        }
    }
}

/// One step as the events tell it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StepState {
    /// Step name.
    pub name: StepName,
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
    /// Action attempts that lost an optimistic-concurrency conflict (not counted
    /// against the retry policy).
    #[serde(skip_serializing_if = "is_zero")]
    pub conflicts: u32,
    /// Compensation attempts started.
    #[serde(skip_serializing_if = "is_zero")]
    pub compensation_attempts: u32,
    /// Compensation attempts that lost a conflict.
    #[serde(skip_serializing_if = "is_zero")]
    pub compensation_conflicts: u32,
    /// Last compensation error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compensation_error: Option<String>,
    /// Action attempts before an operator's retry (the retry policy counts from here).
    #[serde(skip_serializing_if = "is_zero")]
    pub attempt_base: u32,
    /// Compensation attempts before an operator's retry.
    #[serde(skip_serializing_if = "is_zero")]
    pub compensation_attempt_base: u32,
    /// Why an operator skipped it or marked it compensated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operator_reason: Option<String>,
    /// When its last attempt (of the action or the compensation) failed, and the wait
    /// the failure asked for: the next attempt is due after its backoff from here.
    #[serde(skip)]
    pub last_failure: Option<LastFailure>,
}

/// When an attempt failed, and how.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LastFailure {
    /// The failed event's time.
    pub at: DateTime<Utc>,
    /// It lost an optimistic-concurrency conflict.
    pub conflict: bool,
    /// The wait the failure asked for (an HTTP `Retry-After`).
    pub retry_after: Option<std::time::Duration>,
    /// It was a compensation attempt.
    pub compensation: bool,
}

impl StepState {
    /// Action attempts that count against the step's retry policy.
    pub fn counted_attempts(&self) -> u32 {
        self.attempts
            .saturating_sub(self.attempt_base)
            .saturating_sub(self.conflicts)
    }

    /// Compensation attempts that count against the compensation retry policy.
    pub fn counted_compensation_attempts(&self) -> u32 {
        self.compensation_attempts
            .saturating_sub(self.compensation_attempt_base)
            .saturating_sub(self.compensation_conflicts)
    }
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
    /// The caller's business key, when it gave one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Hash of the pinned definition.
    pub definition_hash: String,
    /// Rule files pinned with the definition.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<PinnedRules>,
    /// When the saga started (its deadline counts from here).
    pub started_at: DateTime<Utc>,
    /// Where the saga stands.
    pub status: SagaStatus,
    /// The input.
    pub input: Json,
    /// Steps in the order they were first seen.
    pub steps: Vec<StepState>,
    /// Steps that completed or timed out, in that order: the compensation order reversed.
    pub done_order: Vec<StepName>,
    /// The forward failure that started the compensation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<Problem>,
    /// Why the saga is `failed` (cleared when an operator acts).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stuck: Option<Problem>,
    /// The status the saga failed from (an operator's retry returns to it).
    #[serde(skip)]
    failed_from: Option<SagaStatus>,
    /// Sequence number of the last event applied.
    pub last_seq: u64,
}

/// A step and why it failed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    /// The step.
    pub step: String,
    /// Why.
    pub reason: String,
}

/// Where a checked event takes the saga, and the step it concerns (by index, when
/// the state has it already).
struct Target {
    saga: SagaStatus,
    step: Option<StepStatus>,
    step_idx: Option<usize>,
}

/// An event that is not legal in the state it is applied to.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("event {seq} (`{event}`) of saga `{saga_id}` is not legal here: {reason}")]
pub struct TransitionError {
    /// The saga.
    pub saga_id: Uuid,
    /// The event's sequence number.
    pub seq: u64,
    /// The event's type.
    pub event: &'static str,
    /// What is wrong.
    pub reason: String,
}

/// Where a saga stands for the transition table: before its first event, or a status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SagaPhase {
    /// No event yet.
    New,
    /// A status.
    Is(SagaStatus),
}

/// The target of a saga transition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SagaTarget {
    /// This status.
    To(SagaStatus),
    /// Back to the status the saga failed from (an operator's retry).
    Resume,
}

/// Every legal saga-level transition: (from, event type, to). An event type not listed
/// for the saga's phase is illegal there.
pub const SAGA_TRANSITIONS: &[(SagaPhase, EventType, SagaTarget)] = {
    use EventType as E;
    use SagaPhase::{Is, New};
    use SagaStatus::{Compensated, Compensating, Completed, Failed, Running};
    use SagaTarget::{Resume, To};
    &[
        (New, E::SagaStarted, To(Running)),
        (Is(Running), E::StepStarted, To(Running)),
        (Is(Running), E::StepSucceeded, To(Running)),
        (Is(Running), E::StepFailed, To(Running)),
        (Is(Running), E::StepSkipped, To(Running)),
        (Is(Running), E::CompensationStarted, To(Compensating)),
        (Is(Running), E::SagaCompleted, To(Completed)),
        (Is(Running), E::SagaFailed, To(Failed)),
        (
            Is(Compensating),
            E::StepCompensationStarted,
            To(Compensating),
        ),
        (Is(Compensating), E::StepCompensated, To(Compensating)),
        (Is(Compensating), E::CompensationFailed, To(Compensating)),
        (Is(Compensating), E::SagaCompensated, To(Compensated)),
        (Is(Compensating), E::SagaFailed, To(Failed)),
        (Is(Failed), E::SagaRetried, Resume),
        (Is(Failed), E::StepSkippedByOperator, To(Running)),
        (Is(Failed), E::StepMarkedCompensated, To(Compensating)),
    ]
};

/// Every legal step-level transition: (from, event type, to). `step_failed` and
/// `compensation_failed` go to the retrying status when the event says another
/// attempt follows, else to the failed one (`to` lists the final case).
pub const STEP_TRANSITIONS: &[(StepStatus, EventType, StepStatus)] = {
    use EventType as E;
    use StepStatus::*;
    &[
        (NotStarted, E::StepStarted, Running),
        (Retrying, E::StepStarted, Running),
        // the attempt did not finish (the process stopped): the next one starts
        (Running, E::StepStarted, Running),
        (Running, E::StepSucceeded, Completed),
        (Running, E::StepFailed, Failed),
        // failures without an attempt: `when` could not be evaluated, the deadline passed
        (NotStarted, E::StepFailed, Failed),
        (Retrying, E::StepFailed, Failed),
        (NotStarted, E::StepSkipped, Skipped),
        (Completed, E::StepCompensationStarted, Compensating),
        // a step whose attempt timed out may have had its effects
        (Failed, E::StepCompensationStarted, Compensating),
        (Retrying, E::StepCompensationStarted, Compensating),
        (Compensating, E::StepCompensationStarted, Compensating),
        (Compensating, E::StepCompensated, Compensated),
        (Compensating, E::CompensationFailed, CompensationFailed),
        (Failed, E::SagaRetried, Retrying),
        (CompensationFailed, E::SagaRetried, Retrying),
        (Failed, E::StepSkippedByOperator, Skipped),
        (CompensationFailed, E::StepMarkedCompensated, Compensated),
    ]
};

/// Event types, saga phases and step statuses as array indices.
const N_EVENT_TYPES: usize = EventType::StepMarkedCompensated as usize + 1;
const N_PHASES: usize = 1 + SagaStatus::ALL.len();
const N_STEP_STATUSES: usize = StepStatus::CompensationFailed as usize + 1;

fn phase_index(p: SagaPhase) -> usize {
    match p {
        SagaPhase::New => 0,
        SagaPhase::Is(s) => 1 + s as usize,
    }
}

/// The tables above as arrays indexed by (from, event type), built once: the lookup of
/// every event is two array reads, and the tables stay the only definition.
struct Tables {
    saga: [[Option<SagaTarget>; N_EVENT_TYPES]; N_PHASES],
    step: [[Option<StepStatus>; N_EVENT_TYPES]; N_STEP_STATUSES],
}

static TABLES: std::sync::LazyLock<Tables> = std::sync::LazyLock::new(|| {
    let mut t = Tables {
        saga: [[None; N_EVENT_TYPES]; N_PHASES],
        step: [[None; N_EVENT_TYPES]; N_STEP_STATUSES],
    };
    for (from, ty, to) in SAGA_TRANSITIONS {
        t.saga[phase_index(*from)][*ty as usize] = Some(*to);
    }
    for (from, ty, to) in STEP_TRANSITIONS {
        t.step[*from as usize][*ty as usize] = Some(*to);
    }
    t
});

impl SagaState {
    /// The output of the step named `name`, once it succeeded (`steps.<name>` in
    /// expressions).
    pub fn output(&self, name: &str) -> Option<&Json> {
        self.step(name).and_then(|s| s.output.as_ref())
    }

    /// The step named `name`.
    pub fn step(&self, name: &str) -> Option<&StepState> {
        // from the end: the step an event concerns is nearly always the last one seen
        self.steps.iter().rev().find(|s| s.name == name)
    }

    /// The status of the step named `name` (`not_started` when never seen).
    pub fn step_status(&self, name: &str) -> StepStatus {
        self.step(name).map(|s| s.status).unwrap_or_default()
    }

    /// Where the saga stands for the transition table.
    pub fn phase(&self) -> SagaPhase {
        if self.last_seq == 0 {
            SagaPhase::New
        } else {
            SagaPhase::Is(self.status)
        }
    }

    /// The step that failed and why, as `list` and `status` show it: why a `failed`
    /// saga stopped, or the failure a compensating or compensated saga undid.
    pub fn problem(&self) -> Option<&Problem> {
        match self.status {
            SagaStatus::Failed => self.stuck.as_ref(),
            SagaStatus::Compensating | SagaStatus::Compensated => self.cause.as_ref(),
            SagaStatus::Running | SagaStatus::Completed => None,
        }
    }

    /// The saga's deadline: its start plus `deadline`.
    pub fn deadline(&self, deadline: Option<std::time::Duration>) -> Option<DateTime<Utc>> {
        let d = TimeDelta::from_std(deadline?).ok()?;
        self.started_at.checked_add_signed(d)
    }

    fn new_step(&mut self, name: &StepName) -> usize {
        self.steps.push(StepState {
            name: name.clone(),
            ..StepState::default()
        });
        self.steps.len() - 1
    }

    /// Check that `event` is legal here, without changing anything.
    pub fn check(&self, event: &Event) -> Result<(), TransitionError> {
        self.target(event).map(|_| ())
    }

    /// Apply one event: the new state depends only on the old one and the event. An
    /// illegal event changes nothing and is an error.
    pub fn apply(&mut self, event: &Event) -> Result<(), TransitionError> {
        let target = self.target(event)?;
        self.mutate(event, target);
        Ok(())
    }

    /// The saga status and step status after `event`, or why it is illegal.
    fn target(&self, event: &Event) -> Result<Target, TransitionError> {
        let kind = &event.kind;
        let ty = kind.event_type();
        let name = ty.name();
        let err = |reason: String| TransitionError {
            saga_id: event.saga_id,
            seq: event.seq,
            event: name,
            reason,
        };
        if event.seq != self.last_seq + 1 {
            return Err(err(format!(
                "expected sequence number {}",
                self.last_seq + 1
            )));
        }
        if self.last_seq > 0 && event.saga_id != self.saga_id {
            return Err(err(format!("it belongs to saga `{}`", event.saga_id)));
        }
        let phase = self.phase();
        let saga_to = TABLES.saga[phase_index(phase)][ty as usize]
            .map(|to| match to {
                SagaTarget::To(s) => s,
                SagaTarget::Resume => self.failed_from.unwrap_or(SagaStatus::Running),
            })
            .ok_or_else(|| {
                err(match phase {
                    SagaPhase::New => "the saga has not started".to_string(),
                    SagaPhase::Is(s) => format!("the saga is {}", s.name()),
                })
            })?;
        let Some(step) = kind.step() else {
            return Ok(Target {
                saga: saga_to,
                step: None,
                step_idx: None,
            });
        };
        // from the end: the step an event concerns is nearly always the last one seen
        let step_idx = self.steps.iter().rposition(|s| s.name == *step);
        let state = step_idx.map(|i| &self.steps[i]);
        let from = state.map(|s| s.status).unwrap_or_default();
        // saga-level events that name a step without changing it
        let names = match kind {
            EventKind::CompensationStarted { .. } => Some(StepStatus::Failed),
            EventKind::SagaFailed { .. } if self.status == SagaStatus::Running => {
                Some(StepStatus::Failed)
            }
            EventKind::SagaFailed { .. } => Some(StepStatus::CompensationFailed),
            _ => None,
        };
        if let Some(wanted) = names {
            if from != wanted {
                return Err(err(format!(
                    "step `{step}` is {}, not {}",
                    from.name(),
                    wanted.name()
                )));
            }
            return Ok(Target {
                saga: saga_to,
                step: None,
                step_idx,
            });
        }
        let listed = TABLES.step[from as usize][ty as usize];
        let Some(mut step_to) = listed else {
            return Err(err(format!("step `{step}` is {}", from.name())));
        };
        let attempts = state.map_or(0, |s| s.attempts);
        let comp_attempts = state.map_or(0, |s| s.compensation_attempts);
        let numbering = |got: u32, want: &[u32]| {
            if want.contains(&got) {
                Ok(())
            } else {
                Err(err(format!(
                    "step `{step}` expects attempt {}, not {got}",
                    want.first().copied().unwrap_or(0)
                )))
            }
        };
        match kind {
            EventKind::StepStarted { attempt, .. } => numbering(*attempt, &[attempts + 1])?,
            EventKind::StepSucceeded { attempt, .. } => numbering(*attempt, &[attempts])?,
            EventKind::StepFailed {
                attempt,
                will_retry,
                ..
            } => {
                if from == StepStatus::Running {
                    numbering(*attempt, &[attempts])?;
                    if *will_retry {
                        step_to = StepStatus::Retrying;
                    }
                } else if *will_retry {
                    return Err(err(format!(
                        "step `{step}` has no attempt running to retry"
                    )));
                } else {
                    // logs of version 1 numbered a failure before an attempt as the next one
                    numbering(*attempt, &[attempts, attempts + 1])?;
                }
            }
            EventKind::StepCompensationStarted { attempt, .. } => {
                if !self.done_order.iter().any(|d| d == step) {
                    return Err(err(format!(
                        "step `{step}` never completed, so there is nothing to undo"
                    )));
                }
                numbering(*attempt, &[comp_attempts + 1])?;
            }
            EventKind::StepCompensated { attempt, .. } => {
                numbering(*attempt, &[comp_attempts])?;
            }
            EventKind::CompensationFailed {
                attempt,
                will_retry,
                ..
            } => {
                numbering(*attempt, &[comp_attempts])?;
                if *will_retry {
                    step_to = StepStatus::Compensating;
                }
            }
            EventKind::SagaRetried { step, .. }
            | EventKind::StepSkippedByOperator { step, .. }
            | EventKind::StepMarkedCompensated { step, .. } => {
                let failed = self.stuck.as_ref().map(|p| p.step.as_str());
                if failed != Some(step.as_str()) {
                    return Err(err(format!(
                        "step `{step}` is not the step the saga failed at"
                    )));
                }
            }
            _ => {}
        }
        Ok(Target {
            saga: saga_to,
            step: Some(step_to),
            step_idx,
        })
    }

    /// Change the state by a checked event.
    fn mutate(&mut self, event: &Event, target: Target) {
        let Target {
            saga: saga_to,
            step: step_to,
            step_idx,
        } = target;
        self.last_seq = event.seq;
        let before = self.status;
        self.status = saga_to;
        let at = event.at;
        let step_idx = match (step_idx, event.kind.step()) {
            (Some(i), _) => Some(i),
            (None, Some(name)) => Some(self.new_step(name)),
            (None, None) => None,
        };
        if let (Some(i), Some(to)) = (step_idx, step_to) {
            self.steps[i].status = to;
        }
        match &event.kind {
            EventKind::SagaStarted(s) => {
                self.saga_id = event.saga_id;
                self.saga = s.saga.clone();
                self.key = s.key.clone();
                self.definition_hash = s.definition_hash.clone();
                self.rules = s.rules.clone();
                self.input = s.input.clone();
                self.started_at = at;
            }
            EventKind::StepStarted { attempt, .. } => {
                if let Some(i) = step_idx {
                    self.steps[i].attempts = *attempt;
                }
            }
            EventKind::StepSucceeded { step, output, .. } => {
                // a step that timed out before is in the compensation order already
                let listed = step_idx.is_some_and(|i| self.steps[i].timed_out);
                if let Some(i) = step_idx {
                    self.steps[i].output = Some(output.clone());
                }
                if !listed {
                    self.done_order.push(step.clone());
                }
            }
            EventKind::StepFailed {
                step,
                error,
                timed_out,
                conflict,
                retry_after_ms,
                ..
            } => {
                let newly_possibly_done =
                    *timed_out && step_idx.is_some_and(|i| !self.steps[i].timed_out);
                if let Some(i) = step_idx {
                    let s = &mut self.steps[i];
                    s.error = Some(error.clone());
                    s.timed_out |= *timed_out;
                    s.conflicts += u32::from(*conflict);
                    s.last_failure = Some(LastFailure {
                        at,
                        conflict: *conflict,
                        retry_after: retry_after_ms.map(std::time::Duration::from_millis),
                        compensation: false,
                    });
                }
                if newly_possibly_done {
                    self.done_order.push(step.clone());
                }
            }
            EventKind::CompensationStarted {
                failed_step,
                reason,
            } => {
                self.cause = Some(Problem {
                    step: failed_step.to_string(),
                    reason: reason.clone(),
                });
            }
            EventKind::StepCompensationStarted { attempt, .. } => {
                if let Some(i) = step_idx {
                    self.steps[i].compensation_attempts = *attempt;
                }
            }
            EventKind::CompensationFailed {
                error,
                conflict,
                retry_after_ms,
                ..
            } => {
                if let Some(i) = step_idx {
                    let s = &mut self.steps[i];
                    s.compensation_error = Some(error.clone());
                    s.compensation_conflicts += u32::from(*conflict);
                    s.last_failure = Some(LastFailure {
                        at,
                        conflict: *conflict,
                        retry_after: retry_after_ms.map(std::time::Duration::from_millis),
                        compensation: true,
                    });
                }
            }
            EventKind::SagaFailed { step, reason } => {
                self.failed_from = Some(before);
                self.stuck = Some(Problem {
                    step: step.to_string(),
                    reason: reason.clone(),
                });
            }
            EventKind::SagaRetried { .. } => {
                if let Some(i) = step_idx {
                    let s = &mut self.steps[i];
                    if self.status == SagaStatus::Compensating {
                        s.compensation_attempt_base = s
                            .compensation_attempts
                            .saturating_sub(s.compensation_conflicts);
                    } else {
                        s.attempt_base = s.attempts.saturating_sub(s.conflicts);
                    }
                    s.last_failure = None;
                }
                self.stuck = None;
            }
            EventKind::StepSkippedByOperator { reason, .. }
            | EventKind::StepMarkedCompensated { reason, .. } => {
                if let Some(i) = step_idx {
                    self.steps[i].operator_reason = Some(reason.clone());
                }
                self.stuck = None;
            }
            EventKind::StepSkipped { .. }
            | EventKind::StepCompensated { .. }
            | EventKind::SagaCompleted
            | EventKind::SagaCompensated => {}
        }
    }
}

/// The state of a saga: a fold over its events, or the first illegal one.
pub fn fold<'a>(events: impl IntoIterator<Item = &'a Event>) -> Result<SagaState, TransitionError> {
    let mut state = SagaState::default();
    for e in events {
        state.apply(e)?;
    }
    Ok(state)
}
