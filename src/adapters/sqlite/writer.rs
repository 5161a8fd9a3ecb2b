//! The one writer: a thread that takes requests from a channel and commits them in
//! batches (group commit). Every request of a batch runs in its own savepoint, so
//! one request's conflict does not undo the others; the batch is one transaction,
//! so one fsync covers every request in it. Each caller is answered only after the
//! batch holding its request committed (or failed).

use std::collections::HashMap;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use uuid::Uuid;

use super::schema::{get_entity, io, known_repo, repo_io, table};
use crate::repo::{RepoError, UnitOfWork, Write};
use crate::saga::events::{CommitError, Event, EventKind, SagaState, StoreError};
use crate::saga::read_model::status_name;

/// Most requests committed in one transaction.
const MAX_BATCH: usize = 512;

/// Longest wait for more requests before a commit.
const MAX_COMMIT_DELAY: Duration = Duration::from_millis(2);

/// Most saga states kept by the writer to update the projection without reading the log.
const MAX_CACHED: usize = 4096;

/// Where the answer goes.
pub(super) enum Reply {
    /// An async caller (the runner).
    Async(tokio::sync::oneshot::Sender<Result<(), CommitError>>),
    /// A blocking caller (`Repository::commit`, maintenance).
    Sync(std::sync::mpsc::Sender<Result<(), CommitError>>),
}

impl Reply {
    fn send(self, result: Result<(), CommitError>) {
        // A caller that went away (a cancelled future) needs no answer.
        let _ = match self {
            Reply::Async(tx) => tx.send(result).map_err(|_| ()),
            Reply::Sync(tx) => tx.send(result).map_err(|_| ()),
        };
    }
}

/// A maintenance job run by the writer inside its transaction.
pub(super) type Job = Box<dyn FnOnce(&Connection) -> Result<(), StoreError> + Send>;

/// Work for the writer.
pub(super) enum Request {
    /// Apply `unit` (if any) and append `events`, all or nothing.
    Append {
        /// Events of one saga, in order.
        events: Vec<Event>,
        /// Repository writes to commit with them.
        unit: Option<UnitOfWork>,
        /// The answer.
        reply: Reply,
    },
    /// Anything else that writes (definitions, seeding, projection rebuild).
    Job {
        /// What to do.
        job: Job,
        /// The answer.
        reply: Reply,
    },
}

/// Timestamps as stored: fixed width, so text order is time order.
pub(super) fn time_text(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// How the plain transaction of a batch went.
enum Fast {
    /// Committed: the new saga states.
    Committed(HashMap<Uuid, SagaState>),
    /// A request failed: redo with savepoints.
    Redo,
    /// The store failed: every request fails.
    Failed(StoreError),
}

struct Writer {
    conn: Connection,
    /// Saga states after the last committed batch.
    cache: HashMap<Uuid, SagaState>,
}

/// Run the writer until every sender is gone.
///
/// Batches form by themselves while a commit is in progress; in addition, when the
/// last batch held several requests (many sagas are running), the writer waits a
/// little for as many again before committing — at most as long as the last commit
/// took (the idea of PostgreSQL's `commit_delay`) — so sagas that are between two
/// appends join this fsync instead of needing the next one. A lone saga never waits.
pub(super) fn run(conn: Connection, requests: Receiver<Request>) {
    let mut writer = Writer {
        conn,
        cache: HashMap::new(),
    };
    let mut last_len = 1usize;
    let mut last_commit = Duration::ZERO;
    while let Ok(first) = requests.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match requests.try_recv() {
                Ok(r) => batch.push(r),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        if last_len > 1 && batch.len() < last_len {
            let deadline = Instant::now() + last_commit.min(MAX_COMMIT_DELAY);
            while batch.len() < last_len.min(MAX_BATCH) {
                let left = deadline.saturating_duration_since(Instant::now());
                match requests.recv_timeout(left) {
                    Ok(r) => batch.push(r),
                    Err(_) => break,
                }
            }
        }
        last_len = batch.len();
        let started = Instant::now();
        writer.commit(batch);
        last_commit = started.elapsed();
    }
}

impl Writer {
    /// Commit a batch: first in one plain transaction (the common case: nothing
    /// conflicts); when a request fails, roll back and redo the batch with one
    /// savepoint per request, so only the failing requests fail.
    fn commit(&mut self, batch: Vec<Request>) {
        if batch.iter().all(|r| matches!(r, Request::Append { .. })) {
            match self.try_all(&batch) {
                Fast::Committed(pending) => {
                    self.remember(pending);
                    for r in batch {
                        reply_of(r).send(Ok(()));
                    }
                    return;
                }
                Fast::Failed(err) => {
                    for r in batch {
                        reply_of(r).send(Err(CommitError::Store(err.clone())));
                    }
                    return;
                }
                Fast::Redo => {}
            }
        }
        self.commit_each(batch);
    }

    /// Every request of the batch in one transaction, no savepoints.
    fn try_all(&mut self, batch: &[Request]) -> Fast {
        if let Err(e) = self.conn.execute_batch("BEGIN IMMEDIATE") {
            return Fast::Failed(io(e));
        }
        let mut pending: HashMap<Uuid, SagaState> = HashMap::new();
        for request in batch {
            if let Request::Append { events, unit, .. } = request {
                match self.append(events, unit.as_ref(), &pending) {
                    Ok(Some(state)) => {
                        pending.insert(state.saga_id, state);
                    }
                    Ok(None) => {}
                    Err(_) => {
                        let _ = self.conn.execute_batch("ROLLBACK");
                        return Fast::Redo;
                    }
                }
            }
        }
        match self.conn.execute_batch("COMMIT") {
            Ok(()) => Fast::Committed(pending),
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                self.cache.clear();
                Fast::Failed(io(e))
            }
        }
    }

    /// Keep the states of a committed batch for the next appends.
    fn remember(&mut self, pending: HashMap<Uuid, SagaState>) {
        if self.cache.len() > MAX_CACHED {
            self.cache.clear();
        }
        for (id, state) in pending {
            if state.status.is_final() {
                self.cache.remove(&id);
            } else {
                self.cache.insert(id, state);
            }
        }
    }

    /// The batch with one savepoint per request.
    fn commit_each(&mut self, batch: Vec<Request>) {
        if let Err(e) = self.conn.execute_batch("BEGIN IMMEDIATE") {
            let err = io(e);
            for r in batch {
                reply_of(r).send(Err(CommitError::Store(err.clone())));
            }
            return;
        }
        let mut pending: HashMap<Uuid, SagaState> = HashMap::new();
        let mut answers = Vec::with_capacity(batch.len());
        for request in batch {
            let (reply, result) = match request {
                Request::Append {
                    events,
                    unit,
                    reply,
                } => {
                    let r = self.savepoint(|w| w.append(&events, unit.as_ref(), &pending));
                    (reply, r)
                }
                Request::Job { job, reply } => {
                    let r =
                        self.savepoint(|w| job(&w.conn).map(|()| None).map_err(CommitError::Store));
                    (reply, r)
                }
            };
            let result = result.map(|state| {
                if let Some(state) = state {
                    pending.insert(state.saga_id, state);
                }
            });
            answers.push((reply, result));
        }
        match self.conn.execute_batch("COMMIT") {
            Ok(()) => {
                self.remember(pending);
                for (reply, result) in answers {
                    reply.send(result);
                }
            }
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                self.cache.clear();
                let err = io(e);
                for (reply, _) in answers {
                    reply.send(Err(CommitError::Store(err.clone())));
                }
            }
        }
    }

    /// Run `f` in a savepoint: kept on success, rolled back on error.
    fn savepoint<T>(
        &mut self,
        f: impl FnOnce(&mut Writer) -> Result<T, CommitError>,
    ) -> Result<T, CommitError> {
        self.conn
            .execute_batch("SAVEPOINT request")
            .map_err(|e| CommitError::Store(io(e)))?;
        match f(self) {
            Ok(v) => {
                self.conn
                    .execute_batch("RELEASE request")
                    .map_err(|e| CommitError::Store(io(e)))?;
                Ok(v)
            }
            Err(e) => {
                let _ = self
                    .conn
                    .execute_batch("ROLLBACK TO request; RELEASE request");
                Err(e)
            }
        }
    }

    /// Apply the writes, append the events, update the projection; the saga's new state.
    fn append(
        &mut self,
        events: &[Event],
        unit: Option<&UnitOfWork>,
        pending: &HashMap<Uuid, SagaState>,
    ) -> Result<Option<SagaState>, CommitError> {
        if let Some(unit) = unit {
            apply_unit(&self.conn, unit)?;
        }
        let Some(first) = events.first() else {
            return Ok(None);
        };
        let saga_id = first.saga_id;
        let id_text = saga_id.to_string();
        let mut state = match pending.get(&saga_id).or_else(|| self.cache.get(&saga_id)) {
            Some(s) => s.clone(),
            None => load_state(&self.conn, &id_text)?,
        };
        let before = (
            state.last_seq,
            state.status,
            state.failed_step.clone(),
            state.reason.clone(),
        );
        for event in events {
            let next = state.last_seq + 1;
            if event.saga_id != saga_id || event.seq != next {
                return Err(CommitError::Store(StoreError::Conflict {
                    saga_id: event.saga_id,
                    expected: event.seq,
                    found: next,
                }));
            }
            let body = serde_json::to_string(event).map_err(|e| CommitError::Store(io(e)))?;
            let inserted = self
                .conn
                .prepare_cached(
                    "INSERT INTO events (saga_id, seq, at, type, body) VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .and_then(|mut st| {
                    st.execute(params![
                        id_text,
                        event.seq as i64,
                        time_text(&event.at),
                        event.kind.type_name(),
                        body
                    ])
                });
            match inserted {
                Ok(_) => {}
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if e.code == rusqlite::ErrorCode::ConstraintViolation =>
                {
                    // Another writer (another process) appended this seq first.
                    return Err(CommitError::Store(StoreError::Conflict {
                        saga_id,
                        expected: event.seq,
                        found: event.seq + 1,
                    }));
                }
                Err(e) => return Err(CommitError::Store(io(e))),
            }
            state.apply(event);
        }
        let last = events.last().unwrap_or(first);
        let started = match &first.kind {
            EventKind::SagaStarted { .. } => first.at,
            _ => last.at,
        };
        let summary_changed = before.0 == 0
            || before.1 != state.status
            || before.2 != state.failed_step
            || before.3 != state.reason;
        if summary_changed {
            upsert_projection(&self.conn, &state, &started, &last.at)
                .map_err(CommitError::Store)?;
        } else {
            // Only the position moved: leave the indexed columns alone.
            self.conn
                .prepare_cached(
                    "UPDATE sagas SET updated_at = ?2, last_seq = ?3 WHERE saga_id = ?1",
                )
                .and_then(|mut st| {
                    st.execute(params![id_text, time_text(&last.at), state.last_seq as i64])
                })
                .map_err(|e| CommitError::Store(io(e)))?;
        }
        Ok(Some(state))
    }
}

fn reply_of(r: Request) -> Reply {
    match r {
        Request::Append { reply, .. } | Request::Job { reply, .. } => reply,
    }
}

/// The state of a saga folded from its logged events (inside the writer's transaction).
pub(super) fn load_state(conn: &Connection, saga_id: &str) -> Result<SagaState, CommitError> {
    let mut st = conn
        .prepare_cached("SELECT body FROM events WHERE saga_id = ?1 ORDER BY seq")
        .map_err(|e| CommitError::Store(io(e)))?;
    let rows = st
        .query_map(params![saga_id], |r| r.get::<_, String>(0))
        .map_err(|e| CommitError::Store(io(e)))?;
    let mut state = SagaState::default();
    for row in rows {
        let body = row.map_err(|e| CommitError::Store(io(e)))?;
        let event: Event = serde_json::from_str(&body).map_err(|e| CommitError::Store(io(e)))?;
        state.apply(&event);
    }
    Ok(state)
}

/// Write the read-model row of a saga.
pub(super) fn upsert_projection(
    conn: &Connection,
    state: &SagaState,
    started_at: &DateTime<Utc>,
    updated_at: &DateTime<Utc>,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO sagas (saga_id, name, status, started_at, updated_at, last_seq, failed_step, reason)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (saga_id) DO UPDATE SET
           name = excluded.name, status = excluded.status, updated_at = excluded.updated_at,
           last_seq = excluded.last_seq, failed_step = excluded.failed_step,
           reason = excluded.reason",
    )
    .and_then(|mut st| {
        st.execute(params![
            state.saga_id.to_string(),
            state.saga,
            status_name(state.status),
            time_text(started_at),
            time_text(updated_at),
            state.last_seq as i64,
            state.failed_step,
            state.reason
        ])
    })
    .map_err(io)?;
    Ok(())
}

/// Apply a unit of work: check what it read, then every write, or fail.
pub(super) fn apply_unit(conn: &Connection, unit: &UnitOfWork) -> Result<(), CommitError> {
    let repo_err = |e: RepoError| match e {
        RepoError::Storage(m) => CommitError::Store(StoreError::Io(m)),
        other => CommitError::Repo(other),
    };
    for read in &unit.reads {
        let current = get_entity(conn, &read.repo, &read.id).map_err(repo_err)?;
        if current != read.entity {
            return Err(CommitError::Repo(RepoError::Changed {
                repo: read.repo.clone(),
                id: read.id.clone(),
            }));
        }
    }
    for write in &unit.writes {
        apply_write(conn, write).map_err(repo_err)?;
    }
    Ok(())
}

fn apply_write(conn: &Connection, write: &Write) -> Result<(), RepoError> {
    match write {
        Write::Insert { repo, id, entity } => {
            if get_entity(conn, repo, id)?.is_some() {
                return Err(RepoError::Exists {
                    repo: repo.clone(),
                    id: id.clone(),
                });
            }
            let body = serde_json::to_string(entity).map_err(repo_io)?;
            conn.prepare_cached(&format!(
                "INSERT INTO {} (id, body) VALUES (?1, ?2)",
                table(repo)
            ))
            .and_then(|mut st| st.execute(params![id, body]))
            .map_err(repo_io)?;
        }
        Write::Update { repo, id, patch } => {
            let mut entity = get_entity(conn, repo, id)?.ok_or_else(|| RepoError::NotFound {
                repo: repo.clone(),
                id: id.clone(),
            })?;
            for (k, v) in patch {
                entity.insert(k.clone(), v.clone());
            }
            let body = serde_json::to_string(&entity).map_err(repo_io)?;
            conn.prepare_cached(&format!(
                "UPDATE {} SET body = ?2 WHERE id = ?1",
                table(repo)
            ))
            .and_then(|mut st| st.execute(params![id, body]))
            .map_err(repo_io)?;
        }
        Write::Delete { repo, id } => {
            known_repo(conn, repo)?;
            conn.prepare_cached(&format!("DELETE FROM {} WHERE id = ?1", table(repo)))
                .and_then(|mut st| st.execute(params![id]))
                .map_err(repo_io)?;
        }
    }
    Ok(())
}

/// The definition text stored under `hash`, if any.
pub(super) fn definition(conn: &Connection, hash: &str) -> Result<Option<String>, StoreError> {
    conn.prepare_cached("SELECT text FROM definitions WHERE hash = ?1")
        .and_then(|mut st| st.query_row(params![hash], |r| r.get(0)).optional())
        .map_err(io)
}
