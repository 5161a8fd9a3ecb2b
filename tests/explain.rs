//! Explanations that are right: every clause that decided a result is among
//! its causes, with the truth value it had and the values it read, through
//! `not`, `any`/`all`, rule references and parameters; and each cause's
//! clause, evaluated alone on the record, has that truth value.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use rulesaga::rules::{Cause, Explanation};
use rulesaga::{Context, Env, Program, RuleSet, Source};
use serde_json::json;

fn ctx() -> Context {
    Context::at(chrono::DateTime::parse_from_rfc3339("2024-06-15T12:00:00Z").unwrap())
}

fn explain(expr: &str, record: &serde_json::Value) -> Explanation {
    let p = Program::compile(Source::new("<e>", expr), &Env::new()).unwrap();
    p.explain(record, &ctx()).unwrap()
}

/// `not` used to hide the clause under it: a clause that held and so failed
/// the `not` was no reason at all.
#[test]
fn a_clause_under_not_is_a_cause() {
    let e = explain(
        "memo is null or not (lower(memo) contains \"crypto\")",
        &json!({"memo": "Buy CRYPTO"}),
    );
    assert!(!e.matched);
    assert_eq!(
        e.reasons(),
        [
            "needs memo to be null (is Buy CRYPTO)",
            "needs `lower(memo) contains \"crypto\"` to be false (memo = \"Buy CRYPTO\")",
        ]
    );
    let causes = e.causes();
    assert_eq!(
        causes[1].clause.as_deref(),
        Some("lower($memo) contains \"crypto\"")
    );
    assert!(causes[1].holds);
}

/// A failed `all` named no element: the element that failed is the cause,
/// written as a path to it.
#[test]
fn the_element_that_decided_a_quantifier_is_a_cause() {
    let loans = json!({"loans": [{"defaulted": false}, {"defaulted": true}, {"defaulted": true}]});
    let e = explain("all(l in loans, not l.defaulted)", &loans);
    assert!(!e.matched);
    let causes = e.causes();
    assert_eq!(causes.len(), 1);
    assert_eq!(causes[0].clause.as_deref(), Some("$loans[1].defaulted"));
    assert!(causes[0].holds);
    assert_eq!(causes[0].reads[0].name, "loans[1].defaulted");
    assert_eq!(
        e.reasons(),
        ["needs `l.defaulted` to be false (loans[1].defaulted = true)"]
    );
    // `any` that matched: the element; `any` that did not: the quantifier itself
    let e = explain("any(l in loans, l.defaulted)", &loans);
    assert_eq!(e.causes()[0].clause.as_deref(), Some("$loans[1].defaulted"));
    let e = explain(
        "any(l in loans, l.defaulted)",
        &json!({"loans": [{"defaulted": false}]}),
    );
    assert_eq!(e.reasons(), ["no element of 1 matches"]);
    assert_eq!(
        e.causes()[0].clause.as_deref(),
        Some("any(l in $loans, l.defaulted)")
    );
    // elements of a computed list are written as their values
    let e = explain("any(x in [$n, 2], x > 1)", &json!({"n": 5}));
    assert_eq!(e.causes()[0].clause.as_deref(), Some("5 > 1"));
}

/// Through rule references and their parameters: the clause with the
/// argument's value, standalone.
#[test]
fn causes_through_rules_and_parameters() {
    let set = RuleSet::compile(
        vec![Source::new(
            "r.rules",
            "rule high(t = 100) = total >= t\nrule risky = any(l in loans, l.defaulted)\n\
             rule ok = high(50) and not risky\n",
        )],
        &Env::new(),
    )
    .unwrap();
    let record = json!({"total": 40, "loans": [{"defaulted": true}]});
    let e = set.rule("ok").unwrap().explain(&record, &ctx()).unwrap();
    let causes: Vec<(Option<String>, bool)> = e
        .causes()
        .into_iter()
        .map(|c| (c.clause, c.holds))
        .collect();
    assert_eq!(
        causes,
        [
            (Some("$total >= 50".to_string()), false),
            (Some("$loans[0].defaulted".to_string()), true),
        ]
    );
    assert_eq!(e.reasons()[0], "needs total ≥ 50 (is 40)");
    // a match has causes too: what made it hold
    let e = set
        .rule("ok")
        .unwrap()
        .explain(&json!({"total": 60, "loans": []}), &ctx())
        .unwrap();
    assert!(e.matched);
    assert_eq!(
        e.reasons(),
        [
            "`total >= t` holds (total = 60)",
            "`any(l in loans, l.defaulted)` does not hold (loans = [])"
        ]
    );
}

// ----- the property: each cause's clause, alone, has the truth value stated ---

/// Random conditions over a few fields, a list of objects and two rules.
fn condition() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        (
            prop::sample::select(vec!["a", "b", "$a", "l[0].x"]),
            0..4usize,
            -3i64..4
        )
            .prop_map(|(f, op, k)| format!("{f} {} {k}", ["==", "!=", "<", ">="][op])),
        prop::sample::select(vec![
            "s == \"x\"",
            "s in [\"x\", \"y\"]",
            "s is null",
            "a is not null",
            "c",
            "a between -1 and 2",
            "a + b > 1",
            "len(l) > 1",
            "lower(s) starts_with \"x\"",
            "big",
            "big(1)",
            "flag",
            "true",
            "false",
            "(a ?? 1) > 0",
            "b ?? c",
            "has(l[0].x)",
            "has(s)",
            "len(filter(e in l, e.f)) > 1",
            "exists_one(e in l, e.x > 0)",
            "sum(e in l, e.x) > 1",
        ])
        .prop_map(ToString::to_string),
    ];
    leaf.prop_recursive(4, 24, 3, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(x, y)| format!("({x} and {y})")),
            (inner.clone(), inner.clone()).prop_map(|(x, y)| format!("({x} or {y})")),
            inner.clone().prop_map(|x| format!("not ({x})")),
            (inner.clone(), inner.clone(), inner.clone())
                .prop_map(|(x, y, z)| format!("(if {x} then {y} else {z})")),
            (inner.clone(), any::<bool>()).prop_map(|(x, all)| {
                // the element's fields: the predicate reads `e.x` and `e.f` instead of `a`, `c`
                let body = x
                    .replace("$a", "e.x")
                    .replace("l[0].x", "e.x")
                    .replace("c", "e.f");
                format!("{}(e in l, {body})", if all { "all" } else { "any" })
            }),
        ]
    })
}

fn record() -> impl Strategy<Value = serde_json::Value> {
    let int = prop_oneof![
        (-3i64..4).prop_map(|n| json!(n)),
        Just(json!(null)),
        Just(json!("str")),
    ];
    let element = (
        int.clone(),
        prop_oneof![Just(json!(true)), Just(json!(false))],
    )
        .prop_map(|(x, f)| json!({"x": x, "f": f}));
    (
        int.clone(),
        int,
        prop::option::of(prop::sample::select(vec!["x", "y", "X"])),
        any::<bool>(),
        prop::collection::vec(element, 0..4),
    )
        .prop_map(|(a, b, s, c, l)| json!({"a": a, "b": b, "s": s, "c": c, "l": l}))
}

const RULES: &str = "rule big(t = 0) = a > t\nrule flag = c and s != \"y\"\n";

fn check_causes(
    causes: &[Cause],
    record: &serde_json::Value,
    text: &str,
) -> Result<(), TestCaseError> {
    for cause in causes {
        let Some(clause) = &cause.clause else {
            continue;
        };
        let alone = Program::compile(Source::new("<clause>", clause.clone()), &Env::new())
            .map_err(|d| TestCaseError::fail(format!("clause `{clause}` of `{text}`: {d}")))?;
        let holds = alone.matches(record, &ctx());
        prop_assert_eq!(
            holds,
            Ok(cause.holds),
            "`{}` says `{}` is {} on {}",
            text,
            clause,
            cause.holds,
            record
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn every_cause_has_the_truth_value_it_states(text in condition(), record in record()) {
        let set = RuleSet::compile(
            vec![Source::new("r.rules", format!("{RULES}rule t = {text}\n"))],
            &Env::new(),
        )
        .unwrap();
        let program = set.rule("t").unwrap();
        let Ok(e) = program.explain(&record, &ctx()) else {
            return Ok(());
        };
        prop_assert_eq!(Ok(e.matched), program.matches(&record, &ctx()));
        let causes = e.causes();
        prop_assert!(!causes.is_empty(), "`{}` on {} has no cause", text, record);
        check_causes(&causes, &record, &text)?;
        // and they explain the result: a failed `and` or `or` lists a failing clause
        if !e.matched {
            prop_assert!(causes.iter().any(|c| c.clause.is_none() || !c.holds || c.message.starts_with("needs")));
        }
    }
}
