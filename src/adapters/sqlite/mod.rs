//! SQLite: the durable event store, the read model and the repositories, in one file.
//!
//! Writes go through one writer thread that commits in batches (`writer`: group
//! commit, WAL, `synchronous=FULL`); reads use a small pool of their own
//! connections (WAL readers never wait for the writer). Because the repositories live
//! in the same database, a built-in step's writes and its outcome event commit in one
//! transaction ([`TransactionalStore`]). The read model (`sagas` table) is updated
//! in the same transaction as the events and can be rebuilt from the log
//! ([`SqliteStore::rebuild_projection`]; done on open when the table is missing).

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags, params};
use serde_json::Value as Json;
use uuid::Uuid;

mod schema;
mod writer;

use schema::{get_entity, io, repo_io, table, valid_repo_name};
use writer::{Reply, Request, load_state, time_text, upsert_projection};

use crate::repo::{Entity, FindError, RepoError, Repository, UnitOfWork};
use crate::saga::events::{
    CommitError, CommitFuture, Event, EventStore, SagaState, StoreError, StoreFuture, Subscriber,
    TransactionalStore,
};
use crate::saga::read_model::{SagaFilter, SagaSummary, parse_status, status_name};

/// Event store, read model and repositories in one SQLite file.
pub struct SqliteStore {
    path: PathBuf,
    writer: Option<mpsc::Sender<Request>>,
    thread: Option<JoinHandle<()>>,
    readers: Mutex<Vec<Connection>>,
    subscribers: Mutex<Vec<Subscriber>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl SqliteStore {
    /// Open (or create) the database at `path`, creating the tables when missing and
    /// rebuilding the read model when its table had to be created.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let conn = Connection::open(path).map_err(|e| open_error(path, e))?;
        schema::configure(&conn).map_err(|e| open_error(path, e))?;
        let created_projection = schema::create(&conn)?;
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
            subscribers: Mutex::new(Vec::new()),
        };
        if created_projection {
            store.rebuild_projection()?;
        }
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Call `f` with every event appended through this store from now on, after it
    /// is durable (in the order each saga appended them).
    pub fn subscribe(&self, f: Subscriber) {
        lock(&self.subscribers).push(f);
    }

    fn notify(&self, events: &[&Event]) {
        let subs = lock(&self.subscribers).clone();
        for e in events {
            for s in &subs {
                s(e);
            }
        }
    }

    fn send(&self, request: Request) -> Result<(), StoreError> {
        match &self.writer {
            Some(w) => w
                .send(request)
                .map_err(|_| StoreError::Io("the database writer stopped".into())),
            None => Err(StoreError::Io("the database is closed".into())),
        }
    }

    /// Send a request and wait for its batch to commit.
    async fn submit(
        &self,
        events: Vec<Event>,
        unit: Option<UnitOfWork>,
    ) -> Result<(), CommitError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.send(Request::Append {
            events,
            unit,
            reply: Reply::Async(tx),
        })?;
        match rx.await {
            Ok(r) => r,
            Err(_) => Err(StoreError::Io("the database writer stopped".into()).into()),
        }
    }

    /// Run a job on the writer and wait (blocking) for its commit.
    fn job_blocking(
        &self,
        job: impl FnOnce(&Connection) -> Result<(), StoreError> + Send + 'static,
    ) -> Result<(), CommitError> {
        let (tx, rx) = mpsc::channel();
        self.send(Request::Job {
            job: Box::new(job),
            reply: Reply::Sync(tx),
        })?;
        match rx.recv() {
            Ok(r) => r,
            Err(_) => Err(StoreError::Io("the database writer stopped".into()).into()),
        }
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
                c.busy_timeout(std::time::Duration::from_secs(5))
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

    /// Load every repository of a JSON store (`{"repo": {"id": {...}}}`) that the
    /// database does not have yet; repositories it has are left alone. Returns the
    /// names loaded.
    pub fn seed(&self, store: &Json) -> Result<Vec<String>, StoreError> {
        let Json::Object(repos) = store else {
            return Err(StoreError::Io(
                "a store must be a JSON object of repositories".into(),
            ));
        };
        let mut tables: Vec<(String, Vec<(String, String)>)> = Vec::new();
        for (name, entities) in repos {
            if !valid_repo_name(name) {
                return Err(StoreError::Io(format!(
                    "repository name `{name}`: use letters, digits, `_` and `-` (at most 64)"
                )));
            }
            let Json::Object(entities) = entities else {
                return Err(StoreError::Io(format!(
                    "repository `{name}` must be an object of entities by id"
                )));
            };
            let mut rows = Vec::new();
            for (id, e) in entities {
                if !e.is_object() {
                    return Err(StoreError::Io(format!(
                        "entity `{name}/{id}` must be an object"
                    )));
                }
                rows.push((id.clone(), e.to_string()));
            }
            tables.push((name.clone(), rows));
        }
        let existing = self.repositories_checked()?;
        let new: Vec<_> = tables
            .into_iter()
            .filter(|(n, _)| !existing.contains(n))
            .collect();
        let names = new.iter().map(|(n, _)| n.clone()).collect();
        self.job_blocking(move |conn| {
            for (name, rows) in &new {
                create_repo(conn, name)?;
                let mut st = conn
                    .prepare(&format!(
                        "INSERT INTO {} (id, body) VALUES (?1, ?2)",
                        table(name)
                    ))
                    .map_err(io)?;
                for (id, body) in rows {
                    st.execute(params![id, body]).map_err(io)?;
                }
            }
            Ok(())
        })
        .map_err(commit_to_store)?;
        Ok(names)
    }

    /// Create an empty repository (no-op when it exists).
    pub fn add_repository(&self, name: &str) -> Result<(), StoreError> {
        if !valid_repo_name(name) {
            return Err(StoreError::Io(format!("invalid repository name `{name}`")));
        }
        let name = name.to_string();
        self.job_blocking(move |conn| create_repo(conn, &name))
            .map_err(commit_to_store)
    }

    fn repositories_checked(&self) -> Result<Vec<String>, StoreError> {
        self.read(|c| schema::repositories(c).map_err(|e| StoreError::Io(e.to_string())))
    }

    /// Every repository as JSON, shaped like a JSON store file.
    pub fn export(&self) -> Result<Json, StoreError> {
        let names = self.repositories_checked()?;
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
    }

    /// Rewrite the read model from the log.
    pub fn rebuild_projection(&self) -> Result<usize, StoreError> {
        let count = Arc::new(Mutex::new(0usize));
        let counter = count.clone();
        self.job_blocking(move |conn| {
            conn.execute("DELETE FROM sagas", []).map_err(io)?;
            let ids: Vec<(String, String, String)> = {
                let mut st = conn
                    .prepare("SELECT saga_id, min(at), max(at) FROM events GROUP BY saga_id")
                    .map_err(io)?;
                let rows = st
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .map_err(io)?;
                rows.collect::<Result<_, _>>().map_err(io)?
            };
            for (id, first, last) in &ids {
                let state = load_state(conn, id).map_err(commit_to_store)?;
                upsert_projection(conn, &state, &parse_time(first)?, &parse_time(last)?)?;
            }
            *lock(&counter) = ids.len();
            Ok(())
        })
        .map_err(commit_to_store)?;
        let n = *lock(&count);
        Ok(n)
    }

    /// Sagas in the read model, most recently started first.
    pub fn list_sagas(&self, filter: &SagaFilter) -> Result<Vec<SagaSummary>, StoreError> {
        let mut sql = String::from(
            "SELECT saga_id, name, status, started_at, updated_at, last_seq, failed_step, reason FROM sagas WHERE 1 = 1",
        );
        let mut args: Vec<String> = Vec::new();
        if let Some(s) = filter.status {
            args.push(status_name(s).to_string());
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
        self.read(|conn| {
            let mut st = conn.prepare(&sql).map_err(io)?;
            let rows = st
                .query_map(rusqlite::params_from_iter(args.iter()), summary_row)
                .map_err(io)?;
            let mut out = Vec::new();
            for row in rows {
                out.push(row.map_err(io)??);
            }
            Ok(out)
        })
    }

    /// Sagas that are still running or compensating (recovery's work list), oldest first.
    pub fn unfinished(&self) -> Result<Vec<Uuid>, StoreError> {
        self.read(|conn| {
            let mut st = conn
                .prepare(
                    "SELECT saga_id FROM sagas WHERE status IN ('running', 'compensating') ORDER BY started_at, saga_id",
                )
                .map_err(io)?;
            let rows = st
                .query_map([], |r| r.get::<_, String>(0))
                .map_err(io)?;
            let mut out = Vec::new();
            for row in rows {
                out.push(Uuid::parse_str(&row.map_err(io)?).map_err(io)?);
            }
            Ok(out)
        })
    }

    /// One saga: its summary from the read model, and its steps folded from the log
    /// (one read snapshot).
    pub fn saga_status(&self, id: Uuid) -> Result<Option<(SagaSummary, SagaState)>, StoreError> {
        self.read(|conn| {
            conn.execute_batch("BEGIN").map_err(io)?;
            let result = (|| {
                let mut st = conn
                    .prepare_cached(
                        "SELECT saga_id, name, status, started_at, updated_at, last_seq, failed_step, reason FROM sagas WHERE saga_id = ?1",
                    )
                    .map_err(io)?;
                let mut rows = st.query(params![id.to_string()]).map_err(io)?;
                let Some(row) = rows.next().map_err(io)? else {
                    return Ok(None);
                };
                let summary = summary_row(row).map_err(io)??;
                let state = load_state(conn, &id.to_string()).map_err(commit_to_store)?;
                Ok(Some((summary, state)))
            })();
            let _ = conn.execute_batch("COMMIT");
            result
        })
    }

    /// Saga ids starting with `prefix` (at most 2 are returned: enough to tell unique).
    pub fn find_saga_ids(&self, prefix: &str) -> Result<Vec<Uuid>, StoreError> {
        let prefix = prefix.to_ascii_lowercase();
        if !prefix.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
            return Ok(Vec::new());
        }
        self.read(|conn| {
            let mut st = conn
                .prepare_cached(
                    "SELECT saga_id FROM sagas WHERE saga_id >= ?1 AND substr(saga_id, 1, length(?1)) = ?1 ORDER BY saga_id LIMIT 2",
                )
                .map_err(io)?;
            let rows = st
                .query_map(params![prefix], |r| r.get::<_, String>(0))
                .map_err(io)?;
            let mut out = Vec::new();
            for row in rows {
                out.push(Uuid::parse_str(&row.map_err(io)?).map_err(io)?);
            }
            Ok(out)
        })
    }
}

fn summary_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<SagaSummary, StoreError>> {
    let id: String = r.get(0)?;
    let status: String = r.get(2)?;
    let started: String = r.get(3)?;
    let updated: String = r.get(4)?;
    let last_seq: i64 = r.get(5)?;
    let name: String = r.get(1)?;
    let failed_step: Option<String> = r.get(6)?;
    let reason: Option<String> = r.get(7)?;
    Ok((|| {
        Ok(SagaSummary {
            saga_id: Uuid::parse_str(&id).map_err(io)?,
            saga: name,
            status: parse_status(&status)
                .ok_or_else(|| StoreError::Io(format!("unknown status `{status}`")))?,
            started_at: parse_time(&started)?,
            updated_at: parse_time(&updated)?,
            last_seq: u64::try_from(last_seq).map_err(io)?,
            failed_step,
            reason,
        })
    })())
}

fn parse_time(t: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(t)
        .map(|t| t.with_timezone(&Utc))
        .map_err(io)
}

fn create_repo(conn: &Connection, name: &str) -> Result<(), StoreError> {
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

fn open_error(path: &Path, e: rusqlite::Error) -> StoreError {
    StoreError::Io(format!("`{}`: {e}", path.display()))
}

fn commit_to_store(e: CommitError) -> StoreError {
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

impl EventStore for SqliteStore {
    fn append<'a>(&'a self, event: &'a Event) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.submit(vec![event.clone()], None)
                .await
                .map_err(commit_to_store)?;
            self.notify(&[event]);
            Ok(())
        })
    }

    fn load(&self, saga_id: Uuid) -> StoreFuture<'_, Vec<Event>> {
        Box::pin(async move {
            self.read(|conn| {
                let mut st = conn
                    .prepare_cached("SELECT body FROM events WHERE saga_id = ?1 ORDER BY seq")
                    .map_err(io)?;
                let rows = st
                    .query_map(params![saga_id.to_string()], |r| r.get::<_, String>(0))
                    .map_err(io)?;
                let mut out = Vec::new();
                for row in rows {
                    out.push(serde_json::from_str(&row.map_err(io)?).map_err(io)?);
                }
                Ok(out)
            })
        })
    }

    fn list(&self) -> StoreFuture<'_, Vec<Uuid>> {
        Box::pin(async move {
            self.read(|conn| {
                let mut st = conn
                    .prepare("SELECT saga_id FROM events WHERE seq = 1 ORDER BY at, saga_id")
                    .map_err(io)?;
                let rows = st.query_map([], |r| r.get::<_, String>(0)).map_err(io)?;
                let mut out = Vec::new();
                for row in rows {
                    out.push(Uuid::parse_str(&row.map_err(io)?).map_err(io)?);
                }
                Ok(out)
            })
        })
    }

    fn save_definition<'a>(&'a self, hash: &'a str, text: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            if self.read(|c| writer::definition(c, hash))?.is_some() {
                return Ok(());
            }
            let (hash, text) = (hash.to_string(), text.to_string());
            let (tx, rx) = tokio::sync::oneshot::channel();
            self.send(Request::Job {
                job: Box::new(move |conn| {
                    conn.execute(
                        "INSERT OR IGNORE INTO definitions (hash, name, text) VALUES (?1, '', ?2)",
                        params![hash, text],
                    )
                    .map_err(io)?;
                    Ok(())
                }),
                reply: Reply::Async(tx),
            })?;
            match rx.await {
                Ok(r) => r.map_err(commit_to_store),
                Err(_) => Err(StoreError::Io("the database writer stopped".into())),
            }
        })
    }

    fn load_definition<'a>(&'a self, hash: &'a str) -> StoreFuture<'a, Option<String>> {
        Box::pin(async move { self.read(|c| writer::definition(c, hash)) })
    }
}

impl TransactionalStore for SqliteStore {
    fn append_with_writes<'a>(
        &'a self,
        event: &'a Event,
        unit: &'a UnitOfWork,
    ) -> CommitFuture<'a> {
        Box::pin(async move {
            self.submit(vec![event.clone()], Some(unit.clone())).await?;
            self.notify(&[event]);
            Ok(())
        })
    }
}

impl From<StoreError> for RepoError {
    fn from(e: StoreError) -> RepoError {
        RepoError::Storage(e.to_string())
    }
}

impl From<StoreError> for FindError {
    fn from(e: StoreError) -> FindError {
        FindError::Repo(e.into())
    }
}

impl Repository for SqliteStore {
    fn repositories(&self) -> Vec<String> {
        self.repositories_checked().unwrap_or_default()
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
            let mut out = Vec::new();
            for row in rows {
                let (id, body) = row.map_err(repo_io)?;
                let entity: Entity = serde_json::from_str(&body).map_err(repo_io)?;
                match keep(&id, &entity) {
                    Ok(true) => out.push((id, entity)),
                    Ok(false) => {}
                    Err(message) => return Err(FindError::Filter { id, message }),
                }
            }
            Ok(out)
        })
    }

    fn commit(&self, unit: &UnitOfWork) -> Result<(), RepoError> {
        let (tx, rx) = mpsc::channel();
        self.send(Request::Append {
            events: Vec::new(),
            unit: Some(unit.clone()),
            reply: Reply::Sync(tx),
        })?;
        match rx.recv() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(CommitError::Repo(e))) => Err(e),
            Ok(Err(CommitError::Store(e))) => Err(e.into()),
            Err(_) => Err(RepoError::Storage("the database writer stopped".into())),
        }
    }
}
