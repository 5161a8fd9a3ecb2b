//! The semantics written in docs/language.md, as data-driven tables: null and
//! missing values, int/float comparison, overflow, strings, dates, bare words.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rulesaga::{Env, EvalError, Program, RuleSet, Source};
use serde_json::json;

mod support;
use support::tables::*;

/// Each row: expression, record, expected result of `matches`.
fn check_table(rows: &[(&str, serde_json::Value, bool)]) {
    let mut failures = Vec::new();
    for (expr, record, want) in rows {
        let p = program(expr);
        let got = p.matches(record, &ctx());
        if got != Ok(*want) {
            failures.push(format!(
                "`{expr}` on {record}: expected {want}, got {got:?}"
            ));
        }
        // the monomorphised entry point agrees with the dynamic one
        let typed = p.matches_typed(record, &ctx());
        if typed != got {
            failures.push(format!(
                "`{expr}` on {record}: matches_typed says {typed:?}"
            ));
        }
        // the closure tree (used by `evaluate`) agrees with the flat fast path
        let as_value = p
            .evaluate(record, &ctx())
            .map(|v| matches!(v, Some(rulesaga::Value::Bool(true))));
        if as_value != got {
            failures.push(format!("`{expr}` on {record}: evaluate says {as_value:?}"));
        }
        // the explaining interpreter agrees too
        let explained = p.explain(record, &ctx()).map(|e| e.matched);
        if explained != got {
            failures.push(format!("`{expr}` on {record}: explain says {explained:?}"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// Each row: expression, record, the evaluation error every path must give
/// (`matches`, `matches_typed`, `explain`).
fn check_errors(rows: &[(&str, serde_json::Value, &str)]) {
    let mut failures = Vec::new();
    for (expr, record, want) in rows {
        let p = program(expr);
        let results = [
            ("matches", p.matches(record, &ctx())),
            ("matches_typed", p.matches_typed(record, &ctx())),
            ("explain", p.explain(record, &ctx()).map(|e| e.matched)),
        ];
        for (path, got) in results {
            if got.as_ref().map_err(ToString::to_string) != Err(want.to_string()) {
                failures.push(format!("`{expr}` on {record} ({path}): {got:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// Without a schema the type of a field is not known when compiling: the value
/// decides, and a value that is neither true, false, missing nor null used as a
/// condition is an error, never a silent `false`.
#[test]
fn values_used_as_conditions_are_errors() {
    let r = json!({"n": 5, "s": "yes", "xs": [1], "flag": true, "none": null});
    check_table(&[
        ("flag", r.clone(), true),
        ("none", r.clone(), false),
        ("nope", r.clone(), false),
        ("not none", r.clone(), true),
        ("any(x in xs, x == 1)", r.clone(), true),
    ]);
    check_errors(&[
        ("n", r.clone(), "`n` is not true or false: it is int"),
        ("not s", r.clone(), "`s` is not true or false: it is string"),
        (
            "flag and $n",
            r.clone(),
            "`$n` is not true or false: it is int",
        ),
        (
            "n or nope > 1",
            r.clone(),
            "`n` is not true or false: it is int",
        ),
        (
            "any(x in xs, x)",
            r.clone(),
            "`x` is not true or false: it is int",
        ),
        ("xs", r, "`xs` is not true or false: it is list"),
    ]);
}

#[test]
fn missing_and_null() {
    let r = json!({"days": null, "total": 5, "name": "x"});
    check_table(&[
        // a comparison reading a missing or null value is false
        ("days <= 30", r.clone(), false),
        ("days > 30", r.clone(), false),
        ("nope <= 30", r.clone(), false),
        ("nope == 1", r.clone(), false),
        ("nope != 1", r.clone(), false),
        ("days != 1", r.clone(), false),
        ("nope in [1, 2]", r.clone(), false),
        ("nope not in [1, 2]", r.clone(), false),
        ("nope contains \"a\"", r.clone(), false),
        ("nope between 1 and 2", r.clone(), false),
        ("nope matches \"a\"", r.clone(), false),
        // two-valued logic: `not` is plain negation
        ("not (days <= 30)", r.clone(), true),
        ("not (nope == 1)", r.clone(), true),
        // `is null` covers missing and null
        ("days is null", r.clone(), true),
        ("nope is null", r.clone(), true),
        ("total is null", r.clone(), false),
        ("total is not null", r.clone(), true),
        ("days == null", r.clone(), true),
        ("total != null", r.clone(), true),
        // arithmetic on missing yields missing, so the comparison is false
        ("nope + 1 > 0", r.clone(), false),
        ("nope + 1 is null", r.clone(), true),
        // a missing field used as a condition is false
        ("flag", r.clone(), false),
        ("not flag", r.clone(), true),
        ("any(x in nope, x > 1)", r.clone(), false),
        ("all(x in nope, x > 1)", r.clone(), false),
        ("len(nope) == 0", r, false),
    ]);
}

#[test]
fn numbers_compare_mathematically() {
    check_table(&[
        ("status == 200", json!({"status": 200}), true),
        ("status == 200", json!({"status": 200.0}), true),
        ("status == 200", json!({"status": 200u64}), true),
        ("status == 200.0", json!({"status": 200}), true),
        ("status >= 199.5", json!({"status": 200}), true),
        ("status < 200.5", json!({"status": 200}), true),
        (
            "big > 9223372036854775807",
            json!({"big": 18446744073709551615u64}),
            true,
        ),
        (
            "x == 9007199254740993",
            json!({"x": 9007199254740992.0}),
            false,
        ),
        (
            "x == 9007199254740993",
            json!({"x": 9007199254740993i64}),
            true,
        ),
        ("7 / 2 == 3.5", json!({}), true),
        ("6 / 3 == 2", json!({}), true),
        ("7 % 3 == 1", json!({}), true),
        ("-x == -5", json!({"x": 5}), true),
        ("0.1 + 0.2 > 0.3", json!({}), true),
    ]);
}

#[test]
fn overflow_and_division_by_zero_are_errors() {
    let cases = [
        ("x + 1 > 0", json!({"x": i64::MAX})),
        ("x * 2 > 0", json!({"x": i64::MIN})),
        ("-x > 0", json!({"x": i64::MIN})),
        ("x / 0 > 0", json!({"x": 1})),
        ("x % 0 > 0", json!({"x": 1})),
        ("x / 0.0 > 0", json!({"x": 1.5})),
        ("abs(x) > 0", json!({"x": i64::MIN})),
    ];
    for (expr, record) in cases {
        let got = program(expr).matches(&record, &ctx());
        assert!(
            matches!(
                got,
                Err(EvalError::Overflow(_) | EvalError::DivisionByZero(_))
            ),
            "`{expr}`: {got:?}"
        );
    }
    // numbers at the edges: results that fit are results
    check_table(&[
        ("x % -1 == 0", json!({"x": i64::MIN}), true),
        (
            "round(x) == 9220000000000000000",
            json!({"x": 9.22e18}),
            true,
        ),
        (
            "round(x) == -9223372036854775808",
            json!({"x": -(2f64.powi(63))}),
            true,
        ),
        (
            "floor(x) == -9223372036854775808",
            json!({"x": -(2f64.powi(63))}),
            true,
        ),
    ]);
    for (expr, x) in [("round(x) > 0", 2f64.powi(63)), ("ceil(x) > 0", 1e300)] {
        let got = program(expr).matches(&json!({"x": x}), &ctx());
        assert!(
            matches!(got, Err(EvalError::Overflow(_))),
            "`{expr}`: {got:?}"
        );
    }
    let got = program("x / -1 > 0").matches(&json!({"x": i64::MIN}), &ctx());
    assert!(matches!(got, Err(EvalError::Overflow(_))), "{got:?}");
    let err = program("x + 1 > 0")
        .matches(&json!({"x": i64::MAX}), &ctx())
        .unwrap_err();
    assert_eq!(err.to_string(), "integer overflow in `x + 1`");
}

#[test]
fn strings_and_types() {
    let r = json!({"name": "Émile", "email": "a@example.com", "tags": ["vip", "new"], "n": 5});
    check_table(&[
        ("name == \"Émile\"", r.clone(), true),
        ("name == \"émile\"", r.clone(), false),
        ("lower(name) == \"émile\"", r.clone(), true),
        ("name > \"Z\"", r.clone(), true), // code point order: É (U+00C9) > Z
        ("email ends_with \"@example.com\"", r.clone(), true),
        ("email starts_with \"a@\"", r.clone(), true),
        ("email contains \"example\"", r.clone(), true),
        ("email matches \"^[a-z]+@[a-z.]+$\"", r.clone(), true),
        ("tags contains \"vip\"", r.clone(), true),
        ("\"new\" in tags", r.clone(), true),
        ("len(tags) == 2", r.clone(), true),
        ("len(name) == 5", r.clone(), true),
        // different types without a schema: == false, != true, orderings false
        ("n == \"5\"", r.clone(), false),
        ("n != \"5\"", r.clone(), true),
        ("name > 5", r.clone(), false),
        ("n between 1 and 10", r.clone(), true),
        ("n between 5 and 5", r, true),
    ]);
}

#[test]
fn dates_datetimes_durations() {
    let r = json!({"created": "2024-06-01", "at": "2024-06-15T10:00:00Z", "bad": "soon"});
    check_table(&[
        ("created >= 2024-01-01", r.clone(), true),
        ("created < 2024-06-02", r.clone(), true),
        ("created == 2024-06-01", r.clone(), true),
        ("bad < 2024-06-02", r.clone(), false),
        ("at > now() - 3h", r.clone(), true),
        ("at > now() - 1h", r.clone(), false),
        ("created > today() - 30d", r.clone(), true),
        ("2024-01-31 + 1d == 2024-02-01", r.clone(), true),
        (
            "2024-06-15T12:00:00Z - 2024-06-15T10:00:00Z == 2h",
            r.clone(),
            true,
        ),
        ("2024-06-15 == 2024-06-15T00:00:00Z", r.clone(), true),
        ("30d > 12h", r, true),
    ]);
}

/// A date or datetime string next to a date, a datetime or a duration in
/// arithmetic is read as one, as comparisons read it (no schema needed).
#[test]
fn date_strings_in_arithmetic() {
    let r = json!({"dob": "1990-01-01", "young": "2010-05-05", "at": "2024-06-15T10:00:00Z",
                   "bad": "soon", "applicant": {"dob": "2000-02-29"}});
    check_table(&[
        ("dob + 6575d <= today()", r.clone(), true),
        ("young + 6575d <= today()", r.clone(), false),
        ("applicant.dob + 6575d <= today()", r.clone(), true),
        ("dob - 1d == 1989-12-31", r.clone(), true),
        ("at - 1d < at", r.clone(), true),
        ("at - 1d == 2024-06-14T10:00:00Z", r.clone(), true),
        ("today() - dob > 365d", r.clone(), true),
        ("2024-06-15 - dob > 365d", r.clone(), true),
        ("1d + dob == 1990-01-02", r.clone(), true),
        ("(bad + 1d) is null", r.clone(), true),
        ("bad + 1d < today()", r, false),
    ]);
}

/// JSON keys spelled like keywords, or that are not words, are readable.
#[test]
fn keys_spelled_like_keywords() {
    let r = json!({"m": {"in": 1, "contains": 2}, "null": 3, "headers": {"content-type": "json"},
                   "sku": "ABC-12"});
    check_table(&[
        ("m.in == 1", r.clone(), true),
        ("m.contains > 1", r.clone(), true),
        ("$null == 3", r.clone(), true),
        ("headers[\"content-type\"] == \"json\"", r.clone(), true),
        ("sku matches r\"^[A-Z]{3}-\\d+$\"", r.clone(), true),
        ("sku matches r'^\\w+$'", r, false),
    ]);
}

/// Lists and objects are equal element by element and key by key, with the
/// number rules of scalars (`1 == 1.0`).
#[test]
fn structural_equality() {
    let r = json!({
        "a": {"k": 1, "l": [1, {"m": 2}]}, "b": {"k": 1.0, "l": [1.0, {"m": 2.0}]},
        "c": {"k": 1}, "d": {"k": 1, "extra": null}, "xs": [{"k": 1}], "ys": [{"k": 1.0}]
    });
    check_table(&[
        ("a == $b", r.clone(), true),
        ("a != $b", r.clone(), false),
        ("c == $d", r.clone(), false),
        ("c != $d", r.clone(), true),
        ("xs == $ys", r.clone(), true),
        ("c in xs", r.clone(), true),
        ("xs contains $c", r.clone(), true),
        ("a.l == [1.0, b.l[1]]", r.clone(), true),
        ("[1, 2.0] == [1.0, 2]", r, true),
    ]);
}

#[test]
fn lists_and_quantifiers() {
    let r = json!({"items": [{"sku": "A", "price": 10, "qty": 1}, {"sku": "B", "price": 120.5, "qty": 2}]});
    check_table(&[
        ("any(i in items, i.price > 100)", r.clone(), true),
        ("all(i in items, i.price > 100)", r.clone(), false),
        ("all(i in items, i.qty >= 1)", r.clone(), true),
        ("items[1].sku == B", r.clone(), true),
        ("items[5].sku == B", r.clone(), false),
        ("all(i in empty, i > 0)", json!({"empty": []}), true),
        ("any(i in empty, i > 0)", json!({"empty": []}), false),
        (
            "any(t in tags, t == vip)",
            json!({"tags": ["x", "vip"]}),
            true,
        ),
        ("sku in [A, B]", json!({"sku": "B"}), true),
        ("sku not in [A, B]", json!({"sku": "C"}), true),
        ("code in [1, 2.0]", json!({"code": 2}), true),
    ]);
}

#[test]
fn bare_words_resolve_by_position() {
    let r = json!({"tier": "premium", "premium": "gold", "a": 1, "b": 1, "limit": 3, "total": 5});
    check_table(&[
        // right of == : a symbol
        ("tier == premium", r.clone(), true),
        // left of == : a field
        ("premium == gold", r.clone(), true),
        // $ forces a field
        ("a == $b", r.clone(), true),
        ("a == b", r.clone(), false),
        // right of an ordering: a field
        ("total > limit", r.clone(), true),
    ]);
}

#[test]
fn evaluate_returns_values() {
    // a value is not a condition: compiled as one it is E106
    for expr in [
        "total * 2 + 1",
        "17",
        "\"apple\"",
        "null",
        "[1, 2]",
        "lower(name)",
    ] {
        let err = Program::compile(Source::new("<expr>", expr), &Env::new()).unwrap_err();
        assert_eq!(err.items[0].code, "E106", "`{expr}`");
        assert!(!value_program(expr).is_condition(), "`{expr}`");
    }
    let p = value_program("total * 2 + 1");
    assert_eq!(
        p.evaluate(&json!({"total": 20}), &ctx())
            .unwrap()
            .unwrap()
            .to_json(),
        json!(41)
    );
    assert!(p.evaluate(&json!({}), &ctx()).unwrap().is_none());
    let p = value_program("lower(name) + \"!\"");
    assert_eq!(
        p.evaluate(&json!({"name": "AB"}), &ctx())
            .unwrap()
            .unwrap()
            .to_json(),
        json!("ab!")
    );
}

#[test]
fn step_budget_bounds_quantifiers() {
    let big: Vec<i64> = (0..1000).collect();
    let p = program("any(x in xs, any(y in xs, x + y < 0))");
    let mut c = ctx();
    c.max_steps = 10_000;
    let got = p.matches(&json!({"xs": big}), &c);
    assert!(
        matches!(got, Err(EvalError::CostExceeded(10_000))),
        "{got:?}"
    );
}

#[test]
fn schema_turns_mismatches_into_compile_errors() {
    let file = "schema {\n  tier: standard | premium | vip\n  total: number\n  days?: int\n  \
                score: int\n  tags: list<string>\n  flag: bool\n  loans: list<{ amount: number }>\n  \
                name: string\n  other: string\n  x: int\n  m: int\n}\n\
                rule a = tier == premium\n";
    let set = RuleSet::compile(vec![Source::new("s.rules", file)], &Env::new()).unwrap();
    for (expr, code) in [
        ("tier == premum", "E107"),
        ("totl > 1", "E101"),
        ("total > \"x\"", "E106"),
        ("total == premium", "E114"),
        ("tier in [premium, vipp]", "E107"),
        ("tier + 1 > 0", "E106"),
        ("total and a", "E106"),
        // what has no order cannot be ordered (`[0] <= [0]` was a silent false)
        ("[0] <= [0]", "E106"),
        ("tags < tags", "E106"),
        ("flag > false", "E106"),
        ("total < null", "E106"),
        ("score between [1] and 2", "E106"),
        ("loans[0] >= loans[1]", "E106"),
        // every function's arguments are checked (`len(score)` passed)
        ("len(score) > 1", "E106"),
        ("len(flag) > 1", "E106"),
        ("lower(tags) == \"a\"", "E106"),
        ("abs(tier) > 1", "E106"),
        ("min(score, \"a\") > 1", "E106"),
        ("round(loans) > 1", "E106"),
        // a field of the schema is never silently read as a string
        ("[1, x, 3] == [1, 2, 3]", "E117"),
        ("name == other", "E117"),
        ("name != other", "E117"),
        ("tier == other", "E117"),
        ("tier in [premium, other]", "E117"),
        ("name in [\"a\", other]", "E117"),
        ("len([other]) > 0", "E117"),
        ("score == m", "E114"),
    ] {
        expect_code(set.compile_expr(expr), expr, code);
    }
    for ok in [
        "a and days <= 30",
        "len(tags) > 1 and len(tier) > 1 and len(loans) == 0",
        "total between 1 and score",
        "min(score, total, 3) > 1",
        "name == $other and name != \"other\" and [1, $x, 3] == [1, 2, 3]",
        "tier in [premium, vip] and score == $m and name in [$other, \"x\"]",
    ] {
        assert!(set.compile_expr(ok).is_ok(), "`{ok}`");
    }
}

#[test]
fn nan_in_typed_data_is_rejected() {
    use rulesaga::{FieldRef, Record, Value};
    struct R;
    impl Record for R {
        fn field(&self, _: FieldRef<'_>) -> Option<Value<'_>> {
            Some(Value::Float(f64::NAN))
        }
    }
    let got = program("x > 1").matches(&R, &ctx());
    assert!(matches!(got, Err(EvalError::NotFinite(_))), "{got:?}");
}

#[test]
fn programs_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Program>();
    assert_send_sync::<RuleSet>();
}
