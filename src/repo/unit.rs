//! What applying a [`UnitOfWork`] means, written once for every store.
//!
//! A store implements the four primitives of [`UnitTarget`] over its storage, and
//! makes the whole application atomic (a transaction, a savepoint, an undo journal);
//! [`apply_unit`] decides everything else: the optimistic-concurrency check of what
//! the unit read, and the meaning of each write.

use super::{Entity, RepoError, UnitOfWork, Write};

/// The primitives a store offers to [`apply_unit`].
pub trait UnitTarget {
    /// One entity (`None` when missing); [`RepoError::UnknownRepository`] for an
    /// unknown repository.
    fn entity(&mut self, repo: &str, id: &str) -> Result<Option<Entity>, RepoError>;
    /// Write an entity (insert or replace); the repository exists.
    fn put(&mut self, repo: &str, id: &str, entity: &Entity) -> Result<(), RepoError>;
    /// Remove an entity (missing is fine); the repository exists.
    fn remove(&mut self, repo: &str, id: &str) -> Result<(), RepoError>;
}

/// Apply a unit of work: every entity it read must be unchanged
/// ([`RepoError::Changed`]), then each write in order: an insert fails when the id
/// exists, an update (a shallow merge) when it is missing, a delete of a missing id
/// succeeds. On error the caller rolls back whatever was applied.
pub fn apply_unit(target: &mut dyn UnitTarget, unit: &UnitOfWork) -> Result<(), RepoError> {
    for read in &unit.reads {
        if target.entity(&read.repo, &read.id)? != read.entity {
            return Err(RepoError::Changed {
                repo: read.repo.clone(),
                id: read.id.clone(),
            });
        }
    }
    for write in &unit.writes {
        match write {
            Write::Insert { repo, id, entity } => {
                if target.entity(repo, id)?.is_some() {
                    return Err(RepoError::Exists {
                        repo: repo.clone(),
                        id: id.clone(),
                    });
                }
                target.put(repo, id, entity)?;
            }
            Write::Update { repo, id, patch } => {
                let mut entity = target
                    .entity(repo, id)?
                    .ok_or_else(|| RepoError::NotFound {
                        repo: repo.clone(),
                        id: id.clone(),
                    })?;
                for (k, v) in patch {
                    entity.insert(k.clone(), v.clone());
                }
                target.put(repo, id, &entity)?;
            }
            Write::Delete { repo, id } => {
                // an unknown repository is an error even when there is nothing to delete
                target.entity(repo, id)?;
                target.remove(repo, id)?;
            }
        }
    }
    Ok(())
}
