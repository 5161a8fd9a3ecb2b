//! Repositories: named collections of JSON entities keyed by an id.
//!
//! The saga runner reads entities through [`Repository`] and writes them as one
//! [`UnitOfWork`] per step: every write of a step is applied, or none is.
//! Implementations: [`MemoryRepository`] here, the JSON-file store in
//! `crate::adapters`, and the SQLite store there, which commits a step's writes
//! with its outcome event (`crate::saga::events::TransactionalStore`).

use serde_json::{Map, Value as Json};

pub(crate) mod memory;
mod unit;

pub use memory::MemoryRepository;
pub use unit::{UnitTarget, apply_unit};

/// One entity: a JSON object.
pub type Entity = Map<String, Json>;

/// A write inside a [`UnitOfWork`].
#[derive(Clone, Debug, PartialEq)]
pub enum Write {
    /// Add a new entity; fails when the id exists.
    Insert {
        /// Repository name.
        repo: String,
        /// Entity id.
        id: String,
        /// The entity.
        entity: Entity,
    },
    /// Merge fields into an existing entity (shallow); fails when the id is missing.
    Update {
        /// Repository name.
        repo: String,
        /// Entity id.
        id: String,
        /// Fields to set.
        patch: Entity,
    },
    /// Remove an entity; removing a missing id is not an error (compensations repeat).
    Delete {
        /// Repository name.
        repo: String,
        /// Entity id.
        id: String,
    },
}

/// An entity as it was read when a unit of work was computed from it.
#[derive(Clone, Debug, PartialEq)]
pub struct Read {
    /// Repository name.
    pub repo: String,
    /// Entity id.
    pub id: String,
    /// The entity as read (`None`: it was missing).
    pub entity: Option<Entity>,
}

/// The writes of one step, committed atomically.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UnitOfWork {
    /// The idempotency key of the step (`"{saga_id}/{step}"`), for stores that deduplicate.
    pub key: String,
    /// Writes, applied in order.
    pub writes: Vec<Write>,
    /// Optimistic concurrency: the unit applies only while each of these entities is
    /// still as it was read ([`RepoError::Changed`] otherwise, which is worth a retry).
    pub reads: Vec<Read>,
}

/// Errors raised by a repository.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum RepoError {
    /// No repository with that name.
    #[error("unknown repository `{0}`")]
    UnknownRepository(String),
    /// Insert of an id that exists.
    #[error("`{repo}/{id}` already exists")]
    Exists {
        /// Repository name.
        repo: String,
        /// Entity id.
        id: String,
    },
    /// Update of an id that does not exist.
    #[error("`{repo}/{id}` not found")]
    NotFound {
        /// Repository name.
        repo: String,
        /// Entity id.
        id: String,
    },
    /// An entity the unit of work was computed from changed before the commit.
    #[error("`{repo}/{id}` changed since it was read")]
    Changed {
        /// Repository name.
        repo: String,
        /// Entity id.
        id: String,
    },
    /// The backing storage failed (I/O, serialisation); worth retrying.
    #[error("store error: {0}")]
    Storage(String),
}

impl RepoError {
    /// True for errors that may go away on a retry (storage), false for data conflicts.
    pub fn is_transient(&self) -> bool {
        matches!(self, RepoError::Storage(_) | RepoError::Changed { .. })
    }
}

/// A store of named repositories.
///
/// Reads see every committed unit of work; `commit` applies all writes or none.
pub trait Repository: Send + Sync {
    /// Names of the repositories in this store.
    fn repositories(&self) -> Vec<String>;
    /// One entity by id (`None` when missing).
    fn get(&self, repo: &str, id: &str) -> Result<Option<Entity>, RepoError>;
    /// Entities for which `keep` returns true, in id order, with their ids.
    fn find(
        &self,
        repo: &str,
        keep: &mut dyn FnMut(&str, &Entity) -> Result<bool, String>,
    ) -> Result<Vec<(String, Entity)>, FindError>;
    /// Apply every write of `unit`, or none of them.
    fn commit(&self, unit: &UnitOfWork) -> Result<(), RepoError>;

    /// Insert one entity (a unit of work of one write).
    fn insert(&self, repo: &str, id: &str, entity: Entity) -> Result<(), RepoError> {
        self.commit(&UnitOfWork {
            key: String::new(),
            writes: vec![Write::Insert {
                repo: repo.to_string(),
                id: id.to_string(),
                entity,
            }],
            reads: Vec::new(),
        })
    }
    /// Merge fields into one entity.
    fn update(&self, repo: &str, id: &str, patch: Entity) -> Result<(), RepoError> {
        self.commit(&UnitOfWork {
            key: String::new(),
            writes: vec![Write::Update {
                repo: repo.to_string(),
                id: id.to_string(),
                patch,
            }],
            reads: Vec::new(),
        })
    }
    /// Delete one entity.
    fn delete(&self, repo: &str, id: &str) -> Result<(), RepoError> {
        self.commit(&UnitOfWork {
            key: String::new(),
            writes: vec![Write::Delete {
                repo: repo.to_string(),
                id: id.to_string(),
            }],
            reads: Vec::new(),
        })
    }
}

/// The rows for which `keep` returns true, in the order given: what a store's `find`
/// returns once it has read a repository's rows; the first failing filter stops it.
pub fn keep_matching(
    rows: impl IntoIterator<Item = (String, Entity)>,
    keep: &mut dyn FnMut(&str, &Entity) -> Result<bool, String>,
) -> Result<Vec<(String, Entity)>, FindError> {
    let mut out = Vec::new();
    for (id, entity) in rows {
        match keep(&id, &entity) {
            Ok(true) => out.push((id, entity)),
            Ok(false) => {}
            Err(message) => return Err(FindError::Filter { id, message }),
        }
    }
    Ok(out)
}

/// A `find` failed: in the repository, or in the filter.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum FindError {
    /// The repository failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
    /// The filter failed on an entity.
    #[error("filter failed on `{id}`: {message}")]
    Filter {
        /// The entity the filter failed on.
        id: String,
        /// Why.
        message: String,
    },
}
