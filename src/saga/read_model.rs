//! The read model: one row per saga, for `list` and `status` queries.
//!
//! A projection of the log (queries kept apart from commands): a durable store
//! updates it in the same transaction as the events it appends, and can rebuild
//! it from the log at any time, since each row is [`summary`] of [`super::fold`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::events::{SagaState, SagaStatus};

/// One saga as the read model lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SagaSummary {
    /// The saga.
    pub saga_id: Uuid,
    /// The saga's name.
    pub saga: String,
    /// Where it stands.
    pub status: SagaStatus,
    /// When its first event was appended.
    pub started_at: DateTime<Utc>,
    /// When its last event was appended.
    pub updated_at: DateTime<Utc>,
    /// Sequence number of its last event.
    pub last_seq: u64,
    /// The step that failed or could not be compensated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_step: Option<String>,
    /// Why it did not complete.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The summary of a folded saga, given the times of its first and last events.
pub fn summary(
    state: &SagaState,
    started_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
) -> SagaSummary {
    SagaSummary {
        saga_id: state.saga_id,
        saga: state.saga.clone(),
        status: state.status,
        started_at,
        updated_at,
        last_seq: state.last_seq,
        failed_step: state.failed_step.clone(),
        reason: state.reason.clone(),
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

/// The name of a status, as in JSON (`compensating`).
pub fn status_name(status: SagaStatus) -> &'static str {
    match status {
        SagaStatus::Running => "running",
        SagaStatus::Completed => "completed",
        SagaStatus::Compensating => "compensating",
        SagaStatus::Compensated => "compensated",
        SagaStatus::Failed => "failed",
    }
}

/// The status named `name`.
pub fn parse_status(name: &str) -> Option<SagaStatus> {
    Some(match name {
        "running" => SagaStatus::Running,
        "completed" => SagaStatus::Completed,
        "compensating" => SagaStatus::Compensating,
        "compensated" => SagaStatus::Compensated,
        "failed" => SagaStatus::Failed,
        _ => return None,
    })
}
