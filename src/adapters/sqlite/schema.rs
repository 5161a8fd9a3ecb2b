//! The database layout, and the SQL shared by the writer and the readers.
//!
//! ```text
//! events        (saga_id, seq) primary key: the append-only log, one JSON event a row
//! definitions   hash → saga definition text (pinned when a saga starts)
//! sagas         the read model: one row per saga (a projection of `events`)
//! repositories  name → table; each repository is a table `repo_<name>(id, body)`
//! ```

use rusqlite::{Connection, OptionalExtension, params};

use crate::repo::{Entity, RepoError};
use crate::saga::StoreError;

/// `PRAGMA user_version` of this layout.
pub const SCHEMA_VERSION: i64 = 1;

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
    reason      TEXT
);
CREATE INDEX IF NOT EXISTS sagas_by_status ON sagas (status, started_at);
CREATE INDEX IF NOT EXISTS sagas_by_start ON sagas (started_at);
";

pub(super) fn io(e: impl std::fmt::Display) -> StoreError {
    StoreError::Io(e.to_string())
}

pub(super) fn repo_io(e: impl std::fmt::Display) -> RepoError {
    RepoError::Storage(e.to_string())
}

/// Connection settings: WAL (readers never block the writer), `synchronous=FULL`
/// (a committed transaction survives power loss), a busy timeout for other processes.
pub(super) fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;")
}

/// Create the tables; returns true when the projection table had to be created.
pub(super) fn create(conn: &Connection) -> Result<bool, StoreError> {
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(io)?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::Io(format!(
            "the database has layout version {version}; this rulesaga reads up to {SCHEMA_VERSION}"
        )));
    }
    let had_projection: bool = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'sagas'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .map_err(io)?
        > 0;
    conn.execute_batch(SCHEMA).map_err(io)?;
    conn.execute_batch(PROJECTION).map_err(io)?;
    conn.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}"))
        .map_err(io)?;
    Ok(!had_projection)
}

/// The table of a repository (names are checked by [`valid_repo_name`]).
pub(super) fn table(repo: &str) -> String {
    format!("\"repo_{repo}\"")
}

/// Repository names: letters, digits, `_` and `-`, 1 to 64 characters.
pub(super) fn valid_repo_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
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
