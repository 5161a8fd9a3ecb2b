//! Adapters: implementations of the core traits over real storage.
//!
//! The core (`rules`, `repo`, `saga`) never imports this module.

pub mod json_file;
pub mod sqlite;

pub use json_file::JsonFileRepository;
pub use sqlite::SqliteStore;
