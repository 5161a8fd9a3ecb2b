//! Events: every transition of a saga, appended to its log.
//!
//! The state of a saga is a fold over its events ([`super::state`]). Stored events
//! carry a schema version (`"v"`): [`encode`] writes the current one, [`decode`]
//! reads any older one through [`upcast`], so a log written by an older rulesaga is
//! read by a newer one. Every store encodes and decodes through these two functions.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use uuid::Uuid;

/// The schema version of events this rulesaga writes.
///
/// - 1: the first layout (no `v` field).
/// - 2: `saga_started` carries `key` and `rules`; failures carry `conflict` and
///   `retry_after_ms`.
pub const EVENT_VERSION: u32 = 2;

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

/// A step's name, shared rather than copied by the definition, its events and the
/// state (a step's events name it several times, on the hot path of every run).
#[derive(Clone, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StepName(Arc<str>);

/// Names cloned from one definition share their text: equal at a pointer's glance.
impl PartialEq for StepName {
    fn eq(&self, other: &StepName) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || *self.0 == *other.0
    }
}

/// By the text, as equality is.
impl std::hash::Hash for StepName {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl StepName {
    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for StepName {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for StepName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for StepName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for StepName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Spelled as the text is, so debug output reads as it did with plain strings.
impl std::fmt::Debug for StepName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&*self.0, f)
    }
}

impl From<&str> for StepName {
    fn from(s: &str) -> StepName {
        StepName(Arc::from(s))
    }
}

impl From<String> for StepName {
    fn from(s: String) -> StepName {
        StepName(Arc::from(s))
    }
}

impl From<&String> for StepName {
    fn from(s: &String) -> StepName {
        StepName(Arc::from(s.as_str()))
    }
}

impl From<StepName> for String {
    fn from(s: StepName) -> String {
        s.0.to_string()
    }
}

impl PartialEq<str> for StepName {
    fn eq(&self, other: &str) -> bool {
        *self.0 == *other
    }
}

impl PartialEq<&str> for StepName {
    fn eq(&self, other: &&str) -> bool {
        *self.0 == **other
    }
}

impl PartialEq<String> for StepName {
    fn eq(&self, other: &String) -> bool {
        *self.0 == **other
    }
}

impl PartialEq<StepName> for str {
    fn eq(&self, other: &StepName) -> bool {
        *self == *other.0
    }
}

impl PartialEq<StepName> for &str {
    fn eq(&self, other: &StepName) -> bool {
        **self == *other.0
    }
}

impl PartialEq<StepName> for String {
    fn eq(&self, other: &StepName) -> bool {
        **self == *other.0
    }
}

/// A rule file pinned with a saga's definition: kept in the store under its hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinnedRules {
    /// The file's name as given when the saga started (for messages).
    pub name: String,
    /// SHA-256 of its text, hex.
    pub hash: String,
}

/// What `saga_started` records.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SagaStart {
    /// The saga's name.
    pub saga: String,
    /// The saga's version, when it declares one.
    pub version: Option<u32>,
    /// SHA-256 of the definition text, hex.
    pub definition_hash: String,
    /// The validated input.
    pub input: Json,
    /// The caller's business key: one saga of this name per key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Rule files the definition was validated with, pinned by hash.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<PinnedRules>,
}

/// What happened.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// The run began: the definition is pinned by its hash (the text is kept in the
    /// store), with the rule files it uses. Boxed: it is the largest event by far
    /// and happens once per saga, while every event is moved several times per step.
    SagaStarted(Box<SagaStart>),
    /// An attempt of a step's action is about to run (written before the call).
    StepStarted {
        /// Step name.
        step: StepName,
        /// 1-based attempt.
        attempt: u32,
    },
    /// The action succeeded.
    StepSucceeded {
        /// Step name.
        step: StepName,
        /// Attempt that succeeded.
        attempt: u32,
        /// The step's output, visible to later steps as `steps.<name>`.
        output: Json,
    },
    /// An attempt failed (or the step failed before an attempt could start).
    StepFailed {
        /// Step name.
        step: StepName,
        /// Attempt that failed.
        attempt: u32,
        /// Why.
        error: String,
        /// The attempt timed out: its effects may have happened.
        timed_out: bool,
        /// Another attempt follows.
        will_retry: bool,
        /// It lost an optimistic-concurrency conflict: retried at once, not counted
        /// against the retry policy.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        conflict: bool,
        /// The wait the failure asked for before the next attempt.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
    /// The step's `when` condition was false.
    StepSkipped {
        /// Step name.
        step: StepName,
    },
    /// A step failed for good: the saga starts undoing completed steps.
    CompensationStarted {
        /// The step that failed.
        failed_step: StepName,
        /// Its error.
        reason: String,
    },
    /// An attempt of a step's compensation is about to run.
    StepCompensationStarted {
        /// Step name.
        step: StepName,
        /// 1-based attempt.
        attempt: u32,
    },
    /// The step was undone.
    StepCompensated {
        /// Step name.
        step: StepName,
        /// Attempt that succeeded.
        attempt: u32,
    },
    /// An attempt of a compensation failed.
    CompensationFailed {
        /// Step name.
        step: StepName,
        /// Attempt that failed.
        attempt: u32,
        /// Why.
        error: String,
        /// Another attempt follows.
        will_retry: bool,
        /// It lost an optimistic-concurrency conflict (not counted against the policy).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        conflict: bool,
        /// The wait the failure asked for before the next attempt.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
    /// Every step completed or was skipped.
    SagaCompleted,
    /// Every completed step that needed undoing was undone.
    SagaCompensated,
    /// The saga stopped and needs an operator: a compensation kept failing, or a step
    /// after the pivot could not finish.
    SagaFailed {
        /// The step that could not be completed or compensated.
        step: StepName,
        /// Why.
        reason: String,
    },
    /// An operator asked a failed saga to try its failed step (or compensation) again,
    /// with a fresh retry budget.
    SagaRetried {
        /// The step tried again.
        step: StepName,
        /// Why, in the operator's words.
        reason: String,
    },
    /// An operator declared a failed step done without it: the saga goes on forward.
    StepSkippedByOperator {
        /// Step name.
        step: StepName,
        /// Why, in the operator's words.
        reason: String,
    },
    /// An operator declared a step undone by hand: the saga goes on compensating.
    StepMarkedCompensated {
        /// Step name.
        step: StepName,
        /// Why, in the operator's words.
        reason: String,
    },
}

/// The type of an event, without its data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventType {
    /// `saga_started`
    SagaStarted,
    /// `step_started`
    StepStarted,
    /// `step_succeeded`
    StepSucceeded,
    /// `step_failed`
    StepFailed,
    /// `step_skipped`
    StepSkipped,
    /// `compensation_started`
    CompensationStarted,
    /// `step_compensation_started`
    StepCompensationStarted,
    /// `step_compensated`
    StepCompensated,
    /// `compensation_failed`
    CompensationFailed,
    /// `saga_completed`
    SagaCompleted,
    /// `saga_compensated`
    SagaCompensated,
    /// `saga_failed`
    SagaFailed,
    /// `saga_retried`
    SagaRetried,
    /// `step_skipped_by_operator`
    StepSkippedByOperator,
    /// `step_marked_compensated`
    StepMarkedCompensated,
}

impl EventType {
    /// The type's name, as in the JSON form (`step_started`).
    pub fn name(self) -> &'static str {
        match self {
            EventType::SagaStarted => "saga_started",
            EventType::StepStarted => "step_started",
            EventType::StepSucceeded => "step_succeeded",
            EventType::StepFailed => "step_failed",
            EventType::StepSkipped => "step_skipped",
            EventType::CompensationStarted => "compensation_started",
            EventType::StepCompensationStarted => "step_compensation_started",
            EventType::StepCompensated => "step_compensated",
            EventType::CompensationFailed => "compensation_failed",
            EventType::SagaCompleted => "saga_completed",
            EventType::SagaCompensated => "saga_compensated",
            EventType::SagaFailed => "saga_failed",
            EventType::SagaRetried => "saga_retried",
            EventType::StepSkippedByOperator => "step_skipped_by_operator",
            EventType::StepMarkedCompensated => "step_marked_compensated",
        }
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl EventKind {
    /// The event's type.
    pub fn event_type(&self) -> EventType {
        match self {
            EventKind::SagaStarted(_) => EventType::SagaStarted,
            EventKind::StepStarted { .. } => EventType::StepStarted,
            EventKind::StepSucceeded { .. } => EventType::StepSucceeded,
            EventKind::StepFailed { .. } => EventType::StepFailed,
            EventKind::StepSkipped { .. } => EventType::StepSkipped,
            EventKind::CompensationStarted { .. } => EventType::CompensationStarted,
            EventKind::StepCompensationStarted { .. } => EventType::StepCompensationStarted,
            EventKind::StepCompensated { .. } => EventType::StepCompensated,
            EventKind::CompensationFailed { .. } => EventType::CompensationFailed,
            EventKind::SagaCompleted => EventType::SagaCompleted,
            EventKind::SagaCompensated => EventType::SagaCompensated,
            EventKind::SagaFailed { .. } => EventType::SagaFailed,
            EventKind::SagaRetried { .. } => EventType::SagaRetried,
            EventKind::StepSkippedByOperator { .. } => EventType::StepSkippedByOperator,
            EventKind::StepMarkedCompensated { .. } => EventType::StepMarkedCompensated,
        }
    }

    /// The event's type name, as in its JSON form (`step_started`).
    pub fn type_name(&self) -> &'static str {
        self.event_type().name()
    }

    /// The step the event is about, if any.
    pub fn step(&self) -> Option<&StepName> {
        match self {
            EventKind::StepStarted { step, .. }
            | EventKind::StepSucceeded { step, .. }
            | EventKind::StepFailed { step, .. }
            | EventKind::StepSkipped { step }
            | EventKind::StepCompensationStarted { step, .. }
            | EventKind::StepCompensated { step, .. }
            | EventKind::CompensationFailed { step, .. }
            | EventKind::SagaFailed { step, .. }
            | EventKind::SagaRetried { step, .. }
            | EventKind::StepSkippedByOperator { step, .. }
            | EventKind::StepMarkedCompensated { step, .. } => Some(step),
            EventKind::CompensationStarted { failed_step, .. } => Some(failed_step),
            EventKind::SagaStarted(_) | EventKind::SagaCompleted | EventKind::SagaCompensated => {
                None
            }
        }
    }

    /// True for the events that end a run (`saga_completed`, `saga_compensated`,
    /// `saga_failed`).
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            EventKind::SagaCompleted | EventKind::SagaCompensated | EventKind::SagaFailed { .. }
        )
    }
}

/// The stored form: the event with its schema version.
#[derive(Serialize)]
struct Versioned<'a> {
    v: u32,
    #[serde(flatten)]
    event: &'a Event,
}

/// Why a stored event could not be read.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum DecodeError {
    /// Not JSON, or not the shape of any event version.
    #[error("unreadable event: {0}")]
    Invalid(String),
    /// Written by a newer rulesaga.
    #[error("event schema version {found} is newer than this rulesaga reads ({EVENT_VERSION})")]
    TooNew {
        /// The version found.
        found: u64,
    },
}

/// An event as stored: JSON with `"v": EVENT_VERSION`.
pub fn encode(event: &Event) -> String {
    serde_json::to_string(&Versioned {
        v: EVENT_VERSION,
        event,
    })
    .unwrap_or_default()
}

/// A stored event of any version, upcast to the current one.
pub fn decode(text: &str) -> Result<Event, DecodeError> {
    let mut json: Json =
        serde_json::from_str(text).map_err(|e| DecodeError::Invalid(e.to_string()))?;
    let version = match &mut json {
        Json::Object(m) => match m.remove("v") {
            None => 1,
            Some(v) => v
                .as_u64()
                .ok_or_else(|| DecodeError::Invalid(format!("version `{v}`")))?,
        },
        _ => return Err(DecodeError::Invalid("not a JSON object".into())),
    };
    if version > u64::from(EVENT_VERSION) {
        return Err(DecodeError::TooNew { found: version });
    }
    let json = upcast(version, json)?;
    serde_json::from_value(json).map_err(|e| DecodeError::Invalid(e.to_string()))
}

/// Bring an event of schema `version` to [`EVENT_VERSION`], one version at a time.
///
/// This is the hook for changes to the event shapes: when a field is renamed or its
/// meaning changes, the next version adds a step here, and every store reads old
/// logs through it.
pub fn upcast(version: u64, mut json: Json) -> Result<Json, DecodeError> {
    let mut v = version;
    while v < u64::from(EVENT_VERSION) {
        json = match v {
            1 => v1_to_v2(json),
            other => return Err(DecodeError::Invalid(format!("unknown version {other}"))),
        };
        v += 1;
    }
    Ok(json)
}

/// Version 2 made explicit what version 1 left out: no business key, no pinned rules,
/// no conflicts.
fn v1_to_v2(mut json: Json) -> Json {
    if let Json::Object(m) = &mut json {
        match m.get("type").and_then(Json::as_str) {
            Some("saga_started") => {
                m.entry("key").or_insert(Json::Null);
                m.entry("rules").or_insert(Json::Array(Vec::new()));
            }
            Some("step_failed" | "compensation_failed") => {
                m.entry("conflict").or_insert(Json::Bool(false));
            }
            _ => {}
        }
    }
    json
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn events_of_version_1_are_upcast() {
        let v1 = r#"{"saga_id":"0193a8a4-0000-7000-8000-000000000001","seq":1,"at":"2026-11-20T10:00:00Z","type":"saga_started","saga":"s","version":null,"definition_hash":"ab","input":{}}"#;
        let e = decode(v1).unwrap();
        assert!(matches!(
            e.kind,
            EventKind::SagaStarted(ref s) if s.key.is_none() && s.rules.is_empty()
        ));
        let again = decode(&encode(&e)).unwrap();
        assert_eq!(again, e);
        assert!(encode(&e).contains(r#""v":2"#));
    }

    #[test]
    fn events_of_a_newer_version_are_refused() {
        let v9 = r#"{"v":9,"saga_id":"0193a8a4-0000-7000-8000-000000000001","seq":1,"at":"2026-11-20T10:00:00Z","type":"saga_completed"}"#;
        assert_eq!(decode(v9), Err(DecodeError::TooNew { found: 9 }));
    }
}
