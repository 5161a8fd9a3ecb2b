//! Hostile and random input never panics: token soup through parse → check →
//! compile → evaluate → explain, on a few records, with and without a schema.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use rulesaga::{Context, Env, Program, RuleSet, Source};
use serde_json::json;

const TOKENS: &[&str] = &[
    "tier",
    "total",
    "days",
    "items",
    "x",
    "$total",
    "premium",
    "vip",
    "a.b",
    "items[0]",
    "i",
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
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "+",
    "-",
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
    "is null",
    "is not null",
    "0",
    "1",
    "-1",
    "9223372036854775807",
    "1.5",
    "1e308",
    "\"s\"",
    "\"(a+\"",
    "2024-01-31",
    "2024-01-31T00:00:00Z",
    "30d",
    "true",
    "false",
    "null",
    "len(",
    "lower(",
    "now()",
    "today()",
    "min(",
    "abs(",
    "any(i in items,",
    "all(i in items,",
    "high(",
    "discount",
    "recent",
    "if",
    "then",
    "else",
    "if total > 1 then",
    "??",
    "has(",
    "sum(",
    "keys(",
    "values(",
    "distinct(",
    "int(",
    "string(",
    "type(",
    "split(",
    "substring(",
    "[1, \"a\"]",
];

fn records() -> Vec<serde_json::Value> {
    vec![
        json!({}),
        json!({"tier": "premium", "total": 150, "days": 3, "items": [{"price": 1}, {"price": 2.5}]}),
        json!({"tier": null, "total": 9223372036854775807i64, "days": -1, "items": "nope", "x": [1, [2]]}),
        json!({"total": 1e300, "days": 0.5, "items": [], "a": {"b": "c"}}),
    ]
}

fn soup() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(TOKENS), 0..24).prop_map(|t| t.join(" "))
}

fn exercise(program: &Program) {
    let ctx = Context::system();
    for r in records() {
        let fast = program.matches(&r, &ctx);
        let value = program.evaluate(&r, &ctx);
        if let (Ok(fast), Ok(Some(rulesaga::Value::Bool(b)))) = (&fast, &value) {
            assert_eq!(fast, b, "evaluate disagrees on {r}");
        }
        let slow = program.explain(&r, &ctx).map(|e| e.matched);
        assert_eq!(fast, slow, "explain disagrees on {r}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn token_soup_never_panics(text in soup()) {
        if let Ok(p) = Program::compile(Source::new("<soup>", text.clone()), &Env::new()) {
            exercise(&p);
        }
    }

    #[test]
    fn token_soup_with_a_schema_and_rules_never_panics(text in soup()) {
        let file = "schema {\n  tier: standard | premium | vip\n  total: number\n  days?: int\n  \
                    items: list<{ price: number }>\n}\nrule high(t = 100) = total >= t\n\
                    rule recent = days <= 30\nrule discount = tier == premium or (high and recent)\n";
        let set = RuleSet::compile(vec![Source::new("s.rules", file)], &Env::new()).unwrap();
        if let Ok(p) = set.compile_expr(&text) {
            exercise(&p);
        }
        let as_rule = format!("{file}rule fuzz = {text}\n");
        let _ = RuleSet::compile(vec![Source::new("f.rules", as_rule)], &Env::new());
    }
}
