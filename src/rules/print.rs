//! AST → canonical text.
use super::ast::{Expr, RuleFile};

/// Print an expression in canonical style.
pub fn print_expr(expr: &Expr) -> String {
    let _ = expr;
    todo!()
}

/// Print a rule file in canonical style.
pub fn print_rule_file(file: &RuleFile) -> String {
    let _ = file;
    todo!()
}
