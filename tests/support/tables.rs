//! The semantics tables' helpers: a fixed clock, compiling expressions, and
//! rows run through every evaluation path.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rulesaga::{Context, Env, Program, RuleSet, Source};
use serde_json::json;

pub fn ctx() -> Context {
    Context::at(chrono::DateTime::parse_from_rfc3339("2024-06-15T12:00:00Z").unwrap())
}

pub fn program(expr: &str) -> Program {
    Program::compile(Source::new("<expr>", expr), &Env::new())
        .unwrap_or_else(|d| panic!("`{expr}` does not compile:\n{d}"))
}

pub fn value_program(expr: &str) -> Program {
    Program::compile_value(Source::new("<expr>", expr), &Env::new())
        .unwrap_or_else(|d| panic!("`{expr}` does not compile:\n{d}"))
}

/// Each row: value expression, record, expected JSON value (`None`: missing),
/// through `evaluate` (the closures); a value that is a condition is also run
/// through `matches` (the flat path where it applies) and `explain`.
pub fn check_values(rows: &[(&str, serde_json::Value, Option<serde_json::Value>)]) {
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
pub fn check_value_errors(rows: &[(&str, serde_json::Value, &str)]) {
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

/// `expr` compiles in `set` as a value of type `ty`.
pub fn expect_type(set: &RuleSet, expr: &str, ty: &str) {
    let p = set
        .compile_value(expr)
        .unwrap_or_else(|e| panic!("`{expr}`: {e}"));
    assert_eq!(p.result_type().to_string(), ty, "`{expr}`");
}

/// `expr` did not compile, with `code` among its diagnostics.
pub fn expect_code(compiled: Result<Program, rulesaga::Diagnostics>, expr: &str, code: &str) {
    let err = compiled.expect_err(expr);
    let codes: Vec<&str> = err.items.iter().map(|d| d.code).collect();
    assert!(codes.contains(&code), "`{expr}`: {codes:?}");
}
