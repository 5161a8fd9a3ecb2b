//! The hand-written fast path of `parse_expr` against the pest grammar:
//! on every input, the fast path either gives up or builds the very tree pest
//! builds, spans included (both serialised to JSON and compared), and it
//! never accepts what pest rejects.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use proptest::prelude::*;
use rulesaga::Source;
use rulesaga::rules::ast::ExprKind;
use rulesaga::rules::{
    parse_expr, parse_expr_fast, parse_expr_pest, parse_rule_file, parse_rule_file_pest, print_expr,
};

/// What the fast path did with `text`, checked against pest.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// Fast and pest built the same tree, spans included.
    Same,
    /// The fast path gave up on text pest accepts.
    GaveUp,
    /// Both rejected it.
    Rejected,
}

/// Compare the two paths on `text`; any disagreement is a test failure.
fn check(text: &str) -> Result<Outcome, TestCaseError> {
    let source = Source::new("<expr>", text);
    let fast = parse_expr_fast(&source);
    let pest = parse_expr_pest(&source);
    let public = parse_expr(&source);
    let outcome = match (&fast, &pest) {
        (Some(fast), Ok(pest)) => {
            let fast_json = serde_json::to_string(fast).unwrap();
            let pest_json = serde_json::to_string(pest).unwrap();
            prop_assert_eq!(fast_json, pest_json, "fast and pest differ on {:?}", text);
            Outcome::Same
        }
        (Some(fast), Err(diags)) => {
            return Err(TestCaseError::fail(format!(
                "fast path accepted {text:?} as {fast:?}, pest rejects it: {diags}"
            )));
        }
        (None, Ok(_)) => Outcome::GaveUp,
        (None, Err(_)) => Outcome::Rejected,
    };
    // The public entry point is the pest path's answer, diagnostics included.
    match (&public, &pest) {
        (Ok(a), Ok(b)) => prop_assert_eq!(
            serde_json::to_string(a).unwrap(),
            serde_json::to_string(b).unwrap()
        ),
        (Err(a), Err(b)) => prop_assert_eq!(format!("{a:?}"), format!("{b:?}")),
        _ => prop_assert!(false, "parse_expr and pest disagree on {:?}", text),
    }
    Ok(outcome)
}

fn check_same(text: &str) {
    match check(text) {
        Ok(Outcome::Same) => {}
        other => panic!("{text:?}: expected the fast path to parse it, got {other:?}"),
    }
}

fn check_rejected(text: &str) {
    match check(text) {
        Ok(Outcome::Rejected) => {}
        other => panic!("{text:?}: expected both to reject it, got {other:?}"),
    }
}

// ----- random syntax trees (as in tests/parse_roundtrip.rs) ------------------

mod support;
use support::*;

// ----- decorating printed text -------------------------------------------------

/// Trivia to insert between characters.
const TRIVIA: &[&str] = &[
    " ",
    "  ",
    "\t",
    "\n",
    "\r\n",
    " # a comment\n",
    "#\n",
    "# ( [ \" ' \n  ",
];

/// `text` with trivia inserted after some characters, optionally wrapped in
/// brackets. Each character boundary takes one choice byte: below a
/// threshold nothing; then trivia, more likely next to spaces and brackets
/// (where the text usually stays valid); at 250 and above a stray token
/// (which usually breaks the text: then both paths must reject it).
fn decorate(text: &str, choices: &[u8], wrap: u8) -> String {
    decorate_with(text, choices, wrap, false)
}

/// [`decorate`]; when `safe`, only trivia, and only next to spaces and
/// brackets, so that the text usually stays valid.
fn decorate_with(text: &str, choices: &[u8], wrap: u8, safe: bool) -> String {
    let mut out = String::new();
    for _ in 0..(wrap % 3) {
        out.push('(');
    }
    let chars: Vec<char> = text.chars().collect();
    let mut k = 0usize;
    let mut next_choice = || {
        let c = choices.get(k % choices.len().max(1)).copied().unwrap_or(0);
        k += 1;
        c
    };
    for (i, c) in chars.iter().enumerate() {
        // (In `safe` mode not inside index segments `a[0]`, nor after a `-`,
        // which may be inside a date or an exponent.)
        let near_gap = matches!(c, ' ' | '(' | ',' | ')')
            || (!safe && matches!(c, '[' | ']' | '-'))
            || matches!(chars.get(i + 1), Some(' ' | ')' | ',' | '('))
            || (!safe && matches!(chars.get(i + 1), Some(']' | '[')));
        out.push(*c);
        let choice = next_choice();
        let threshold = if near_gap { 60 } else { 200 };
        if safe {
            if near_gap && choice >= threshold {
                out.push_str(TRIVIA[usize::from(choice) % TRIVIA.len()]);
            }
        } else if choice >= threshold && choice < 250 {
            out.push_str(TRIVIA[usize::from(choice) % TRIVIA.len()]);
        } else if choice >= 250 {
            out.push_str(["(", ")", "-", "not ", ",", "]"][usize::from(choice - 250)]);
        }
    }
    for _ in 0..(wrap % 3) {
        out.push(')');
    }
    if wrap >= 128 {
        out.insert_str(0, TRIVIA[usize::from(wrap) % TRIVIA.len()]);
        out.push_str(TRIVIA[usize::from(wrap / 3) % TRIVIA.len()]);
    }
    out
}

// ----- token soup (as in tests/no_panic.rs) --------------------------------------

const TOKENS: &[&str] = &[
    "tier",
    "total",
    "x",
    "$total",
    "$",
    "a.b",
    "a.",
    "items[0]",
    "items[",
    "[0]",
    "i.price",
    "(",
    ")",
    "[",
    "]",
    ",",
    "and",
    "or",
    "not",
    "==",
    "=",
    "!=",
    "!",
    "<",
    "<=",
    ">",
    ">=",
    "+",
    "-",
    "--",
    "*",
    "/",
    "%",
    "in",
    "not in",
    "contains",
    "starts_with",
    "ends_with",
    "matches",
    "between",
    "is",
    "is null",
    "is not null",
    "null",
    "0",
    "1",
    "-1",
    "007",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "99999999999999999999",
    "1.5",
    "1.",
    ".5",
    "1e308",
    "1e309",
    "2.5e-3",
    "1e",
    "\"s\"",
    "'s'",
    "\"a\\\"b\"",
    "\"\\u{1F600}\"",
    "\"\\u{110000}\"",
    "\"\\q\"",
    "\"open",
    "2024-01-31",
    "2024-02-30",
    "2024-01-311",
    "2024-01-31T00:00:00Z",
    "2024-01-31T12:00:00.250+02:00",
    "2024-01-31T25:00:00Z",
    "2024-01-31t",
    "30d",
    "1h30m",
    "250ms",
    "5mx",
    "99999999999999999w",
    "true",
    "false",
    "len(",
    "now()",
    "f (",
    "any(i in items,",
    "all(i in items,",
    "any",
    "if",
    "then",
    "else",
    "if a then",
    "else b",
    "??",
    "?",
    "has(",
    "count(x in",
    "sum(",
    "map(i in items,",
    "{",
    "}",
    "{a:",
    ":",
    "rule",
    "é",
    "#c\n",
    "\n",
];

fn soup() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(prop::sample::select(TOKENS), 0..24),
        prop::collection::vec(
            prop::sample::select(&["", " ", "  ", "\n", "# c\n"][..]),
            24,
        ),
    )
        .prop_map(|(tokens, gaps)| {
            let mut out = String::new();
            for (i, t) in tokens.iter().enumerate() {
                out.push_str(t);
                out.push_str(gaps.get(i).copied().unwrap_or(" "));
            }
            out
        })
}

/// `parse_rule_file` (fast path per rule) against pest alone, on a whole
/// file: same rules, spans, docs and schema, or the same diagnostics.
fn check_file(text: &str) -> Result<(), TestCaseError> {
    let source = Source::new("f.rules", text);
    match (parse_rule_file(&source), parse_rule_file_pest(&source)) {
        (Ok(a), Ok(b)) => prop_assert_eq!(
            serde_json::to_string(&a).unwrap(),
            serde_json::to_string(&b).unwrap(),
            "on {:?}",
            text
        ),
        (Err(a), Err(b)) => prop_assert_eq!(format!("{a:?}"), format!("{b:?}"), "on {:?}", text),
        (a, b) => prop_assert!(false, "{:?}: {:?} vs pest {:?}", text, a, b),
    }
    Ok(())
}

/// A parameter default: a literal, a negative number, a list, or (an error)
/// a name.
fn default_text() -> impl Strategy<Value = String> {
    prop_oneof![
        literal().prop_map(|value| print_expr(&e(ExprKind::Literal { value }))),
        prop::collection::vec(literal(), 0..3).prop_map(|items| print_expr(&e(ExprKind::List {
            items: items
                .into_iter()
                .map(|value| e(ExprKind::Literal { value }))
                .collect()
        }))),
        Just("(5)".to_string()),
        Just("-(5)".to_string()),
        Just("x".to_string()),
    ]
}

/// One rule: `## doc` lines, name, parameters with optional defaults, body.
fn rule_text() -> impl Strategy<Value = String> {
    (
        prop::collection::vec("[a-z ]{0,6}", 0..2),
        ident(),
        prop::option::of(prop::collection::vec(
            (ident(), prop::option::of(default_text())),
            0..3,
        )),
        expr(),
        any::<bool>(),
    )
        .prop_map(|(docs, name, params, body, trailing_comma)| {
            let mut out = String::new();
            for doc in docs {
                out.push_str(&format!("## {doc}\n"));
            }
            out.push_str(&format!("rule {}", name.name));
            if let Some(params) = params {
                let params: Vec<String> = params
                    .into_iter()
                    .map(|(p, default)| match default {
                        Some(d) => format!("{} = {d}", p.name),
                        None => p.name,
                    })
                    .collect();
                let comma = if trailing_comma && !params.is_empty() {
                    ","
                } else {
                    ""
                };
                out.push_str(&format!("({}{comma})", params.join(", ")));
            }
            out.push_str(&format!(" = {}\n", print_expr(&body)));
            out
        })
}

fn file_text() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec![
            "",
            "# a comment\n",
            "schema {\n  tier: standard | premium\n  total: number\n}\n",
            "schema { a: int b: int }\n",
        ]),
        prop::collection::vec(rule_text(), 0..4),
    )
        .prop_map(|(prelude, rules)| format!("{prelude}{}", rules.concat()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// Printed random trees: the fast path parses every one, like pest.
    #[test]
    fn printed_trees_parse_the_same(ast in expr()) {
        let printed = print_expr(&ast);
        prop_assert_eq!(check(&printed)?, Outcome::Same, "on {:?}", printed);
    }

    /// Printed random trees with extra trivia, brackets and stray tokens.
    #[test]
    fn decorated_trees_parse_the_same_or_give_up(
        ast in expr(),
        choices in prop::collection::vec(any::<u8>(), 1..64),
        wrap in any::<u8>(),
    ) {
        let text = decorate(&print_expr(&ast), &choices, wrap);
        check(&text)?;
    }

    /// Token soup: mostly invalid; the fast path must never accept what pest rejects.
    #[test]
    fn token_soup_agrees(text in soup()) {
        check(&text)?;
    }

    /// Character soup.
    #[test]
    fn character_soup_agrees(text in "[a-z0-9 ()\\[\\]\"'#.,$+*/%<>=!\\\\\n_-]{0,40}") {
        check(&text)?;
    }

    /// Any text at all.
    #[test]
    fn arbitrary_text_agrees(text in any::<String>()) {
        check(&text)?;
    }

    /// Rule files: each rule through the fast path or pest, the same result.
    #[test]
    fn rule_files_parse_the_same(text in file_text()) {
        check_file(&text)?;
    }

    /// Rule files with extra trivia and stray tokens.
    #[test]
    fn decorated_rule_files_parse_the_same(
        text in file_text(),
        choices in prop::collection::vec(any::<u8>(), 1..64),
    ) {
        check_file(&decorate(&text, &choices, 0))?;
    }

    /// Rule files of token soup.
    #[test]
    fn rule_files_of_soup_agree(rules in prop::collection::vec(soup(), 0..3)) {
        let text: String = rules.iter().map(|r| format!("rule r = {r}\nrule s(a = {r}) = {r}\n")).collect();
        check_file(&text)?;
    }
}

/// The constructs of `tests/parse.rs` (its snapshots hold the spans).
#[test]
fn constructs_take_the_fast_path() {
    let cases = [
        "tier == premium or (total >= 100 and days <= 30)",
        "m.in == 1 and m.contains > 2 and $null == 3 and $and.or == 4",
        "headers[\"content-type\"] == 'json' and h['a b'][0].c == 1",
        "sku matches r\"^[A-Z]{3}-\\d+$\" and x == r'C:\\temp' and h[r\"a\\b\"] == 1",
        "a and b",
        "a or b",
        "not a",
        "(a or b) and c",
        "a or b and c",
        "not not a",
        "a == b",
        "a != b",
        "a < 1",
        "a <= 1",
        "a > 1",
        "a >= 1",
        "not tier == premium",
        "tier in [premium, vip]",
        "country not in [\"FR\", \"DE\",]",
        "a not  # c\n in b",
        "email ends_with \"@example.com\"",
        "name starts_with 'A'",
        "note contains \"rush\"",
        "sku matches \"^[A-Z]{3}-\\\\d+$\"",
        "total between 10 and 20",
        "a between 1 + 1 and 2 * 3 and b",
        "coupon is null",
        "coupon is not null",
        "coupon is # c\n not\tnull",
        "total * 1.2 - discount > 100",
        "a + b - c",
        "a * b / c % d",
        "-a",
        "- - a",
        "-(5)",
        "a - -5",
        "a-5",
        "- 5",
        "- # c\n 5",
        "--5",
        "-2024-01-31",
        "-1h30m",
        "-2.5e-3",
        "customer.address.country",
        "items[0].price",
        "$total",
        "$a.b[2]",
        "a[0][1]",
        "len(x)",
        "now()",
        "now ()",
        "now # c\n ( )",
        "high_value(200)",
        "f(a, b,)",
        "any(i in items, i.price > 100)",
        "all(i in items, i.qty >= 1)",
        "any ( i in items , i )",
        "42",
        "007",
        "-7",
        "-9223372036854775808",
        "9223372036854775807",
        "87.5",
        "1e3",
        "1E+3",
        "2.5e-3",
        "-0.5",
        "\"text\"",
        "'text'",
        "'it\\'s'",
        "\"\\u{1F600} \\n\\t\\r\\\\ é\"",
        "true",
        "false",
        "null",
        "[]",
        "[ ]",
        "[1, [2]]",
        "2024-01-31",
        "2024-01-31T12:00:00Z",
        "2024-01-31T12:00:00.250+02:00",
        "2024-01-31t12:00:00z",
        "2w",
        "30d",
        "12h",
        "15m",
        "10s",
        "250ms",
        "1h30m",
        "-5m",
        "2024-01-31 - 30d",
        "10 - 3",
        "2024 - 01 - 31",
        "2024-01-311",
        "x # comment\n + 1",
        "  # leading\n a  # trailing",
        "(a)and(b)",
        "android or order or notice or island or nullable or true_x",
        "((((a))))",
        "if a then b else c",
        "if a > 1 then 2 else 3 + 4",
        "if a then b else c or d",
        "if if a then b else c then d else e",
        "if a then if b then c else d else e",
        "if a then b else if c then d else e",
        "(if a then b else c) + 1",
        "f(if a then b else c, [if d then e else f])",
        "any(i in l, if i then true else false)",
        "if# c\n a then\tb else(c)",
        "if_x == then_y or elsewhere",
        "a ?? b",
        "a ?? b ?? c",
        "a + b ?? c * d",
        "a ?? 0 > 5",
        "a between b ?? 1 and c ?? 2",
        "a ?? b is null",
        "a??b",
        "has(a.b)",
        "has($a[\"k\"])",
        "count(i in items, i.price > 1)",
        "exists_one(i in items, i)",
        "sum(i in items, i.price * i.qty)",
        "min (i in l, i)",
        "max( i # c\n in l , i )",
        "map(x in xs, x + 1)",
        "filter(x in xs, x > 1)",
        "sum(xs)",
        "sum(xs, ys)",
        "sum((x in xs), y)",
        "sum(x not in xs, y)",
        "count",
        "counter(x in xs, y)",
        "sum.x == 1 or sum[0] == 1",
        "{}",
        "{ }",
        "{a: 1}",
        "{a: 1, \"content-type\": \"json\", in: [1], r'x': 2,}",
        "{ a # c\n : { b : c } }",
        "{a: if x then 1 else 2} == {a: 1}",
        "[{a: 1}, {}]",
        "items[i]",
        "items[i].price",
        "items[len(items) - 1].tags[0]",
        "a[i][j].k[\"x\"][1]",
        "$a.b[ i + 1 ]",
        "headers[name]",
        "m[ \"k\" ]",
        "xs[ 0]",
        "xs[(0)]",
        "xs[-1]",
        "xs[if a then 0 else 1]",
        "xs[i]# c\n == 1",
    ];
    for text in cases {
        check_same(text);
    }
}

/// Errors of every kind go to pest, which reports them.
#[test]
fn errors_are_left_to_pest() {
    let cases = [
        "",
        "   ",
        "# only a comment",
        "a ==",
        "a == b == c",
        "a < b < c",
        "a between 1 and 2 is null",
        "a is null == b",
        "a = b",
        "a === b",
        "9223372036854775808",
        "-9223372036854775809",
        "99999999999999999999",
        "1e309",
        "-1e309",
        "99999999999999999w",
        "2024-02-30",
        "2024-01-31T25:00:00Z",
        "2024-01-31T",
        "\"\\q\"",
        "\"\\u{110000}\"",
        "\"\\u{}\"",
        "\"\\u{1234567}\"",
        "\"\\u1234\"",
        "\"open",
        "'open\n'",
        "a[4294967296]",
        "a [0]",
        "a .b",
        "a.1",
        "$1",
        "r\"open",
        "r'open\n'",
        "$ a",
        "$a(1)",
        "a.b(1)",
        "f(,)",
        "[,]",
        "any(x, y)",
        "any(in in l, p)",
        "not in b",
        "a not b",
        "a and1",
        "5a",
        "5mx",
        "1.",
        ".5",
        "1e",
        "a + not b",
        "a == not b",
        "é",
        "a\u{a0}or b",
        "(a",
        "a)",
        "rule",
        "schema",
        "if a then b",
        "if a else b",
        "if a then b else",
        "a + if b then c else d",
        "a and if b then c else d",
        "not if a then b else c",
        "if then a else b",
        "a ? b : c",
        "a ??",
        "a ?? ?? b",
        "a ? ? b",
        "if",
        "then",
        "else",
        "map(in in xs, p)",
        "{,}",
        "{a}",
        "{a: }",
        "{a: 1,,}",
        "{1: 2}",
        "{a: 1 b: 2}",
        "{a: 1",
        "{\"a\" 1}",
        "xs[]",
        "xs[i",
        "xs[i] .c",
        "xs[i](1)",
    ];
    for text in cases {
        check_rejected(text);
    }
    // a call whose argument starts like a comprehension: valid, and left to pest
    for text in ["count(x in xs)", "count(x in xs, p, q)"] {
        assert_eq!(check(text).unwrap(), Outcome::GaveUp, "{text}");
    }
}

/// Nesting and tree depth at and past the limits.
#[test]
fn limits_agree() {
    for n in [1, 10, 63, 64, 65, 100] {
        check(&format!("{}a{}", "(".repeat(n), ")".repeat(n))).unwrap();
        check(&format!("{}a{}", "[".repeat(n), "]".repeat(n))).unwrap();
        check(&format!("{}a{}", "f(".repeat(n), ")".repeat(n))).unwrap();
        check(&format!("{}a", "not ".repeat(n))).unwrap();
        check(&format!("{}5", "-".repeat(n))).unwrap();
        check(&format!("{}a", "- ".repeat(n))).unwrap();
        check(&format!("{}a{}", "if a then 1 else ".repeat(n), "")).unwrap();
        check(&format!("{}a then b else c", "if ".repeat(n))).unwrap();
        // `if`s side by side do not nest
        let side_by_side = "if a then 1 else 2, ".repeat(n);
        check_same(&format!("[{}]", side_by_side.trim_end_matches(", ")));
    }
    for n in [100, 200, 250, 255, 256, 257, 300, 1000] {
        let chain = vec!["a"; n];
        for op in [" or ", " and ", " + ", " * "] {
            let text = chain.join(op);
            check(&text).unwrap();
            check(&format!("({text}) == b")).unwrap();
        }
        let nested_and_chained = format!("{}a{}", "(a or ".repeat(60), ")".repeat(60));
        check(&format!("{nested_and_chained} or {}", chain.join(" or "))).unwrap();
    }
    // The size limit.
    let big = format!("a{}", " or a".repeat(rulesaga::rules::MAX_SOURCE_BYTES / 5));
    assert!(parse_expr_fast(&Source::new("<expr>", big)).is_none());
}

/// The example rule file, and a few hand-picked rule files.
#[test]
fn rule_files_agree() {
    let example =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/specs/discount.rules"))
            .unwrap();
    check_file(&example).unwrap();
    let cases = [
        "rule a = 1",
        "  rule a = 1  # c\n\n## doc\nrule b(x, y = 2,) = x + y\n",
        "rule a ( x = -5 , y = [1, \"s\"] ) = x\n",
        "rule a() = 1",
        "rule a(x = y) = 1",
        "rule a(x = -(5)) = 1",
        "rule a(x = (5)) = 1",
        "rule a == 1",
        "rule a = 1 ==",
        "rule = 1",
        "rule a = 1\nrule b = (\nrule c = 3",
        "schema { a: int }\nrule a = a > 1\nrule b = 9223372036854775808\n",
    ];
    for text in cases {
        check_file(text).unwrap();
    }
}

/// On valid text, the fast path never gives up (it covers the whole
/// expression language short of the depth limits): counted over decorated
/// random trees and token soup, with a fixed seed.
#[test]
fn fast_path_covers_valid_text() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]);
    let mut runner = TestRunner::new_with_rng(Config::default(), rng);
    let strategy = (
        expr(),
        prop::collection::vec(any::<u8>(), 1..64),
        any::<u8>(),
        soup(),
    );
    let (mut same, mut gave_up, mut rejected) = (0, 0, 0);
    for _ in 0..3000 {
        let (ast, choices, wrap, soup) = strategy.new_tree(&mut runner).unwrap().current();
        let printed = print_expr(&ast);
        for text in [
            decorate_with(&printed, &choices, wrap, true),
            decorate(&printed, &choices, wrap),
            soup,
        ] {
            match check(&text).unwrap() {
                Outcome::Same => same += 1,
                Outcome::GaveUp => {
                    gave_up += 1;
                    eprintln!("gave up on valid {text:?}");
                }
                Outcome::Rejected => rejected += 1,
            }
        }
    }
    eprintln!("same {same}, gave up {gave_up}, rejected {rejected}");
    assert_eq!(gave_up, 0);
    assert!(same > 2500, "only {same} valid texts");
}
