//! The in-memory repository store: a map of maps behind one lock.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use serde_json::Value as Json;

use super::unit::{UnitTarget, apply_unit};
use super::{Entity, FindError, RepoError, Repository, UnitOfWork};

/// All repositories: name → id → entity.
pub type Tables = BTreeMap<String, BTreeMap<String, Entity>>;

/// Repositories held in memory. Commits are atomic under one lock.
#[derive(Debug, Default)]
pub struct MemoryRepository {
    tables: Mutex<Tables>,
}

impl MemoryRepository {
    /// An empty store with the given repositories.
    pub fn new<I, S>(names: I) -> MemoryRepository
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let tables = names
            .into_iter()
            .map(|n| (n.into(), BTreeMap::new()))
            .collect();
        MemoryRepository {
            tables: Mutex::new(tables),
        }
    }

    /// A store from JSON shaped `{"repo": {"id": {...entity...}}}`.
    pub fn from_json(json: &Json) -> Result<MemoryRepository, String> {
        Ok(MemoryRepository {
            tables: Mutex::new(tables_from_json(json)?),
        })
    }

    /// Every repository as JSON, shaped like the input of [`MemoryRepository::from_json`].
    pub fn to_json(&self) -> Json {
        tables_to_json(&self.lock())
    }

    /// Add an empty repository (no-op when it exists).
    pub fn add_repository(&self, name: &str) {
        self.lock().entry(name.to_string()).or_default();
    }

    fn lock(&self) -> MutexGuard<'_, Tables> {
        // A poisoned lock only means another thread panicked mid-read; commits
        // never leave the tables half-written (they apply to a copy first).
        self.tables.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Commit, then call `persist` with the new tables while still holding the lock;
    /// when `persist` fails the tables are left unchanged.
    pub(crate) fn commit_with(
        &self,
        unit: &UnitOfWork,
        persist: impl FnOnce(&Tables) -> Result<(), RepoError>,
    ) -> Result<(), RepoError> {
        if unit.writes.is_empty() {
            return Ok(());
        }
        apply_journaled(&mut self.lock(), unit, persist)
    }
}

/// Apply `unit` to `tables` in place through [`apply_unit`], then `then` (e.g.
/// persisting the tables); when either fails every change is undone.
pub(crate) fn apply_journaled(
    tables: &mut Tables,
    unit: &UnitOfWork,
    then: impl FnOnce(&Tables) -> Result<(), RepoError>,
) -> Result<(), RepoError> {
    let mut journal = Journal {
        tables,
        undo: Vec::new(),
    };
    let applied = apply_unit(&mut journal, unit);
    let result = applied.and_then(|()| then(journal.tables));
    if result.is_err() {
        journal.rollback();
    }
    result
}

/// Tables with an undo log of the writes applied to them.
struct Journal<'t> {
    tables: &'t mut Tables,
    undo: Vec<(String, String, Option<Entity>)>,
}

impl Journal<'_> {
    fn table(&mut self, repo: &str) -> Result<&mut BTreeMap<String, Entity>, RepoError> {
        self.tables
            .get_mut(repo)
            .ok_or_else(|| RepoError::UnknownRepository(repo.to_string()))
    }

    fn rollback(self) {
        for (repo, id, before) in self.undo.into_iter().rev() {
            if let Some(table) = self.tables.get_mut(&repo) {
                match before {
                    Some(e) => table.insert(id, e),
                    None => table.remove(&id),
                };
            }
        }
    }
}

impl UnitTarget for Journal<'_> {
    fn entity(&mut self, repo: &str, id: &str) -> Result<Option<Entity>, RepoError> {
        Ok(self.table(repo)?.get(id).cloned())
    }

    fn put(&mut self, repo: &str, id: &str, entity: &Entity) -> Result<(), RepoError> {
        let before = self.table(repo)?.insert(id.to_string(), entity.clone());
        self.undo.push((repo.to_string(), id.to_string(), before));
        Ok(())
    }

    fn remove(&mut self, repo: &str, id: &str) -> Result<(), RepoError> {
        let before = self.table(repo)?.remove(id);
        if before.is_some() {
            self.undo.push((repo.to_string(), id.to_string(), before));
        }
        Ok(())
    }
}

impl Repository for MemoryRepository {
    fn repositories(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    fn get(&self, repo: &str, id: &str) -> Result<Option<Entity>, RepoError> {
        get_in(&self.lock(), repo, id)
    }

    fn find(
        &self,
        repo: &str,
        keep: &mut dyn FnMut(&str, &Entity) -> Result<bool, String>,
    ) -> Result<Vec<(String, Entity)>, FindError> {
        find_in(&self.lock(), repo, keep)
    }

    fn commit(&self, unit: &UnitOfWork) -> Result<(), RepoError> {
        self.commit_with(unit, |_| Ok(()))
    }
}

/// One entity of in-memory tables.
pub(crate) fn get_in(tables: &Tables, repo: &str, id: &str) -> Result<Option<Entity>, RepoError> {
    let table = tables
        .get(repo)
        .ok_or_else(|| RepoError::UnknownRepository(repo.to_string()))?;
    Ok(table.get(id).cloned())
}

/// [`Repository::find`] over in-memory tables.
pub(crate) fn find_in(
    tables: &Tables,
    repo: &str,
    keep: &mut dyn FnMut(&str, &Entity) -> Result<bool, String>,
) -> Result<Vec<(String, Entity)>, FindError> {
    let table = tables
        .get(repo)
        .ok_or_else(|| RepoError::UnknownRepository(repo.to_string()))?;
    let mut out = Vec::new();
    for (id, entity) in table {
        match keep(id, entity) {
            Ok(true) => out.push((id.clone(), entity.clone())),
            Ok(false) => {}
            Err(message) => {
                return Err(FindError::Filter {
                    id: id.clone(),
                    message,
                });
            }
        }
    }
    Ok(out)
}

/// Tables from `{"repo": {"id": {...}}}`.
pub(crate) fn tables_from_json(json: &Json) -> Result<Tables, String> {
    let Json::Object(repos) = json else {
        return Err("a store must be a JSON object of repositories".to_string());
    };
    let mut tables = Tables::new();
    for (name, table) in repos {
        let Json::Object(entities) = table else {
            return Err(format!(
                "repository `{name}` must be an object of entities by id"
            ));
        };
        let mut out = BTreeMap::new();
        for (id, entity) in entities {
            let Json::Object(entity) = entity else {
                return Err(format!("entity `{name}/{id}` must be an object"));
            };
            out.insert(id.clone(), entity.clone());
        }
        tables.insert(name.clone(), out);
    }
    Ok(tables)
}

/// Tables as `{"repo": {"id": {...}}}`.
pub(crate) fn tables_to_json(tables: &Tables) -> Json {
    Json::Object(
        tables
            .iter()
            .map(|(name, table)| {
                let entities = table
                    .iter()
                    .map(|(id, e)| (id.clone(), Json::Object(e.clone())))
                    .collect();
                (name.clone(), Json::Object(entities))
            })
            .collect(),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::repo::Write;
    use serde_json::json;

    fn obj(v: Json) -> Entity {
        match v {
            Json::Object(m) => m,
            _ => Entity::new(),
        }
    }

    #[test]
    fn unit_of_work_is_all_or_nothing() {
        let repo = MemoryRepository::new(["orders"]);
        repo.insert("orders", "1", obj(json!({"status": "created"})))
            .unwrap();
        let unit = UnitOfWork {
            key: "s/step".into(),
            writes: vec![
                Write::Update {
                    repo: "orders".into(),
                    id: "1".into(),
                    patch: obj(json!({"status": "paid"})),
                },
                Write::Insert {
                    repo: "orders".into(),
                    id: "1".into(),
                    entity: Entity::new(),
                },
            ],
            reads: Vec::new(),
        };
        assert!(matches!(repo.commit(&unit), Err(RepoError::Exists { .. })));
        assert_eq!(
            repo.get("orders", "1").unwrap().unwrap()["status"],
            json!("created")
        );
    }

    #[test]
    fn json_round_trip() {
        let j = json!({"inventory": {"item1": {"qty": 3}}, "orders": {}});
        let repo = MemoryRepository::from_json(&j).unwrap();
        assert_eq!(repo.to_json(), j);
        assert!(MemoryRepository::from_json(&json!({"x": [1]})).is_err());
    }
}
