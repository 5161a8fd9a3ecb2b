//! The in-memory store: the log, the read model, leases, pinned texts and the
//! repositories behind one lock, so a commit is atomic. For tests, benchmarks and
//! embedding; nothing survives the process.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use chrono::Utc;
use serde_json::Value as Json;
use uuid::Uuid;

use super::{
    Commit, CommitError, CommitFuture, EventLog, Lease, Leases, Pinned, SagaIndex, SagaStore,
    StoreError, StoreFuture, check_sequence, is_id_fragment, lease, seed_tables,
};
use crate::repo::memory::{
    Tables, apply_journaled, find_in, get_in, tables_from_json, tables_to_json,
};
use crate::repo::{Entity, FindError, RepoError, Repository, UnitOfWork};
use crate::saga::events::Event;
use crate::saga::read_model::{SagaFilter, SagaSummary, summary};
use crate::saga::state::fold;

#[derive(Default)]
struct Inner {
    logs: HashMap<Uuid, Vec<Event>>,
    rows: HashMap<Uuid, SagaSummary>,
    /// (saga name, key) → saga.
    keys: HashMap<(String, String), Uuid>,
    leases: HashMap<Uuid, Lease>,
    pins: HashMap<String, Pinned>,
    tables: Tables,
}

/// Everything in memory.
#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// A store whose repositories are `repos` (`{"repo": {"id": {...}}}`).
    pub fn with_repositories(repos: &Json) -> Result<MemoryStore, StoreError> {
        let tables = tables_from_json(repos).map_err(StoreError::Io)?;
        Ok(MemoryStore {
            inner: Mutex::new(Inner {
                tables,
                ..Inner::default()
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Commits change nothing until every check passed, so a poisoned lock
        // (a panic elsewhere) leaves consistent data behind.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn commit(&self, c: &Commit<'_>) -> Result<(), CommitError> {
        let Some(first) = c.events.first() else {
            return Ok(());
        };
        let saga_id = first.saga_id;
        let now = Utc::now();
        let mut inner = self.lock();
        let inner = &mut *inner;
        let last_seq = inner.rows.get(&saga_id).map_or(0, |r| r.last_seq);
        // ownership first: a fenced-off writer is told so, not that it is behind
        let lease_row = lease::admit(inner.leases.get(&saga_id), saga_id, &c.lease, now)?;
        check_sequence(last_seq, c.events)?;
        let new_key = match &c.projection {
            crate::saga::read_model::ProjectionUpdate::Row(row) if last_seq == 0 => {
                match &row.key {
                    Some(k) => {
                        let pair = (row.saga.clone(), k.clone());
                        if let Some(existing) = inner.keys.get(&pair) {
                            return Err(StoreError::DuplicateKey {
                                saga: pair.0,
                                key: pair.1,
                                saga_id: *existing,
                            }
                            .into());
                        }
                        Some(pair)
                    }
                    None => None,
                }
            }
            _ => None,
        };
        if let Some(unit) = c.writes {
            apply_journaled(&mut inner.tables, unit, |_| Ok(()))?;
        }
        // every check passed: nothing below fails
        inner
            .logs
            .entry(saga_id)
            .or_default()
            .extend_from_slice(c.events);
        if let Some(row) = c.projection.apply_to(inner.rows.get_mut(&saga_id)) {
            inner.rows.insert(saga_id, row);
        }
        if let Some(pair) = new_key {
            inner.keys.insert(pair, saga_id);
        }
        if let Some(l) = lease_row {
            inner.leases.insert(saga_id, l);
        }
        Ok(())
    }

    fn lease_change(
        &self,
        saga_id: Uuid,
        f: impl FnOnce(Option<&Lease>) -> Result<Option<Lease>, StoreError>,
    ) -> Result<Option<Lease>, StoreError> {
        let mut inner = self.lock();
        let next = f(inner.leases.get(&saga_id))?;
        if let Some(l) = &next {
            inner.leases.insert(saga_id, l.clone());
        }
        Ok(next)
    }
}

impl EventLog for MemoryStore {
    fn append<'a>(&'a self, commit: Commit<'a>) -> CommitFuture<'a> {
        Box::pin(async move { self.commit(&commit) })
    }

    fn load(&self, saga_id: Uuid) -> StoreFuture<'_, Vec<Event>> {
        Box::pin(async move { Ok(self.lock().logs.get(&saga_id).cloned().unwrap_or_default()) })
    }

    fn pin<'a>(&'a self, hash: &'a str, pinned: &'a Pinned) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.lock()
                .pins
                .entry(hash.to_string())
                .or_insert_with(|| pinned.clone());
            Ok(())
        })
    }

    fn pinned<'a>(&'a self, hash: &'a str) -> StoreFuture<'a, Option<Pinned>> {
        Box::pin(async move { Ok(self.lock().pins.get(hash).cloned()) })
    }
}

fn newest_first(rows: &mut [SagaSummary]) {
    rows.sort_by(|a, b| {
        b.started_at
            .cmp(&a.started_at)
            .then(a.saga_id.cmp(&b.saga_id))
    });
}

impl SagaIndex for MemoryStore {
    fn list<'a>(&'a self, filter: &'a SagaFilter) -> StoreFuture<'a, Vec<SagaSummary>> {
        Box::pin(async move {
            let mut rows: Vec<SagaSummary> = self
                .lock()
                .rows
                .values()
                .filter(|r| filter.admits(r))
                .cloned()
                .collect();
            newest_first(&mut rows);
            if let Some(limit) = filter.limit {
                rows.truncate(limit);
            }
            Ok(rows)
        })
    }

    fn unfinished(&self) -> StoreFuture<'_, Vec<Uuid>> {
        Box::pin(async move {
            let mut rows: Vec<SagaSummary> = self
                .lock()
                .rows
                .values()
                .filter(|r| !r.status.is_final())
                .cloned()
                .collect();
            newest_first(&mut rows);
            Ok(rows.into_iter().rev().map(|r| r.saga_id).collect())
        })
    }

    fn find_ids<'a>(&'a self, fragment: &'a str, limit: usize) -> StoreFuture<'a, Vec<Uuid>> {
        Box::pin(async move {
            if !is_id_fragment(fragment) {
                return Ok(Vec::new());
            }
            let f = fragment.to_ascii_lowercase();
            let mut ids: Vec<Uuid> = self
                .lock()
                .rows
                .keys()
                .filter(|id| {
                    let text = id.to_string();
                    text.starts_with(&f) || text.ends_with(&f)
                })
                .copied()
                .collect();
            ids.sort();
            ids.truncate(limit);
            Ok(ids)
        })
    }

    fn by_key<'a>(&'a self, key: &'a str, limit: usize) -> StoreFuture<'a, Vec<SagaSummary>> {
        Box::pin(async move {
            let inner = self.lock();
            let mut rows: Vec<SagaSummary> = inner
                .keys
                .iter()
                .filter(|((_, k), _)| k == key)
                .filter_map(|(_, id)| inner.rows.get(id).cloned())
                .collect();
            newest_first(&mut rows);
            rows.truncate(limit);
            Ok(rows)
        })
    }

    fn rebuild_projection(&self) -> StoreFuture<'_, usize> {
        Box::pin(async move {
            let mut inner = self.lock();
            let mut rows = HashMap::new();
            let mut keys = HashMap::new();
            for (id, events) in &inner.logs {
                let state = fold(events).map_err(|e| StoreError::Io(e.to_string()))?;
                let at = events.last().map_or(state.started_at, |e| e.at);
                if let Some(k) = &state.key {
                    keys.insert((state.saga.clone(), k.clone()), *id);
                }
                rows.insert(*id, summary(&state, at));
            }
            let n = rows.len();
            inner.rows = rows;
            inner.keys = keys;
            Ok(n)
        })
    }
}

impl Leases for MemoryStore {
    fn acquire<'a>(
        &'a self,
        saga_id: Uuid,
        owner: &'a str,
        ttl: Duration,
    ) -> StoreFuture<'a, Lease> {
        Box::pin(async move {
            let now = Utc::now();
            self.lease_change(saga_id, |cur| {
                lease::acquire(cur, saga_id, owner, ttl, now).map(Some)
            })?
            .ok_or_else(|| StoreError::Io("lease not written".into()))
        })
    }

    fn renew<'a>(&'a self, held: &'a Lease, ttl: Duration) -> StoreFuture<'a, Lease> {
        Box::pin(async move {
            let now = Utc::now();
            self.lease_change(held.saga_id, |cur| {
                lease::renew(cur, held, ttl, now).map(Some)
            })?
            .ok_or_else(|| StoreError::Io("lease not written".into()))
        })
    }

    fn release<'a>(&'a self, held: &'a Lease) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.lease_change(held.saga_id, |cur| Ok(lease::release(cur, held)))?;
            Ok(())
        })
    }

    fn holder(&self, saga_id: Uuid) -> StoreFuture<'_, Option<Lease>> {
        Box::pin(async move { Ok(self.lock().leases.get(&saga_id).cloned()) })
    }
}

impl Repository for MemoryStore {
    fn repositories(&self) -> Vec<String> {
        self.lock().tables.keys().cloned().collect()
    }

    fn get(&self, repo: &str, id: &str) -> Result<Option<Entity>, RepoError> {
        get_in(&self.lock().tables, repo, id)
    }

    fn find(
        &self,
        repo: &str,
        keep: &mut dyn FnMut(&str, &Entity) -> Result<bool, String>,
    ) -> Result<Vec<(String, Entity)>, FindError> {
        find_in(&self.lock().tables, repo, keep)
    }

    fn commit(&self, unit: &UnitOfWork) -> Result<(), RepoError> {
        apply_journaled(&mut self.lock().tables, unit, |_| Ok(()))
    }
}

impl SagaStore for MemoryStore {
    fn url(&self) -> String {
        "memory:".to_string()
    }

    fn seed<'a>(&'a self, repos: &'a Json) -> StoreFuture<'a, Vec<String>> {
        Box::pin(async move {
            let new = seed_tables(repos)?;
            let mut inner = self.lock();
            let mut names = Vec::new();
            for (name, rows) in new {
                if inner.tables.contains_key(&name) {
                    continue;
                }
                let mut table = BTreeMap::new();
                for (id, e) in rows {
                    if let Json::Object(e) = e {
                        table.insert(id, e);
                    }
                }
                inner.tables.insert(name.clone(), table);
                names.push(name);
            }
            Ok(names)
        })
    }

    fn export(&self) -> StoreFuture<'_, Json> {
        Box::pin(async move { Ok(tables_to_json(&self.lock().tables)) })
    }
}
