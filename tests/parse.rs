//! Parser tests: AST snapshots of every construct, diagnostics of every
//! error code, the size and nesting limits, and the example rule file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::Arc;

use rulesaga::Source;
use rulesaga::rules::ast::{Expr, ExprKind, Literal, PathSegment, RuleFile};
use rulesaga::rules::{
    MAX_DEPTH, MAX_SOURCE_BYTES, parse_expr, parse_rule_file, print_expr, print_rule_file,
};

fn expr(text: &str) -> Expr {
    match parse_expr(&Source::new("<expr>", text)) {
        Ok(expr) => expr,
        Err(diags) => panic!("`{text}` should parse:\n{diags}"),
    }
}

fn expr_error(text: &str) -> String {
    match parse_expr(&Source::new("<expr>", text)) {
        Ok(expr) => panic!("`{text}` should not parse, got {expr:?}"),
        Err(diags) => diags.to_string(),
    }
}

fn file(text: &str) -> RuleFile {
    match parse_rule_file(&Source::new("test.rules", text)) {
        Ok(file) => file,
        Err(diags) => panic!("should parse:\n{text}\n{diags}"),
    }
}

fn file_error(text: &str) -> String {
    match parse_rule_file(&Source::new("test.rules", text)) {
        Ok(file) => panic!("should not parse:\n{text}\n{file:?}"),
        Err(diags) => diags.to_string(),
    }
}

/// The file with its declaration spans cleared (`RuleDecl` and `SchemaDecl`
/// compare spans, unlike expressions), to compare reparsed output.
fn without_spans(mut file: RuleFile) -> RuleFile {
    if let Some(schema) = &mut file.schema {
        schema.span = Default::default();
    }
    for rule in &mut file.rules {
        rule.span = Default::default();
    }
    file
}

fn literal(text: &str) -> Literal {
    match expr(text).kind {
        ExprKind::Literal { value } => value,
        other => panic!("`{text}` is not a literal: {other:?}"),
    }
}

/// Each construct of the language, parsed; one snapshot per construct.
const CONSTRUCTS: &[(&str, &[&str])] = &[
    (
        "boolean",
        &[
            "a and b",
            "a or b",
            "not a",
            "(a or b) and c",
            "a or b and c",
            "not not a",
        ],
    ),
    (
        "comparison",
        &[
            "a == b",
            "a != b",
            "a < 1",
            "a <= 1",
            "a > 1",
            "a >= 1",
            "not tier == premium",
        ],
    ),
    (
        "membership",
        &[
            "tier in [premium, vip]",
            "country not in [\"FR\", \"DE\",]",
            "a not  # c\n in b",
        ],
    ),
    (
        "strings_ops",
        &[
            "email ends_with \"@example.com\"",
            "name starts_with 'A'",
            "note contains \"rush\"",
            "sku matches \"^[A-Z]{3}-\\\\d+$\"",
        ],
    ),
    (
        "between",
        &["total between 10 and 20", "a between 1 + 1 and 2 * 3 and b"],
    ),
    ("null", &["coupon is null", "coupon is not null"]),
    (
        "arithmetic",
        &[
            "total * 1.2 - discount > 100",
            "a + b - c",
            "a * b / c % d",
            "-a",
            "- - a",
            "-(5)",
            "a - -5",
        ],
    ),
    (
        "paths",
        &[
            "customer.address.country",
            "items[0].price",
            "$total",
            "$a.b[2]",
            "a[0][1]",
        ],
    ),
    ("calls", &["len(x)", "now()", "high_value(200)", "f(a, b,)"]),
    (
        "quantifiers",
        &[
            "any(i in items, i.price > 100)",
            "all(i in items, i.qty >= 1)",
        ],
    ),
    (
        "literals_numbers",
        &[
            "42",
            "-7",
            "-9223372036854775808",
            "87.5",
            "1e3",
            "2.5e-3",
            "-0.5",
        ],
    ),
    (
        "literals_other",
        &[
            "\"text\"", "'text'", "true", "false", "null", "[]", "[1, [2]]",
        ],
    ),
    (
        "literals_time",
        &[
            "2024-01-31",
            "2024-01-31T12:00:00Z",
            "2024-01-31T12:00:00.250+02:00",
        ],
    ),
    (
        "durations",
        &["2w", "30d", "12h", "15m", "10s", "250ms", "1h30m", "-5m"],
    ),
    (
        "lexing",
        &[
            "2024-01-31 - 30d",
            "10 - 3",
            "2024 - 01 - 31",
            "x # comment\n + 1",
        ],
    ),
];

#[test]
fn constructs_snapshot() {
    for (name, cases) in CONSTRUCTS {
        let parsed: Vec<(String, Expr)> = cases
            .iter()
            .map(|text| (text.to_string(), expr(text)))
            .collect();
        insta::assert_yaml_snapshot!(format!("construct_{name}"), parsed);
    }
}

#[test]
fn precedence() {
    let shape = |text: &str| print_expr(&expr(text));
    assert_eq!(shape("not tier == premium"), "not tier == premium");
    assert!(matches!(
        expr("not tier == premium").kind,
        ExprKind::Unary { .. }
    ));
    assert_eq!(expr("a or b and c"), expr("a or (b and c)"));
    assert_eq!(expr("not a and b"), expr("(not a) and b"));
    assert_eq!(expr("-a * b + c == d"), expr("(((-a) * b) + c) == d"));
    assert_eq!(expr("a - b - c"), expr("(a - b) - c"));
    assert_eq!(
        expr("a between 1 and 2 and c"),
        expr("(a between 1 and 2) and c")
    );
    assert_eq!(expr("x is null or y"), expr("(x is null) or y"));
}

#[test]
fn literals() {
    assert_eq!(literal("-9223372036854775808"), Literal::Int(i64::MIN));
    assert_eq!(literal("9223372036854775807"), Literal::Int(i64::MAX));
    assert_eq!(literal("1e3"), Literal::Float(1000.0));
    assert_eq!(literal("30d"), Literal::Duration(30 * 86_400_000));
    assert_eq!(literal("2w"), Literal::Duration(14 * 86_400_000));
    assert_eq!(literal("250ms"), Literal::Duration(250));
    assert_eq!(
        literal("'it\\'s \\u{1F600}\\n'"),
        Literal::String("it's \u{1F600}\n".into())
    );
    assert!(matches!(literal("2024-01-31"), Literal::Date(_)));
    assert!(matches!(
        literal("2024-01-31T12:00:00+02:00"),
        Literal::DateTime(_)
    ));
    assert!(matches!(expr("10 - 3").kind, ExprKind::Binary { .. }));
    // raw strings: a backslash is a backslash
    assert_eq!(
        literal(r#"r"^[A-Z]{3}-\d+$""#),
        Literal::String(r"^[A-Z]{3}-\d+$".into())
    );
    assert_eq!(literal(r"r'C:\temp'"), Literal::String(r"C:\temp".into()));
    assert_eq!(
        print_expr(&expr(r#"x matches r"\d""#)),
        r#"x matches r"\d""#
    );
    // `\d` in a plain string is an error that points to raw strings
    assert!(expr_error(r#"x matches "\d""#).contains("E004"));
}

/// JSON keys may be any word after `.` and `$`, keywords included, and any text
/// in `["..."]`: `m.in`, `$null`, `headers["content-type"]`.
#[test]
fn keys_may_be_keywords_or_quoted() {
    let key = |e: &Expr| match &e.kind {
        ExprKind::Name { rest, .. } | ExprKind::Field { rest, .. } => match rest.last() {
            Some(PathSegment::Field(id)) => id.name.clone(),
            _ => String::new(),
        },
        _ => String::new(),
    };
    for (text, name) in [
        ("m.in", "in"),
        ("m.contains", "contains"),
        ("a.b.null", "null"),
        ("headers[\"content-type\"]", "content-type"),
        ("h['x y']", "x y"),
        ("h[r\"a\\b\"]", "a\\b"),
    ] {
        assert_eq!(key(&expr(text)), name, "`{text}`");
    }
    assert!(matches!(&expr("$null").kind, ExprKind::Field { head, .. } if head.name == "null"));
    assert!(matches!(&expr("$in.any").kind, ExprKind::Field { head, .. } if head.name == "in"));
    // a key that is not a word prints back as a string, a word as `.key`
    assert_eq!(
        print_expr(&expr("h[\"content-type\"]")),
        "h[\"content-type\"]"
    );
    assert_eq!(print_expr(&expr("h[\"in\"]")), "h.in");
}

/// Spellings of other languages get the rules spelling as help.
#[test]
fn foreign_operators_get_help() {
    for (text, help) in [
        ("a && b", "write `and`"),
        ("a || b", "write `or`"),
        ("a = 1", "write `==`"),
        ("a AND b", "write `and`"),
        ("a == 1 OR b", "write `or`"),
        ("NOT a", "write `not`"),
        ("!a", "write `not`"),
    ] {
        let err = expr_error(text);
        assert!(err.contains(help), "`{text}`: {err}");
    }
}

#[test]
fn spans_are_byte_offsets() {
    let e = expr("  a.b  ==  'é'  ");
    assert_eq!(e.span.range(), 2..15);
    let ExprKind::Binary { left, right, .. } = e.kind else {
        panic!("not a comparison")
    };
    assert_eq!(left.span.range(), 2..5);
    assert_eq!(right.span.range(), 11..15);
}

/// Each error code, rendered as the plain `file:line:col` text.
const ERRORS: &[(&str, &[&str])] = &[
    (
        "e001_syntax",
        &[
            "a ==",
            "(a",
            "f(a",
            "a b",
            "and",
            "x is",
            "a between 1",
            "not",
            "\"abc",
            "a [0]",
        ],
    ),
    (
        "e002_int_range",
        &[
            "9223372036854775808",
            "-9223372036854775809",
            "items[4294967296]",
        ],
    ),
    ("e003_float", &["1e400", "-1e400"]),
    (
        "e004_escape",
        &["\"a\\qb\"", "'\\u{110000}'", "\"\\u{zz}\""],
    ),
    (
        "e005_date",
        &["2024-02-30", "2024-01-31T25:00:00Z", "2024-01-31T12:00:00"],
    ),
    (
        "e006_duration",
        &["9999999999999999w", "99999999999999999999ms"],
    ),
    (
        "e009_chained",
        &[
            "a < b < c",
            "a == b != c",
            "a between 1 and 2 is null",
            "x is null == y",
        ],
    ),
];

#[test]
fn errors_snapshot() {
    for (name, cases) in ERRORS {
        let rendered: Vec<String> = cases
            .iter()
            .map(|text| format!("{text}\n  {}", expr_error(text)))
            .collect();
        insta::assert_snapshot!(format!("error_{name}"), rendered.join("\n"));
    }
}

#[test]
fn file_errors_snapshot() {
    let text = "schema {\n  a: int b: strng\n  c: list<int\n}\n\
                ## doc\n\
                rule ok = a > 1\n\
                rule broken = a ==\n\
                rule other(x = y) = 1\n\
                rule str = \"\\q\" or 2024-13-01\n";
    insta::assert_snapshot!("error_rule_file", file_error(text));
    insta::assert_snapshot!("error_prelude", file_error("x = 1\nrule a = 1\n"));
    insta::assert_snapshot!(
        "error_schema_separator",
        file_error("schema { a: int b: strng }\nrule a = \"\\q\" or 2024-13-01 or 1e999\n")
    );
}

#[test]
fn two_broken_rules_give_two_diagnostics() {
    let diags = parse_rule_file(&Source::new(
        "t.rules",
        "rule a = (\nrule b = 1\nrule c = )\n",
    ))
    .unwrap_err();
    assert_eq!(diags.items.len(), 2, "{diags}");
    assert_eq!(diags.items[0].code, "E001");
    assert_eq!(diags.source.line_col(diags.items[1].span.start).0, 3);
}

// ----- limits ---------------------------------------------------------------

/// Run on a small stack to prove that rejecting deep input does not recurse.
fn on_small_stack(text: String) -> String {
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || {
            let diags = parse_expr(&Source::new("<expr>", text)).unwrap_err();
            let codes: Vec<&str> = diags.items.iter().map(|d| d.code).collect();
            format!("{codes:?} {}", diags.items[0].message)
        })
        .unwrap()
        .join()
        .unwrap()
}

#[test]
fn deep_parentheses_are_rejected() {
    let text = format!("{}a{}", "(".repeat(100_000), ")".repeat(100_000));
    insta::assert_snapshot!(on_small_stack(text), @r#"["E008"] expression nested too deeply (more than 64 levels)"#);
}

#[test]
fn deep_brackets_and_calls_are_rejected() {
    let text = format!("{}{}", "f([".repeat(50_000), "])".repeat(50_000));
    assert!(on_small_stack(text).starts_with(r#"["E008"]"#));
}

#[test]
fn long_not_runs_are_rejected() {
    let text = format!("{}a", "not ".repeat(100_000));
    insta::assert_snapshot!(on_small_stack(text), @r#"["E008"] expression nested too deeply (more than 64 levels)"#);
}

#[test]
fn long_minus_runs_are_rejected() {
    let text = format!("{}1", "-".repeat(100_000));
    insta::assert_snapshot!(on_small_stack(text), @r#"["E008"] expression nested too deeply (more than 64 levels)"#);
}

#[test]
fn long_operator_chains_are_rejected() {
    let text = format!("{}1", "1 + ".repeat(200_000));
    insta::assert_snapshot!(on_small_stack(text), @r#"["E008"] expression nested too deeply (more than 256 levels)"#);
    let text = format!("{}a", "a or ".repeat(100));
    assert!(parse_expr(&Source::new("<expr>", text)).is_ok());
}

#[test]
fn deep_schema_types_are_rejected() {
    let text = format!(
        "schema {{ a: {}int{} }}\n",
        "list<".repeat(100_000),
        ">".repeat(100_000)
    );
    let result = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || {
            parse_rule_file(&Source::new("t.rules", text))
                .unwrap_err()
                .items[0]
                .code
        })
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(result, "E008");
}

#[test]
fn nesting_up_to_the_limit_is_accepted() {
    let text = format!("{}a{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
    expr(&text);
    let text = format!("{}a", "not ".repeat(MAX_DEPTH));
    expr(&text);
    // Deep and wide at once: every level is a full expression.
    let text = format!(
        "{}a{}",
        "(a or b and ".repeat(MAX_DEPTH),
        ")".repeat(MAX_DEPTH)
    );
    expr(&text);
    let text = format!(
        "{}a{}",
        "any(x in a, ".repeat(MAX_DEPTH),
        ")".repeat(MAX_DEPTH)
    );
    expr(&text);
    let text = format!(
        "{}a{}",
        "(".repeat(MAX_DEPTH + 1),
        ")".repeat(MAX_DEPTH + 1)
    );
    assert!(expr_error(&text).contains("E008"));
}

#[test]
fn nesting_inside_strings_and_comments_does_not_count() {
    let deep = "(".repeat(1_000);
    expr(&format!("a == \"{deep}\" # {deep}\n or b"));
}

#[test]
fn oversized_input_is_rejected() {
    let text = "a".repeat(MAX_SOURCE_BYTES + 1);
    let diags = parse_expr(&Source::new("<expr>", text.clone())).unwrap_err();
    assert_eq!(diags.items[0].code, "E007");
    let diags = parse_rule_file(&Source::new("t.rules", text)).unwrap_err();
    assert_eq!(diags.items[0].code, "E007");
}

// ----- rule files -----------------------------------------------------------

#[test]
fn example_rule_file() {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/specs/discount.rules"))
            .unwrap();
    let parsed = file(&text);
    let names: Vec<&str> = parsed.rules.iter().map(|r| r.name.name.as_str()).collect();
    assert_eq!(
        names,
        ["premium", "high_value", "recent", "discount", "big_spender"]
    );
    assert_eq!(parsed.rules[0].doc, ["Customers on the premium tier."]);
    assert_eq!(parsed.schema.as_ref().map(|s| s.fields.len()), Some(5));
    insta::assert_yaml_snapshot!("discount_rules", parsed);
    let printed = print_rule_file(&parsed);
    insta::assert_snapshot!("discount_rules_printed", printed);
    assert_eq!(without_spans(file(&printed)), without_spans(parsed));
}

#[test]
fn schema_types() {
    let parsed = file(
        "schema { a: int, b?: list<string>, c: { x: float, y: a | b }\n d: list<{ z: date }>, e: any\n}\n",
    );
    insta::assert_yaml_snapshot!("schema_types", parsed);
    assert_eq!(
        without_spans(file(&print_rule_file(&parsed))),
        without_spans(parsed)
    );
}

#[test]
fn rule_bodies_span_lines() {
    let parsed = file("rule a =\n  b and\n  c # comment\n\n\nrule d(x, y = [1, -2]) = x\n");
    assert_eq!(parsed.rules.len(), 2);
    assert_eq!(parsed.rules[0].body, expr("b and c"));
    assert_eq!(parsed.rules[1].params.len(), 2);
    // The declaration span stops at the end of the body, not at trailing comments.
    assert_eq!(
        parsed.rules[0].span.range(),
        0.."rule a =\n  b and\n  c".len()
    );
}

#[test]
fn empty_files() {
    assert_eq!(
        file(""),
        RuleFile {
            schema: None,
            rules: vec![]
        }
    );
    assert_eq!(file("# only a comment\n").rules.len(), 0);
    assert!(file("schema {}\n").schema.is_some());
}

#[test]
fn sources_are_shared() {
    let source = Source::new("x", "a ==");
    let diags = parse_expr(&source).unwrap_err();
    assert!(Arc::ptr_eq(&diags.source, &source));
}
