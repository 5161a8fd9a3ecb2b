//! `json:FILE`: repositories in a JSON file, the saga log in memory. For quick
//! experiments: a step's writes are committed to the file (atomically) before its
//! outcome event is appended, and the log is gone when the process ends, so there is
//! no recovery.

use std::path::Path;

use serde_json::Value as Json;
use uuid::Uuid;

use super::JsonFileRepository;
use crate::repo::{Entity, FindError, RepoError, Repository, UnitOfWork};
use crate::saga::events::Event;
use crate::saga::store::{
    Commit, CommitError, CommitFuture, EventLog, MemoryStore, Pinned, SagaStore, StoreError,
    StoreFuture,
};

/// A JSON-file repository store with an in-memory log.
pub struct JsonStore {
    log: MemoryStore,
    repo: JsonFileRepository,
}

impl JsonStore {
    /// Open the repositories of `path` (the file must exist).
    pub fn open(path: &Path) -> Result<JsonStore, RepoError> {
        Ok(JsonStore {
            log: MemoryStore::new(),
            repo: JsonFileRepository::open(path)?,
        })
    }
}

impl EventLog for JsonStore {
    fn append<'a>(&'a self, commit: Commit<'a>) -> CommitFuture<'a> {
        Box::pin(async move {
            if let Some(unit) = &commit.writes {
                self.repo.commit(unit).map_err(CommitError::Repo)?;
            }
            self.log
                .append(Commit {
                    writes: None,
                    ..commit
                })
                .await
        })
    }
    fn load(&self, saga_id: Uuid) -> StoreFuture<'_, Vec<Event>> {
        self.log.load(saga_id)
    }
    fn pin<'a>(&'a self, hash: &'a str, name: &'a str, text: &'a str) -> StoreFuture<'a, ()> {
        self.log.pin(hash, name, text)
    }
    fn pinned<'a>(&'a self, hash: &'a str) -> StoreFuture<'a, Option<Pinned>> {
        self.log.pinned(hash)
    }
}

crate::saga::store::forward_index_and_leases!(JsonStore, log);

impl Repository for JsonStore {
    fn repositories(&self) -> Vec<String> {
        self.repo.repositories()
    }
    fn get(&self, repo: &str, id: &str) -> Result<Option<Entity>, RepoError> {
        self.repo.get(repo, id)
    }
    fn find(
        &self,
        repo: &str,
        keep: &mut dyn FnMut(&str, &Entity) -> Result<bool, String>,
    ) -> Result<Vec<(String, Entity)>, FindError> {
        self.repo.find(repo, keep)
    }
    fn commit(&self, unit: &UnitOfWork) -> Result<(), RepoError> {
        self.repo.commit(unit)
    }
}

impl SagaStore for JsonStore {
    fn url(&self) -> String {
        format!("json:{}", self.repo.path().display())
    }
    fn seed<'a>(&'a self, _repos: &'a Json) -> StoreFuture<'a, Vec<String>> {
        Box::pin(async move {
            Err(StoreError::Io(
                "a JSON store file is its own seed: edit the file instead".into(),
            ))
        })
    }
    fn export(&self) -> StoreFuture<'_, Json> {
        Box::pin(async move { Ok(self.repo.to_json()) })
    }
}
