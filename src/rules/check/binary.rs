//! Checking operators: `and`/`or`, comparisons (with the bare-word symbol rule
//! and enum checks), membership and string tests, `matches`, and arithmetic
//! typing. Part of the checker (`super`), split out to keep files small.

use super::{Checker, Node, NodeKind, Pos, REGEX_SIZE_LIMIT, Symbols, describe, known};
use crate::diag::{Diagnostic, Span, did_you_mean};
use crate::rules::ast::{BinaryOp, Expr, ExprKind, Literal};
use crate::rules::schema::Type;
use crate::value::{OwnedValue, Value};

impl Checker<'_> {
    pub(super) fn binary(&mut self, op: BinaryOp, left: &Expr, right: &Expr, span: Span) -> Node {
        match op {
            BinaryOp::And | BinaryOp::Or => {
                let mut items = Vec::new();
                for side in [left, right] {
                    let node = self.cond(side);
                    // flatten `a and (b and c)` into one list for short-circuiting
                    match node.kind {
                        NodeKind::And(inner) if op == BinaryOp::And => items.extend(inner),
                        NodeKind::Or(inner) if op == BinaryOp::Or => items.extend(inner),
                        kind => items.push(Node { kind, ..node }),
                    }
                }
                let kind = if op == BinaryOp::And {
                    NodeKind::And(items)
                } else {
                    NodeKind::Or(items)
                };
                self.node(kind, Type::Bool, span)
            }
            BinaryOp::Eq | BinaryOp::Ne => {
                let l = self.expr(left, Pos::Value);
                // `x == null` means `x is null`
                if matches!(
                    right.kind,
                    ExprKind::Literal {
                        value: Literal::Null
                    }
                ) {
                    return self.node(
                        NodeKind::IsNull {
                            value: Box::new(l),
                            negated: op == BinaryOp::Ne,
                        },
                        Type::Bool,
                        span,
                    );
                }
                self.symbols = Some(symbols_for(&l.ty));
                let r = self.expr(right, Pos::Symbol);
                // a symbol against a non-string field has its own, more helpful error
                if !self.check_symbol(&l, &r, right) {
                    self.expect_comparable(&l, &r, op.as_str());
                }
                self.compare_node(op, l, r, span)
            }
            BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge => {
                let l = self.expr(left, Pos::Value);
                let r = self.expr(right, Pos::Value);
                self.expect_orderable(&l, &r, op.as_str());
                self.compare_node(op, l, r, span)
            }
            BinaryOp::In | BinaryOp::NotIn => {
                let l = self.expr(left, Pos::Value);
                self.symbols = Some(symbols_for(&Type::List(Box::new(l.ty.clone()))));
                let r = self.expr(right, Pos::Value);
                match &r.ty {
                    Type::List(elem) => {
                        if known(elem) && known(&l.ty) && !l.ty.comparable_with(elem) {
                            let (lt, et) = (l.ty.clone(), (**elem).clone());
                            self.error(Diagnostic::error(
                                "E106",
                                span,
                                format!("cannot look for a {lt} in a list of {et}"),
                            ));
                        }
                        if let (Type::Enum(variants), NodeKind::Const(list)) = (&l.ty, &r.kind) {
                            self.check_enum_list(variants, list, right);
                        }
                    }
                    Type::Any => {}
                    other => {
                        let other = other.clone();
                        self.error(
                            Diagnostic::error(
                                "E106",
                                r.span,
                                format!(
                                    "`{}` needs a list on the right, found {other}",
                                    op.as_str()
                                ),
                            )
                            .with_help(
                                "write a list such as `[a, b]`, or use `contains` for substrings",
                            ),
                        );
                    }
                }
                self.node(
                    NodeKind::Member {
                        op,
                        left: Box::new(l),
                        right: Box::new(r),
                    },
                    Type::Bool,
                    span,
                )
            }
            BinaryOp::Contains | BinaryOp::StartsWith | BinaryOp::EndsWith => {
                let l = self.expr(left, Pos::Value);
                let r = self.expr(right, Pos::Value);
                let l_ok = match op {
                    BinaryOp::Contains => {
                        matches!(l.ty, Type::Any | Type::List(_)) || l.ty.is_stringy()
                    }
                    _ => matches!(l.ty, Type::Any) || l.ty.is_stringy(),
                };
                if !l_ok {
                    let lt = l.ty.clone();
                    self.error(Diagnostic::error(
                        "E106",
                        l.span,
                        format!("`{}` needs a string on the left, found {lt}", op.as_str()),
                    ));
                }
                if l.ty.is_stringy() && known(&r.ty) && !r.ty.is_stringy() {
                    let rt = r.ty.clone();
                    self.error(Diagnostic::error(
                        "E106",
                        r.span,
                        format!("`{}` needs a string on the right, found {rt}", op.as_str()),
                    ));
                }
                self.node(
                    NodeKind::Member {
                        op,
                        left: Box::new(l),
                        right: Box::new(r),
                    },
                    Type::Bool,
                    span,
                )
            }
            BinaryOp::Matches => {
                let l = self.expr(left, Pos::Value);
                if known(&l.ty) && !l.ty.is_stringy() {
                    let lt = l.ty.clone();
                    self.error(Diagnostic::error(
                        "E106",
                        l.span,
                        format!("`matches` needs a string on the left, found {lt}"),
                    ));
                }
                let pattern = match &right.kind {
                    ExprKind::Literal {
                        value: Literal::String(s),
                    } => Some(s.clone()),
                    _ => {
                        self.error(
                            Diagnostic::error(
                                "E108",
                                right.span,
                                "`matches` needs a string literal",
                            )
                            .with_help(
                                "write the regular expression in quotes: `x matches \"^a+$\"`",
                            ),
                        );
                        None
                    }
                };
                let regex = pattern.and_then(|p| {
                    match regex::RegexBuilder::new(&p)
                        .size_limit(REGEX_SIZE_LIMIT)
                        .build()
                    {
                        Ok(r) => Some(r),
                        Err(e) => {
                            let msg = e.to_string();
                            let first = msg.lines().last().unwrap_or("invalid").trim().to_string();
                            self.error(
                                Diagnostic::error("E108", right.span, "invalid regular expression")
                                    .with_label(first),
                            );
                            None
                        }
                    }
                });
                match regex {
                    Some(regex) => self.node(
                        NodeKind::Matches {
                            value: Box::new(l),
                            regex,
                        },
                        Type::Bool,
                        span,
                    ),
                    None => self.node(NodeKind::Const(Value::Bool(false)), Type::Bool, span),
                }
            }
            BinaryOp::Coalesce => {
                let value = self.expr(left, Pos::Value);
                let fallback = self.expr(right, Pos::Value);
                let ty = self.either_type(&value, &fallback, "the two sides of `??`");
                self.node(
                    NodeKind::Coalesce {
                        value: Box::new(value),
                        fallback: Box::new(fallback),
                    },
                    ty,
                    span,
                )
            }
            BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div | BinaryOp::Rem => {
                let l = self.expr(left, Pos::Value);
                let r = self.expr(right, Pos::Value);
                let ty = arith_type(op, &l.ty, &r.ty);
                let ty = match ty {
                    Some(t) => t,
                    None => {
                        let (lt, rt) = (l.ty.clone(), r.ty.clone());
                        self.error(Diagnostic::error(
                            "E106",
                            span,
                            format!("cannot apply `{}` to {lt} and {rt}", op.as_str()),
                        ));
                        Type::Any
                    }
                };
                self.node(
                    NodeKind::Arith {
                        op,
                        left: Box::new(l),
                        right: Box::new(r),
                    },
                    ty,
                    span,
                )
            }
        }
    }

    pub(super) fn compare_node(&mut self, op: BinaryOp, l: Node, r: Node, span: Span) -> Node {
        self.node(
            NodeKind::Compare {
                op,
                left: Box::new(l),
                right: Box::new(r),
            },
            Type::Bool,
            span,
        )
    }

    /// A symbol compared with an enum must be one of its values; with a
    /// non-string field it is an error that suggests `$field`.
    /// Returns true when it reported a symbol compared with a non-string type.
    pub(super) fn check_symbol(&mut self, l: &Node, r: &Node, right: &Expr) -> bool {
        let ExprKind::Name { head, rest } = &right.kind else {
            return false;
        };
        if !rest.is_empty() {
            return false;
        }
        let NodeKind::Const(Value::Str(sym)) = &r.kind else {
            return false;
        };
        match &l.ty {
            // a field name is reported as such (E117), not as an unknown value
            Type::Enum(variants)
                if !variants.iter().any(|v| v == sym) && !self.is_schema_field(sym) =>
            {
                let help = did_you_mean(sym, variants.iter().map(String::as_str))
                    .unwrap_or_else(|| format!("the values are {}", variants.join(", ")));
                self.error(
                    Diagnostic::error(
                        "E107",
                        head.span,
                        format!("`{sym}` is not a value of {}", describe(l)),
                    )
                    .with_label("unknown value")
                    .with_help(help),
                );
                false
            }
            Type::Enum(_) => false,
            t if known(t) && !t.is_stringy() => {
                let is_field = self.scope.schema.is_some_and(|s| s.root.get(sym).is_some());
                let help = if is_field {
                    format!("to compare with the field `{sym}`, write `${sym}`")
                } else {
                    format!(
                        "a bare word on the right of `==` is the string \"{sym}\"; write `${sym}` for a field"
                    )
                };
                let t = t.clone();
                self.error(
                    Diagnostic::error(
                        "E114",
                        head.span,
                        format!("cannot compare {t} with the symbol `{sym}`"),
                    )
                    .with_help(help),
                );
                true
            }
            _ => false,
        }
    }

    pub(super) fn check_enum_list(&mut self, variants: &[String], list: &OwnedValue, right: &Expr) {
        let ExprKind::List { items } = &right.kind else {
            return;
        };
        let n = list.list_len().unwrap_or(0);
        for (i, item) in items.iter().enumerate().take(n) {
            let bare = matches!(&item.kind, ExprKind::Name { rest, .. } if rest.is_empty());
            if let Some(Value::Str(s)) = list.list_get(i)
                && !variants.iter().any(|v| v == &*s)
                && !(bare && self.is_schema_field(&s))
            {
                let help = did_you_mean(&s, variants.iter().map(String::as_str))
                    .unwrap_or_else(|| format!("the values are {}", variants.join(", ")));
                self.error(
                    Diagnostic::error(
                        "E107",
                        item.span,
                        format!("`{s}` is not a value of the enum"),
                    )
                    .with_help(help),
                );
            }
        }
    }

    /// Both sides of an ordering (`<`, `between`) must have an order, and the same one.
    pub(super) fn expect_orderable(&mut self, l: &Node, r: &Node, op: &str) {
        let unordered = [l, r].into_iter().find(|n| !n.ty.is_orderable());
        if let Some(n) = unordered {
            let ty = n.ty.clone();
            let help = match ty {
                Type::Null => "to test for a missing value, write `x is null`".to_string(),
                Type::Bool => "booleans have no order: compare with `==`".to_string(),
                _ => "lists and objects have no order: compare their elements, or use `==`"
                    .to_string(),
            };
            self.error(
                Diagnostic::error(
                    "E106",
                    l.span.to(r.span),
                    format!("`{op}` needs values that have an order, found {ty}"),
                )
                .with_label(format!("{} is {ty}", describe(n)))
                .with_help(help),
            );
            return;
        }
        self.expect_comparable(l, r, op);
    }

    pub(super) fn expect_comparable(&mut self, l: &Node, r: &Node, op: &str) {
        if known(&l.ty) && known(&r.ty) && !l.ty.comparable_with(&r.ty) {
            let (lt, rt) = (l.ty.clone(), r.ty.clone());
            self.error(
                Diagnostic::error(
                    "E106",
                    l.span.to(r.span),
                    format!("cannot compare {lt} with {rt} using `{op}`"),
                )
                .with_label(format!("{} is {lt}", describe(l))),
            );
        }
    }
}

/// What bare words on the right are compared with, for a left side of type `left`
/// (a list's symbols with its elements).
fn symbols_for(left: &Type) -> Symbols {
    let scalar = match left {
        Type::List(element) => &**element,
        t => t,
    };
    Symbols {
        variants: match scalar {
            Type::Enum(variants) => variants.clone(),
            _ => Vec::new().into(),
        },
        compared_with_other_type: known(scalar) && !scalar.is_stringy(),
    }
}

fn arith_type(op: BinaryOp, l: &Type, r: &Type) -> Option<Type> {
    use Type::*;
    // arithmetic on a never-negative int can go negative: the result is a plain int
    let plain = |t: &Type| if *t == UInt { Int } else { t.clone() };
    Some(match (&plain(l), &plain(r)) {
        (Any, _) | (_, Any) => Any,
        (Int, Int) => match op {
            BinaryOp::Div => Number,
            _ => Int,
        },
        (a, b) if a.is_numeric() && b.is_numeric() => {
            if matches!(a, Float) || matches!(b, Float) {
                Float
            } else {
                Number
            }
        }
        (String, String) if op == BinaryOp::Add => String,
        (List(a), List(b)) if op == BinaryOp::Add => {
            List(Box::new(super::common_type([&**a, &**b].into_iter())))
        }
        (Date, Duration) if matches!(op, BinaryOp::Add | BinaryOp::Sub) => Any,
        (DateTime, Duration) if matches!(op, BinaryOp::Add | BinaryOp::Sub) => DateTime,
        (Duration, Date | DateTime) if op == BinaryOp::Add => Any,
        (Date | DateTime, Date | DateTime) if op == BinaryOp::Sub => Duration,
        (Duration, Duration) if matches!(op, BinaryOp::Add | BinaryOp::Sub) => Duration,
        (Duration, Int) | (Int, Duration) if op == BinaryOp::Mul => Duration,
        _ => return None,
    })
}
