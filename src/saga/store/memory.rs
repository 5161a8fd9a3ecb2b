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

/// One saga: its log and its lease, found with one lookup. Its read-model row is
/// the summary of its fold, computed when asked (appends are the hot path here).
#[derive(Default)]
struct Entry {
    events: Vec<Event>,
    lease: Option<Lease>,
}

impl Entry {
    fn row(&self) -> Option<SagaSummary> {
        let last = self.events.last()?;
        Some(summary(&fold(&self.events).ok()?, last.at))
    }
}

#[derive(Default)]
struct Inner {
    /// Looked up on every append: hashed with foldhash (seeded per process), not
    /// SipHash, whose cost showed in the per-step overhead.
    sagas: HashMap<Uuid, Entry, foldhash::fast::RandomState>,
    /// (saga name, key) → saga.
    keys: HashMap<(String, String), Uuid>,
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

    fn commit(&self, c: Commit<'_>) -> Result<(), CommitError> {
        let Some(first) = c.events.first() else {
            return Ok(());
        };
        let saga_id = first.saga_id;
        let mut inner = self.lock();
        let Inner {
            sagas,
            keys,
            tables,
            ..
        } = &mut *inner;
        // an entry that stays empty (a refused first commit) is invisible
        let entry = sagas.entry(saga_id).or_default();
        let last_seq = entry.events.last().map_or(0, |e| e.seq);
        // ownership first: a fenced-off writer is told so, not that it is behind
        let lease_row = lease::admit(entry.lease.as_ref(), saga_id, &c.lease, Utc::now)?;
        check_sequence(last_seq, &c.events)?;
        let new_key = match (&c.state.key, last_seq) {
            (Some(k), 0) => {
                let pair = (c.state.saga.clone(), k.clone());
                if let Some(existing) = keys.get(&pair) {
                    return Err(StoreError::DuplicateKey {
                        saga: pair.0,
                        key: pair.1,
                        saga_id: *existing,
                    }
                    .into());
                }
                Some(pair)
            }
            _ => None,
        };
        if let Some(unit) = &c.writes {
            apply_journaled(tables, unit, |_| Ok(()))?;
        }
        // every check passed: nothing below fails
        entry.events.extend(c.events);
        if let Some(l) = lease_row {
            entry.lease = Some(l);
        }
        if let Some(pair) = new_key {
            keys.insert(pair, saga_id);
        }
        Ok(())
    }

    fn lease_change(
        &self,
        saga_id: Uuid,
        f: impl FnOnce(Option<&Lease>) -> Result<Option<Lease>, StoreError>,
    ) -> Result<Option<Lease>, StoreError> {
        let mut inner = self.lock();
        let entry = inner.sagas.entry(saga_id).or_default();
        let next = f(entry.lease.as_ref())?;
        if let Some(l) = &next {
            entry.lease = Some(l.clone());
        }
        Ok(next)
    }
}

impl EventLog for MemoryStore {
    fn append<'a>(&'a self, commit: Commit<'a>) -> CommitFuture<'a> {
        Box::pin(async move { self.commit(commit) })
    }

    fn load(&self, saga_id: Uuid) -> StoreFuture<'_, Vec<Event>> {
        Box::pin(async move {
            Ok(self
                .lock()
                .sagas
                .get(&saga_id)
                .map(|e| e.events.clone())
                .unwrap_or_default())
        })
    }

    fn pin<'a>(&'a self, hash: &'a str, name: &'a str, text: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut inner = self.lock();
            if !inner.pins.contains_key(hash) {
                let pinned = Pinned {
                    name: name.to_string(),
                    text: text.to_string(),
                };
                inner.pins.insert(hash.to_string(), pinned);
            }
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

impl Inner {
    /// The read-model rows.
    fn rows(&self) -> impl Iterator<Item = SagaSummary> + '_ {
        self.sagas.values().filter_map(Entry::row)
    }
}

impl SagaIndex for MemoryStore {
    fn list<'a>(&'a self, filter: &'a SagaFilter) -> StoreFuture<'a, Vec<SagaSummary>> {
        Box::pin(async move {
            let mut rows: Vec<SagaSummary> =
                self.lock().rows().filter(|r| filter.admits(r)).collect();
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
                .rows()
                .filter(|r| !r.status.is_final())
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
                .rows()
                .map(|r| r.saga_id)
                .filter(|id| {
                    let text = id.to_string();
                    text.starts_with(&f) || text.ends_with(&f)
                })
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
                .filter_map(|(_, id)| inner.sagas.get(id).and_then(Entry::row))
                .collect();
            newest_first(&mut rows);
            rows.truncate(limit);
            Ok(rows)
        })
    }

    fn rebuild_projection(&self) -> StoreFuture<'_, usize> {
        Box::pin(async move {
            // rows are folded when asked; the keys are the one index kept
            let mut inner = self.lock();
            let mut keys = HashMap::new();
            let mut n = 0;
            for (id, entry) in &inner.sagas {
                let Some(row) = entry.row() else {
                    continue;
                };
                n += 1;
                if let Some(k) = row.key {
                    keys.insert((row.saga, k), *id);
                }
            }
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
        Box::pin(async move {
            Ok(self
                .lock()
                .sagas
                .get(&saga_id)
                .and_then(|e| e.lease.clone()))
        })
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
