//! Rule text through parse → check → compile → evaluate → explain: nothing
//! panics, and the three evaluators (the flat jump list behind `matches`, the
//! closures behind `evaluate`, the explaining interpreter) agree on every record.
//!
//! The input is an expression, also tried as the body of a rule after a schema
//! and as a whole rule file; after a line `---`, a JSON record to evaluate on
//! besides the fixed ones.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rulesaga::{Context, Env, Program, RuleSet, Source, Value};
use serde_json::json;

const SCHEMA: &str = "schema {\n  tier: standard | premium | vip\n  total: number\n  days?: int\n  \
    items: list<{ price: number, tags?: list<string> }>\n  since?: date\n  name?: string\n}\n\
    rule high(t = 100) = total >= t\nrule recent = days <= 30\n";

fn records() -> Vec<serde_json::Value> {
    vec![
        json!({}),
        json!({"tier": "premium", "total": 150, "days": 3, "since": "2024-01-31", "name": "Al",
               "items": [{"price": 1, "tags": ["a"]}, {"price": 2.5}]}),
        json!({"tier": null, "total": 9223372036854775807i64, "days": -1, "items": "nope",
               "x": [1, [2]], "since": "nope"}),
        json!({"total": 1e300, "days": 0.5, "items": [], "a": {"b": "c", "in": 1}, "x": {"k": 1.0}}),
    ]
}

fn check(program: &Program, records: &[serde_json::Value], ctx: &Context) {
    for r in records {
        let fast = program.matches(r, ctx);
        assert_eq!(fast, program.matches_typed(r, ctx), "matches_typed on {r}");
        let slow = program.explain(r, ctx).map(|e| e.matched);
        assert_eq!(fast, slow, "explain disagrees on {r}");
        let value = program.evaluate(r, ctx);
        match (&fast, &value) {
            (Ok(b), Ok(Some(Value::Bool(v)))) => assert_eq!(b, v, "evaluate disagrees on {r}"),
            (Ok(b), Ok(None | Some(Value::Null))) => assert!(!b, "evaluate: missing on {r}"),
            (Ok(b), Ok(Some(_))) => assert!(!b, "a value that is not true matched on {r}"),
            (Err(_), Ok(Some(v))) if !matches!(v, Value::Bool(_) | Value::Null) => {}
            (Err(a), Err(b)) => assert_eq!(a, b, "errors differ on {r}"),
            (a, b) => panic!("matches {a:?}, evaluate {b:?} on {r}"),
        }
    }
}

fn exercise(program: &Program, records: &[serde_json::Value], ctx: &Context) {
    if program.is_condition() {
        check(program, records, ctx);
    } else {
        for r in records {
            let _ = program.evaluate(r, ctx);
            let _ = program.explain(r, ctx);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (text, extra) = match text.split_once("\n---\n") {
        Some((a, b)) => (a, serde_json::from_str::<serde_json::Value>(b).ok()),
        None => (text, None),
    };
    let mut recs = records();
    recs.extend(extra);
    let ctx = Context::at(
        chrono::DateTime::parse_from_rfc3339("2024-06-15T12:00:00Z").expect("a datetime"),
    );
    let with_schema = RuleSet::compile(vec![Source::new("s.rules", SCHEMA)], &Env::new())
        .expect("the schema compiles");
    for env in [Env::new(), Env::new().with_rules(with_schema)] {
        if let Ok(p) = Program::compile(Source::new("<fuzz>", text), &env) {
            check(&p, &recs, &ctx);
        }
        if let Ok(p) = Program::compile_value(Source::new("<fuzz>", text), &env) {
            exercise(&p, &recs, &ctx);
        }
    }
    for file in [text.to_string(), format!("{SCHEMA}rule fuzz = {text}\n")] {
        if let Ok(set) = RuleSet::compile(vec![Source::new("f.rules", file)], &Env::new()) {
            let _ = set.lint();
            for name in set.names() {
                if let Some(p) = set.rule(&name) {
                    exercise(&p, &recs, &ctx);
                }
            }
        }
    }
});
