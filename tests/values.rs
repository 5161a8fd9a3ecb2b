//! The semantics of values in docs/language.md, as data-driven tables: choices
//! and defaults, list and object functions, comprehensions, object literals,
//! strings, conversions, computed indexes; each row through the closures, the
//! flat path and explain where it is a condition, and the compile errors and
//! types a schema gives.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rulesaga::{Env, EvalError, Program, RuleSet, Source};
use serde_json::json;

mod support;
use support::tables::*;

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
    // as a condition, one message on every path, the flat one included
    let p = program("n ?? false");
    let want = "`n ?? false` is not true or false: it is int";
    let r = json!({"n": 3});
    assert_eq!(p.matches(&r, &ctx()).unwrap_err().to_string(), want);
    assert_eq!(p.matches_typed(&r, &ctx()).unwrap_err().to_string(), want);
    assert_eq!(p.explain(&r, &ctx()).unwrap_err().to_string(), want);
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
        ("count(tags)", "E103"),
        ("map(t in tags)", "E103"),
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
            r.clone(),
            Some(json!(["json", "7"])),
        ),
        (
            "has(headers[name]) and not has(headers[\"x-\" + name])",
            r.clone(),
            Some(json!(true)),
        ),
        ("has(xs[i]) and not has(xs[i + 5])", r, Some(json!(true))),
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
