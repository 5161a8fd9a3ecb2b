//! The rules language, as a pipeline:
//!
//! 1. `parse`: text → [`ast`] (pest grammar in `grammar/spec.pest`), spans on every node;
//!    valid expressions and rules usually take a hand-written fast path (`fastparse`)
//!    that builds the same tree; errors and anything it does not handle go to pest;
//! 2. `check`: names resolved (parameter, quantifier variable, symbol, rule, field),
//!    types checked against an optional [`Schema`], did-you-mean suggestions;
//! 3. `compile`: the checked tree becomes a tree of specialised closures, fields resolved
//!    to slots, constants baked in, regexes compiled once;
//!    Conditions of `and`/`or`/`not` over simple field tests also get a `flat` form:
//!    a list of tests with jump targets, run without closures or a frame;
//! 4. evaluation: a [`Program`] runs against any [`crate::Record`] with a [`Context`]
//!    (the clock), allocating nothing for comparisons of scalars.
//!
//! `explain` walks the checked tree again, slowly, to say why a result came out.
//!
//! Rule files add named, parameterised rules and a schema on top ([`RuleSet`]).
//! `ops` holds the value semantics both evaluation paths share.
//!
//! Authoring tools sit on top: [`testfile`] loads and runs `*.test.yaml` rule tests,
//! [`format`](mod@format) rewrites rule files in canonical style with their comments, [`lint`]
//! finds rules that check but probably do not mean what they say (warnings).

mod api;
pub mod ast;
mod bind;
mod check;
mod checked;
mod clause;
mod compile;
mod conform;
mod context;
mod explain;
mod fastparse;
mod flat;
pub mod format;
mod functions;
mod lexical;
mod limits;
pub mod lint;
mod ops;
mod parse;
mod prescan;
mod print;
mod ruleset;
mod schema;
mod strings;
pub mod testfile;

pub use api::{Context, Env, EvalError, Program, RuleError, RuleErrors, RuleSet, read_text};
pub use bind::{BindError, Bound, RecordType};
pub use conform::{Problem, SchemaError};
pub use explain::{Cause, ClauseKind, Explanation, Read};
pub use functions::{DuplicateFunction, Function, Functions};
pub use lexical::KEYWORDS;
pub use limits::{DEFAULT_MAX_STEPS, MAX_DEPTH, MAX_SOURCE_BYTES};
pub use parse::{parse_expr, parse_rule_file};
#[doc(hidden)]
pub use parse::{parse_expr_fast, parse_expr_pest, parse_rule_file_pest};
pub use print::{print_expr, print_rule_file};
pub use schema::{FieldType, ObjectType, Schema, Type};
