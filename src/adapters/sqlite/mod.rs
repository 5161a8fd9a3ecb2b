//! SQLite: the durable event log, the read model, leases and the repositories, in one
//! file.
//!
//! Writes go through one writer thread that commits in batches (`writer`: group
//! commit, WAL, `synchronous=FULL`); reads use a small pool of their own
//! connections (WAL readers never wait for the writer). Because the repositories live
//! in the same database, a built-in step's writes and its outcome event commit in one
//! transaction. Several processes may share a file: SQLite serialises their write
//! transactions, and every append reads the saga's position and lease inside its
//! transaction, so the sequence rule and fencing hold across processes.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use chrono::Utc;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use serde_json::Value as Json;
use uuid::Uuid;

mod schema;
mod writer;

use schema::{
    SUMMARY_COLUMNS, create_repo, get_entity, io, lease_row, repo_io, summary_row, table,
    time_text, upsert_summary, write_lease,
};
use writer::{Job, OwnedCommit, Reply, Request};

use crate::repo::{Entity, FindError, RepoError, Repository, UnitOfWork};
use crate::saga::events::{Event, decode};
use crate::saga::read_model::{SagaFilter, SagaSummary, summary};
use crate::saga::store::{
    Commit, CommitError, CommitFuture, EventLog, Lease, Leases, Pinned, SagaIndex, SagaStore,
    StoreError, StoreFuture, is_id_fragment, lease, seed_tables,
};

/// Event log, read model, leases and repositories in one SQLite file.
pub struct SqliteStore {
    path: PathBuf,
    writer: Option<mpsc::Sender<Request>>,
    thread: Option<std::thread::JoinHandle<()>>,
    readers: Mutex<Vec<Connection>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl SqliteStore {
    /// Open (or create) the database at `path`, creating or migrating the tables and
    /// rebuilding the read model when its table had to be created or changed.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let conn = Connection::open(path).map_err(|e| open_error(path, e))?;
        schema::configure(&conn).map_err(|e| open_error(path, e))?;
        let rebuild = schema::create(&conn)?;
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("rulesaga-sqlite-writer".into())
            .spawn(move || writer::run(conn, rx))
            .map_err(io)?;
        let store = SqliteStore {
            path: path.to_path_buf(),
            writer: Some(tx),
            thread: Some(thread),
            readers: Mutex::new(Vec::new()),
        };
        if rebuild {
            store.rebuild_blocking()?;
        }
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn send(&self, request: Request) -> Result<(), StoreError> {
        match &self.writer {
            Some(w) => w
                .send(request)
                .map_err(|_| StoreError::Io("the database writer stopped".into())),
            None => Err(StoreError::Io("the database is closed".into())),
        }
    }

    /// Run a job on the writer and wait for its commit.
    async fn job(
        &self,
        job: impl FnOnce(&Connection) -> Result<(), CommitError> + Send + 'static,
    ) -> Result<(), CommitError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.send(Request::Job {
            job: Box::new(job),
            reply: Reply::Async(tx),
        })?;
        rx.await
            .unwrap_or_else(|_| Err(StoreError::Io("the database writer stopped".into()).into()))
    }

    /// Run a job on the writer and wait (blocking) for its commit.
    fn job_blocking(&self, job: Job) -> Result<(), CommitError> {
        let (tx, rx) = mpsc::channel();
        self.send(Request::Job {
            job,
            reply: Reply::Sync(tx),
        })?;
        rx.recv()
            .unwrap_or_else(|_| Err(StoreError::Io("the database writer stopped".into()).into()))
    }

    /// A lease decision made and written inside one write transaction.
    async fn lease_job(
        &self,
        saga_id: Uuid,
        decide: impl FnOnce(Option<&Lease>) -> Result<Option<Lease>, StoreError> + Send + 'static,
    ) -> Result<Option<Lease>, StoreError> {
        let out = std::sync::Arc::new(Mutex::new(None));
        let slot = out.clone();
        self.job(move |conn| {
            let current = lease_row(conn, &saga_id.to_string())?;
            let next = decide(current.as_ref())?;
            if let Some(l) = &next {
                write_lease(conn, l)?;
            }
            *lock(&slot) = next;
            Ok(())
        })
        .await
        .map_err(store_only)?;
        let next = lock(&out).take();
        Ok(next)
    }

    /// Run `f` on a reader connection.
    fn read<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, E>,
    ) -> Result<T, E> {
        let conn = lock(&self.readers).pop();
        let conn = match conn {
            Some(c) => c,
            None => {
                let c = Connection::open_with_flags(
                    &self.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )
                .map_err(|e| E::from(open_error(&self.path, e)))?;
                c.busy_timeout(Duration::from_secs(5))
                    .map_err(|e| E::from(io(e)))?;
                c
            }
        };
        let result = f(&conn);
        let mut pool = lock(&self.readers);
        if pool.len() < 16 {
            pool.push(conn);
        }
        result
    }

    /// Create an empty repository (no-op when it exists).
    pub fn add_repository(&self, name: &str) -> Result<(), StoreError> {
        if !crate::saga::store::valid_repo_name(name) {
            return Err(StoreError::Io(format!("invalid repository name `{name}`")));
        }
        let name = name.to_string();
        self.job_blocking(Box::new(move |conn| Ok(create_repo(conn, &name)?)))
            .map_err(store_only)
    }

    fn rebuild_blocking(&self) -> Result<usize, StoreError> {
        let count = std::sync::Arc::new(Mutex::new(0usize));
        let counter = count.clone();
        self.job_blocking(Box::new(move |conn| {
            conn.execute("DELETE FROM sagas", []).map_err(io)?;
            let ids: Vec<String> = {
                let mut st = conn
                    .prepare("SELECT DISTINCT saga_id FROM events")
                    .map_err(io)?;
                let rows = st.query_map([], |r| r.get(0)).map_err(io)?;
                rows.collect::<Result<_, _>>().map_err(io)?
            };
            for id in &ids {
                let events = load_events(conn, id)?;
                let state =
                    crate::saga::state::fold(&events).map_err(|e| StoreError::Io(e.to_string()))?;
                let at = events.last().map_or(state.started_at, |e| e.at);
                upsert_summary(conn, &summary(&state, at))?;
            }
            *lock(&counter) = ids.len();
            Ok(())
        }))
        .map_err(store_only)?;
        let n = *lock(&count);
        Ok(n)
    }

    fn ids(&self, sql: &str, args: &[&dyn rusqlite::ToSql]) -> Result<Vec<Uuid>, StoreError> {
        self.read(|conn| {
            let mut st = conn.prepare_cached(sql).map_err(io)?;
            let rows = st.query_map(args, |r| r.get::<_, String>(0)).map_err(io)?;
            let mut out = Vec::new();
            for row in rows {
                out.push(Uuid::parse_str(&row.map_err(io)?).map_err(io)?);
            }
            Ok(out)
        })
    }

    fn summaries(
        &self,
        sql: &str,
        args: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<SagaSummary>, StoreError> {
        self.read(|conn| {
            let mut st = conn.prepare_cached(sql).map_err(io)?;
            let rows = st.query_map(args, summary_row).map_err(io)?;
            let mut out = Vec::new();
            for row in rows {
                out.push(row.map_err(io)??);
            }
            Ok(out)
        })
    }
}

/// Every event of one saga, decoded (and upcast), in order.
fn load_events(conn: &Connection, saga_id: &str) -> Result<Vec<Event>, StoreError> {
    let mut st = conn
        .prepare_cached("SELECT seq, body FROM events WHERE saga_id = ?1 ORDER BY seq")
        .map_err(io)?;
    let rows = st
        .query_map(params![saga_id], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
        })
        .map_err(io)?;
    let mut out = Vec::new();
    for row in rows {
        let (seq, body) = row.map_err(io)?;
        out.push(decode(&body).map_err(|error| StoreError::Unreadable {
            saga_id: Uuid::parse_str(saga_id).unwrap_or_default(),
            seq: u64::try_from(seq).unwrap_or_default(),
            error,
        })?);
    }
    Ok(out)
}

fn open_error(path: &Path, e: rusqlite::Error) -> StoreError {
    StoreError::Io(format!("`{}`: {e}", path.display()))
}

fn store_only(e: CommitError) -> StoreError {
    match e {
        CommitError::Store(s) => s,
        CommitError::Repo(r) => StoreError::Io(r.to_string()),
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        // Closing the channel ends the writer after its last batch.
        self.writer = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl EventLog for SqliteStore {
    fn append<'a>(&'a self, c: Commit<'a>) -> CommitFuture<'a> {
        Box::pin(async move {
            // the read model's row and the events' text are computed here, in the
            // caller's task: the writer thread only writes them
            let rows = c
                .events
                .iter()
                .map(|e| (time_text(&e.at), crate::saga::events::encode(e)))
                .collect();
            let commit = OwnedCommit {
                rows,
                lease: c.lease.lease.cloned(),
                renew_until: c.lease.renew_until,
                release: c.lease.release,
                projection: c.projection(),
                events: c.events,
                writes: c.writes,
                now: Utc::now(),
            };
            let (tx, rx) = tokio::sync::oneshot::channel();
            self.send(Request::Append {
                commit: Box::new(commit),
                reply: Reply::Async(tx),
            })?;
            rx.await.unwrap_or_else(|_| {
                Err(StoreError::Io("the database writer stopped".into()).into())
            })
        })
    }

    fn load(&self, saga_id: Uuid) -> StoreFuture<'_, Vec<Event>> {
        Box::pin(async move { self.read(|conn| load_events(conn, &saga_id.to_string())) })
    }

    fn pin<'a>(&'a self, hash: &'a str, name: &'a str, text: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let known: bool = self.read(|conn| {
                conn.prepare_cached("SELECT 1 FROM definitions WHERE hash = ?1")
                    .and_then(|mut st| st.exists(params![hash]))
                    .map_err(io)
            })?;
            if known {
                return Ok(());
            }
            let (hash, name, text) = (hash.to_string(), name.to_string(), text.to_string());
            self.job(move |conn| {
                conn.execute(
                    "INSERT OR IGNORE INTO definitions (hash, name, text) VALUES (?1, ?2, ?3)",
                    params![hash, name, text],
                )
                .map_err(io)?;
                Ok(())
            })
            .await
            .map_err(store_only)
        })
    }

    fn pinned<'a>(&'a self, hash: &'a str) -> StoreFuture<'a, Option<Pinned>> {
        Box::pin(async move {
            self.read(|conn| {
                conn.prepare_cached("SELECT name, text FROM definitions WHERE hash = ?1")
                    .and_then(|mut st| {
                        st.query_row(params![hash], |r| {
                            Ok(Pinned {
                                name: r.get(0)?,
                                text: r.get(1)?,
                            })
                        })
                        .optional()
                    })
                    .map_err(io)
            })
        })
    }
}

impl SagaIndex for SqliteStore {
    fn list<'a>(&'a self, filter: &'a SagaFilter) -> StoreFuture<'a, Vec<SagaSummary>> {
        Box::pin(async move {
            let mut sql = format!("SELECT {SUMMARY_COLUMNS} FROM sagas WHERE 1 = 1");
            let mut args: Vec<String> = Vec::new();
            if let Some(s) = filter.status {
                args.push(s.name().to_string());
                sql.push_str(&format!(" AND status = ?{}", args.len()));
            }
            if let Some(n) = &filter.name {
                args.push(n.clone());
                sql.push_str(&format!(" AND name = ?{}", args.len()));
            }
            if let Some(t) = &filter.since {
                args.push(time_text(t));
                sql.push_str(&format!(" AND started_at >= ?{}", args.len()));
            }
            sql.push_str(" ORDER BY started_at DESC, saga_id");
            if let Some(limit) = filter.limit {
                sql.push_str(&format!(" LIMIT {limit}"));
            }
            let refs: Vec<&dyn rusqlite::ToSql> =
                args.iter().map(|a| a as &dyn rusqlite::ToSql).collect();
            self.summaries(&sql, &refs)
        })
    }

    fn unfinished(&self) -> StoreFuture<'_, Vec<Uuid>> {
        Box::pin(async move {
            self.ids(
                "SELECT saga_id FROM sagas WHERE status IN ('running', 'compensating') ORDER BY started_at, saga_id",
                &[],
            )
        })
    }

    fn find_ids<'a>(&'a self, fragment: &'a str, limit: usize) -> StoreFuture<'a, Vec<Uuid>> {
        Box::pin(async move {
            if !is_id_fragment(fragment) {
                return Ok(Vec::new());
            }
            let f = fragment.to_ascii_lowercase();
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            // a prefix through the primary key; a suffix (the random end of a
            // time-ordered id) by a scan
            let mut ids = self.ids(
                "SELECT saga_id FROM sagas WHERE saga_id >= ?1 AND substr(saga_id, 1, length(?1)) = ?1 ORDER BY saga_id LIMIT ?2",
                &[&f, &limit],
            )?;
            if (ids.len() as i64) < limit {
                for id in self.ids(
                    "SELECT saga_id FROM sagas WHERE substr(saga_id, -length(?1)) = ?1 ORDER BY saga_id LIMIT ?2",
                    &[&f, &limit],
                )? {
                    if !ids.contains(&id) {
                        ids.push(id);
                    }
                }
            }
            ids.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
            Ok(ids)
        })
    }

    fn by_key<'a>(&'a self, key: &'a str, limit: usize) -> StoreFuture<'a, Vec<SagaSummary>> {
        Box::pin(async move {
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            self.summaries(
                &format!(
                    "SELECT {SUMMARY_COLUMNS} FROM sagas WHERE key = ?1 ORDER BY started_at DESC, saga_id LIMIT ?2"
                ),
                &[&key, &limit],
            )
        })
    }

    fn rebuild_projection(&self) -> StoreFuture<'_, usize> {
        Box::pin(async move { self.rebuild_blocking() })
    }
}

impl Leases for SqliteStore {
    fn acquire<'a>(
        &'a self,
        saga_id: Uuid,
        owner: &'a str,
        ttl: Duration,
    ) -> StoreFuture<'a, Lease> {
        Box::pin(async move {
            let owner = owner.to_string();
            let now = Utc::now();
            self.lease_job(saga_id, move |cur| {
                lease::acquire(cur, saga_id, &owner, ttl, now).map(Some)
            })
            .await?
            .ok_or_else(|| StoreError::Io("lease not written".into()))
        })
    }

    fn renew<'a>(&'a self, held: &'a Lease, ttl: Duration) -> StoreFuture<'a, Lease> {
        Box::pin(async move {
            let held_owned = held.clone();
            let now = Utc::now();
            self.lease_job(held.saga_id, move |cur| {
                lease::renew(cur, &held_owned, ttl, now).map(Some)
            })
            .await?
            .ok_or_else(|| StoreError::Io("lease not written".into()))
        })
    }

    fn release<'a>(&'a self, held: &'a Lease) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let held_owned = held.clone();
            self.lease_job(held.saga_id, move |cur| {
                Ok(lease::release(cur, &held_owned))
            })
            .await?;
            Ok(())
        })
    }

    fn holder(&self, saga_id: Uuid) -> StoreFuture<'_, Option<Lease>> {
        Box::pin(async move { self.read(|conn| lease_row(conn, &saga_id.to_string())) })
    }
}

impl Repository for SqliteStore {
    fn repositories(&self) -> Vec<String> {
        self.read(schema::repositories).unwrap_or_default()
    }

    fn get(&self, repo: &str, id: &str) -> Result<Option<Entity>, RepoError> {
        self.read(|c| get_entity(c, repo, id))
    }

    fn find(
        &self,
        repo: &str,
        keep: &mut dyn FnMut(&str, &Entity) -> Result<bool, String>,
    ) -> Result<Vec<(String, Entity)>, FindError> {
        self.read(|conn| {
            schema::known_repo(conn, repo)?;
            let mut st = conn
                .prepare_cached(&format!("SELECT id, body FROM {} ORDER BY id", table(repo)))
                .map_err(repo_io)?;
            let rows = st
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
                .map_err(repo_io)?;
            let mut all = Vec::new();
            for row in rows {
                let (id, body) = row.map_err(repo_io)?;
                let entity: Entity = serde_json::from_str(&body).map_err(repo_io)?;
                all.push((id, entity));
            }
            crate::repo::keep_matching(all, keep)
        })
    }

    fn commit(&self, unit: &UnitOfWork) -> Result<(), RepoError> {
        let unit = unit.clone();
        match self.job_blocking(Box::new(move |conn| writer::apply(conn, &unit))) {
            Ok(()) => Ok(()),
            Err(CommitError::Repo(e)) => Err(e),
            Err(CommitError::Store(e)) => Err(e.into()),
        }
    }
}

impl From<StoreError> for FindError {
    fn from(e: StoreError) -> FindError {
        FindError::Repo(e.into())
    }
}

impl SagaStore for SqliteStore {
    fn url(&self) -> String {
        format!("sqlite:{}", self.path.display())
    }

    fn seed<'a>(&'a self, repos: &'a Json) -> StoreFuture<'a, Vec<String>> {
        Box::pin(async move {
            let tables = seed_tables(repos)?;
            let existing = self.repositories();
            let new: Vec<_> = tables
                .into_iter()
                .filter(|(n, _)| !existing.contains(n))
                .collect();
            let names = new.iter().map(|(n, _)| n.clone()).collect();
            self.job(move |conn| {
                for (name, rows) in &new {
                    create_repo(conn, name)?;
                    let mut st = conn
                        .prepare(&format!(
                            "INSERT INTO {} (id, body) VALUES (?1, ?2)",
                            table(name)
                        ))
                        .map_err(io)?;
                    for (id, body) in rows {
                        st.execute(params![id, body.to_string()]).map_err(io)?;
                    }
                }
                Ok(())
            })
            .await
            .map_err(store_only)?;
            Ok(names)
        })
    }

    fn export(&self) -> StoreFuture<'_, Json> {
        Box::pin(async move {
            let names = self.repositories();
            self.read(|conn| {
                let mut out = serde_json::Map::new();
                for name in names {
                    let mut st = conn
                        .prepare(&format!(
                            "SELECT id, body FROM {} ORDER BY id",
                            table(&name)
                        ))
                        .map_err(io)?;
                    let rows = st
                        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
                        .map_err(io)?;
                    let mut entities = serde_json::Map::new();
                    for row in rows {
                        let (id, body) = row.map_err(io)?;
                        entities.insert(id, serde_json::from_str(&body).map_err(io)?);
                    }
                    out.insert(name, Json::Object(entities));
                }
                Ok(Json::Object(out))
            })
        })
    }
}
