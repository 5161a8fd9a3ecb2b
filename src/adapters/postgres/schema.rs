//! The PostgreSQL layout and its migrations.
//!
//! ```text
//! rulesaga_schema  one row: the layout version of the tables below
//! events           (saga_id, seq) primary key: the append-only log, one stored event a row
//! definitions      hash → pinned text: saga definitions and the rule files they use
//! sagas            the read model: one row per saga (a projection of `events`), with its key
//! leases           saga_id → owner, epoch, expiry: which process drives the saga
//! repositories     name → table; each repository is a table `repo_<name>(id, body jsonb)`
//! ```
//!
//! The tables go into the first schema of the connection's `search_path` (add
//! `?options=-c%20search_path%3DNAME` to the URL for a schema of their own).

use deadpool_postgres::GenericClient;

use super::pg_error;
use crate::saga::store::StoreError;

/// The version of this layout (`rulesaga_schema.version`).
///
/// - 1: events, definitions, sagas (with `key`, unique per saga name), leases,
///   repositories.
pub const SCHEMA_VERSION: i32 = 1;

/// The advisory lock key that serialises migrations and repository creation across
/// processes (any constant that other applications are unlikely to use).
pub(super) const DDL_LOCK: i64 = 0x7275_6c65_7361_6761; // "rulesaga"

const SCHEMA_V1: &str = "
CREATE TABLE IF NOT EXISTS events (
    saga_id uuid        NOT NULL,
    seq     bigint      NOT NULL,
    at      timestamptz NOT NULL,
    type    text        NOT NULL,
    body    text        NOT NULL,
    PRIMARY KEY (saga_id, seq)
);
CREATE TABLE IF NOT EXISTS definitions (
    hash text PRIMARY KEY,
    name text NOT NULL,
    text text NOT NULL
);
CREATE TABLE IF NOT EXISTS repositories (
    name text PRIMARY KEY
);
CREATE TABLE IF NOT EXISTS leases (
    saga_id    uuid PRIMARY KEY,
    owner      text        NOT NULL,
    epoch      bigint      NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS sagas (
    saga_id     uuid PRIMARY KEY,
    name        text        NOT NULL,
    status      text        NOT NULL,
    started_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    last_seq    bigint      NOT NULL,
    failed_step text,
    reason      text,
    key         text
);
CREATE INDEX IF NOT EXISTS sagas_by_status ON sagas (status, started_at);
CREATE INDEX IF NOT EXISTS sagas_by_start ON sagas (started_at);
CREATE UNIQUE INDEX IF NOT EXISTS sagas_by_key ON sagas (key, name) WHERE key IS NOT NULL;
";

/// The migrations: `MIGRATIONS[v]` takes a layout from version `v` to `v + 1`.
const MIGRATIONS: &[&str] = &[SCHEMA_V1];

/// Create or migrate the tables, in one transaction under [`DDL_LOCK`]; refuses a
/// layout newer than this binary's.
pub(super) async fn migrate(client: &mut tokio_postgres::Client) -> Result<(), StoreError> {
    let tx = client.transaction().await.map_err(pg_error)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&DDL_LOCK])
        .await
        .map_err(pg_error)?;
    let schema: Option<String> = tx
        .query_one("SELECT current_schema()", &[])
        .await
        .map_err(pg_error)?
        .get(0);
    if schema.is_none() {
        return Err(StoreError::Io(
            "PostgreSQL: the connection's search_path names no existing schema: create it first (CREATE SCHEMA name)".into(),
        ));
    }
    tx.batch_execute("CREATE TABLE IF NOT EXISTS rulesaga_schema (version integer NOT NULL)")
        .await
        .map_err(pg_error)?;
    let version: i32 = match tx
        .query_opt("SELECT max(version) FROM rulesaga_schema", &[])
        .await
        .map_err(pg_error)?
    {
        Some(row) => row.get::<_, Option<i32>>(0).unwrap_or(0),
        None => 0,
    };
    if version > SCHEMA_VERSION {
        return Err(StoreError::Io(format!(
            "the database has layout version {version}; this rulesaga reads up to {SCHEMA_VERSION}: use a newer rulesaga"
        )));
    }
    let from = usize::try_from(version).unwrap_or(0);
    for step in MIGRATIONS.iter().skip(from) {
        tx.batch_execute(step).await.map_err(pg_error)?;
    }
    if version < SCHEMA_VERSION {
        tx.execute("DELETE FROM rulesaga_schema", &[])
            .await
            .map_err(pg_error)?;
        tx.execute(
            "INSERT INTO rulesaga_schema (version) VALUES ($1)",
            &[&SCHEMA_VERSION],
        )
        .await
        .map_err(pg_error)?;
    }
    tx.commit().await.map_err(pg_error)
}

/// The table of a repository (names are checked by
/// [`crate::saga::store::valid_repo_name`] before they get here).
pub(super) fn table(repo: &str) -> String {
    format!("\"repo_{repo}\"")
}

/// Create a repository's table and register it (under [`DDL_LOCK`], which the
/// caller's transaction holds); true when it was new.
pub(super) async fn create_repo(tx: &impl GenericClient, name: &str) -> Result<bool, StoreError> {
    if !crate::saga::store::valid_repo_name(name) {
        return Err(StoreError::Io(format!("invalid repository name `{name}`")));
    }
    tx.batch_execute(&format!(
        "CREATE TABLE IF NOT EXISTS {} (id text PRIMARY KEY, body jsonb NOT NULL)",
        table(name)
    ))
    .await
    .map_err(pg_error)?;
    let n = tx
        .execute(
            "INSERT INTO repositories (name) VALUES ($1) ON CONFLICT (name) DO NOTHING",
            &[&name],
        )
        .await
        .map_err(pg_error)?;
    Ok(n == 1)
}
