//! Sagas, as a pipeline:
//!
//! 1. [`file`](mod@file): YAML text → serde shapes with locations (serde-saphyr; unknown and
//!    duplicate keys rejected, alias and depth budgets on);
//! 2. [`validate`]: shapes → the validated [`model`] (names resolved, expressions
//!    compiled, durations parsed, undo plan checked), every problem collected with
//!    file, line, column and YAML path;
//! 3. [`runner`]: runs a [`Saga`] on tokio against a [`crate::repo::Repository`],
//!    [`handlers`] and an [`events::EventStore`], compensating in reverse order;
//! 4. [`events`]: every transition is an event; a saga's state is a fold over them;
//! 5. [`read_model`]: one summary row per saga, a projection of the log.
//!
//! See `docs/sagas.md` for the file format and the runner's semantics.

pub mod events;
pub mod file;
pub mod graph;
pub mod handlers;
pub mod model;
pub mod read_model;
pub mod runner;
mod scope;
pub mod validate;
mod yaml;

pub use events::{
    CommitError, Event, EventKind, EventStore, MemoryEventStore, SagaState, SagaStatus, StepState,
    StepStatus, StoreError, Subscriber, TransactionalStore, fold,
};
pub use handlers::{HandlerCall, HandlerError, HandlerRegistry};
pub use model::Saga;
pub use runner::{Faults, OperatorAction, RunError, Runner};
pub use validate::{Catalog, load};
