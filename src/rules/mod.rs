//! The rules language, as a pipeline:
//!
//! 1. [`parse`]: text → [`ast`] (pest grammar in `grammar/spec.pest`), spans on every node;
//! 2. [`check`]: names resolved (parameters, symbols, rules, fields), types checked against
//!    an optional [`Schema`], did-you-mean suggestions;
//! 3. [`compile`]: the checked tree becomes a tree of specialised closures, fields resolved
//!    to schema slots, constants baked in, regexes compiled once;
//! 4. evaluation: a [`Program`] runs against any [`crate::Record`] with a [`Context`]
//!    (the clock), allocating nothing for plain comparisons.
//!
//! Rule files add named, parameterised rules and a schema on top ([`RuleSet`]).

pub mod ast;
mod parse;
mod print;

pub use parse::{parse_expr, parse_rule_file, MAX_DEPTH, MAX_SOURCE_BYTES};
pub use print::{print_expr, print_rule_file};
mod api;
pub use api::{Context, Env, EvalError, Program, RuleErrors, RuleSet};
