//! Sagas, as a pipeline and a runtime:
//!
//! 1. [`file`](mod@file): YAML text → serde shapes with locations (serde-saphyr; unknown and
//!    duplicate keys rejected, alias and depth budgets on);
//! 2. [`validate`]: shapes → the validated [`model`] (names resolved, expressions
//!    compiled against what each step may read, durations parsed, undo plan checked),
//!    every problem collected with file, line, column and YAML path;
//! 3. [`events`] and [`state`]: every transition is an event; a saga's state is a fold
//!    over its events through an explicit transition table;
//! 4. [`decide`]: what a saga does next, a pure function of its state and definition;
//! 5. [`runner`]: executes those decisions (scheduling only), through
//! 6. [`actions`]: the executors of actions and compensations, and the layers around
//!    them (fault injection, and later HTTP policies);
//! 7. [`store`]: the event log, read model and leases as traits, the semantics every
//!    backend shares, and the in-memory backend;
//! 8. [`service`]: the one API for start, resume, recover, operators and queries, used
//!    by the CLI and by applications that embed rulesaga.
//!
//! See `docs/sagas.md` for the file format and the runtime's semantics.

pub mod actions;
pub mod decide;
pub mod events;
pub mod file;
pub mod graph;
pub mod handlers;
pub mod model;
pub mod operator;
pub mod read_model;
pub mod runner;
mod scope;
pub mod service;
pub mod state;
pub mod store;
pub mod validate;
mod yaml;

pub use actions::{
    ActionCall, ActionError, BreakerState, ErrorClass, Executor, FaultLayer, Faults, Layer, Phase,
    ServiceStatus, Vars,
};
pub use events::{Event, EventKind, SagaStart, StepName};
pub use handlers::{HandlerCall, HandlerError, HandlerRegistry};
pub use model::Saga;
pub use operator::OperatorAction;
pub use runner::{RunError, Runner, Start, Subscriber};
pub use service::{SagaService, ServiceError};
pub use state::{SagaState, SagaStatus, StepState, StepStatus, fold};
pub use store::{MemoryStore, SagaStore, StoreError};
pub use validate::{Catalog, load};
