//! The public face of the rules engine (skeleton; implementation in progress).
use std::sync::Arc;

use chrono::{DateTime, FixedOffset};

use crate::diag::{Diagnostics, Source};
use crate::value::{OwnedValue, Record};

/// The evaluation context: the clock for `now()` and `today()`, and the step budget.
#[derive(Clone, Debug)]
pub struct Context {
    /// What `now()` returns.
    pub now: DateTime<FixedOffset>,
    /// Maximum evaluation steps per evaluation.
    pub max_steps: u64,
}

/// Errors raised while evaluating a compiled program.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum EvalError {
    /// Integer overflow.
    #[error("integer overflow in `{0}`")]
    Overflow(String),
    /// Division or remainder by zero.
    #[error("division by zero in `{0}`")]
    DivisionByZero(String),
}

/// Names, schema, functions and rules an expression is compiled against.
#[derive(Clone, Default)]
pub struct Env {}

/// A compiled expression: `Send + Sync`, cheap to clone, evaluated many times.
#[derive(Clone)]
pub struct Program {
    _p: Arc<()>,
}

impl Program {
    /// Parse, check and compile one expression.
    pub fn compile(source: Arc<Source>, env: &Env) -> Result<Program, Diagnostics> {
        let _ = (source, env);
        todo!()
    }
    /// Evaluate as a condition.
    pub fn matches(&self, record: &dyn Record, ctx: &Context) -> Result<bool, EvalError> {
        let _ = (record, ctx);
        todo!()
    }
    /// Evaluate to a value (`None` when the result is missing).
    pub fn evaluate(&self, record: &dyn Record, ctx: &Context) -> Result<Option<OwnedValue>, EvalError> {
        let _ = (record, ctx);
        todo!()
    }
}

/// Compiled rule files: named rules, one optional schema.
#[derive(Clone)]
pub struct RuleSet {
    _p: Arc<()>,
}

/// Rule files failed to load: every problem of every file.
#[derive(Debug, thiserror::Error)]
#[error("rule files have errors")]
pub struct RuleErrors {
    /// Diagnostics per file.
    pub files: Vec<Diagnostics>,
}

impl RuleSet {
    /// Parse, check and compile rule files given as sources.
    pub fn compile(sources: Vec<Arc<Source>>, env: &Env) -> Result<RuleSet, RuleErrors> {
        let _ = (sources, env);
        todo!()
    }
    /// Read and compile rule files from disk.
    pub fn load(paths: &[std::path::PathBuf], env: &Env) -> Result<RuleSet, RuleErrors> {
        let _ = (paths, env);
        todo!()
    }
    /// A rule by name, with its default arguments.
    pub fn rule(&self, name: &str) -> Option<Program> {
        let _ = name;
        todo!()
    }
    /// Rule names, in file order.
    pub fn names(&self) -> Vec<String> {
        todo!()
    }
}
