//! rulesaga: declarative business rules and sagas.

pub mod adapters;
pub mod diag;
pub mod json;
pub mod repo;
pub mod rules;
pub mod saga;
pub mod value;

pub use diag::{Diagnostic, Diagnostics, Severity, Source, Span};
pub use rules::{Context, Env, EvalError, Program, RuleSet};
pub use saga::{HandlerRegistry, Runner, Saga, SagaState, SagaStatus};
pub use value::{FieldRef, List, OwnedValue, Record, Row, Value};
