//! A checked clause written back as rule text that stands on its own, so that
//! an explanation can say *which* clause decided, in a form anyone can
//! evaluate again: fields as `$field`, inlined rules as their bodies (their
//! parameters are already their values), and a quantifier's variable, where
//! the clause sits inside the quantifier, as the element it stands for
//! (`$loans[1].defaulted`, or the element's value).

use super::ast::{Expr, ExprKind, Ident, Literal, PathSegment, UnaryOp};
use super::checked::{Node, NodeKind, Step};
use super::print::print_expr;
use crate::diag::Span;
use crate::value::{OwnedValue, Value};

/// What a quantifier variable stands for while one element is explained.
#[derive(Clone, Debug)]
pub(crate) enum Binding {
    /// A path to the element (`$loans[1]`).
    Path(Expr),
    /// The element's value (an element of a computed list).
    Value(OwnedValue),
}

/// The clause as standalone text, when it can be written (`None` for an
/// object constant, or a parameter without a value).
pub(crate) fn clause_text(node: &Node, bindings: &[Option<Binding>]) -> Option<String> {
    to_expr(node, bindings).map(|e| print_expr(&e))
}

/// The path a variable stands for, for naming what a clause read
/// (`loans[1].defaulted`): the variable's binding, when it is a path.
pub(crate) fn bound_path(node: &Node, bindings: &[Option<Binding>]) -> Option<String> {
    match &node.kind {
        NodeKind::Local { .. } => {
            let e = to_expr(node, bindings)?;
            matches!(e.kind, ExprKind::Field { .. })
                .then(|| print_expr(&e).trim_start_matches('$').to_string())
        }
        _ => None,
    }
}

/// A quantifier's list as a path (`$loans`, `$a.items`), when it is one: its
/// elements are then written `$loans[i]`.
pub(crate) fn to_path(list: &Node, bindings: &[Option<Binding>]) -> Option<Expr> {
    to_expr(list, bindings)
        .filter(|e| matches!(e.kind, ExprKind::Field { .. } | ExprKind::Name { .. }))
}

/// Element `i` of a list path.
pub(crate) fn index_path(path: &Expr, i: usize) -> Option<Binding> {
    extend(path.clone(), &[Step::Index(i)]).map(Binding::Path)
}

fn e(kind: ExprKind) -> Expr {
    Expr::new(kind, Span::default())
}

fn ident(name: &str) -> Ident {
    Ident {
        name: name.to_string(),
        span: Span::default(),
    }
}

fn segments(rest: &[Step]) -> Option<Vec<PathSegment>> {
    rest.iter()
        .map(|step| match step {
            Step::Field(name) => Some(PathSegment::Field(ident(name))),
            Step::Index(i) => u32::try_from(*i).ok().map(PathSegment::Index),
        })
        .collect()
}

/// A path expression with more steps after it.
fn extend(base: Expr, rest: &[Step]) -> Option<Expr> {
    let more = segments(rest)?;
    match base.kind {
        ExprKind::Field { head, mut rest } => {
            rest.extend(more);
            Some(e(ExprKind::Field { head, rest }))
        }
        ExprKind::Name { head, mut rest } => {
            rest.extend(more);
            Some(e(ExprKind::Name { head, rest }))
        }
        ExprKind::Index {
            base,
            index,
            mut rest,
        } => {
            rest.extend(more);
            Some(e(ExprKind::Index { base, index, rest }))
        }
        kind if more.is_empty() => Some(e(kind)),
        _ => None,
    }
}

/// A value as a literal (objects have none).
fn value_expr(v: &Value<'_>) -> Option<Expr> {
    let literal = match v {
        Value::Null => Literal::Null,
        Value::Bool(b) => Literal::Bool(*b),
        Value::Int(i) => Literal::Int(*i),
        Value::Float(x) => Literal::Float(*x),
        Value::Str(s) => Literal::String(s.to_string()),
        Value::Date(d) => Literal::Date(*d),
        Value::DateTime(d) => Literal::DateTime(*d),
        Value::Duration(d) => Literal::Duration(d.num_milliseconds()),
        Value::List(_) | Value::OwnedList(_) => {
            let items = (0..v.list_len().unwrap_or(0))
                .map(|i| value_expr(&v.list_get(i).unwrap_or(Value::Null)))
                .collect::<Option<Vec<_>>>()?;
            return Some(e(ExprKind::List { items }));
        }
        Value::Object(_) | Value::OwnedObject(_) => return None,
    };
    Some(e(ExprKind::Literal { value: literal }))
}

fn binary(op: super::ast::BinaryOp, left: Expr, right: Expr) -> Expr {
    e(ExprKind::Binary {
        op,
        left: Box::new(left),
        right: Box::new(right),
    })
}

fn to_expr(node: &Node, bindings: &[Option<Binding>]) -> Option<Expr> {
    let go = |n: &Node| to_expr(n, bindings).map(Box::new);
    Some(match &node.kind {
        NodeKind::Const(v) => return value_expr(v),
        NodeKind::Field { name, rest, .. } => e(ExprKind::Field {
            head: ident(name),
            rest: segments(rest)?,
        }),
        NodeKind::Local { index, name, rest } => match bindings.get(*index) {
            // a variable bound outside the clause: the element it stands for
            Some(Some(Binding::Path(base))) => return extend(base.clone(), rest),
            Some(Some(Binding::Value(v))) => {
                let mut cur = Some(v.reborrow());
                for step in rest {
                    cur = cur.and_then(|c| super::ops::walk(c, step));
                }
                return value_expr(&cur.unwrap_or(Value::Null));
            }
            Some(None) => return None,
            // a variable of a quantifier inside the clause: its name
            None => e(ExprKind::Name {
                head: ident(name),
                rest: segments(rest)?,
            }),
        },
        NodeKind::Param { .. } => return None,
        NodeKind::Path { base, rest } => return extend(to_expr(base, bindings)?, rest),
        NodeKind::Index { base, index } => {
            let base = to_expr(base, bindings)?;
            if !matches!(
                base.kind,
                ExprKind::Field { .. } | ExprKind::Name { .. } | ExprKind::Index { .. }
            ) {
                return None;
            }
            e(ExprKind::Index {
                base: Box::new(base),
                index: go(index)?,
                rest: Vec::new(),
            })
        }
        NodeKind::Coerce(inner) | NodeKind::Rule { body: inner, .. } => {
            return to_expr(inner, bindings);
        }
        NodeKind::Not(inner) => e(ExprKind::Unary {
            op: UnaryOp::Not,
            operand: go(inner)?,
        }),
        NodeKind::Neg(inner) => e(ExprKind::Unary {
            op: UnaryOp::Neg,
            operand: go(inner)?,
        }),
        NodeKind::And(items) | NodeKind::Or(items) => {
            let op = if matches!(node.kind, NodeKind::And(_)) {
                super::ast::BinaryOp::And
            } else {
                super::ast::BinaryOp::Or
            };
            let mut parts = items.iter().map(|i| to_expr(i, bindings));
            let first = parts.next()??;
            parts.try_fold(first, |acc, next| Some(binary(op, acc, next?)))?
        }
        NodeKind::Compare { op, left, right }
        | NodeKind::Arith { op, left, right }
        | NodeKind::Member { op, left, right } => binary(*op, *go(left)?, *go(right)?),
        NodeKind::Matches { value, regex } => binary(
            super::ast::BinaryOp::Matches,
            *go(value)?,
            e(ExprKind::Literal {
                value: Literal::String(regex.as_str().to_string()),
            }),
        ),
        NodeKind::Between { value, low, high } => e(ExprKind::Between {
            value: go(value)?,
            low: go(low)?,
            high: go(high)?,
        }),
        NodeKind::IsNull { value, negated } => e(ExprKind::IsNull {
            value: go(value)?,
            negated: *negated,
        }),
        NodeKind::Has(path) => {
            let path = to_expr(path, bindings)?;
            // a variable bound to a value (not a path) cannot be written as one
            if !matches!(
                path.kind,
                ExprKind::Field { .. } | ExprKind::Name { .. } | ExprKind::Index { .. }
            ) {
                return None;
            }
            e(ExprKind::Call {
                name: ident("has"),
                args: vec![path],
            })
        }
        NodeKind::If {
            cond,
            then,
            otherwise,
        } => e(ExprKind::If {
            cond: go(cond)?,
            then: go(then)?,
            otherwise: go(otherwise)?,
        }),
        NodeKind::Coalesce { value, fallback } => {
            binary(super::ast::BinaryOp::Coalesce, *go(value)?, *go(fallback)?)
        }
        NodeKind::Call { func, args } => e(ExprKind::Call {
            name: ident(&func.name),
            args: args
                .iter()
                .map(|a| to_expr(a, bindings))
                .collect::<Option<_>>()?,
        }),
        NodeKind::Object(keys, items) => e(ExprKind::Object {
            entries: keys
                .iter()
                .zip(items)
                .map(|(k, v)| {
                    Some(super::ast::Entry {
                        key: ident(k),
                        value: to_expr(v, bindings)?,
                    })
                })
                .collect::<Option<_>>()?,
        }),
        NodeKind::List(items) => e(ExprKind::List {
            items: items
                .iter()
                .map(|i| to_expr(i, bindings))
                .collect::<Option<_>>()?,
        }),
        NodeKind::Quant {
            quantifier,
            var,
            list,
            predicate,
            ..
        } => e(ExprKind::Quantifier {
            quantifier: *quantifier,
            var: ident(var),
            list: go(list)?,
            predicate: go(predicate)?,
        }),
    })
}
