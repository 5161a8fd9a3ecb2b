//! The store layer: what the saga runtime needs from storage, as traits, with the
//! semantics every backend shares written once here.
//!
//! - [`EventLog`]: the append-only log of every saga, pinned definitions and rule
//!   files, and [`Commit`]: one append, all or nothing (events, the repository writes
//!   of a built-in step, the lease check, the read-model update);
//! - [`SagaIndex`]: the read model: list, unfinished sagas, lookup by id fragment or
//!   business key;
//! - [`Leases`]: which process drives a saga, with fencing epochs;
//! - [`SagaStore`]: all of them plus the repositories ([`Repository`]), the one
//!   object the service and the CLI hold.
//!
//! Shared semantics: the sequence rule ([`check_sequence`]), the lease rules
//! ([`lease`]), the unit of work ([`crate::repo::apply_unit`]), the projection
//! ([`crate::saga::read_model::update`]) and the stored event form
//! ([`crate::saga::events::encode`]). A backend only persists what they decide;
//! [`contract`] is the test suite every backend must pass. Backends: [`MemoryStore`]
//! here, SQLite in `crate::adapters`.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value as Json;
use uuid::Uuid;

use super::events::{DecodeError, Event};
use super::read_model::{ProjectionUpdate, SagaFilter, SagaSummary};
use super::state::{SagaPhase, SagaState};
use crate::repo::{RepoError, Repository, UnitOfWork};

#[doc(hidden)]
pub mod contract;
pub mod lease;
mod memory;

pub use lease::Lease;
pub use memory::MemoryStore;

/// Errors of a store.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum StoreError {
    /// Another writer appended first: the saga's next sequence number is not the one
    /// the caller wrote.
    #[error("sequence conflict on saga `{saga_id}`: wrote {expected}, the next is {found}")]
    Conflict {
        /// The saga.
        saga_id: Uuid,
        /// The sequence number the caller tried to write.
        expected: u64,
        /// The next free sequence number.
        found: u64,
    },
    /// The caller does not own the saga: another process holds its lease, or took it
    /// over after the caller's lease expired (fencing).
    #[error("saga `{saga_id}` is owned by another process: {}", held_by(.holder))]
    Fenced {
        /// The saga.
        saga_id: Uuid,
        /// The lease as the store has it.
        holder: Option<Lease>,
    },
    /// A saga of this name was already started with this business key.
    #[error("saga `{saga}` with key `{key}` exists: `{saga_id}`")]
    DuplicateKey {
        /// The saga's name.
        saga: String,
        /// The key.
        key: String,
        /// The saga that has it.
        saga_id: Uuid,
    },
    /// A stored event could not be read.
    #[error("saga `{saga_id}` event {seq}: {error}")]
    Unreadable {
        /// The saga.
        saga_id: Uuid,
        /// The event's sequence number.
        seq: u64,
        /// Why.
        error: DecodeError,
    },
    /// Storage failed.
    #[error("event store error: {0}")]
    Io(String),
}

fn held_by(holder: &Option<Lease>) -> String {
    match holder {
        Some(l) => format!(
            "`{}` holds its lease (epoch {}) until {}",
            l.owner,
            l.epoch,
            l.expires_at
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        ),
        None => "its lease is gone".to_string(),
    }
}

/// Why a [`Commit`] wrote nothing.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum CommitError {
    /// The store refused or failed: the saga must stop without advancing.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The writes do not apply (a missing or existing entity, a concurrent change): the
    /// attempt failed, and nothing was written.
    #[error(transparent)]
    Repo(#[from] RepoError),
}

/// A future returned by store methods (boxed, so the traits stay object safe; a
/// durable store may wait for a group commit).
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// The future of [`EventLog::append`].
pub type CommitFuture<'a> = Pin<Box<dyn Future<Output = Result<(), CommitError>> + Send + 'a>>;

/// What one append proves about ownership, and what it does to the lease.
#[derive(Clone, Copy, Debug, Default)]
pub struct LeaseOp<'a> {
    /// The caller's lease (`None`: the caller holds none; refused while someone else
    /// holds a live one).
    pub lease: Option<&'a Lease>,
    /// Extend the lease to this time (the holder decides when: a lease needs no
    /// rewrite on every append).
    pub renew_until: Option<DateTime<Utc>>,
    /// Give the lease up (the run is over).
    pub release: bool,
}

/// One append: every part or none. Owned, so a store keeps the events without
/// copying them.
#[derive(Clone, Debug)]
pub struct Commit<'a> {
    /// Events of one saga, in order; the first must carry the saga's next sequence
    /// number ([`check_sequence`]).
    pub events: Vec<Event>,
    /// A built-in step's repository writes (atomic with the events).
    pub writes: Option<UnitOfWork>,
    /// The lease check.
    pub lease: LeaseOp<'a>,
    /// The saga's state after the events (what the read model summarises)...
    pub state: &'a SagaState,
    /// ...and where it stood before them.
    pub before: SagaPhase,
}

impl Commit<'_> {
    /// What the commit does to the saga's read-model row
    /// ([`crate::saga::read_model::update`]): a store that keeps the read model in
    /// tables writes this, in the same transaction as the events.
    pub fn projection(&self) -> Option<ProjectionUpdate> {
        let last = self.events.last()?;
        Some(crate::saga::read_model::update(
            self.before,
            self.state,
            last,
        ))
    }
}

/// The conflict of a writer whose event `seq` another writer (another process)
/// appended first: the database's unique key refused it.
pub fn written_first(saga_id: Uuid, seq: u64) -> StoreError {
    StoreError::Conflict {
        saga_id,
        expected: seq,
        found: seq + 1,
    }
}

/// The sequence rule: `events` continue a log whose last sequence number is
/// `last_seq`, with no gap and no repeat, all of one saga.
pub fn check_sequence(last_seq: u64, events: &[Event]) -> Result<(), StoreError> {
    let Some(first) = events.first() else {
        return Ok(());
    };
    for (next, e) in (last_seq + 1..).zip(events) {
        if e.saga_id != first.saga_id || e.seq != next {
            return Err(StoreError::Conflict {
                saga_id: e.saga_id,
                expected: e.seq,
                found: next,
            });
        }
    }
    Ok(())
}

/// A blob kept under its hash: a saga definition or a rule file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pinned {
    /// What it is called (a saga name, a rule file name).
    pub name: String,
    /// Its text.
    pub text: String,
}

/// The append-only log of every saga, and the texts sagas were started with.
pub trait EventLog: Send + Sync {
    /// Append a commit: all of it, or nothing.
    fn append<'a>(&'a self, commit: Commit<'a>) -> CommitFuture<'a>;
    /// All events of one saga, in order (empty for an unknown saga).
    fn load(&self, saga_id: Uuid) -> StoreFuture<'_, Vec<Event>>;
    /// Keep a text (named `name`) under its hash; a hash already kept keeps its text.
    fn pin<'a>(&'a self, hash: &'a str, name: &'a str, text: &'a str) -> StoreFuture<'a, ()>;
    /// A text by its hash.
    fn pinned<'a>(&'a self, hash: &'a str) -> StoreFuture<'a, Option<Pinned>>;
}

/// The read model: one summary row per saga, kept in step with the log.
pub trait SagaIndex: Send + Sync {
    /// Sagas matching `filter`, most recently started first.
    fn list<'a>(&'a self, filter: &'a SagaFilter) -> StoreFuture<'a, Vec<SagaSummary>>;
    /// Sagas still running or compensating (recovery's work list), oldest first.
    fn unfinished(&self) -> StoreFuture<'_, Vec<Uuid>>;
    /// Sagas whose id starts or ends with `fragment` (hex digits and dashes; at most
    /// `limit`).
    fn find_ids<'a>(&'a self, fragment: &'a str, limit: usize) -> StoreFuture<'a, Vec<Uuid>>;
    /// Sagas started with business key `key` (any saga name; at most `limit`).
    fn by_key<'a>(&'a self, key: &'a str, limit: usize) -> StoreFuture<'a, Vec<SagaSummary>>;
    /// Rewrite the read model from the log; the number of sagas.
    fn rebuild_projection(&self) -> StoreFuture<'_, usize>;
}

/// Which process drives which saga ([`lease`] has the rules).
pub trait Leases: Send + Sync {
    /// Take the saga's lease for `owner`: refused ([`StoreError::Fenced`]) while
    /// another owner holds a live one; otherwise the epoch goes up by one.
    fn acquire<'a>(
        &'a self,
        saga_id: Uuid,
        owner: &'a str,
        ttl: Duration,
    ) -> StoreFuture<'a, Lease>;
    /// Extend a held lease; [`StoreError::Fenced`] when it was taken over.
    fn renew<'a>(&'a self, lease: &'a Lease, ttl: Duration) -> StoreFuture<'a, Lease>;
    /// Give a held lease up (no-op when it was taken over).
    fn release<'a>(&'a self, lease: &'a Lease) -> StoreFuture<'a, ()>;
    /// The saga's lease as stored (live or expired), if it ever had one.
    fn holder(&self, saga_id: Uuid) -> StoreFuture<'_, Option<Lease>>;
}

/// Everything the saga runtime needs from one store.
pub trait SagaStore: EventLog + SagaIndex + Leases + Repository {
    /// Where the store is, as a URL (`sqlite:/path/to.db`, `memory:`).
    fn url(&self) -> String;
    /// Load every repository of a JSON store (`{"repo": {"id": {...}}}`) that the store
    /// does not have yet; the names loaded.
    fn seed<'a>(&'a self, repos: &'a Json) -> StoreFuture<'a, Vec<String>>;
    /// Every repository as JSON, shaped like a JSON store.
    fn export(&self) -> StoreFuture<'_, Json>;
}

/// One repository to seed: its name and its entities by id.
pub type SeedTable = (String, Vec<(String, Json)>);

/// `SagaIndex` and `Leases` for a store that wraps another in field `$field`: every
/// method forwards to it (a wrapper changes appends or repositories, not these).
macro_rules! forward_index_and_leases {
    ($ty:ty, $field:ident) => {
        impl $crate::saga::store::SagaIndex for $ty {
            fn list<'a>(
                &'a self,
                filter: &'a $crate::saga::read_model::SagaFilter,
            ) -> $crate::saga::store::StoreFuture<'a, Vec<$crate::saga::read_model::SagaSummary>>
            {
                self.$field.list(filter)
            }
            fn unfinished(&self) -> $crate::saga::store::StoreFuture<'_, Vec<uuid::Uuid>> {
                self.$field.unfinished()
            }
            fn find_ids<'a>(
                &'a self,
                fragment: &'a str,
                limit: usize,
            ) -> $crate::saga::store::StoreFuture<'a, Vec<uuid::Uuid>> {
                self.$field.find_ids(fragment, limit)
            }
            fn by_key<'a>(
                &'a self,
                key: &'a str,
                limit: usize,
            ) -> $crate::saga::store::StoreFuture<'a, Vec<$crate::saga::read_model::SagaSummary>>
            {
                self.$field.by_key(key, limit)
            }
            fn rebuild_projection(&self) -> $crate::saga::store::StoreFuture<'_, usize> {
                self.$field.rebuild_projection()
            }
        }

        impl $crate::saga::store::Leases for $ty {
            fn acquire<'a>(
                &'a self,
                saga_id: uuid::Uuid,
                owner: &'a str,
                ttl: std::time::Duration,
            ) -> $crate::saga::store::StoreFuture<'a, $crate::saga::store::Lease> {
                self.$field.acquire(saga_id, owner, ttl)
            }
            fn renew<'a>(
                &'a self,
                lease: &'a $crate::saga::store::Lease,
                ttl: std::time::Duration,
            ) -> $crate::saga::store::StoreFuture<'a, $crate::saga::store::Lease> {
                self.$field.renew(lease, ttl)
            }
            fn release<'a>(
                &'a self,
                lease: &'a $crate::saga::store::Lease,
            ) -> $crate::saga::store::StoreFuture<'a, ()> {
                self.$field.release(lease)
            }
            fn holder(
                &self,
                saga_id: uuid::Uuid,
            ) -> $crate::saga::store::StoreFuture<'_, Option<$crate::saga::store::Lease>> {
                self.$field.holder(saga_id)
            }
        }
    };
}
pub(crate) use forward_index_and_leases;

/// The repositories of a JSON store (`{"repo": {"id": {...}}}`), checked: names,
/// objects of objects.
pub fn seed_tables(repos: &Json) -> Result<Vec<SeedTable>, StoreError> {
    let Json::Object(repos) = repos else {
        return Err(StoreError::Io(
            "a store must be a JSON object of repositories".into(),
        ));
    };
    let mut out = Vec::new();
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
            rows.push((id.clone(), e.clone()));
        }
        out.push((name.clone(), rows));
    }
    Ok(out)
}

/// Repository names: letters, digits, `_` and `-`, 1 to 64 characters.
pub fn valid_repo_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// True for text that can be part of a saga id (hex digits and dashes).
pub fn is_id_fragment(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

impl From<StoreError> for RepoError {
    fn from(e: StoreError) -> RepoError {
        RepoError::Storage(e.to_string())
    }
}

/// Append events made elsewhere (a copy of another log, a test) to `store`, one
/// commit each, with the read-model update computed by folding them onto the saga's
/// log as the store has it. Takes no lease: refused while a process holds a live one.
pub async fn append_events(store: &dyn SagaStore, events: &[Event]) -> Result<(), CommitError> {
    let Some(first) = events.first() else {
        return Ok(());
    };
    let mut state = crate::saga::state::fold(&store.load(first.saga_id).await?)
        .map_err(|e| StoreError::Io(e.to_string()))?;
    for e in events {
        let before = state.phase();
        state
            .apply(e)
            .map_err(|err| StoreError::Io(err.to_string()))?;
        store
            .append(Commit {
                events: vec![e.clone()],
                writes: None,
                lease: LeaseOp::default(),
                state: &state,
                before,
            })
            .await?;
    }
    Ok(())
}
