//! The formatter: `parse(format(print(ast))) == ast` for random rule files, comments kept, idempotent.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use proptest::prelude::*;
use rulesaga::Source;
use rulesaga::Span;
use rulesaga::rules::ast::{
    Expr, ExprKind, FieldDecl, Ident, Param, RuleDecl, RuleFile, SchemaDecl, TypeExpr,
};
use rulesaga::rules::format::format_rule_file;
use rulesaga::rules::{parse_rule_file, print_rule_file};
mod support;
use support::*;

fn type_expr() -> impl Strategy<Value = TypeExpr> {
    let named = prop::sample::select(vec![
        "int", "float", "number", "string", "bool", "date", "datetime", "duration", "any",
    ])
    .prop_map(|n| TypeExpr::Named {
        name: Ident {
            name: n.to_string(),
            span: Span::default(),
        },
    });
    let variant = ident().prop_map(|i| Ident {
        name: format!("v_{}", i.name),
        span: Span::default(),
    });
    let leaf = prop_oneof![
        named,
        prop::collection::vec(variant, 2..4).prop_map(|variants| TypeExpr::Enum { variants }),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            inner.clone().prop_map(|t| TypeExpr::List {
                element: Box::new(t)
            }),
            prop::collection::vec(field_with(inner), 0..3)
                .prop_map(|fields| TypeExpr::Object { fields }),
        ]
    })
}

fn field_with(ty: impl Strategy<Value = TypeExpr>) -> impl Strategy<Value = FieldDecl> {
    (ident(), any::<bool>(), ty).prop_map(|(name, optional, ty)| FieldDecl { name, optional, ty })
}

fn doc_line() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 #.,`]{0,16}".prop_map(|s| s.trim_end().to_string())
}

fn default_value() -> impl Strategy<Value = Expr> {
    prop_oneof![
        literal().prop_map(|value| e(ExprKind::Literal { value })),
        prop::collection::vec(literal(), 0..3).prop_map(|items| e(ExprKind::List {
            items: items
                .into_iter()
                .map(|value| e(ExprKind::Literal { value }))
                .collect()
        })),
    ]
}

fn rule_decl() -> impl Strategy<Value = RuleDecl> {
    (
        ident(),
        prop::collection::vec((ident(), prop::option::of(default_value())), 0..3),
        expr(),
        prop::collection::vec(doc_line(), 0..3),
    )
        .prop_map(|(name, params, body, doc)| RuleDecl {
            name,
            params: params
                .into_iter()
                .map(|(name, default)| Param { name, default })
                .collect(),
            body,
            doc,
            span: Span::default(),
        })
}

fn rule_file() -> impl Strategy<Value = RuleFile> {
    (
        prop::option::of(prop::collection::vec(field_with(type_expr()), 0..4)),
        prop::collection::vec(rule_decl(), 0..4),
    )
        .prop_map(|(schema, rules)| RuleFile {
            schema: schema.map(|fields| SchemaDecl {
                fields,
                span: Span::default(),
            }),
            rules,
        })
}

/// Where to put a comment in printed text: before line `n` on its own, or at its end.
fn comments() -> impl Strategy<Value = Vec<(usize, bool, String)>> {
    prop::collection::vec(
        (0usize..40, any::<bool>(), "#{1,2}[ a-z#\"'=()]{0,10}"),
        0..6,
    )
}

/// Put comments into a text at line boundaries and line ends.
fn with_comments(text: &str, comments: &[(usize, bool, String)]) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for (at, own_line, comment) in comments {
        if lines.is_empty() || *own_line {
            let at = (*at).min(lines.len());
            lines.insert(at, comment.clone());
        } else {
            let at = *at % lines.len();
            lines[at].push(' ');
            lines[at].push_str(comment);
        }
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

fn comment_lines(text: &str) -> usize {
    text.matches('#').count()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn formatting_printed_files_is_the_identity_on_trees(ast in rule_file()) {
        let text = print_rule_file(&ast);
        let parsed = parse_rule_file(&Source::new("p.rules", text.clone()));
        prop_assert!(parsed.is_ok(), "{text}\n{:?}", parsed.err());
        prop_assert_eq!(parsed.unwrap(), ast.clone());
        let formatted = format_rule_file(&Source::new("p.rules", text.clone()));
        prop_assert!(formatted.is_ok(), "{text}\n{:?}", formatted.err());
        let formatted = formatted.unwrap().text;
        let reparsed = parse_rule_file(&Source::new("f.rules", formatted.clone())).unwrap();
        prop_assert_eq!(reparsed, ast);
    }

    #[test]
    fn formatting_keeps_comments_and_is_idempotent(ast in rule_file(), cs in comments()) {
        let text = with_comments(&print_rule_file(&ast), &cs);
        let Ok(before) = parse_rule_file(&Source::new("c.rules", text.clone())) else {
            // a comment at the end of a line can swallow the rest of a one-line schema
            return Ok(());
        };
        let once = format_rule_file(&Source::new("c.rules", text.clone()));
        prop_assert!(once.is_ok(), "{text}\n{:?}", once.err());
        let once = once.unwrap().text;
        let after = parse_rule_file(&Source::new("c.rules", once.clone())).unwrap();
        prop_assert_eq!(after, before);
        // every `#` survives (doc markers may gain a space, never a `#`)
        prop_assert_eq!(comment_lines(&once), comment_lines(&text), "{}\n---\n{}", text, once);
        let twice = format_rule_file(&Source::new("c.rules", once.clone())).unwrap().text;
        prop_assert_eq!(twice, once);
    }
}

/// A rule longer than 100 characters is broken at the `or`s of its body (or
/// its `and`s), one operand per line: canonical, so formatting it again
/// changes nothing, and the tree is the same.
#[test]
fn long_rules_break_at_or_and_and() {
    let long = "rule eligible = (age >= 18 and income > 30000) or (guarantor is not null and \
                guarantor.income > 50000) or manual_override == true # keep\n\
                rule short = a or b\n\
                rule all_of(limit = 100) = customer.verified and customer.country in [\"FR\", \"DE\", \"ES\"] and \
                total <= limit and not blocked\n\
                rule long_value = if some_long_condition_name then another_quite_long_value_name else \
                yet_another_rather_long_name_here\n";
    let formatted = format_rule_file(&Source::new("l.rules", long))
        .unwrap()
        .text;
    assert_eq!(
        formatted,
        "rule eligible =\n    (age >= 18 and income > 30000)\n    or (guarantor is not null and \
         guarantor.income > 50000)\n    or manual_override == true # keep\n\
         rule short = a or b\n\
         rule all_of(limit = 100) =\n    customer.verified\n    and customer.country in [\"FR\", \"DE\", \"ES\"]\n    \
         and total <= limit\n    and not blocked\n\
         rule long_value = if some_long_condition_name then another_quite_long_value_name else \
         yet_another_rather_long_name_here\n"
    );
    let again = format_rule_file(&Source::new("l.rules", formatted.clone()))
        .unwrap()
        .text;
    assert_eq!(again, formatted);
    assert_eq!(
        parse_rule_file(&Source::new("f.rules", formatted)).unwrap(),
        parse_rule_file(&Source::new("l.rules", long)).unwrap()
    );
}
