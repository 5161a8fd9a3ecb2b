//! Text → AST. (Being written: see grammar/spec.pest.)
use std::sync::Arc;

use super::ast::{Expr, RuleFile};
use crate::diag::{Diagnostics, Source};

/// Largest source text accepted, in bytes.
pub const MAX_SOURCE_BYTES: usize = 1 << 20;
/// Deepest nesting of parentheses, brackets, calls and prefix operators accepted.
pub const MAX_DEPTH: usize = 64;

/// Parse one expression.
pub fn parse_expr(source: &Arc<Source>) -> Result<Expr, Diagnostics> {
    let _ = source;
    todo!()
}

/// Parse a rule file.
pub fn parse_rule_file(source: &Arc<Source>) -> Result<RuleFile, Diagnostics> {
    let _ = source;
    todo!()
}
