//! PostgreSQL: the durable event log, pinned texts, the read model, leases and the
//! repositories, in one database, for deployments that outgrow one SQLite file.
//!
//! Opened from a `postgres://` URL (libpq's form; `?options=-c%20search_path%3DNAME`
//! puts the tables in a schema of their own). The client is tokio-postgres with a
//! deadpool pool, driven by a small runtime of the store's own, so the store works
//! from any caller: async ones (the runner) and blocking ones ([`Repository`], whose
//! methods are synchronous) alike.
//!
//! Every append is one transaction: it takes the saga's advisory lock
//! (`pg_advisory_xact_lock`, so appends and lease changes of one saga are serialised
//! across processes), reads the saga's position and lease, lets the store layer
//! decide (the sequence rule, the lease rules, the unit of work, the projection),
//! and writes the events, the lease, a built-in step's repository writes and the
//! read-model row together: a step's writes and its outcome event commit or fail as
//! one. There is no group commit yet: one transaction per append.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use deadpool_postgres::{
    GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod, Transaction,
};
use serde_json::Value as Json;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};
use uuid::Uuid;

mod schema;

pub use schema::SCHEMA_VERSION;
use schema::{DDL_LOCK, create_repo, table};

use crate::repo::{
    Entity, FindError, RepoError, Repository, UnitOfWork, UnitTarget, apply_unit, keep_matching,
};
use crate::saga::events::{Event, decode, encode};
use crate::saga::read_model::{ProjectionUpdate, SagaFilter, SagaSummary, summary};
use crate::saga::state::SagaStatus;
use crate::saga::store::{
    Commit, CommitError, CommitFuture, EventLog, Lease, LeaseOp, Leases, Pinned, SagaIndex,
    SagaStore, StoreError, StoreFuture, check_sequence, is_id_fragment, lease, seed_tables,
    written_first,
};

/// Most connections the store opens.
const POOL_SIZE: usize = 16;

/// Event log, read model, leases and repositories in one PostgreSQL database.
pub struct PostgresStore {
    /// The URL, password hidden.
    url: String,
    pool: Pool,
    /// The runtime that drives the connections (shut down without waiting on drop,
    /// which may happen inside another runtime).
    runtime: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
}

/// A PostgreSQL error as a store error, with the server's message when it sent one.
pub(super) fn pg_error(e: tokio_postgres::Error) -> StoreError {
    match e.as_db_error() {
        Some(db) => StoreError::Io(format!("PostgreSQL: {}", db.message())),
        None => StoreError::Io(format!("PostgreSQL: {e}")),
    }
}

fn io(e: impl std::fmt::Display) -> StoreError {
    StoreError::Io(e.to_string())
}

fn repo_error(e: StoreError) -> RepoError {
    RepoError::Storage(e.to_string())
}

/// `url` with its password replaced by `***`.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

/// The advisory lock of one saga: its id folded to 64 bits (a collision only makes
/// two sagas wait for each other).
fn saga_lock(id: Uuid) -> i64 {
    let (hi, lo) = id.as_u64_pair();
    i64::from_ne_bytes((hi ^ lo).to_ne_bytes())
}

fn to_i64(n: u64) -> Result<i64, StoreError> {
    i64::try_from(n).map_err(io)
}

fn to_u64(n: i64) -> Result<u64, StoreError> {
    u64::try_from(n).map_err(io)
}

impl PostgresStore {
    /// Connect to the database at `url` (`postgres://user@host:port/db`) and create or
    /// migrate the tables; a layout newer than this binary's is refused.
    pub fn open(url: &str) -> Result<PostgresStore, StoreError> {
        let shown = redact(url);
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Io(format!("`{shown}`: {e}")))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("rulesaga-postgres")
            .enable_all()
            .build()
            .map_err(io)?;
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .create_timeout(Some(Duration::from_secs(10)))
            .build()
            .map_err(io)?;
        let store = PostgresStore {
            url: shown.clone(),
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
            pool,
        };
        let pool = store.pool.clone();
        store
            .blocking(async move {
                let mut client = connect(&pool).await?;
                schema::migrate(&mut client).await
            })
            .map_err(|e| StoreError::Io(format!("`{shown}`: {e}")))?;
        Ok(store)
    }

    /// Run `fut` on the store's runtime and wait for it (from async code).
    async fn run<T, E, F>(&self, fut: F) -> Result<T, E>
    where
        F: Future<Output = Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.handle
            .spawn(fut)
            .await
            .map_err(|e| E::from(StoreError::Io(format!("PostgreSQL task failed: {e}"))))?
    }

    /// Run `fut` on the store's runtime and block the calling thread until it ends
    /// (for the synchronous [`Repository`] methods and for opening).
    fn blocking<T, E, F>(&self, fut: F) -> Result<T, E>
    where
        F: Future<Output = Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::channel();
        self.handle.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv()
            .unwrap_or_else(|_| Err(E::from(StoreError::Io("PostgreSQL task failed".into()))))
    }

    /// A lease decision made and written inside one transaction under the saga's lock.
    async fn lease_change(
        &self,
        saga_id: Uuid,
        decide: impl FnOnce(Option<&Lease>) -> Result<Option<Lease>, StoreError> + Send + 'static,
    ) -> Result<Option<Lease>, StoreError> {
        let pool = self.pool.clone();
        self.run(async move {
            let mut client = connect(&pool).await?;
            let tx = client.transaction().await.map_err(pg_error)?;
            lock_saga(&tx, saga_id).await?;
            let current = lease_row(&tx, saga_id).await?;
            let next = decide(current.as_ref())?;
            if let Some(l) = &next {
                write_lease(&tx, l).await?;
            }
            tx.commit().await.map_err(pg_error)?;
            Ok(next)
        })
        .await
    }

    fn summaries(
        &self,
        sql: String,
        args: Vec<Box<dyn ToSql + Send + Sync>>,
    ) -> impl Future<Output = Result<Vec<SagaSummary>, StoreError>> + '_ {
        let pool = self.pool.clone();
        self.run(async move {
            let client = connect(&pool).await?;
            let st = client.prepare_cached(&sql).await.map_err(pg_error)?;
            let refs: Vec<&(dyn ToSql + Sync)> = args
                .iter()
                .map(|a| a.as_ref() as &(dyn ToSql + Sync))
                .collect();
            let rows = client.query(&st, &refs).await.map_err(pg_error)?;
            rows.iter().map(summary_row).collect()
        })
    }

    fn ids(
        &self,
        sql: &'static str,
        args: Vec<Box<dyn ToSql + Send + Sync>>,
    ) -> impl Future<Output = Result<Vec<Uuid>, StoreError>> + '_ {
        let pool = self.pool.clone();
        self.run(async move {
            let client = connect(&pool).await?;
            let st = client.prepare_cached(sql).await.map_err(pg_error)?;
            let refs: Vec<&(dyn ToSql + Sync)> = args
                .iter()
                .map(|a| a.as_ref() as &(dyn ToSql + Sync))
                .collect();
            let rows = client.query(&st, &refs).await.map_err(pg_error)?;
            rows.iter()
                .map(|r| r.try_get::<_, Uuid>(0).map_err(pg_error))
                .collect()
        })
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

async fn connect(pool: &Pool) -> Result<deadpool_postgres::Object, StoreError> {
    pool.get()
        .await
        .map_err(|e| StoreError::Io(format!("PostgreSQL: {e}")))
}

async fn lock_saga(tx: &Transaction<'_>, saga_id: Uuid) -> Result<(), StoreError> {
    let st = tx
        .prepare_cached("SELECT pg_advisory_xact_lock($1)")
        .await
        .map_err(pg_error)?;
    tx.execute(&st, &[&saga_lock(saga_id)])
        .await
        .map_err(pg_error)?;
    Ok(())
}

async fn lease_row(tx: &Transaction<'_>, saga_id: Uuid) -> Result<Option<Lease>, StoreError> {
    let st = tx
        .prepare_cached("SELECT owner, epoch, expires_at FROM leases WHERE saga_id = $1")
        .await
        .map_err(pg_error)?;
    let Some(row) = tx.query_opt(&st, &[&saga_id]).await.map_err(pg_error)? else {
        return Ok(None);
    };
    Ok(Some(Lease {
        saga_id,
        owner: row.try_get(0).map_err(pg_error)?,
        epoch: to_u64(row.try_get(1).map_err(pg_error)?)?,
        expires_at: row.try_get(2).map_err(pg_error)?,
    }))
}

async fn write_lease(tx: &Transaction<'_>, l: &Lease) -> Result<(), StoreError> {
    let st = tx
        .prepare_cached(
            "INSERT INTO leases (saga_id, owner, epoch, expires_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (saga_id) DO UPDATE SET owner = excluded.owner, epoch = excluded.epoch,
               expires_at = excluded.expires_at",
        )
        .await
        .map_err(pg_error)?;
    tx.execute(
        &st,
        &[&l.saga_id, &l.owner, &to_i64(l.epoch)?, &l.expires_at],
    )
    .await
    .map_err(pg_error)?;
    Ok(())
}

const SUMMARY_COLUMNS: &str =
    "saga_id, name, key, status, started_at, updated_at, last_seq, failed_step, reason";

fn summary_row(r: &Row) -> Result<SagaSummary, StoreError> {
    let status: String = r.try_get(3).map_err(pg_error)?;
    Ok(SagaSummary {
        saga_id: r.try_get(0).map_err(pg_error)?,
        saga: r.try_get(1).map_err(pg_error)?,
        key: r.try_get(2).map_err(pg_error)?,
        status: SagaStatus::parse(&status)
            .ok_or_else(|| StoreError::Io(format!("unknown status `{status}`")))?,
        started_at: r.try_get(4).map_err(pg_error)?,
        updated_at: r.try_get(5).map_err(pg_error)?,
        last_seq: to_u64(r.try_get(6).map_err(pg_error)?)?,
        failed_step: r.try_get(7).map_err(pg_error)?,
        reason: r.try_get(8).map_err(pg_error)?,
    })
}

fn is_unique_violation(e: &tokio_postgres::Error, constraint: &str) -> bool {
    e.as_db_error().is_some_and(|db| {
        *db.code() == SqlState::UNIQUE_VIOLATION && db.constraint() == Some(constraint)
    })
}

async fn upsert_summary(tx: &Transaction<'_>, s: &SagaSummary) -> Result<(), StoreError> {
    let st = tx
        .prepare_cached(
            "INSERT INTO sagas (saga_id, name, key, status, started_at, updated_at, last_seq, failed_step, reason)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (saga_id) DO UPDATE SET
               name = excluded.name, key = excluded.key, status = excluded.status,
               started_at = excluded.started_at, updated_at = excluded.updated_at,
               last_seq = excluded.last_seq, failed_step = excluded.failed_step,
               reason = excluded.reason",
        )
        .await
        .map_err(pg_error)?;
    let done = tx
        .execute(
            &st,
            &[
                &s.saga_id,
                &s.saga,
                &s.key,
                &s.status.name(),
                &s.started_at,
                &s.updated_at,
                &to_i64(s.last_seq)?,
                &s.failed_step,
                &s.reason,
            ],
        )
        .await;
    match done {
        Ok(_) => Ok(()),
        // another process started a saga with this key after our check: the caller
        // looks up which (a nil id means "not known yet")
        Err(e) if is_unique_violation(&e, "sagas_by_key") => Err(StoreError::DuplicateKey {
            saga: s.saga.clone(),
            key: s.key.clone().unwrap_or_default(),
            saga_id: Uuid::nil(),
        }),
        Err(e) => Err(pg_error(e)),
    }
}

/// The saga of `name` started with `key`, if any.
async fn saga_with_key(
    client: &impl GenericClient,
    name: &str,
    key: &str,
) -> Result<Option<Uuid>, StoreError> {
    let row = client
        .query_opt(
            "SELECT saga_id FROM sagas WHERE key = $1 AND name = $2",
            &[&key, &name],
        )
        .await
        .map_err(pg_error)?;
    row.map(|r| r.try_get(0).map_err(pg_error)).transpose()
}

async fn load_events(client: &impl GenericClient, saga_id: Uuid) -> Result<Vec<Event>, StoreError> {
    let rows = client
        .query(
            "SELECT seq, body FROM events WHERE saga_id = $1 ORDER BY seq",
            &[&saga_id],
        )
        .await
        .map_err(pg_error)?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let seq: i64 = row.try_get(0).map_err(pg_error)?;
        let body: String = row.try_get(1).map_err(pg_error)?;
        out.push(decode(&body).map_err(|error| StoreError::Unreadable {
            saga_id,
            seq: u64::try_from(seq).unwrap_or_default(),
            error,
        })?);
    }
    Ok(out)
}

/// A [`Commit`] made owned, to run on the store's runtime.
struct OwnedCommit {
    events: Vec<Event>,
    /// Each event's encoded body (encoded in the caller's task).
    bodies: Vec<String>,
    writes: Option<UnitOfWork>,
    lease: Option<Lease>,
    renew_until: Option<DateTime<Utc>>,
    release: bool,
    projection: Option<ProjectionUpdate>,
}

/// One append in one transaction: the saga's lock, the lease, the sequence rule, the
/// key, the writes, the events, the read model.
async fn append(pool: &Pool, c: &OwnedCommit) -> Result<(), CommitError> {
    let mut client = connect(pool).await?;
    let tx = client.transaction().await.map_err(pg_error)?;
    let Some(first) = c.events.first() else {
        if let Some(unit) = &c.writes {
            apply(&tx, unit).await?;
        }
        tx.commit().await.map_err(pg_error)?;
        return Ok(());
    };
    let saga_id = first.saga_id;
    lock_saga(&tx, saga_id).await?;
    let st = tx
        .prepare_cached("SELECT last_seq FROM sagas WHERE saga_id = $1")
        .await
        .map_err(pg_error)?;
    let last_seq = match tx.query_opt(&st, &[&saga_id]).await.map_err(pg_error)? {
        Some(row) => to_u64(row.try_get(0).map_err(pg_error)?)?,
        None => 0,
    };
    let current = lease_row(&tx, saga_id).await?;
    // ownership first: a fenced-off writer is told so, not that it is behind
    let op = LeaseOp {
        lease: c.lease.as_ref(),
        renew_until: c.renew_until,
        release: c.release,
    };
    let lease_write = lease::admit(current.as_ref(), saga_id, &op, Utc::now)?;
    check_sequence(last_seq, &c.events)?;
    if let Some(row) = lease_write {
        write_lease(&tx, &row).await?;
    }
    if let (0, Some(ProjectionUpdate::Row(row))) = (last_seq, &c.projection)
        && let Some(key) = &row.key
        && let Some(existing) = saga_with_key(&tx, &row.saga, key).await?
    {
        return Err(StoreError::DuplicateKey {
            saga: row.saga.clone(),
            key: key.clone(),
            saga_id: existing,
        }
        .into());
    }
    if let Some(unit) = &c.writes {
        apply(&tx, unit).await?;
    }
    let st = tx
        .prepare_cached(
            "INSERT INTO events (saga_id, seq, at, type, body) VALUES ($1, $2, $3, $4, $5)",
        )
        .await
        .map_err(pg_error)?;
    for (event, body) in c.events.iter().zip(&c.bodies) {
        let seq = to_i64(event.seq)?;
        let inserted = tx
            .execute(
                &st,
                &[&saga_id, &seq, &event.at, &event.kind.type_name(), body],
            )
            .await;
        match inserted {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e, "events_pkey") => {
                return Err(written_first(saga_id, event.seq).into());
            }
            Err(e) => return Err(pg_error(e).into()),
        }
    }
    match &c.projection {
        Some(ProjectionUpdate::Row(row)) => upsert_summary(&tx, row).await?,
        Some(ProjectionUpdate::Moved {
            last_seq,
            updated_at,
            ..
        }) => {
            let st = tx
                .prepare_cached(
                    "UPDATE sagas SET updated_at = $2, last_seq = $3 WHERE saga_id = $1",
                )
                .await
                .map_err(pg_error)?;
            tx.execute(&st, &[&saga_id, updated_at, &to_i64(*last_seq)?])
                .await
                .map_err(pg_error)?;
        }
        None => {}
    }
    tx.commit().await.map_err(pg_error)?;
    Ok(())
}

/// The entities a unit of work touches, read (and row-locked) up front, so that the
/// shared rules ([`apply_unit`]) run on them in memory; [`Staged::flush`] writes
/// back what changed, in the same transaction.
struct Staged {
    known: BTreeSet<String>,
    /// (repo, id) → (as read, as it is now).
    rows: BTreeMap<(String, String), (Option<Entity>, Option<Entity>)>,
}

fn entity_of(body: Json, repo: &str, id: &str) -> Result<Entity, StoreError> {
    match body {
        Json::Object(e) => Ok(e),
        _ => Err(StoreError::Io(format!(
            "entity `{repo}/{id}` is not a JSON object"
        ))),
    }
}

impl Staged {
    async fn load(tx: &Transaction<'_>, unit: &UnitOfWork) -> Result<Staged, StoreError> {
        let mut wanted: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (repo, id) in unit
            .reads
            .iter()
            .map(|r| (&r.repo, &r.id))
            .chain(unit.writes.iter().map(|w| match w {
                crate::repo::Write::Insert { repo, id, .. }
                | crate::repo::Write::Update { repo, id, .. }
                | crate::repo::Write::Delete { repo, id } => (repo, id),
            }))
        {
            wanted.entry(repo.clone()).or_default().insert(id.clone());
        }
        let names: Vec<&String> = wanted.keys().collect();
        let st = tx
            .prepare_cached("SELECT name FROM repositories WHERE name = ANY($1)")
            .await
            .map_err(pg_error)?;
        let known: BTreeSet<String> = tx
            .query(&st, &[&names])
            .await
            .map_err(pg_error)?
            .iter()
            .map(|r| r.try_get(0).map_err(pg_error))
            .collect::<Result<_, _>>()?;
        let mut rows = BTreeMap::new();
        for (repo, ids) in &wanted {
            if !known.contains(repo) {
                continue;
            }
            let ids: Vec<&String> = ids.iter().collect();
            let found = tx
                .query(
                    &format!(
                        "SELECT id, body FROM {} WHERE id = ANY($1) ORDER BY id FOR UPDATE",
                        table(repo)
                    ),
                    &[&ids],
                )
                .await
                .map_err(pg_error)?;
            let mut by_id = BTreeMap::new();
            for r in found {
                let id: String = r.try_get(0).map_err(pg_error)?;
                let body: Json = r.try_get(1).map_err(pg_error)?;
                let e = entity_of(body, repo, &id)?;
                by_id.insert(id, e);
            }
            for id in ids {
                let e = by_id.remove(id);
                rows.insert((repo.clone(), id.clone()), (e.clone(), e));
            }
        }
        Ok(Staged { known, rows })
    }

    async fn flush(self, tx: &Transaction<'_>) -> Result<(), CommitError> {
        for ((repo, id), (before, now)) in self.rows {
            if before == now {
                continue;
            }
            let t = table(&repo);
            let done = match (&before, now) {
                (Some(_), Some(e)) => {
                    let body = Json::Object(e);
                    tx.execute(
                        &format!("UPDATE {t} SET body = $2 WHERE id = $1"),
                        &[&id, &body],
                    )
                    .await
                }
                (None, Some(e)) => {
                    let body = Json::Object(e);
                    tx.execute(
                        &format!("INSERT INTO {t} (id, body) VALUES ($1, $2)"),
                        &[&id, &body],
                    )
                    .await
                }
                (_, None) => {
                    tx.execute(&format!("DELETE FROM {t} WHERE id = $1"), &[&id])
                        .await
                }
            };
            match done {
                Ok(_) => {}
                // inserted by another transaction since it was read as missing
                Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
                    return Err(RepoError::Changed { repo, id }.into());
                }
                Err(e) => return Err(pg_error(e).into()),
            }
        }
        Ok(())
    }
}

impl UnitTarget for Staged {
    fn entity(&mut self, repo: &str, id: &str) -> Result<Option<Entity>, RepoError> {
        if !self.known.contains(repo) {
            return Err(RepoError::UnknownRepository(repo.to_string()));
        }
        match self.rows.get(&(repo.to_string(), id.to_string())) {
            Some((_, now)) => Ok(now.clone()),
            None => Err(RepoError::Storage(format!(
                "`{repo}/{id}` was not read for this unit of work"
            ))),
        }
    }

    fn put(&mut self, repo: &str, id: &str, entity: &Entity) -> Result<(), RepoError> {
        self.row(repo, id)?.1 = Some(entity.clone());
        Ok(())
    }

    fn remove(&mut self, repo: &str, id: &str) -> Result<(), RepoError> {
        self.row(repo, id)?.1 = None;
        Ok(())
    }
}

impl Staged {
    fn row(
        &mut self,
        repo: &str,
        id: &str,
    ) -> Result<&mut (Option<Entity>, Option<Entity>), RepoError> {
        self.rows
            .get_mut(&(repo.to_string(), id.to_string()))
            .ok_or_else(|| RepoError::Storage(format!("`{repo}/{id}` was not read")))
    }
}

/// Apply a unit of work inside `tx` through the shared rules; storage failures stop
/// the saga, data conflicts fail the attempt.
async fn apply(tx: &Transaction<'_>, unit: &UnitOfWork) -> Result<(), CommitError> {
    let mut staged = Staged::load(tx, unit).await?;
    apply_unit(&mut staged, unit).map_err(|e| match e {
        RepoError::Storage(m) => CommitError::Store(StoreError::Io(m)),
        other => CommitError::Repo(other),
    })?;
    staged.flush(tx).await
}

impl EventLog for PostgresStore {
    fn append<'a>(&'a self, c: Commit<'a>) -> CommitFuture<'a> {
        Box::pin(async move {
            let commit = OwnedCommit {
                bodies: c.events.iter().map(encode).collect(),
                lease: c.lease.lease.cloned(),
                renew_until: c.lease.renew_until,
                release: c.lease.release,
                projection: c.projection(),
                events: c.events,
                writes: c.writes,
            };
            let pool = self.pool.clone();
            self.run(async move {
                match append(&pool, &commit).await {
                    Err(CommitError::Store(StoreError::DuplicateKey { saga, key, saga_id }))
                        if saga_id.is_nil() =>
                    {
                        let client = connect(&pool).await?;
                        let saga_id = saga_with_key(&client, &saga, &key)
                            .await?
                            .unwrap_or_default();
                        Err(StoreError::DuplicateKey { saga, key, saga_id }.into())
                    }
                    other => other,
                }
            })
            .await
        })
    }

    fn load(&self, saga_id: Uuid) -> StoreFuture<'_, Vec<Event>> {
        let pool = self.pool.clone();
        Box::pin(self.run(async move { load_events(&connect(&pool).await?, saga_id).await }))
    }

    fn pin<'a>(&'a self, hash: &'a str, name: &'a str, text: &'a str) -> StoreFuture<'a, ()> {
        let pool = self.pool.clone();
        let (hash, name, text) = (hash.to_string(), name.to_string(), text.to_string());
        Box::pin(self.run(async move {
            connect(&pool)
                .await?
                .execute(
                    "INSERT INTO definitions (hash, name, text) VALUES ($1, $2, $3)
                     ON CONFLICT (hash) DO NOTHING",
                    &[&hash, &name, &text],
                )
                .await
                .map_err(pg_error)?;
            Ok(())
        }))
    }

    fn pinned<'a>(&'a self, hash: &'a str) -> StoreFuture<'a, Option<Pinned>> {
        let pool = self.pool.clone();
        let hash = hash.to_string();
        Box::pin(self.run(async move {
            let row = connect(&pool)
                .await?
                .query_opt(
                    "SELECT name, text FROM definitions WHERE hash = $1",
                    &[&hash],
                )
                .await
                .map_err(pg_error)?;
            row.map(|r| {
                Ok(Pinned {
                    name: r.try_get(0).map_err(pg_error)?,
                    text: r.try_get(1).map_err(pg_error)?,
                })
            })
            .transpose()
        }))
    }
}

impl SagaIndex for PostgresStore {
    fn list<'a>(&'a self, filter: &'a SagaFilter) -> StoreFuture<'a, Vec<SagaSummary>> {
        let mut sql = format!("SELECT {SUMMARY_COLUMNS} FROM sagas WHERE true");
        let mut args: Vec<Box<dyn ToSql + Send + Sync>> = Vec::new();
        if let Some(s) = filter.status {
            args.push(Box::new(s.name()));
            sql.push_str(&format!(" AND status = ${}", args.len()));
        }
        if let Some(n) = &filter.name {
            args.push(Box::new(n.clone()));
            sql.push_str(&format!(" AND name = ${}", args.len()));
        }
        if let Some(t) = filter.since {
            args.push(Box::new(t));
            sql.push_str(&format!(" AND started_at >= ${}", args.len()));
        }
        sql.push_str(" ORDER BY started_at DESC, saga_id");
        if let Some(limit) = filter.limit {
            args.push(Box::new(i64::try_from(limit).unwrap_or(i64::MAX)));
            sql.push_str(&format!(" LIMIT ${}", args.len()));
        }
        Box::pin(self.summaries(sql, args))
    }

    fn unfinished(&self) -> StoreFuture<'_, Vec<Uuid>> {
        Box::pin(self.ids(
            "SELECT saga_id FROM sagas WHERE status IN ('running', 'compensating') ORDER BY started_at, saga_id",
            Vec::new(),
        ))
    }

    fn find_ids<'a>(&'a self, fragment: &'a str, limit: usize) -> StoreFuture<'a, Vec<Uuid>> {
        Box::pin(async move {
            if !is_id_fragment(fragment) {
                return Ok(Vec::new());
            }
            let f = fragment.to_ascii_lowercase();
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            // the fragment is hex digits and dashes: no pattern characters
            self.ids(
                "SELECT saga_id FROM sagas
                 WHERE starts_with(saga_id::text, $1) OR right(saga_id::text, length($1)) = $1
                 ORDER BY saga_id LIMIT $2",
                vec![Box::new(f), Box::new(limit)],
            )
            .await
        })
    }

    fn by_key<'a>(&'a self, key: &'a str, limit: usize) -> StoreFuture<'a, Vec<SagaSummary>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        Box::pin(self.summaries(
            format!(
                "SELECT {SUMMARY_COLUMNS} FROM sagas WHERE key = $1 ORDER BY started_at DESC, saga_id LIMIT $2"
            ),
            vec![Box::new(key.to_string()), Box::new(limit)],
        ))
    }

    fn rebuild_projection(&self) -> StoreFuture<'_, usize> {
        let pool = self.pool.clone();
        Box::pin(self.run(async move {
            let mut client = connect(&pool).await?;
            let tx = client.transaction().await.map_err(pg_error)?;
            // appends wait until the rebuilt read model is committed
            tx.batch_execute("LOCK TABLE sagas IN EXCLUSIVE MODE; DELETE FROM sagas")
                .await
                .map_err(pg_error)?;
            let ids: Vec<Uuid> = tx
                .query("SELECT DISTINCT saga_id FROM events", &[])
                .await
                .map_err(pg_error)?
                .iter()
                .map(|r| r.try_get(0).map_err(pg_error))
                .collect::<Result<_, _>>()?;
            for id in &ids {
                let events = load_events(&tx, *id).await?;
                let state =
                    crate::saga::state::fold(&events).map_err(|e| StoreError::Io(e.to_string()))?;
                let at = events.last().map_or(state.started_at, |e| e.at);
                upsert_summary(&tx, &summary(&state, at)).await?;
            }
            tx.commit().await.map_err(pg_error)?;
            Ok(ids.len())
        }))
    }
}

impl Leases for PostgresStore {
    fn acquire<'a>(
        &'a self,
        saga_id: Uuid,
        owner: &'a str,
        ttl: Duration,
    ) -> StoreFuture<'a, Lease> {
        let owner = owner.to_string();
        Box::pin(async move {
            self.lease_change(saga_id, move |cur| {
                lease::acquire(cur, saga_id, &owner, ttl, Utc::now()).map(Some)
            })
            .await?
            .ok_or_else(|| StoreError::Io("lease not written".into()))
        })
    }

    fn renew<'a>(&'a self, held: &'a Lease, ttl: Duration) -> StoreFuture<'a, Lease> {
        let owned = held.clone();
        Box::pin(async move {
            self.lease_change(held.saga_id, move |cur| {
                lease::renew(cur, &owned, ttl, Utc::now()).map(Some)
            })
            .await?
            .ok_or_else(|| StoreError::Io("lease not written".into()))
        })
    }

    fn release<'a>(&'a self, held: &'a Lease) -> StoreFuture<'a, ()> {
        let owned = held.clone();
        Box::pin(async move {
            self.lease_change(held.saga_id, move |cur| Ok(lease::release(cur, &owned)))
                .await?;
            Ok(())
        })
    }

    fn holder(&self, saga_id: Uuid) -> StoreFuture<'_, Option<Lease>> {
        let pool = self.pool.clone();
        Box::pin(self.run(async move {
            let mut client = connect(&pool).await?;
            let tx = client.transaction().await.map_err(pg_error)?;
            lease_row(&tx, saga_id).await
        }))
    }
}

/// The names of the repositories, in order.
async fn repository_names(client: &impl GenericClient) -> Result<Vec<String>, StoreError> {
    client
        .query("SELECT name FROM repositories ORDER BY name", &[])
        .await
        .map_err(pg_error)?
        .iter()
        .map(|r| r.try_get(0).map_err(pg_error))
        .collect()
}

/// Every entity of a known repository, in id order.
async fn entities(
    client: &impl GenericClient,
    repo: &str,
) -> Result<Vec<(String, Entity)>, StoreError> {
    let rows = client
        .query(
            &format!("SELECT id, body FROM {} ORDER BY id", table(repo)),
            &[],
        )
        .await
        .map_err(pg_error)?;
    rows.into_iter()
        .map(|r| {
            let id: String = r.try_get(0).map_err(pg_error)?;
            let body: Json = r.try_get(1).map_err(pg_error)?;
            let e = entity_of(body, repo, &id)?;
            Ok((id, e))
        })
        .collect()
}

/// Fails with [`RepoError::UnknownRepository`] unless `repo` is registered.
async fn known_repo(client: &impl GenericClient, repo: &str) -> Result<(), RepoError> {
    let found = client
        .query_opt("SELECT 1 FROM repositories WHERE name = $1", &[&repo])
        .await
        .map_err(|e| repo_error(pg_error(e)))?;
    match found {
        Some(_) => Ok(()),
        None => Err(RepoError::UnknownRepository(repo.to_string())),
    }
}

impl Repository for PostgresStore {
    fn repositories(&self) -> Vec<String> {
        let pool = self.pool.clone();
        self.blocking(async move { repository_names(&connect(&pool).await?).await })
            .unwrap_or_default()
    }

    fn get(&self, repo: &str, id: &str) -> Result<Option<Entity>, RepoError> {
        let pool = self.pool.clone();
        let (repo, id) = (repo.to_string(), id.to_string());
        self.blocking(async move {
            let client = connect(&pool).await.map_err(repo_error)?;
            known_repo(&client, &repo).await?;
            let row = client
                .query_opt(
                    &format!("SELECT body FROM {} WHERE id = $1", table(&repo)),
                    &[&id],
                )
                .await
                .map_err(|e| repo_error(pg_error(e)))?;
            row.map(|r| {
                let body: Json = r.try_get(0).map_err(|e| repo_error(pg_error(e)))?;
                entity_of(body, &repo, &id).map_err(repo_error)
            })
            .transpose()
        })
    }

    fn find(
        &self,
        repo: &str,
        keep: &mut dyn FnMut(&str, &Entity) -> Result<bool, String>,
    ) -> Result<Vec<(String, Entity)>, FindError> {
        let pool = self.pool.clone();
        let name = repo.to_string();
        let all = self.blocking(async move {
            let client = connect(&pool).await.map_err(repo_error)?;
            known_repo(&client, &name).await?;
            entities(&client, &name).await.map_err(repo_error)
        })?;
        keep_matching(all, keep)
    }

    fn commit(&self, unit: &UnitOfWork) -> Result<(), RepoError> {
        let pool = self.pool.clone();
        let unit = unit.clone();
        let done: Result<(), CommitError> = self.blocking(async move {
            let mut client = connect(&pool).await?;
            let tx = client.transaction().await.map_err(pg_error)?;
            apply(&tx, &unit).await?;
            tx.commit().await.map_err(pg_error)?;
            Ok(())
        });
        match done {
            Ok(()) => Ok(()),
            Err(CommitError::Repo(e)) => Err(e),
            Err(CommitError::Store(e)) => Err(e.into()),
        }
    }
}

impl SagaStore for PostgresStore {
    fn url(&self) -> String {
        self.url.clone()
    }

    fn seed<'a>(&'a self, repos: &'a Json) -> StoreFuture<'a, Vec<String>> {
        let tables = seed_tables(repos);
        let pool = self.pool.clone();
        Box::pin(self.run(async move {
            let tables = tables?;
            let mut client = connect(&pool).await?;
            let tx = client.transaction().await.map_err(pg_error)?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&DDL_LOCK])
                .await
                .map_err(pg_error)?;
            let mut names = Vec::new();
            for (name, rows) in tables {
                if !create_repo(&tx, &name).await? {
                    continue;
                }
                let (ids, bodies): (Vec<String>, Vec<Json>) = rows.into_iter().unzip();
                tx.execute(
                    &format!(
                        "INSERT INTO {} (id, body) SELECT * FROM unnest($1::text[], $2::jsonb[])",
                        table(&name)
                    ),
                    &[&ids, &bodies],
                )
                .await
                .map_err(pg_error)?;
                names.push(name);
            }
            tx.commit().await.map_err(pg_error)?;
            Ok(names)
        }))
    }

    fn export(&self) -> StoreFuture<'_, Json> {
        let pool = self.pool.clone();
        Box::pin(self.run(async move {
            let client = connect(&pool).await?;
            let mut out = serde_json::Map::new();
            for name in repository_names(&client).await? {
                let rows = entities(&client, &name).await?;
                let entities = rows
                    .into_iter()
                    .map(|(id, e)| (id, Json::Object(e)))
                    .collect();
                out.insert(name, Json::Object(entities));
            }
            Ok(Json::Object(out))
        }))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show_in_the_url() {
        assert_eq!(
            redact("postgres://u:secret@db:5432/x?sslmode=disable"),
            "postgres://u:***@db:5432/x?sslmode=disable"
        );
        assert_eq!(redact("postgres://u@db/x"), "postgres://u@db/x");
        assert_eq!(redact("postgres://db/x"), "postgres://db/x");
    }

    #[test]
    fn bad_urls_are_refused_before_connecting() {
        let e = PostgresStore::open("postgres://u:pw@host:notaport/x")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("u:***@host"), "{e}");
        assert!(!e.contains("pw"), "{e}");
    }
}
