//! The one writer: a thread that takes requests from a channel and commits them in
//! batches (group commit). Every request of a batch runs in its own savepoint, so
//! one request's conflict does not undo the others; the batch is one transaction,
//! so one fsync covers every request in it. Each caller is answered only after the
//! batch holding its request committed (or failed).
//!
//! The writer decides nothing itself: the sequence rule, the lease rules, the unit
//! of work and the projection come from the store layer; it only reads and writes
//! the rows they name.

use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use uuid::Uuid;

use super::schema::{Tables, io, parse_time, time_text, upsert_summary, write_lease};
use crate::repo::{RepoError, UnitOfWork, apply_unit};
use crate::saga::events::Event;
use crate::saga::read_model::ProjectionUpdate;
use crate::saga::store::{
    CommitError, Lease, LeaseOp, StoreError, check_sequence, lease, written_first,
};

/// Most requests committed in one transaction.
const MAX_BATCH: usize = 512;

/// Longest wait for more requests before a commit.
const MAX_COMMIT_DELAY: Duration = Duration::from_millis(2);

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
pub(super) type Job = Box<dyn FnOnce(&Connection) -> Result<(), CommitError> + Send>;

/// An owned [`crate::saga::store::Commit`], sent to the writer thread.
pub(super) struct OwnedCommit {
    pub events: Vec<Event>,
    /// Each event's time and encoded body, as stored (encoded by the caller).
    pub rows: Vec<(String, String)>,
    pub writes: Option<UnitOfWork>,
    pub lease: Option<Lease>,
    pub renew_until: Option<DateTime<Utc>>,
    pub release: bool,
    pub projection: Option<ProjectionUpdate>,
    pub now: DateTime<Utc>,
}

/// Work for the writer.
pub(super) enum Request {
    /// Apply a commit, all or nothing.
    Append {
        /// What to write.
        commit: Box<OwnedCommit>,
        /// The answer.
        reply: Reply,
    },
    /// Anything else that writes (pins, seeding, leases, projection rebuild).
    Job {
        /// What to do.
        job: Job,
        /// The answer.
        reply: Reply,
    },
}

/// Run the writer until every sender is gone.
///
/// Batches form by themselves while a commit is in progress; in addition, when the
/// last batch held several requests (many sagas are running), the writer waits a
/// little for as many again before committing — at most as long as the last commit
/// took (the idea of PostgreSQL's `commit_delay`) — so sagas that are between two
/// appends join this fsync instead of needing the next one. A lone saga never waits.
pub(super) fn run(conn: Connection, requests: Receiver<Request>) {
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
        commit(&conn, batch);
        last_commit = started.elapsed();
    }
}

/// Commit a batch: first in one plain transaction (the common case: nothing fails);
/// when a request fails, roll back and redo the batch with one savepoint per
/// request, so only the failing requests fail.
fn commit(conn: &Connection, batch: Vec<Request>) {
    if batch.iter().all(|r| matches!(r, Request::Append { .. })) {
        match try_all(conn, &batch) {
            Ok(true) => {
                for r in batch {
                    reply_of(r).send(Ok(()));
                }
                return;
            }
            Err(err) => {
                for r in batch {
                    reply_of(r).send(Err(CommitError::Store(err.clone())));
                }
                return;
            }
            Ok(false) => {}
        }
    }
    commit_each(conn, batch);
}

/// Every request of the batch in one transaction, no savepoints: `Ok(false)` when a
/// request failed (nothing is kept).
fn try_all(conn: &Connection, batch: &[Request]) -> Result<bool, StoreError> {
    conn.execute_batch("BEGIN IMMEDIATE").map_err(io)?;
    for request in batch {
        if let Request::Append { commit, .. } = request
            && append(conn, commit).is_err()
        {
            let _ = conn.execute_batch("ROLLBACK");
            return Ok(false);
        }
    }
    match conn.execute_batch("COMMIT") {
        Ok(()) => Ok(true),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(io(e))
        }
    }
}

/// The batch with one savepoint per request.
fn commit_each(conn: &Connection, batch: Vec<Request>) {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        let err = io(e);
        for r in batch {
            reply_of(r).send(Err(CommitError::Store(err.clone())));
        }
        return;
    }
    let mut answers = Vec::with_capacity(batch.len());
    for request in batch {
        let (reply, result) = match request {
            Request::Append { commit, reply } => (reply, savepoint(conn, |c| append(c, &commit))),
            Request::Job { job, reply } => (reply, savepoint(conn, job)),
        };
        answers.push((reply, result));
    }
    match conn.execute_batch("COMMIT") {
        Ok(()) => {
            for (reply, result) in answers {
                reply.send(result);
            }
        }
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            let err = io(e);
            for (reply, _) in answers {
                reply.send(Err(CommitError::Store(err.clone())));
            }
        }
    }
}

/// Run `f` in a savepoint: kept on success, rolled back on error.
fn savepoint(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> Result<(), CommitError>,
) -> Result<(), CommitError> {
    conn.execute_batch("SAVEPOINT request")
        .map_err(|e| CommitError::Store(io(e)))?;
    match f(conn) {
        Ok(()) => conn
            .execute_batch("RELEASE request")
            .map_err(|e| CommitError::Store(io(e))),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK TO request; RELEASE request");
            Err(e)
        }
    }
}

/// A saga's position and lease columns, as read.
type PositionRow = (Option<i64>, Option<String>, Option<i64>, Option<String>);

/// The saga's last sequence number and lease, in one read.
fn position(conn: &Connection, saga_id: &str) -> Result<(u64, Option<Lease>), StoreError> {
    let row: Option<PositionRow> = conn
        .prepare_cached(
            "SELECT s.last_seq, l.owner, l.epoch, l.expires_at
             FROM (SELECT ?1 AS id) q
             LEFT JOIN sagas s ON s.saga_id = q.id
             LEFT JOIN leases l ON l.saga_id = q.id",
        )
        .and_then(|mut st| {
            st.query_row(params![saga_id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .optional()
        })
        .map_err(io)?;
    let Some((last_seq, owner, epoch, expires)) = row else {
        return Ok((0, None));
    };
    let last_seq = u64::try_from(last_seq.unwrap_or(0)).map_err(io)?;
    let lease = match (owner, epoch, expires) {
        (Some(owner), Some(epoch), Some(expires)) => Some(Lease {
            saga_id: Uuid::parse_str(saga_id).map_err(io)?,
            owner,
            epoch: u64::try_from(epoch).map_err(io)?,
            expires_at: parse_time(&expires)?,
        }),
        _ => None,
    };
    Ok((last_seq, lease))
}

/// One commit: the sequence rule, the lease, the key, the writes, the events, the
/// read model.
fn append(conn: &Connection, c: &OwnedCommit) -> Result<(), CommitError> {
    let Some(first) = c.events.first() else {
        if let Some(unit) = &c.writes {
            apply(conn, unit)?;
        }
        return Ok(());
    };
    let saga_id = first.saga_id;
    let id_text = saga_id.to_string();
    let (last_seq, current) = position(conn, &id_text)?;
    // ownership first: a fenced-off writer is told so, not that it is behind
    let op = LeaseOp {
        lease: c.lease.as_ref(),
        renew_until: c.renew_until,
        release: c.release,
    };
    let lease_row = lease::admit(current.as_ref(), saga_id, &op, || c.now)?;
    check_sequence(last_seq, &c.events)?;
    if let Some(row) = lease_row {
        write_lease(conn, &row)?;
    }
    if let (0, Some(ProjectionUpdate::Row(row))) = (last_seq, &c.projection)
        && let Some(key) = &row.key
        && let Some(existing) = saga_with_key(conn, &row.saga, key)?
    {
        return Err(StoreError::DuplicateKey {
            saga: row.saga.clone(),
            key: key.clone(),
            saga_id: existing,
        }
        .into());
    }
    if let Some(unit) = &c.writes {
        apply(conn, unit)?;
    }
    for (event, (at, body)) in c.events.iter().zip(&c.rows) {
        let inserted = conn
            .prepare_cached(
                "INSERT INTO events (saga_id, seq, at, type, body) VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .and_then(|mut st| {
                st.execute(params![
                    id_text,
                    event.seq as i64,
                    at,
                    event.kind.type_name(),
                    body
                ])
            });
        match inserted {
            Ok(_) => {}
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                // another writer (another process) appended this seq first
                return Err(written_first(saga_id, event.seq).into());
            }
            Err(e) => return Err(io(e).into()),
        }
    }
    match &c.projection {
        Some(ProjectionUpdate::Row(row)) => upsert_summary(conn, row)?,
        Some(ProjectionUpdate::Moved {
            last_seq,
            updated_at,
            ..
        }) => {
            conn.prepare_cached(
                "UPDATE sagas SET updated_at = ?2, last_seq = ?3 WHERE saga_id = ?1",
            )
            .and_then(|mut st| {
                st.execute(params![id_text, time_text(updated_at), *last_seq as i64])
            })
            .map_err(io)?;
        }
        None => {}
    }
    Ok(())
}

/// The saga of `name` started with `key`, if any.
fn saga_with_key(conn: &Connection, name: &str, key: &str) -> Result<Option<Uuid>, StoreError> {
    let id: Option<String> = conn
        .prepare_cached("SELECT saga_id FROM sagas WHERE key = ?1 AND name = ?2")
        .and_then(|mut st| st.query_row(params![key, name], |r| r.get(0)).optional())
        .map_err(io)?;
    id.map(|i| Uuid::parse_str(&i).map_err(io)).transpose()
}

/// Apply a unit of work through the shared rules; storage failures stop the saga.
pub(super) fn apply(conn: &Connection, unit: &UnitOfWork) -> Result<(), CommitError> {
    apply_unit(&mut Tables(conn), unit).map_err(|e| match e {
        RepoError::Storage(m) => CommitError::Store(StoreError::Io(m)),
        other => CommitError::Repo(other),
    })
}

fn reply_of(r: Request) -> Reply {
    match r {
        Request::Append { reply, .. } | Request::Job { reply, .. } => reply,
    }
}
