//! What evaluation needs besides the record, and how it fails: the
//! [`Context`] (the clock, the step budget) and [`EvalError`]. Every evaluator
//! (`flat`, `compile`, `explain`) and the value semantics (`ops`) use these; they
//! sit beside the checked tree, below the public facade (`api`), so no module
//! of `rules/` imports the facade.

use chrono::{DateTime, FixedOffset, Utc};

use super::limits::DEFAULT_MAX_STEPS;

/// The evaluation context: the clock for `now()` and `today()`, and the step budget.
#[derive(Clone, Debug)]
pub struct Context {
    /// What `now()` returns.
    pub now: DateTime<FixedOffset>,
    /// Maximum evaluation steps (list elements visited by quantifiers,
    /// comprehensions and list functions) per evaluation.
    pub max_steps: u64,
}

impl Context {
    /// The system clock, read once now.
    pub fn system() -> Context {
        Context::at(Utc::now().fixed_offset())
    }

    /// A fixed clock, for tests and reproducible runs.
    pub fn at(now: DateTime<FixedOffset>) -> Context {
        Context {
            now,
            max_steps: DEFAULT_MAX_STEPS,
        }
    }
}

impl Default for Context {
    fn default() -> Context {
        Context::system()
    }
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
    /// A float that is NaN or infinite, read from data or computed.
    #[error("`{0}` is not a finite number")]
    NotFinite(String),
    /// The step budget ran out.
    #[error("evaluation exceeded its budget of {0} steps")]
    CostExceeded(u64),
    /// A custom function returned an error.
    #[error("function `{name}` failed: {message}")]
    Function {
        /// The function.
        name: String,
        /// Its message.
        message: String,
    },
    /// A value an operation cannot take (`sum` of a string, a conversion
    /// that does not apply): the operation, and what was wrong with the value.
    #[error("`{what}`: {message}")]
    Value {
        /// The operation (`sum(..)`, `int(..)`).
        what: String,
        /// What was wrong, naming the value (`element 1 is string "a", not a number`).
        message: String,
    },
    /// A value used as a condition is neither true, false, missing nor null
    /// (only possible where its type is not known when compiling).
    #[error("`{what}` is not true or false: it is {found}")]
    NotACondition {
        /// The expression.
        what: String,
        /// The type of the value it had (`int`, `string`, ...).
        found: &'static str,
    },
}
