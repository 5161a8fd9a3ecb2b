//! The read model: one summary row per saga, for `list` queries, recovery's work
//! list and lookups by key.
//!
//! A projection of the log (queries kept apart from commands): each row is
//! [`summary`] of the saga's fold, and [`update`] says what an append changes in it,
//! so every store keeps it in the same transaction as the events it summarises and
//! can rebuild it from the log at any time.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::events::Event;
use super::state::{SagaPhase, SagaState, SagaStatus};

/// One saga as the read model lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SagaSummary {
    /// The saga.
    pub saga_id: Uuid,
    /// The saga's name.
    pub saga: String,
    /// The business key it was started with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Where it stands.
    pub status: SagaStatus,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When its last event was appended.
    pub updated_at: DateTime<Utc>,
    /// Sequence number of its last event.
    pub last_seq: u64,
    /// The step that failed: why a `failed` saga stopped, or what a compensating or
    /// compensated saga undid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_step: Option<String>,
    /// Why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The summary of a folded saga whose last event was appended at `updated_at`.
pub fn summary(state: &SagaState, updated_at: DateTime<Utc>) -> SagaSummary {
    let problem = state.problem();
    SagaSummary {
        saga_id: state.saga_id,
        saga: state.saga.clone(),
        key: state.key.clone(),
        status: state.status,
        started_at: state.started_at,
        updated_at,
        last_seq: state.last_seq,
        failed_step: problem.map(|p| p.step.clone()),
        reason: problem.map(|p| p.reason.clone()),
    }
}

/// What an append does to a saga's row.
#[derive(Clone, Debug, PartialEq)]
pub enum ProjectionUpdate {
    /// Write the whole row (a new saga, or its status changed).
    Row(Box<SagaSummary>),
    /// Only the position moved.
    Moved {
        /// The saga.
        saga_id: Uuid,
        /// Its new last sequence number.
        last_seq: u64,
        /// Its last event's time.
        updated_at: DateTime<Utc>,
    },
}

impl ProjectionUpdate {
    /// The saga the update is for.
    pub fn saga_id(&self) -> Uuid {
        match self {
            ProjectionUpdate::Row(s) => s.saga_id,
            ProjectionUpdate::Moved { saga_id, .. } => *saga_id,
        }
    }

    /// Apply the update to a stored row (`None`: the saga has none yet); the new row
    /// when the whole row changes.
    pub fn apply_to(self, row: Option<&mut SagaSummary>) -> Option<SagaSummary> {
        match (self, row) {
            (ProjectionUpdate::Row(s), _) => Some(*s),
            (
                ProjectionUpdate::Moved {
                    last_seq,
                    updated_at,
                    ..
                },
                Some(r),
            ) => {
                r.last_seq = last_seq;
                r.updated_at = updated_at;
                None
            }
            (ProjectionUpdate::Moved { .. }, None) => None,
        }
    }
}

/// The row change for `after`, the state once `last` was applied to a saga that stood
/// at `before`. The summary's fields other than the position change only with the
/// status (every event that sets or clears a failure also moves the status), so
/// most appends only move the position.
pub fn update(before: SagaPhase, after: &SagaState, last: &Event) -> ProjectionUpdate {
    if before == SagaPhase::Is(after.status) {
        ProjectionUpdate::Moved {
            saga_id: after.saga_id,
            last_seq: after.last_seq,
            updated_at: last.at,
        }
    } else {
        ProjectionUpdate::Row(Box::new(summary(after, last.at)))
    }
}

/// Which sagas a listing shows.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SagaFilter {
    /// Only sagas in this status.
    pub status: Option<SagaStatus>,
    /// Only sagas with this name.
    pub name: Option<String>,
    /// Only sagas started at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// At most this many (the most recent first).
    pub limit: Option<usize>,
}

impl SagaFilter {
    /// True when `s` passes the filter (limit aside).
    pub fn admits(&self, s: &SagaSummary) -> bool {
        self.status.is_none_or(|st| st == s.status)
            && self.name.as_ref().is_none_or(|n| *n == s.saga)
            && self.since.is_none_or(|t| s.started_at >= t)
    }
}
