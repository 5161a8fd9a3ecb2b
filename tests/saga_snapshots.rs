//! Snapshots of loaded sagas and of validation diagnostics.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use rulesaga::repo::{MemoryRepository, Repository};
use rulesaga::saga::{Catalog, HandlerRegistry, validate};
use rulesaga::{Env, RuleSet, Source};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn catalog() -> Catalog {
    let store: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{ROOT}/sagas/store.json")).unwrap())
            .unwrap();
    let rules = RuleSet::load(
        &[format!("{ROOT}/specs/discount.rules").into()],
        &Env::default(),
    )
    .unwrap();
    Catalog {
        repositories: Some(MemoryRepository::from_json(&store).unwrap().repositories()),
        rules: Some(rules),
        ..Catalog::new(&HandlerRegistry::with_builtins())
    }
}

fn load_file(name: &str) -> rulesaga::Saga {
    let text = std::fs::read_to_string(format!("{ROOT}/sagas/{name}")).unwrap();
    validate::load(Source::new(format!("sagas/{name}"), text), &catalog())
        .unwrap_or_else(|d| panic!("{d}"))
}

fn diagnostics(text: &str) -> Vec<serde_json::Value> {
    match validate::load(Source::new("bad.yaml", text), &catalog()) {
        Ok(_) => panic!("expected errors"),
        Err(d) => d.to_json(),
    }
}

#[test]
fn place_order_model() {
    insta::assert_yaml_snapshot!(load_file("place_order.yaml"));
}

#[test]
fn place_order_http_model() {
    insta::assert_yaml_snapshot!(load_file("place_order_http.yaml"));
}

#[test]
fn apply_discount_model() {
    insta::assert_yaml_snapshot!(load_file("apply_discount.yaml"));
}

/// The Mermaid drawing of every shipped saga.
#[test]
fn graphs_of_the_shipped_sagas() {
    for name in ["place_order", "place_order_http", "apply_discount"] {
        let saga = load_file(&format!("{name}.yaml"));
        insta::assert_snapshot!(
            format!("graph_{name}"),
            rulesaga::saga::graph::mermaid(&saga)
        );
    }
}

/// A skipped step's edge, failures after the pivot and failed compensations ending in
/// `failed`, and a step that may time out compensated itself.
#[test]
fn graph_of_skips_timeouts_and_failures() {
    let text = r#"saga: drawn
steps:
  - name: hold
    timeout: 2s
    action: {handler: echo}
    compensate: {handler: echo}
  - name: maybe
    when: input.vip
    require: {rule: discount}
    action: {handler: echo}
    compensation: none
  - name: commit
    pivot: true
    action: {handler: echo}
  - name: notify
    retry: {max_attempts: unlimited, initial_backoff: 10ms}
    action: {handler: echo}
"#;
    let saga = validate::load(Source::new("drawn.yaml", text), &catalog()).unwrap();
    let drawn = rulesaga::saga::graph::mermaid(&saga);
    for edge in [
        "s0 -->|then| s1",
        "s0 -->|skip| s2",
        "s0 -. times out .-> u0",
        "s1 -. fails .-> u0",
        "s3 -. fails .-> failed",
        "u0 -. fails .-> failed",
    ] {
        assert!(drawn.contains(edge), "no `{edge}` in\n{drawn}");
    }
    insta::assert_snapshot!(drawn);
}

#[test]
fn validation_collects_every_error() {
    let text = r#"saga: broken
input:
  order_id: string
  total: nubmer
deadline: soon
steps:
  - name: create
    action: {insert: ordres, id: input.order_id, values: {status: created}}
    compensate: {delete: orders, id: input.ordr_id}
  - name: create
    action: {handler: chrage, args: {amount: steps.pay.amount}}
    compensation: maybe
  - name: reserve
    retry: {max_attempts: 0, initial_backoff: 1 s, multiplier: 0.5, jitter: 2}
    timeout: 0ms
    action: {update: inventory, id: input.sku, values: {qty: entity.qty - 1}}
  - name: pay
    require: {rule: discont}
    action: {get: accounts, values: {x: 1}}
    pivot: true
    compensate: {handler: echo}
  - name: after
    action: {handler: echo}
"#;
    insta::assert_json_snapshot!(diagnostics(text));
}

#[test]
fn unknown_keys_get_a_suggestion() {
    insta::assert_json_snapshot!(diagnostics(
        "saga: x\nsteps:\n  - name: a\n    action: {noop: true}\n    retry:\n      max_atempts: 3\n"
    ));
}

#[test]
fn duplicate_keys_are_rejected() {
    insta::assert_json_snapshot!(diagnostics(
        "saga: x\nsteps:\n  - name: a\n    action: {noop: true}\n    when: input.a\n    when: input.b\n"
    ));
}

#[test]
fn bare_words_are_expressions_and_literal_strings_are_quoted() {
    insta::assert_json_snapshot!(diagnostics(
        "saga: x\nsteps:\n  - name: a\n    action: {insert: orders, id: '\"o1\"', values: {status: pending}}\n    compensation: none\n"
    ));
    let ok = validate::load(
        Source::new(
            "ok.yaml",
            "saga: x\nsteps:\n  - name: a\n    action: {insert: orders, id: '\"o1\"', values: {status: '\"pending\"', other: \"'pending'\", n: 3, none: null}}\n    compensation: none\n",
        ),
        &catalog(),
    )
    .unwrap();
    insta::assert_yaml_snapshot!(ok.steps()[0].action());
}

#[test]
fn hostile_yaml_is_refused_without_panicking() {
    // alias bomb
    let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x]\n");
    for i in 0..12 {
        bomb.push_str(&format!(
            "b{i}: &b{i} [*{}, *{}, *{}, *{}]\n",
            if i == 0 {
                "a".to_string()
            } else {
                format!("b{}", i - 1)
            },
            if i == 0 {
                "a".to_string()
            } else {
                format!("b{}", i - 1)
            },
            if i == 0 {
                "a".to_string()
            } else {
                format!("b{}", i - 1)
            },
            if i == 0 {
                "a".to_string()
            } else {
                format!("b{}", i - 1)
            }
        ));
    }
    assert!(validate::load(Source::new("bomb.yaml", bomb), &catalog()).is_err());
    // deep nesting
    let deep = format!("saga: x\nsteps: {}{}\n", "[".repeat(500), "]".repeat(500));
    assert!(validate::load(Source::new("deep.yaml", deep), &catalog()).is_err());
    // too many steps
    let mut many = String::from("saga: x\nsteps:\n");
    for i in 0..300 {
        many.push_str(&format!("  - {{name: s{i}, action: {{noop: true}}}}\n"));
    }
    let err = validate::load(Source::new("many.yaml", many), &catalog()).unwrap_err();
    assert!(err.items[0].message.contains("at most 256 steps"));
    // garbage
    for text in ["", "[", "saga: [1", "\u{0}", "steps: 3", "- - -"] {
        assert!(validate::load(Source::new("g.yaml", text), &catalog()).is_err());
    }
}

#[test]
fn expression_errors_point_into_the_expression() {
    let diags = diagnostics(
        "saga: s\nsteps:\n  - name: a\n    action: {get: orders, id: input.id}\n    outputs: {total: result.total}\n  - name: b\n    when: steps.a.totl > (1\n    action: {noop: true}\n    compensation: none\n",
    );
    let summary: Vec<(String, u64, u64)> = diags
        .iter()
        .map(|d| {
            (
                d["code"].as_str().unwrap().to_string(),
                d["line"].as_u64().unwrap(),
                d["column"].as_u64().unwrap(),
            )
        })
        .collect();
    // the syntax error points at its place in the expression, not at its start; an
    // expression that does not parse has no names to check, so `totl` waits for the fix
    assert_eq!(summary, [("S013".to_string(), 7, 28)], "{diags:#?}");
}
