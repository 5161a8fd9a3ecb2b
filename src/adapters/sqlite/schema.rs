//! The database layout, its migrations, and the SQL shared by the writer and the readers.
//!
//! ```text
//! events        (saga_id, seq) primary key: the append-only log, one stored event a row
//! definitions   hash → pinned text: saga definitions and the rule files they use
//! sagas         the read model: one row per saga (a projection of `events`), with its key
//! leases        saga_id → owner, epoch, expiry: which process drives the saga
//! repositories  name → table; each repository is a table `repo_<name>(id, body)`
//! ```

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use uuid::Uuid;

use crate::repo::{Entity, RepoError, UnitTarget};
use crate::saga::read_model::SagaSummary;
use crate::saga::state::SagaStatus;
use crate::saga::store::{Lease, StoreError};

/// `PRAGMA user_version` of this layout.
///
/// - 1: events, definitions, sagas, repositories.
/// - 2: `sagas.key` (unique per saga name), `leases`.
pub const SCHEMA_VERSION: i64 = 2;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events (
    saga_id TEXT NOT NULL,
    seq     INTEGER NOT NULL,
    at      TEXT NOT NULL,
    type    TEXT NOT NULL,
    body    TEXT NOT NULL,
    PRIMARY KEY (saga_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS definitions (
    hash TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    text TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS repositories (
    name TEXT PRIMARY KEY
);
CREATE TABLE IF NOT EXISTS leases (
    saga_id    TEXT PRIMARY KEY,
    owner      TEXT NOT NULL,
    epoch      INTEGER NOT NULL,
    expires_at TEXT NOT NULL
) WITHOUT ROWID;
";

const PROJECTION: &str = "
CREATE TABLE IF NOT EXISTS sagas (
    saga_id     TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    status      TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    last_seq    INTEGER NOT NULL,
    failed_step TEXT,
    reason      TEXT,
    key         TEXT
);
CREATE INDEX IF NOT EXISTS sagas_by_status ON sagas (status, started_at);
CREATE INDEX IF NOT EXISTS sagas_by_start ON sagas (started_at);
";

const KEY_INDEX: &str = "
CREATE UNIQUE INDEX IF NOT EXISTS sagas_by_key ON sagas (key, name) WHERE key IS NOT NULL;
";

pub(super) fn io(e: impl std::fmt::Display) -> StoreError {
    StoreError::Io(e.to_string())
}

pub(super) fn repo_io(e: impl std::fmt::Display) -> RepoError {
    RepoError::Storage(e.to_string())
}

/// Timestamps as stored: fixed width, so text order is time order.
pub(super) fn time_text(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

pub(super) fn parse_time(t: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(t)
        .map(|t| t.with_timezone(&Utc))
        .map_err(io)
}

/// Connection settings: WAL (readers never block the writer), `synchronous=FULL`
/// (a committed transaction survives power loss), a busy timeout for other processes.
pub(super) fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;")
}

/// Create or migrate the tables; true when the projection had to be (re)built.
pub(super) fn create(conn: &Connection) -> Result<bool, StoreError> {
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(io)?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::Io(format!(
            "the database has layout version {version}; this rulesaga reads up to {SCHEMA_VERSION}"
        )));
    }
    let has_table = |name: &str| -> Result<bool, StoreError> {
        conn.query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
            params![name],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| n > 0)
        .map_err(io)
    };
    let had_projection = has_table("sagas")?;
    conn.execute_batch("BEGIN IMMEDIATE").map_err(io)?;
    let migrated = (|| {
        conn.execute_batch(SCHEMA).map_err(io)?;
        let mut rebuild = !had_projection;
        if had_projection && version < 2 {
            // version 1 had no key column: add it, and fill it from the log
            conn.execute_batch("ALTER TABLE sagas ADD COLUMN key TEXT")
                .map_err(io)?;
            rebuild = true;
        }
        conn.execute_batch(PROJECTION).map_err(io)?;
        conn.execute_batch(KEY_INDEX).map_err(io)?;
        conn.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}"))
            .map_err(io)?;
        Ok(rebuild)
    })();
    match migrated {
        Ok(rebuild) => {
            conn.execute_batch("COMMIT").map_err(io)?;
            Ok(rebuild)
        }
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

/// The table of a repository (names are checked by
/// [`crate::saga::store::valid_repo_name`]).
pub(super) fn table(repo: &str) -> String {
    format!("\"repo_{repo}\"")
}

pub(super) fn repo_exists(conn: &Connection, repo: &str) -> Result<bool, RepoError> {
    conn.prepare_cached("SELECT 1 FROM repositories WHERE name = ?1")
        .and_then(|mut st| st.exists(params![repo]))
        .map_err(repo_io)
}

pub(super) fn known_repo(conn: &Connection, repo: &str) -> Result<(), RepoError> {
    if repo_exists(conn, repo)? {
        Ok(())
    } else {
        Err(RepoError::UnknownRepository(repo.to_string()))
    }
}

pub(super) fn get_entity(
    conn: &Connection,
    repo: &str,
    id: &str,
) -> Result<Option<Entity>, RepoError> {
    known_repo(conn, repo)?;
    let body: Option<String> = conn
        .prepare_cached(&format!("SELECT body FROM {} WHERE id = ?1", table(repo)))
        .and_then(|mut st| st.query_row(params![id], |r| r.get(0)).optional())
        .map_err(repo_io)?;
    body.map(|b| serde_json::from_str(&b).map_err(repo_io))
        .transpose()
}

pub(super) fn repositories(conn: &Connection) -> Result<Vec<String>, RepoError> {
    let mut st = conn
        .prepare_cached("SELECT name FROM repositories ORDER BY name")
        .map_err(repo_io)?;
    let rows = st
        .query_map([], |r| r.get::<_, String>(0))
        .map_err(repo_io)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(repo_io)
}

pub(super) fn create_repo(conn: &Connection, name: &str) -> Result<(), StoreError> {
    conn.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS {} (id TEXT PRIMARY KEY, body TEXT NOT NULL) WITHOUT ROWID",
        table(name)
    ))
    .map_err(io)?;
    conn.execute(
        "INSERT OR IGNORE INTO repositories (name) VALUES (?1)",
        params![name],
    )
    .map_err(io)?;
    Ok(())
}

/// The repositories of one connection (inside the writer's transaction), for
/// [`crate::repo::apply_unit`].
pub(super) struct Tables<'c>(pub &'c Connection);

impl UnitTarget for Tables<'_> {
    fn entity(&mut self, repo: &str, id: &str) -> Result<Option<Entity>, RepoError> {
        get_entity(self.0, repo, id)
    }

    fn put(&mut self, repo: &str, id: &str, entity: &Entity) -> Result<(), RepoError> {
        let body = serde_json::to_string(entity).map_err(repo_io)?;
        self.0
            .prepare_cached(&format!(
                "INSERT INTO {} (id, body) VALUES (?1, ?2) ON CONFLICT (id) DO UPDATE SET body = excluded.body",
                table(repo)
            ))
            .and_then(|mut st| st.execute(params![id, body]))
            .map_err(repo_io)?;
        Ok(())
    }

    fn remove(&mut self, repo: &str, id: &str) -> Result<(), RepoError> {
        self.0
            .prepare_cached(&format!("DELETE FROM {} WHERE id = ?1", table(repo)))
            .and_then(|mut st| st.execute(params![id]))
            .map_err(repo_io)?;
        Ok(())
    }
}

pub(super) const SUMMARY_COLUMNS: &str =
    "saga_id, name, key, status, started_at, updated_at, last_seq, failed_step, reason";

/// A read-model row, from the columns of [`SUMMARY_COLUMNS`].
pub(super) fn summary_row(
    r: &rusqlite::Row<'_>,
) -> rusqlite::Result<Result<SagaSummary, StoreError>> {
    let id: String = r.get(0)?;
    let name: String = r.get(1)?;
    let key: Option<String> = r.get(2)?;
    let status: String = r.get(3)?;
    let started: String = r.get(4)?;
    let updated: String = r.get(5)?;
    let last_seq: i64 = r.get(6)?;
    let failed_step: Option<String> = r.get(7)?;
    let reason: Option<String> = r.get(8)?;
    Ok((|| {
        Ok(SagaSummary {
            saga_id: Uuid::parse_str(&id).map_err(io)?,
            saga: name,
            key,
            status: SagaStatus::parse(&status)
                .ok_or_else(|| StoreError::Io(format!("unknown status `{status}`")))?,
            started_at: parse_time(&started)?,
            updated_at: parse_time(&updated)?,
            last_seq: u64::try_from(last_seq).map_err(io)?,
            failed_step,
            reason,
        })
    })())
}

/// Write a whole read-model row.
pub(super) fn upsert_summary(conn: &Connection, s: &SagaSummary) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO sagas (saga_id, name, key, status, started_at, updated_at, last_seq, failed_step, reason)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (saga_id) DO UPDATE SET
           name = excluded.name, key = excluded.key, status = excluded.status,
           started_at = excluded.started_at, updated_at = excluded.updated_at,
           last_seq = excluded.last_seq, failed_step = excluded.failed_step,
           reason = excluded.reason",
    )
    .and_then(|mut st| {
        st.execute(params![
            s.saga_id.to_string(),
            s.saga,
            s.key,
            s.status.name(),
            time_text(&s.started_at),
            time_text(&s.updated_at),
            s.last_seq as i64,
            s.failed_step,
            s.reason
        ])
    })
    .map_err(io)?;
    Ok(())
}

/// A saga's lease row.
pub(super) fn lease_row(conn: &Connection, saga_id: &str) -> Result<Option<Lease>, StoreError> {
    let row: Option<(String, String, i64, String)> = conn
        .prepare_cached("SELECT saga_id, owner, epoch, expires_at FROM leases WHERE saga_id = ?1")
        .and_then(|mut st| {
            st.query_row(params![saga_id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .optional()
        })
        .map_err(io)?;
    row.map(|(id, owner, epoch, expires)| {
        Ok(Lease {
            saga_id: Uuid::parse_str(&id).map_err(io)?,
            owner,
            epoch: u64::try_from(epoch).map_err(io)?,
            expires_at: parse_time(&expires)?,
        })
    })
    .transpose()
}

/// Write a saga's lease row.
pub(super) fn write_lease(conn: &Connection, l: &Lease) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO leases (saga_id, owner, epoch, expires_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (saga_id) DO UPDATE SET owner = excluded.owner, epoch = excluded.epoch,
           expires_at = excluded.expires_at",
    )
    .and_then(|mut st| {
        st.execute(params![
            l.saga_id.to_string(),
            l.owner,
            l.epoch as i64,
            time_text(&l.expires_at)
        ])
    })
    .map_err(io)?;
    Ok(())
}
