//! Shared by the tests: proptest strategies for random syntax trees (every
//! construct, every literal kind, identifiers that avoid keywords), and the
//! CLI harness (`cli`).
#![allow(dead_code)]

pub mod cli;
pub mod server;
pub mod tables;

use chrono::{DateTime, FixedOffset, NaiveDate};
use proptest::prelude::*;
use rulesaga::Span;
use rulesaga::rules::ast::{
    BinaryOp, Entry, Expr, ExprKind, Ident, Literal, PathSegment, Quantifier, UnaryOp,
};

pub const KEYWORDS: &[&str] = &rulesaga::rules::KEYWORDS;

pub fn e(kind: ExprKind) -> Expr {
    Expr::new(kind, Span::default())
}

pub fn ident() -> impl Strategy<Value = Ident> {
    "[A-Za-z_][A-Za-z0-9_]{0,6}"
        .prop_filter("keywords are not names", |s| {
            !KEYWORDS.contains(&s.as_str())
        })
        .prop_map(|name| Ident {
            name,
            span: Span::default(),
        })
}

pub fn date() -> impl Strategy<Value = NaiveDate> {
    (0i32..=9999, 1u32..=12, 1u32..=28)
        .prop_map(|(y, m, d)| NaiveDate::from_ymd_opt(y, m, d).unwrap())
}

pub fn datetime() -> impl Strategy<Value = DateTime<FixedOffset>> {
    (
        0i64..=253_000_000_000,
        0u32..1_000_000_000,
        -(23 * 60)..=(23 * 60i32),
    )
        .prop_map(|(secs, nanos, minutes)| {
            let offset = FixedOffset::east_opt(minutes * 60).unwrap();
            DateTime::from_timestamp(secs, nanos)
                .unwrap()
                .with_timezone(&offset)
        })
}

pub fn literal() -> impl Strategy<Value = Literal> {
    prop_oneof![
        Just(Literal::Null),
        any::<bool>().prop_map(Literal::Bool),
        any::<i64>().prop_map(Literal::Int),
        (-1000i64..1000).prop_map(Literal::Int),
        prop_oneof![
            proptest::num::f64::NORMAL | proptest::num::f64::SUBNORMAL | proptest::num::f64::ZERO,
            -1e6f64..1e6,
        ]
        .prop_map(Literal::Float),
        any::<String>().prop_map(Literal::String),
        "[a-z \"'\\\\\n\t\r\u{1}é#()]{0,8}".prop_map(Literal::String),
        date().prop_map(Literal::Date),
        datetime().prop_map(Literal::DateTime),
        (-i64::MAX..=i64::MAX).prop_map(Literal::Duration),
        (-1_000_000i64..1_000_000).prop_map(|n| Literal::Duration(n * 1000)),
    ]
}

/// A key after `.` or in `["..."]`: a name, a keyword (`m.in`), or any text.
pub fn key() -> impl Strategy<Value = Ident> {
    prop_oneof![
        ident(),
        prop::sample::select(KEYWORDS)
            .prop_map(|k| k.to_string())
            .prop_map(|name| Ident {
                name,
                span: Span::default(),
            }),
        "[a-z\\-\\\\ \"'é]{0,6}".prop_map(|name| Ident {
            name,
            span: Span::default(),
        }),
    ]
}

pub fn segment() -> impl Strategy<Value = PathSegment> {
    prop_oneof![
        key().prop_map(PathSegment::Field),
        any::<u32>().prop_map(PathSegment::Index)
    ]
}

pub fn binary_op() -> impl Strategy<Value = BinaryOp> {
    prop::sample::select(vec![
        BinaryOp::Or,
        BinaryOp::And,
        BinaryOp::Eq,
        BinaryOp::Ne,
        BinaryOp::Lt,
        BinaryOp::Le,
        BinaryOp::Gt,
        BinaryOp::Ge,
        BinaryOp::In,
        BinaryOp::NotIn,
        BinaryOp::Contains,
        BinaryOp::StartsWith,
        BinaryOp::EndsWith,
        BinaryOp::Matches,
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::Rem,
        BinaryOp::Coalesce,
    ])
}

pub fn expr() -> impl Strategy<Value = Expr> {
    let leaf = prop_oneof![
        literal().prop_map(|value| e(ExprKind::Literal { value })),
        (ident(), prop::collection::vec(segment(), 0..3))
            .prop_map(|(head, rest)| e(ExprKind::Name { head, rest })),
        (ident(), prop::collection::vec(segment(), 0..3))
            .prop_map(|(head, rest)| e(ExprKind::Field { head, rest })),
    ];
    leaf.prop_recursive(6, 64, 3, |inner| {
        let boxed = inner.clone().prop_map(Box::new);
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3)
                .prop_map(|items| e(ExprKind::List { items })),
            (
                prop_oneof![
                    (ident(), prop::collection::vec(segment(), 0..2))
                        .prop_map(|(head, rest)| e(ExprKind::Name { head, rest })),
                    (ident(), prop::collection::vec(segment(), 0..2))
                        .prop_map(|(head, rest)| e(ExprKind::Field { head, rest })),
                ],
                inner
                    .clone()
                    .prop_filter("a literal index is a static step", |i| {
                        PathSegment::from_literal(i, Span::default()).is_none()
                    }),
                prop::collection::vec(segment(), 0..2),
            )
                .prop_map(|(base, index, rest)| e(ExprKind::Index {
                    base: Box::new(base),
                    index: Box::new(index),
                    rest
                })),
            prop::collection::vec((key(), inner.clone()), 0..3).prop_map(|entries| e(
                ExprKind::Object {
                    entries: entries
                        .into_iter()
                        .map(|(key, value)| Entry { key, value })
                        .collect()
                }
            )),
            (ident(), prop::collection::vec(inner.clone(), 0..3))
                .prop_map(|(name, args)| e(ExprKind::Call { name, args })),
            (
                prop::sample::select(&Quantifier::ALL[..]),
                ident(),
                boxed.clone(),
                boxed.clone()
            )
                .prop_map(|(quantifier, var, list, predicate)| {
                    e(ExprKind::Quantifier {
                        quantifier,
                        var,
                        list,
                        predicate,
                    })
                }),
            (any::<bool>(), boxed.clone()).prop_map(|(not, operand)| {
                let op = if not { UnaryOp::Not } else { UnaryOp::Neg };
                e(ExprKind::Unary { op, operand })
            }),
            (binary_op(), boxed.clone(), boxed.clone())
                .prop_map(|(op, left, right)| e(ExprKind::Binary { op, left, right })),
            (binary_op(), boxed.clone(), boxed.clone())
                .prop_map(|(op, left, right)| e(ExprKind::Binary { op, left, right })),
            (boxed.clone(), boxed.clone(), boxed.clone())
                .prop_map(|(value, low, high)| e(ExprKind::Between { value, low, high })),
            (boxed.clone(), any::<bool>())
                .prop_map(|(value, negated)| e(ExprKind::IsNull { value, negated })),
            (boxed.clone(), boxed.clone(), boxed).prop_map(|(cond, then, otherwise)| e(
                ExprKind::If {
                    cond,
                    then,
                    otherwise
                }
            )),
        ]
    })
}
