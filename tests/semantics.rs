//! The semantics written in docs/language.md, as data-driven tables: null and
//! missing values, int/float comparison, overflow, strings, dates, bare words.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rulesaga::{Context, Env, EvalError, Program, RuleSet, Source};
use serde_json::json;

fn ctx() -> Context {
    Context::at(chrono::DateTime::parse_from_rfc3339("2024-06-15T12:00:00Z").unwrap())
}

fn program(expr: &str) -> Program {
    Program::compile(Source::new("<expr>", expr), &Env::new())
        .unwrap_or_else(|d| panic!("`{expr}` does not compile:\n{d}"))
}

fn value_program(expr: &str) -> Program {
    Program::compile_value(Source::new("<expr>", expr), &Env::new())
        .unwrap_or_else(|d| panic!("`{expr}` does not compile:\n{d}"))
}

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

/// `expr` compiles in `set` as a value of type `ty`.
fn expect_type(set: &RuleSet, expr: &str, ty: &str) {
    let p = set
        .compile_value(expr)
        .unwrap_or_else(|e| panic!("`{expr}`: {e}"));
    assert_eq!(p.result_type().to_string(), ty, "`{expr}`");
}

/// `expr` did not compile, with `code` among its diagnostics.
fn expect_code(compiled: Result<Program, rulesaga::Diagnostics>, expr: &str, code: &str) {
    let err = compiled.expect_err(expr);
    let codes: Vec<&str> = err.items.iter().map(|d| d.code).collect();
    assert!(codes.contains(&code), "`{expr}`: {codes:?}");
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

/// Each row: value expression, record, expected JSON value (`None`: missing),
/// through `evaluate` (the closures); a value that is a condition is also run
/// through `matches` (the flat path where it applies) and `explain`.
fn check_values(rows: &[(&str, serde_json::Value, Option<serde_json::Value>)]) {
    let mut failures = Vec::new();
    for (expr, record, want) in rows {
        let p = value_program(expr);
        let got = p.evaluate(record, &ctx()).map(|v| v.map(|v| v.to_json()));
        if got.as_ref() != Ok(want) {
            failures.push(format!(
                "`{expr}` on {record}: expected {want:?}, got {got:?}"
            ));
        }
        if p.is_condition() && matches!(want, None | Some(serde_json::Value::Bool(_))) {
            let want_bool = Ok(want == &Some(json!(true)));
            let matched = p.matches(record, &ctx());
            let explained = p.explain(record, &ctx()).map(|e| e.matched);
            if matched != want_bool || explained != want_bool {
                failures.push(format!(
                    "`{expr}` on {record}: matches {matched:?}, explain {explained:?}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// Each row: value expression, record, the evaluation error.
fn check_value_errors(rows: &[(&str, serde_json::Value, &str)]) {
    let mut failures = Vec::new();
    for (expr, record, want) in rows {
        let got = value_program(expr)
            .evaluate(record, &ctx())
            .map(|v| v.map(|v| v.to_json()));
        if got.as_ref().map_err(ToString::to_string) != Err(want.to_string()) {
            failures.push(format!("`{expr}` on {record}: {got:?}"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn choices_and_defaults() {
    let r = json!({"vip": true, "weight": 3, "discount": null, "a": {"b": null, "c": 1}, "s": "x", "items": [{"k": 1}]});
    check_values(&[
        // `if`: the branch the condition chose, only that one evaluated
        ("if vip then 0 else weight * 2", r.clone(), Some(json!(0))),
        (
            "if not vip then 0 else weight * 2",
            r.clone(),
            Some(json!(6)),
        ),
        (
            "if weight > 5 then \"heavy\" else \"light\"",
            r.clone(),
            Some(json!("light")),
        ),
        // a missing condition is false, like every condition
        ("if nope then 1 else 2", r.clone(), Some(json!(2))),
        ("if nope > 1 then 1 else 2", r.clone(), Some(json!(2))),
        ("if vip then 1 else 1 / 0", r.clone(), Some(json!(1))),
        ("if vip then nope else 1", r.clone(), None),
        ("if a.c == 1 then a.c else 0", r.clone(), Some(json!(1))),
        (
            "if vip then if weight > 1 then 1 else 2 else 3",
            r.clone(),
            Some(json!(1)),
        ),
        (
            "if vip then 1 else if weight > 1 then 2 else 3",
            r.clone(),
            Some(json!(1)),
        ),
        ("1 + (if vip then 1 else 2)", r.clone(), Some(json!(2))),
        ("[if vip then 1 else 2, 3]", r.clone(), Some(json!([1, 3]))),
        // as a condition
        (
            "if vip then weight > 1 else weight > 10",
            r.clone(),
            Some(json!(true)),
        ),
        (
            "if not vip then true else s == \"y\"",
            r.clone(),
            Some(json!(false)),
        ),
        // `??`: the right side when the left is missing or null
        ("discount ?? 0", r.clone(), Some(json!(0))),
        ("nope ?? 0", r.clone(), Some(json!(0))),
        ("weight ?? 0", r.clone(), Some(json!(3))),
        ("nope ?? discount ?? 7", r.clone(), Some(json!(7))),
        ("weight * 2 ?? 0", r.clone(), Some(json!(6))),
        ("nope * 2 ?? 0", r.clone(), Some(json!(0))),
        ("a.b ?? a.c", r.clone(), Some(json!(1))),
        ("discount ?? null", r.clone(), Some(json!(null))),
        ("weight ?? 1 / 0", r.clone(), Some(json!(3))),
        ("(discount ?? 0) > 5", r.clone(), Some(json!(false))),
        ("discount ?? 10 > 5", r.clone(), Some(json!(true))),
        ("vip ?? false", r.clone(), Some(json!(true))),
        ("nope ?? true", r.clone(), Some(json!(true))),
        ("discount ?? false", r.clone(), Some(json!(false))),
        // `has`: the path leads to a value, null included
        ("has(a.b)", r.clone(), Some(json!(true))),
        ("has(a.c)", r.clone(), Some(json!(true))),
        ("has(a.d)", r.clone(), Some(json!(false))),
        ("has(discount)", r.clone(), Some(json!(true))),
        (
            "has(discount) and discount is null",
            r.clone(),
            Some(json!(true)),
        ),
        ("has(nope)", r.clone(), Some(json!(false))),
        ("has(s.x)", r.clone(), Some(json!(false))),
        ("has($a[\"c\"])", r.clone(), Some(json!(true))),
        ("any(i in items, has(i.k))", r.clone(), Some(json!(true))),
        ("all(i in items, has(i.j))", r.clone(), Some(json!(false))),
        ("not has(nope)", r, Some(json!(true))),
    ]);
    check_value_errors(&[
        (
            "if weight then 1 else 2",
            json!({"weight": 3}),
            "`weight` is not true or false: it is int",
        ),
        (
            "if vip then 1 / 0 else 2",
            json!({"vip": true}),
            "division by zero in `1 / 0`",
        ),
        ("nope ?? 1 / 0", json!({}), "division by zero in `1 / 0`"),
    ]);
    // an `if` whose branches are not conditions is not one
    for expr in ["if a then 1 else 2", "x ?? 0", "if a then b else 3"] {
        let err = Program::compile(Source::new("<expr>", expr), &Env::new()).unwrap_err();
        assert_eq!(err.items[0].code, "E106", "`{expr}`");
    }
}

#[test]
fn choices_and_defaults_are_checked() {
    let file = "schema {\n  total: number\n  name: string\n  coupon?: string\n  flag: bool\n  \
                customer: { address?: { city: string } }\n}\nrule r = flag\n";
    let set = RuleSet::compile(vec![Source::new("s.rules", file)], &Env::new()).unwrap();
    for (expr, code) in [
        ("if total then 1 else 2", "E106"),
        ("if flag then 1 else \"x\"", "E106"),
        ("coupon ?? 0", "E106"),
        ("has(totl)", "E101"),
        ("has(customer.adress)", "E101"),
        ("has(total + 1)", "E106"),
        ("has(\"total\")", "E106"),
        ("has(total, name)", "E103"),
    ] {
        expect_code(set.compile_value(expr), expr, code);
    }
    for ok in [
        "if flag then total else 0",
        "if flag then name else coupon",
        "coupon ?? name",
        "(coupon ?? \"\") == \"SUMMER\"",
        "has(customer.address.city)",
        "if has(customer.address) then customer.address.city else \"?\"",
    ] {
        assert!(set.compile_value(ok).is_ok(), "`{ok}`");
    }
    // the type of the choice is known
    expect_type(&set, "if flag then total else 0", "number");
    expect_type(&set, "coupon ?? name", "string");
    // `has` is a form of the language, not a function to register
    let mut fns = rulesaga::rules::Functions::new();
    assert!(
        fns.register("has", vec![], rulesaga::rules::Type::Bool, |_| Ok(
            rulesaga::Value::Bool(true)
        ))
        .is_err()
    );
}

#[test]
fn list_and_object_functions() {
    let r = json!({
        "xs": [3, 1, 2], "fs": [1.5, 2], "empty": [], "words": ["b", "a", "b"],
        "ds": ["1h", "30m"], "holes": [1, null], "mixed": [1, "a"],
        "m": {"b": 2, "a": 1}, "n": {}
    });
    check_values(&[
        ("sum(xs)", r.clone(), Some(json!(6))),
        ("sum(fs)", r.clone(), Some(json!(3.5))),
        ("sum(empty)", r.clone(), Some(json!(0))),
        ("sum([1h, 30m])", r.clone(), Some(json!("90m"))),
        ("sum(holes)", r.clone(), None),
        ("sum(nope)", r.clone(), None),
        ("min(xs)", r.clone(), Some(json!(1))),
        ("max(xs)", r.clone(), Some(json!(3))),
        ("max(words)", r.clone(), Some(json!("b"))),
        (
            "min([2024-01-31, 2023-05-01])",
            r.clone(),
            Some(json!("2023-05-01")),
        ),
        ("min(empty)", r.clone(), None),
        ("min(holes)", r.clone(), None),
        ("min(3, 1, 2)", r.clone(), Some(json!(1))),
        ("distinct(words)", r.clone(), Some(json!(["b", "a"]))),
        ("distinct([1, 1.0, 2])", r.clone(), Some(json!([1, 2]))),
        ("distinct(empty)", r.clone(), Some(json!([]))),
        ("xs + [4]", r.clone(), Some(json!([3, 1, 2, 4]))),
        ("[] + empty", r.clone(), Some(json!([]))),
        ("len(xs + words)", r.clone(), Some(json!(6))),
        ("len(m)", r.clone(), Some(json!(2))),
        ("len(n)", r.clone(), Some(json!(0))),
        ("keys(m)", r.clone(), Some(json!(["a", "b"]))),
        ("values(m)", r.clone(), Some(json!([1, 2]))),
        ("\"a\" in keys(m)", r.clone(), Some(json!(true))),
        (
            "any(k in keys(m), k == \"b\")",
            r.clone(),
            Some(json!(true)),
        ),
        ("all(v in values(m), v > 0)", r.clone(), Some(json!(true))),
        ("sum(values(m)) == 3", r, Some(json!(true))),
    ]);
    let r = json!({"mixed": [1, "a"], "flags": [true], "xs": [1, [2]]});
    check_value_errors(&[
        (
            "sum(mixed)",
            r.clone(),
            "`sum(..)`: element 1 is string \"a\", not a number",
        ),
        (
            "sum([1, 1h])",
            r.clone(),
            "`sum(..)`: cannot add duration 1h to int 1",
        ),
        (
            "max(mixed)",
            r.clone(),
            "`max(..)`: cannot order int 1 and string \"a\"",
        ),
        ("min(flags)", r.clone(), "`min(..)`: cannot order bool true"),
        (
            "max(xs)",
            r.clone(),
            "`max(..)`: cannot order int 1 and list [2]",
        ),
        (
            "keys(xs)",
            r,
            "`keys(..)`: expects (object), found (list [1,[2]])",
        ),
    ]);
    // the step budget covers what list functions visit
    let big: Vec<i64> = (0..2000).collect();
    let mut c = ctx();
    c.max_steps = 10_000;
    for expr in ["distinct(xs)", "sum(xs + xs + xs + xs + xs + xs)"] {
        let got = value_program(expr).evaluate(&json!({ "xs": big }), &c);
        assert!(
            matches!(got, Err(EvalError::CostExceeded(10_000))),
            "{expr}: {got:?}"
        );
    }
}

#[test]
fn list_and_object_functions_are_checked() {
    let file = "schema {\n  total: number\n  tags: list<string>\n  scores: list<int>\n  \
                address: { city: string, zip: string }\n}\nrule r = total > 1\n";
    let set = RuleSet::compile(vec![Source::new("s.rules", file)], &Env::new()).unwrap();
    for (expr, code) in [
        ("sum(tags)", "E106"),
        ("sum(total)", "E106"),
        ("keys(tags)", "E106"),
        ("values(total)", "E106"),
        ("len(total)", "E106"),
        ("distinct(total)", "E106"),
        ("min(tags, 1)", "E106"),
        ("tags + total", "E106"),
    ] {
        expect_code(set.compile_value(expr), expr, code);
    }
    for (expr, ty) in [
        ("sum(scores)", "int"),
        ("max(scores)", "int"),
        ("min(tags)", "string"),
        ("distinct(tags)", "list<string>"),
        ("tags + [\"x\"]", "list<string>"),
        ("keys(address)", "list<string>"),
        ("values(address)", "list<string>"),
        ("len(address)", "int"),
    ] {
        expect_type(&set, expr, ty);
    }
}

#[test]
fn comprehensions() {
    let r = json!({
        "items": [{"price": 5, "qty": 2}, {"price": 20, "qty": 1}, {"price": 7, "qty": null}],
        "xs": [3, 1, 2], "empty": [], "s": "text",
        "m": {"a": 1, "b": 5}
    });
    check_values(&[
        ("count(i in items, i.price > 6)", r.clone(), Some(json!(2))),
        ("count(i in empty, i > 0)", r.clone(), Some(json!(0))),
        ("count(i in items, i.qty > 1)", r.clone(), Some(json!(1))),
        (
            "exists_one(i in items, i.price > 10)",
            r.clone(),
            Some(json!(true)),
        ),
        (
            "exists_one(i in items, i.price > 6)",
            r.clone(),
            Some(json!(false)),
        ),
        (
            "exists_one(i in empty, true)",
            r.clone(),
            Some(json!(false)),
        ),
        ("sum(i in items, i.price)", r.clone(), Some(json!(32))),
        ("sum(i in items, i.price * 2)", r.clone(), Some(json!(64))),
        ("sum(i in items, i.price * i.qty)", r.clone(), None),
        (
            "sum(i in items, i.price * (i.qty ?? 0))",
            r.clone(),
            Some(json!(30)),
        ),
        ("sum(x in empty, x)", r.clone(), Some(json!(0))),
        ("min(i in items, i.price)", r.clone(), Some(json!(5))),
        ("max(i in items, i.price)", r.clone(), Some(json!(20))),
        ("max(x in empty, x)", r.clone(), None),
        ("map(x in xs, x * 10)", r.clone(), Some(json!([30, 10, 20]))),
        (
            "map(i in items, i.qty)",
            r.clone(),
            Some(json!([2, 1, null])),
        ),
        ("filter(x in xs, x >= 2)", r.clone(), Some(json!([3, 2]))),
        (
            "filter(i in items, i.qty is null)",
            r.clone(),
            Some(json!([{"price": 7, "qty": null}])),
        ),
        (
            "len(filter(x in xs, x > 1)) == 2",
            r.clone(),
            Some(json!(true)),
        ),
        ("sum(map(x in xs, x * x))", r.clone(), Some(json!(14))),
        (
            "count(x in xs, any(y in xs, y > x))",
            r.clone(),
            Some(json!(2)),
        ),
        ("sum(k in keys(m), 1)", r.clone(), Some(json!(2))),
        (
            "count(v in values(m), v > 2) == 1",
            r.clone(),
            Some(json!(true)),
        ),
        // over nothing: the conditions are false, the values missing
        ("count(x in nope, x > 1)", r.clone(), None),
        ("map(x in s, x)", r.clone(), None),
        (
            "exists_one(x in nope, x > 1)",
            r.clone(),
            Some(json!(false)),
        ),
        // names that start comprehensions are still names and calls
        ("sum(xs)", r.clone(), Some(json!(6))),
        ("count ?? 0", r, Some(json!(0))),
    ]);
    let r = json!({"xs": [1, "a"], "ys": [1, 2]});
    check_value_errors(&[
        (
            "sum(x in xs, x)",
            r.clone(),
            "`sum(x in xs, x)`: element 1 is string \"a\", not a number",
        ),
        (
            "max(x in xs, x)",
            r.clone(),
            "`max(x in xs, x)`: cannot order int 1 and string \"a\"",
        ),
        (
            "count(x in xs, x)",
            r.clone(),
            "`x` is not true or false: it is int",
        ),
        ("map(y in ys, y / 0)", r, "division by zero in `y / 0`"),
    ]);
    // every element visited is a step
    let big: Vec<i64> = (0..1000).collect();
    let mut c = ctx();
    c.max_steps = 10_000;
    for expr in [
        "count(x in xs, count(y in xs, y > x) > 1)",
        "sum(x in xs, sum(y in xs, y))",
        "len(map(x in xs, filter(y in xs, y > x)))",
    ] {
        let got = value_program(expr).evaluate(&json!({ "xs": big }), &c);
        assert!(
            matches!(got, Err(EvalError::CostExceeded(10_000))),
            "{expr}: {got:?}"
        );
    }
}

#[test]
fn comprehensions_are_checked() {
    let file = "schema {\n  tags: list<string>\n  items: list<{ price: number, qty: int, sku: string }>\n  \
                total: number\n}\nrule r = total > 1\n";
    let set = RuleSet::compile(vec![Source::new("s.rules", file)], &Env::new()).unwrap();
    for (expr, code) in [
        ("count(i in items, i.price)", "E106"),
        ("sum(i in items, i.sku)", "E106"),
        ("max(i in items, i)", "E106"),
        ("map(i in total, i)", "E106"),
        ("filter(i in items, i.prise > 1)", "E101"),
    ] {
        expect_code(set.compile_value(expr), expr, code);
    }
    for (expr, ty) in [
        ("count(i in items, i.price > 1)", "int"),
        ("sum(i in items, i.qty)", "int"),
        ("sum(i in items, i.price)", "number"),
        ("max(i in items, i.sku)", "string"),
        ("map(i in items, i.sku)", "list<string>"),
        ("filter(t in tags, t != \"x\")", "list<string>"),
        ("exists_one(t in tags, t == \"x\")", "bool"),
    ] {
        expect_type(&set, expr, ty);
    }
}

#[test]
fn object_literals() {
    let r = json!({"name": "Ann", "n": 2, "m": {"a": 1}});
    check_values(&[
        ("{}", r.clone(), Some(json!({}))),
        (
            "{a: 1, \"content-type\": \"json\"}",
            r.clone(),
            Some(json!({"a": 1, "content-type": "json"})),
        ),
        (
            "{who: name, twice: n * 2}",
            r.clone(),
            Some(json!({"who": "Ann", "twice": 4})),
        ),
        ("{missing: nope}", r.clone(), Some(json!({"missing": null}))),
        (
            "{d: 2024-01-31, t: 30d}",
            r.clone(),
            Some(json!({"d": "2024-01-31", "t": "30d"})),
        ),
        ("{a: 1} == $m", r.clone(), Some(json!(true))),
        ("{a: 1.0} == $m", r.clone(), Some(json!(true))),
        ("{a: n} != $m", r.clone(), Some(json!(true))),
        ("keys({b: 1, a: 2})", r.clone(), Some(json!(["a", "b"]))),
        ("len({a: 1, b: [n]})", r.clone(), Some(json!(2))),
        (
            "map(x in [1, 2], {x: x})",
            r,
            Some(json!([{"x": 1}, {"x": 2}])),
        ),
    ]);
    let set = RuleSet::compile(
        vec![Source::new(
            "o.rules",
            "schema { n: int }\nrule big(o = {limit: 10}) = n > o.limit\n",
        )],
        &Env::new(),
    )
    .unwrap();
    let p = set.compile_expr("big({limit: 1}) and not big").unwrap();
    assert_eq!(p.matches(&json!({"n": 5}), &ctx()), Ok(true));
    expect_code(set.compile_value("{a: 1, a: 2}"), "{a: 1, a: 2}", "E111");
    expect_type(&set, "keys({a: n})", "list<string>");
    expect_type(&set, "values({a: n, b: 2})", "list<int>");
    expect_code(set.compile_value("len({a: 1}) > \"x\""), "len > x", "E106");
}

#[test]
fn string_functions() {
    let r =
        json!({"s": "  héllo wörld  ", "csv": "a,b,,c", "name": "Ann", "n": 5, "tags": ["x", "y"]});
    check_values(&[
        (
            "split(csv, \",\")",
            r.clone(),
            Some(json!(["a", "b", "", "c"])),
        ),
        (
            "split(\"abc\", \"\")",
            r.clone(),
            Some(json!(["a", "b", "c"])),
        ),
        ("split(\"\", \",\")", r.clone(), Some(json!([""]))),
        ("join(tags, \"-\")", r.clone(), Some(json!("x-y"))),
        ("join([], \"-\")", r.clone(), Some(json!(""))),
        (
            "join(split(csv, \",\"), \";\")",
            r.clone(),
            Some(json!("a;b;;c")),
        ),
        (
            "replace(csv, \",\", \"; \")",
            r.clone(),
            Some(json!("a; b; ; c")),
        ),
        ("replace(name, \"x\", \"y\")", r.clone(), Some(json!("Ann"))),
        ("substring(\"héllo\", 1, 3)", r.clone(), Some(json!("él"))),
        (
            "substring(name, 0, len(name))",
            r.clone(),
            Some(json!("Ann")),
        ),
        ("substring(name, 3, 3)", r.clone(), Some(json!(""))),
        ("index_of(\"héllo\", \"l\")", r.clone(), Some(json!(2))),
        ("index_of(name, \"z\")", r.clone(), Some(json!(-1))),
        ("index_of(name, \"\")", r.clone(), Some(json!(0))),
        ("trim_start(s)", r.clone(), Some(json!("héllo wörld  "))),
        ("trim_end(s)", r.clone(), Some(json!("  héllo wörld"))),
        ("trim(s)", r.clone(), Some(json!("héllo wörld"))),
        ("pad_start(\"7\", 3, \"0\")", r.clone(), Some(json!("007"))),
        ("pad_end(name, 5, \".\")", r.clone(), Some(json!("Ann.."))),
        ("pad_start(name, 2, \"0\")", r.clone(), Some(json!("Ann"))),
        ("pad_start(name, -1, \"0\")", r.clone(), Some(json!("Ann"))),
        ("split(nope, \",\")", r.clone(), None),
        ("\"b\" in split(csv, \",\")", r, Some(json!(true))),
    ]);
    let r = json!({"name": "Ann", "n": 5, "mixed": ["a", 1]});
    check_value_errors(&[
        (
            "substring(name, 2, 9)",
            r.clone(),
            "`substring(..)`: 2..9 is not a range of the 3 characters of string \"Ann\"",
        ),
        (
            "substring(name, 2, 1)",
            r.clone(),
            "`substring(..)`: 2..1 is not a range of the 3 characters of string \"Ann\"",
        ),
        (
            "replace(name, \"\", \"x\")",
            r.clone(),
            "`replace(..)`: the text to replace is empty",
        ),
        (
            "pad_start(name, 5, \"ab\")",
            r.clone(),
            "`pad_start(..)`: the fill string \"ab\" is not one character",
        ),
        (
            "join(mixed, \",\")",
            r.clone(),
            "`join(..)`: element 1 is int 1, not a string",
        ),
        (
            "pad_start(name, 100000000, \"x\")",
            r.clone(),
            "`pad_start(..)`: the result would be 100000000 bytes, more than the limit of 16777216",
        ),
        // a built-in given a value of a type it cannot take, without a schema
        (
            "split(n, \",\")",
            r.clone(),
            "`split(..)`: expects (string, string), found (int 5, string \",\")",
        ),
        (
            "lower(n)",
            r.clone(),
            "`lower(..)`: expects (string), found (int 5)",
        ),
        (
            "len(n)",
            r.clone(),
            "`len(..)`: expects (string | list | object), found (int 5)",
        ),
        (
            "sum(name)",
            r,
            "`sum(..)`: expects (list<number> | list<duration>), found (string \"Ann\")",
        ),
    ]);
}

#[test]
fn conversions() {
    let r = json!({"s": "42", "f": "2.5", "n": 7, "x": 3.0, "d": "2024-01-31", "t": "2024-01-31T12:00:00+02:00", "z": null});
    check_values(&[
        ("int(s)", r.clone(), Some(json!(42))),
        ("int(\"-7\")", r.clone(), Some(json!(-7))),
        ("int(x)", r.clone(), Some(json!(3))),
        ("int(n)", r.clone(), Some(json!(7))),
        ("int(s) + 1 == 43", r.clone(), Some(json!(true))),
        ("float(f)", r.clone(), Some(json!(2.5))),
        ("float(n)", r.clone(), Some(json!(7.0))),
        ("float(\"1e3\")", r.clone(), Some(json!(1000.0))),
        ("string(n)", r.clone(), Some(json!("7"))),
        ("string(2.5)", r.clone(), Some(json!("2.5"))),
        ("string(true)", r.clone(), Some(json!("true"))),
        ("string(30d)", r.clone(), Some(json!("30d"))),
        ("string([1, \"a\"])", r.clone(), Some(json!("[1,\"a\"]"))),
        ("string(n) + \"!\"", r.clone(), Some(json!("7!"))),
        ("date(d) + 1d", r.clone(), Some(json!("2024-02-01"))),
        ("date(t)", r.clone(), Some(json!("2024-01-31"))),
        (
            "datetime(t) < 2024-01-31T11:00:00Z",
            r.clone(),
            Some(json!(true)),
        ),
        (
            "datetime(d)",
            r.clone(),
            Some(json!("2024-01-31T00:00:00+00:00")),
        ),
        ("type(n)", r.clone(), Some(json!("int"))),
        ("type(x)", r.clone(), Some(json!("float"))),
        ("type(s)", r.clone(), Some(json!("string"))),
        ("type(z)", r.clone(), Some(json!("null"))),
        ("type(nope)", r.clone(), None),
        ("type([1])", r.clone(), Some(json!("list"))),
        ("type({})", r.clone(), Some(json!("object"))),
        ("type(2024-01-31)", r.clone(), Some(json!("date"))),
        ("int(nope)", r.clone(), None),
        ("int(z)", r, None),
    ]);
    let r = json!({"s": "4x", "f": 2.5, "big": 1e19, "b": true, "d": "2024-13-01", "l": [1]});
    check_value_errors(&[
        (
            "int(s)",
            r.clone(),
            "`int(..)`: cannot convert string \"4x\" to int",
        ),
        (
            "int(\"2.5\")",
            r.clone(),
            "`int(..)`: cannot convert string \"2.5\" to int",
        ),
        (
            "int(f)",
            r.clone(),
            "`int(..)`: cannot convert float 2.5 to int: it is not a whole number of 64 bits (round, floor and ceil make one)",
        ),
        (
            "int(big)",
            r.clone(),
            "`int(..)`: cannot convert float 1e19 to int: it is not a whole number of 64 bits (round, floor and ceil make one)",
        ),
        (
            "int(b)",
            r.clone(),
            "`int(..)`: cannot convert bool true to int",
        ),
        (
            "float(s)",
            r.clone(),
            "`float(..)`: cannot convert string \"4x\" to float",
        ),
        (
            "float(\"inf\")",
            r.clone(),
            "`float(..)`: cannot convert string \"inf\" to float",
        ),
        (
            "float(\"1e400\")",
            r.clone(),
            "`float(..)`: cannot convert string \"1e400\" to float",
        ),
        (
            "date(d)",
            r.clone(),
            "`date(..)`: cannot convert string \"2024-13-01\" to date (write it as YYYY-MM-DD)",
        ),
        (
            "datetime(d)",
            r.clone(),
            "`datetime(..)`: cannot convert string \"2024-13-01\" to datetime (write it in RFC 3339, such as 2024-01-31T12:00:00Z)",
        ),
        ("date(l)", r, "`date(..)`: cannot convert list [1] to date"),
    ]);
    let set = RuleSet::compile(
        vec![Source::new(
            "c.rules",
            "schema { code: string }\nrule r = int(code) > 1\n",
        )],
        &Env::new(),
    )
    .unwrap();
    expect_type(&set, "int(code)", "int");
    expect_type(&set, "date(code)", "date");
    expect_type(&set, "type(code)", "string");
}

#[test]
fn computed_indexes() {
    let r = json!({
        "items": [{"price": 5}, {"price": 20}], "i": 1, "xs": [10, 20, 30],
        "headers": {"content-type": "json", "x-id": "7"}, "name": "x-id", "s": "str"
    });
    check_values(&[
        ("xs[i]", r.clone(), Some(json!(20))),
        ("xs[i + 1]", r.clone(), Some(json!(30))),
        ("xs[len(xs) - 1]", r.clone(), Some(json!(30))),
        ("xs[ 0]", r.clone(), Some(json!(10))),
        ("items[i].price", r.clone(), Some(json!(20))),
        (
            "items[i - 1].price < items[i].price",
            r.clone(),
            Some(json!(true)),
        ),
        ("headers[name]", r.clone(), Some(json!("7"))),
        (
            "headers[\"content-\" + \"type\"]",
            r.clone(),
            Some(json!("json")),
        ),
        ("$headers[name] == \"7\"", r.clone(), Some(json!(true))),
        ("xs[i + 5]", r.clone(), None),
        ("xs[-1]", r.clone(), None),
        ("xs[nope]", r.clone(), None),
        ("nope[i]", r.clone(), None),
        ("headers[\"nope\" + \"\"]", r.clone(), None),
        ("sum(j in [0, 1], xs[j])", r.clone(), Some(json!(30))),
        (
            "map(k in keys(headers), headers[k])",
            r,
            Some(json!(["json", "7"])),
        ),
    ]);
    let r = json!({"xs": [1], "m": {"a": 1}, "s": "str", "f": 0.5});
    check_value_errors(&[
        (
            "xs[s]",
            r.clone(),
            "`xs[s]`: cannot index list [1] by string \"str\"",
        ),
        (
            "xs[f]",
            r.clone(),
            "`xs[f]`: cannot index list [1] by float 0.5",
        ),
        (
            "m[xs[0]]",
            r.clone(),
            "`m[xs[0]]`: cannot index object {\"a\":1} by int 1",
        ),
        (
            "s[xs[0] - 1]",
            r,
            "`s[xs[0] - 1]`: cannot index string \"str\" by int 0",
        ),
    ]);
    let file = "schema {\n  tags: list<string>\n  i: int\n  name: string\n  \
                address: { city: string }\n}\nrule r = tags[i] == \"x\"\n";
    let set = RuleSet::compile(vec![Source::new("s.rules", file)], &Env::new()).unwrap();
    expect_type(&set, "tags[i]", "string");
    expect_type(&set, "address[name]", "any");
    expect_type(&set, "tags[i + 1]", "string");
    expect_code(set.compile_value("tags[name]"), "tags[name]", "E115");
    expect_code(set.compile_value("i[i]"), "i[i]", "E115");
    expect_code(set.compile_value("tags[j]"), "tags[j]", "E101");
}
