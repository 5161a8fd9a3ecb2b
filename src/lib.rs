//! rulesaga: declarative business rules and sagas.

pub mod diag;
pub mod json;
pub mod rules;
pub mod value;

pub use diag::{Diagnostic, Diagnostics, Severity, Source, Span};
pub use rules::{Context, Env, EvalError, Program, RuleSet};
pub use value::{FieldRef, List, OwnedValue, Record, Row, Value};
