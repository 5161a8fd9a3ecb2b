//! rulesaga: declarative business rules and sagas.
//!
//! Rules go text → syntax tree → checked tree → compiled [`Program`], then run
//! against any [`Record`]; sagas go YAML → file model → validated [`Saga`] →
//! [`Runner`] → events. The whole rules pipeline in a few lines:
//!
//! ```
//! use rulesaga::{Context, Env, RuleSet, Source};
//!
//! let file = Source::new("discount.rules", r#"
//!     schema { tier: standard | premium | vip, total: number, days: int }
//!     rule premium = tier == premium
//!     rule high_value(threshold = 100) = total >= threshold
//!     rule discount = premium or (high_value and days <= 30)
//! "#);
//! let rules = RuleSet::compile(vec![file], &Env::new()).expect("the rules check");
//! let discount = rules.rule("discount").expect("defined");
//!
//! let charlie = serde_json::json!({"tier": "standard", "total": 30, "days": 5});
//! let ctx = Context::system();
//! assert!(!discount.matches(&charlie, &ctx).unwrap());
//! let why = discount.explain(&charlie, &ctx).unwrap();
//! assert_eq!(why.reasons(), ["needs tier = premium (is standard)", "needs total ≥ 100 (is 30)"]);
//!
//! // a typo is a compile error with a suggestion, not a silent `false`
//! let err = rules.compile_expr("tier == premum").unwrap_err();
//! assert_eq!(err.items[0].help.as_deref(), Some("did you mean `premium`?"));
//! ```

pub mod adapters;
pub mod cli;
pub mod diag;
pub mod json;
pub mod repo;
pub mod rules;
pub mod saga;
pub mod serve;
pub mod value;

pub use diag::{Diagnostic, Diagnostics, Severity, Source, Span};
pub use rules::{Context, Env, EvalError, Program, RuleSet};
pub use saga::{HandlerRegistry, Runner, Saga, SagaService, SagaState, SagaStatus};
pub use value::{FieldRef, List, OwnedValue, Record, Row, Value};

/// The README's Rust examples, compiled and run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
