//! Adapters: implementations of the core traits over real storage, and [`open`], which
//! picks one from a URL-like string.
//!
//! The core (`rules`, `repo`, `saga`) never imports this module.

use std::path::Path;
use std::sync::Arc;

pub mod json_file;
mod json_store;
pub mod postgres;
pub mod sqlite;

pub use json_file::JsonFileRepository;
pub use json_store::JsonStore;
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

use crate::saga::store::{MemoryStore, SagaStore, StoreError};

/// Open a store from a URL-like string:
///
/// | text | store |
/// |---|---|
/// | `sqlite:PATH`, or a bare path | [`SqliteStore`] (created when missing) |
/// | `memory:` | [`MemoryStore`] (nothing survives the process) |
/// | `json:FILE` | [`JsonStore`]: repositories in an existing JSON file, the log in memory |
/// | `postgres://USER@HOST:PORT/DB` (or `postgresql://`) | [`PostgresStore`] (tables created when missing) |
///
/// A new backend is one adapter and one line here.
pub fn open(url: &str) -> Result<Arc<dyn SagaStore>, StoreError> {
    let (scheme, rest) = match url.split_once(':') {
        // a Windows drive letter is a path, not a scheme
        Some((s, r)) if s.len() > 1 && s.bytes().all(|b| b.is_ascii_alphabetic()) => (s, r),
        _ => ("sqlite", url),
    };
    match scheme {
        "sqlite" => {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            if path.is_empty() {
                return Err(StoreError::Io("`sqlite:` needs a file path".into()));
            }
            Ok(Arc::new(SqliteStore::open(Path::new(path))?))
        }
        "memory" if rest.is_empty() => Ok(Arc::new(MemoryStore::new())),
        "json" => Ok(Arc::new(
            JsonStore::open(Path::new(rest)).map_err(|e| StoreError::Io(e.to_string()))?,
        )),
        "postgres" | "postgresql" => Ok(Arc::new(PostgresStore::open(url)?)),
        other => Err(StoreError::Io(format!(
            "unknown store `{other}:`: use `sqlite:PATH` (or a path), `memory:`, `json:FILE` or `postgres://...`"
        ))),
    }
}

/// The path of a store URL that names a SQLite file (`sqlite:PATH` or a bare path).
pub fn sqlite_path(url: &str) -> Option<&Path> {
    match url.split_once(':') {
        Some(("sqlite", rest)) => Some(Path::new(rest.strip_prefix("//").unwrap_or(rest))),
        Some((s, _)) if s.len() > 1 && s.bytes().all(|b| b.is_ascii_alphabetic()) => None,
        _ => Some(Path::new(url)),
    }
}
