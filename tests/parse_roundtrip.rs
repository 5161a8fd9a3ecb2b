//! `parse_expr(print_expr(ast)) == ast` for random syntax trees.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use proptest::prelude::*;
use rulesaga::Source;
use rulesaga::rules::ast::{ExprKind, Literal, UnaryOp};
use rulesaga::rules::{parse_expr, print_expr};

mod support;
use support::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn print_then_parse_is_identity(ast in expr()) {
        let printed = print_expr(&ast);
        let parsed = parse_expr(&Source::new("<expr>", printed.clone()));
        match parsed {
            Ok(parsed) => prop_assert_eq!(parsed, ast, "printed as `{}`", printed),
            Err(diags) => prop_assert!(false, "`{}` does not parse: {}", printed, diags),
        }
    }

    #[test]
    fn printing_is_stable(ast in expr()) {
        let printed = print_expr(&ast);
        let reparsed = parse_expr(&Source::new("<expr>", printed.clone())).unwrap();
        prop_assert_eq!(print_expr(&reparsed), printed);
    }

    #[test]
    fn parsing_never_panics(text in "[a-z0-9 ()\\[\\]\"'#.,$+*/%<>=!-]{0,40}") {
        let _ = parse_expr(&Source::new("<expr>", text));
    }
}

#[test]
fn tricky_round_trips() {
    let cases = [
        e(ExprKind::Unary {
            op: UnaryOp::Neg,
            operand: Box::new(e(ExprKind::Literal {
                value: Literal::Int(5),
            })),
        }),
        e(ExprKind::Unary {
            op: UnaryOp::Neg,
            operand: Box::new(e(ExprKind::Literal {
                value: Literal::Int(-5),
            })),
        }),
        e(ExprKind::Literal {
            value: Literal::Int(i64::MIN),
        }),
        e(ExprKind::Literal {
            value: Literal::Float(1e300),
        }),
        e(ExprKind::Literal {
            value: Literal::Float(-0.0),
        }),
        e(ExprKind::Literal {
            value: Literal::String("\"'\\\n\t\r\u{0}é".into()),
        }),
    ];
    for ast in cases {
        let printed = print_expr(&ast);
        assert_eq!(
            parse_expr(&Source::new("<expr>", printed.clone())).unwrap(),
            ast,
            "{printed}"
        );
    }
}
