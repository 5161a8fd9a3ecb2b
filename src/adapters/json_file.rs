//! A JSON file holding several named repositories: `{"orders": {...}, "inventory": {...}}`.
//!
//! Every committed unit of work rewrites the file atomically: the new content goes
//! to a temporary file in the same directory, is flushed to disk, and is renamed
//! over the old file. A crash leaves either the old or the new file, never half of one.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::repo::memory::{Tables, tables_from_json, tables_to_json};
use crate::repo::{Entity, FindError, MemoryRepository, RepoError, Repository, UnitOfWork};

/// Largest store file read (64 MiB).
pub const MAX_STORE_BYTES: u64 = 64 * 1024 * 1024;

/// Repositories kept in one JSON file, rewritten atomically on every commit.
#[derive(Debug)]
pub struct JsonFileRepository {
    path: PathBuf,
    memory: MemoryRepository,
}

impl JsonFileRepository {
    /// Open a store file (it must exist and hold a JSON object of repositories).
    pub fn open(path: &Path) -> Result<JsonFileRepository, RepoError> {
        let meta = fs::metadata(path).map_err(|e| storage(path, &e))?;
        if meta.len() > MAX_STORE_BYTES {
            return Err(RepoError::Storage(format!(
                "`{}` is larger than {MAX_STORE_BYTES} bytes",
                path.display()
            )));
        }
        let text = fs::read_to_string(path).map_err(|e| storage(path, &e))?;
        let json: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| RepoError::Storage(format!("`{}`: {e}", path.display())))?;
        let memory = MemoryRepository::from_json(&json)
            .map_err(|e| RepoError::Storage(format!("`{}`: {e}", path.display())))?;
        Ok(JsonFileRepository {
            path: path.to_path_buf(),
            memory,
        })
    }

    /// The file this store writes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every repository as JSON, shaped like the file.
    pub fn to_json(&self) -> serde_json::Value {
        self.memory.to_json()
    }
}

fn storage(path: &Path, e: &std::io::Error) -> RepoError {
    RepoError::Storage(format!("`{}`: {e}", path.display()))
}

/// Write `tables` to `path` via a temporary file in the same directory and a rename.
fn write_atomically(path: &Path, tables: &Tables) -> Result<(), RepoError> {
    let mut text = serde_json::to_string_pretty(&tables_to_json(tables))
        .map_err(|e| RepoError::Storage(e.to_string()))?;
    text.push('\n');
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "store.json".to_string());
    let tmp = dir.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
    let result = (|| {
        let mut file = fs::File::create(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(storage(path, &e));
    }
    Ok(())
}

impl Repository for JsonFileRepository {
    fn repositories(&self) -> Vec<String> {
        self.memory.repositories()
    }

    fn get(&self, repo: &str, id: &str) -> Result<Option<Entity>, RepoError> {
        self.memory.get(repo, id)
    }

    fn find(
        &self,
        repo: &str,
        keep: &mut dyn FnMut(&str, &Entity) -> Result<bool, String>,
    ) -> Result<Vec<(String, Entity)>, FindError> {
        self.memory.find(repo, keep)
    }

    fn commit(&self, unit: &UnitOfWork) -> Result<(), RepoError> {
        self.memory
            .commit_with(unit, |tables| write_atomically(&self.path, tables))
    }
}

// Used by tests and by `tables_from_json` callers that build stores from text.
#[allow(dead_code)]
fn parse_tables(text: &str) -> Result<Tables, String> {
    let json: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    tables_from_json(&json)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn commits_rewrite_the_file() {
        let dir = std::env::temp_dir().join(format!("rulesaga-json-{}", uuid::Uuid::new_v4()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("store.json");
        fs::write(&path, r#"{"orders": {}}"#).unwrap();
        let store = JsonFileRepository::open(&path).unwrap();
        let mut e = Entity::new();
        e.insert("status".into(), json!("created"));
        store.insert("orders", "o1", e).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        let tables = parse_tables(&text).unwrap();
        assert_eq!(tables["orders"]["o1"]["status"], json!("created"));
        // a failed unit leaves the file alone
        assert!(store.insert("orders", "o1", Entity::new()).is_err());
        assert_eq!(fs::read_to_string(&path).unwrap(), text);
        // no temporary files left behind
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        fs::remove_dir_all(&dir).unwrap();
    }
}
