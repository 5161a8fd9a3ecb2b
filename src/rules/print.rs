//! AST → canonical text, the inverse of [`parse`](super::parse):
//! `parse(print(ast)) == ast` for every tree the parser can produce.
//!
//! Canonical style: single spaces around binary operators, parentheses only
//! where precedence needs them and around `and` inside `or`, double-quoted strings (raw
//! `r"..."` when the text has a backslash and no quote), keys that are not words as
//! `["key"]`, floats always with a `.` or an exponent, durations in their largest exact unit,
//! and a rule longer than 100 characters broken over lines at the `or`s (else the `and`s)
//! of its body.

use std::fmt::Write;

use chrono::SecondsFormat;

use super::ast::{
    BinaryOp, Expr, ExprKind, FieldDecl, Literal, PathSegment, RuleFile, TypeExpr, UnaryOp,
};

/// Binding strength, loosest first (the grammar's levels).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    /// `if ... then ... else ...`: only where a whole expression stands.
    If,
    Or,
    And,
    Not,
    Compare,
    Coalesce,
    Sum,
    Product,
    Unary,
}

/// Print an expression in canonical style.
pub fn print_expr(expr: &Expr) -> String {
    let mut out = String::new();
    write_expr(&mut out, expr, Level::If);
    out
}

/// A rule's name and parameters as it is called: `high_value(threshold = 100)`.
pub(crate) fn print_rule_signature(decl: &super::ast::RuleDecl) -> String {
    let params: Vec<String> = decl
        .params
        .iter()
        .map(|p| match &p.default {
            Some(d) => format!("{} = {}", p.name.name, print_expr(d)),
            None => p.name.name.clone(),
        })
        .collect();
    format!("{}({})", decl.name.name, params.join(", "))
}

/// Print a rule file in canonical style.
pub fn print_rule_file(file: &RuleFile) -> String {
    let mut out = String::new();
    if let Some(schema) = &file.schema {
        if schema.fields.is_empty() {
            out.push_str("schema {}\n");
        } else {
            out.push_str("schema {\n");
            for field in &schema.fields {
                out.push_str("  ");
                write_field(&mut out, field);
                out.push('\n');
            }
            out.push_str("}\n");
        }
    }
    for (i, rule) in file.rules.iter().enumerate() {
        if i > 0 || file.schema.is_some() {
            out.push('\n');
        }
        for line in &rule.doc {
            if line.is_empty() {
                out.push_str("##\n");
            } else {
                let _ = writeln!(out, "## {line}");
            }
        }
        let _ = write!(out, "rule {}", rule.name.name);
        if !rule.params.is_empty() {
            out.push('(');
            for (j, param) in rule.params.iter().enumerate() {
                if j > 0 {
                    out.push_str(", ");
                }
                out.push_str(&param.name.name);
                if let Some(default) = &param.default {
                    out.push_str(" = ");
                    write_expr(&mut out, default, Level::If);
                }
            }
            out.push(')');
        }
        let mut body = String::new();
        write_expr(&mut body, &rule.body, Level::If);
        let line_start = out.rfind('\n').map_or(0, |i| i + 1);
        let head_len = out.get(line_start..).map_or(0, |h| h.chars().count());
        if head_len + 3 + body.chars().count() > MAX_WIDTH
            && let Some(lines) = broken(&rule.body)
        {
            out.push_str(" =");
            out.push_str(&lines);
            out.push('\n');
            continue;
        }
        out.push_str(" = ");
        out.push_str(&body);
        out.push('\n');
    }
    out
}

/// Rules longer than this, in characters, are broken over lines (`broken`).
const MAX_WIDTH: usize = 100;

/// A rule body whose top level is a chain of `or` (else of `and`) written one
/// operand per line, indented four spaces, each after the first led by its
/// operator: the canonical form of a rule too long for one line. `None` for
/// any other body.
fn broken(body: &Expr) -> Option<String> {
    let op = match &body.kind {
        ExprKind::Binary {
            op: op @ (BinaryOp::Or | BinaryOp::And),
            ..
        } => *op,
        _ => return None,
    };
    // the left spine of the chain: `a or b or c` is `(a or b) or c`
    let mut operands = Vec::new();
    let mut cur = body;
    while let ExprKind::Binary { op: o, left, right } = &cur.kind {
        if *o != op {
            break;
        }
        operands.push(&**right);
        cur = left;
    }
    operands.push(cur);
    operands.reverse();
    let is_and = |e: &Expr| {
        matches!(
            e.kind,
            ExprKind::Binary {
                op: BinaryOp::And,
                ..
            }
        )
    };
    let mut out = String::new();
    for (i, operand) in operands.into_iter().enumerate() {
        // the minimum levels `write_expr` gives the operands of `op`
        let min = match (op, i) {
            (BinaryOp::Or, _) if is_and(operand) => Level::Not,
            (BinaryOp::Or, 0) => Level::Or,
            (BinaryOp::Or, _) => Level::And,
            (_, 0) => Level::And,
            _ => Level::Not,
        };
        out.push_str("\n    ");
        if i > 0 {
            out.push_str(op.as_str());
            out.push(' ');
        }
        write_expr(&mut out, operand, min);
    }
    Some(out)
}

fn write_field(out: &mut String, field: &FieldDecl) {
    out.push_str(&field.name.name);
    if field.optional {
        out.push('?');
    }
    out.push_str(": ");
    write_type(out, &field.ty);
}

fn write_type(out: &mut String, ty: &TypeExpr) {
    match ty {
        TypeExpr::Named { name } => out.push_str(&name.name),
        TypeExpr::Enum { variants } => {
            for (i, variant) in variants.iter().enumerate() {
                if i > 0 {
                    out.push_str(" | ");
                }
                out.push_str(&variant.name);
            }
        }
        TypeExpr::List { element } => {
            out.push_str("list<");
            write_type(out, element);
            out.push('>');
        }
        TypeExpr::Object { fields } => {
            if fields.is_empty() {
                out.push_str("{}");
                return;
            }
            out.push_str("{ ");
            for (i, field) in fields.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_field(out, field);
            }
            out.push_str(" }");
        }
    }
}

fn binary_level(op: BinaryOp) -> Level {
    match op {
        BinaryOp::Or => Level::Or,
        BinaryOp::And => Level::And,
        BinaryOp::Add | BinaryOp::Sub => Level::Sum,
        BinaryOp::Mul | BinaryOp::Div | BinaryOp::Rem => Level::Product,
        BinaryOp::Coalesce => Level::Coalesce,
        _ => Level::Compare,
    }
}

/// The level one step tighter (the right operand of a left-associative operator).
fn tighter(level: Level) -> Level {
    match level {
        Level::If | Level::Or => Level::And,
        Level::And => Level::Not,
        Level::Not => Level::Compare,
        Level::Compare => Level::Coalesce,
        Level::Coalesce => Level::Sum,
        Level::Sum => Level::Product,
        Level::Product | Level::Unary => Level::Unary,
    }
}

/// The level an expression prints at.
fn level_of(expr: &Expr) -> Level {
    match &expr.kind {
        ExprKind::Binary { op, .. } => binary_level(*op),
        ExprKind::Between { .. } | ExprKind::IsNull { .. } => Level::Compare,
        ExprKind::Unary {
            op: UnaryOp::Not, ..
        } => Level::Not,
        ExprKind::If { .. } => Level::If,
        _ => Level::Unary,
    }
}

/// Write `expr` where at least `min` binds tightly enough, with parentheses otherwise.
fn write_expr(out: &mut String, expr: &Expr, min: Level) {
    if level_of(expr) < min {
        out.push('(');
        write_expr(out, expr, Level::If);
        out.push(')');
        return;
    }
    match &expr.kind {
        ExprKind::Literal { value } => write_literal(out, value),
        ExprKind::List { items } => {
            out.push('[');
            write_list(out, items);
            out.push(']');
        }
        ExprKind::Object { entries } => {
            out.push('{');
            for (i, entry) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                if super::lexical::is_word(&entry.key.name) {
                    out.push_str(&entry.key.name);
                } else {
                    write_string(out, &entry.key.name);
                }
                out.push_str(": ");
                write_expr(out, &entry.value, Level::If);
            }
            out.push('}');
        }
        ExprKind::Name { head, rest } => write_path(out, &head.name, rest),
        ExprKind::Field { head, rest } => {
            out.push('$');
            write_path(out, &head.name, rest);
        }
        ExprKind::Index { base, index, rest } => {
            write_expr(out, base, Level::Unary);
            // `[(4294967296)]`: digits alone would be a static index
            let digits = matches!(
                index.kind,
                ExprKind::Literal {
                    value: Literal::Int(0..)
                }
            );
            out.push_str(if digits { "[(" } else { "[" });
            write_expr(out, index, Level::If);
            out.push_str(if digits { ")]" } else { "]" });
            write_path(out, "", rest);
        }
        ExprKind::Call { name, args } => {
            out.push_str(&name.name);
            out.push('(');
            // `sum((x in xs), y)` is a call: unbracketed it would be a comprehension
            match args.split_first() {
                Some((first, rest))
                    if super::ast::Quantifier::comprehension(&name.name).is_some()
                        && starts_binding(first) =>
                {
                    out.push('(');
                    write_expr(out, first, Level::If);
                    out.push(')');
                    for arg in rest {
                        out.push_str(", ");
                        write_expr(out, arg, Level::If);
                    }
                }
                _ => write_list(out, args),
            }
            out.push(')');
        }
        ExprKind::Quantifier {
            quantifier,
            var,
            list,
            predicate,
        } => {
            out.push_str(quantifier.as_str());
            out.push('(');
            out.push_str(&var.name);
            out.push_str(" in ");
            write_expr(out, list, Level::If);
            out.push_str(", ");
            write_expr(out, predicate, Level::If);
            out.push(')');
        }
        ExprKind::If {
            cond,
            then,
            otherwise,
        } => {
            out.push_str("if ");
            write_expr(out, cond, Level::If);
            out.push_str(" then ");
            write_expr(out, then, Level::If);
            out.push_str(" else ");
            write_expr(out, otherwise, Level::If);
        }
        ExprKind::Unary {
            op: UnaryOp::Not,
            operand,
        } => {
            out.push_str("not ");
            write_expr(out, operand, Level::Not);
        }
        ExprKind::Unary {
            op: UnaryOp::Neg,
            operand,
        } => {
            out.push('-');
            // `-5` would read back as the literal -5: keep the minus apart.
            let bare_number = matches!(
                &operand.kind,
                ExprKind::Literal {
                    value: Literal::Int(0..) | Literal::Duration(0..)
                }
            ) || matches!(&operand.kind, ExprKind::Literal { value: Literal::Float(f) } if f.is_sign_positive());
            if bare_number {
                out.push('(');
                write_expr(out, operand, Level::If);
                out.push(')');
            } else {
                write_expr(out, operand, Level::Unary);
            }
        }
        ExprKind::Binary { op, left, right } => {
            let level = binary_level(*op);
            let (mut left_min, mut right_min) = if level == Level::Compare {
                (Level::Coalesce, Level::Coalesce)
            } else {
                (level, tighter(level))
            };
            // `a or (b and c)`: parentheses a reader does not have to reason about
            if *op == BinaryOp::Or {
                let is_and = |e: &Expr| {
                    matches!(
                        e.kind,
                        ExprKind::Binary {
                            op: BinaryOp::And,
                            ..
                        }
                    )
                };
                if is_and(left) {
                    left_min = Level::Not;
                }
                if is_and(right) {
                    right_min = Level::Not;
                }
            }
            write_expr(out, left, left_min);
            out.push(' ');
            out.push_str(op.as_str());
            out.push(' ');
            write_expr(out, right, right_min);
        }
        ExprKind::Between { value, low, high } => {
            write_expr(out, value, Level::Coalesce);
            out.push_str(" between ");
            write_expr(out, low, Level::Coalesce);
            out.push_str(" and ");
            write_expr(out, high, Level::Coalesce);
        }
        ExprKind::IsNull { value, negated } => {
            write_expr(out, value, Level::Coalesce);
            out.push_str(if *negated { " is not null" } else { " is null" });
        }
    }
}

/// Does printing `e` start with `name in` (a bare name, then `in` or `not in`)?
fn starts_binding(e: &Expr) -> bool {
    match &e.kind {
        ExprKind::Name { rest, .. } => rest.is_empty(),
        ExprKind::Binary { left, .. } | ExprKind::Between { value: left, .. } => {
            starts_binding(left)
        }
        ExprKind::IsNull { value, .. } => starts_binding(value),
        _ => false,
    }
}

fn write_list(out: &mut String, items: &[Expr]) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write_expr(out, item, Level::If);
    }
}

fn write_path(out: &mut String, head: &str, rest: &[PathSegment]) {
    out.push_str(head);
    for segment in rest {
        match segment {
            // a key that is not a word is written as a string: `headers["content-type"]`
            PathSegment::Field(ident) if super::lexical::is_word(&ident.name) => {
                out.push('.');
                out.push_str(&ident.name);
            }
            PathSegment::Field(ident) => {
                out.push('[');
                write_string(out, &ident.name);
                out.push(']');
            }
            PathSegment::Index(i) => {
                let _ = write!(out, "[{i}]");
            }
        }
    }
}

fn write_literal(out: &mut String, value: &Literal) {
    match value {
        Literal::Null => out.push_str("null"),
        Literal::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Literal::Int(n) => {
            let _ = write!(out, "{n}");
        }
        Literal::Float(f) => {
            // `{:?}` is the shortest text that reads back to the same float,
            // and always has a `.` or an exponent.
            let _ = write!(out, "{f:?}");
        }
        Literal::String(s) => write_string(out, s),
        Literal::Date(d) => {
            let _ = write!(out, "{}", d.format("%Y-%m-%d"));
        }
        Literal::DateTime(dt) => out.push_str(&dt.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
        Literal::Duration(ms) => match chrono::TimeDelta::try_milliseconds(*ms) {
            Some(delta) => out.push_str(&crate::value::format_duration(delta)),
            // Only `i64::MIN` ms is out of range, and the parser never produces it.
            None => {
                let _ = write!(out, "{ms}ms");
            }
        },
    }
}

fn write_string(out: &mut String, s: &str) {
    // a backslash reads best in a raw string (`r"^\d+$"`), when one can hold the text
    if s.contains('\\') && !s.contains('"') && !s.chars().any(char::is_control) {
        out.push_str("r\"");
        out.push_str(s);
        out.push('"');
        return;
    }
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}
