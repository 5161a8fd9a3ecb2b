//! Saga expressions are checked by the rules checker against what each position may read:
//! one table of saga files and the diagnostics each must give (none: it loads).
//!
//! A diagnostic is written `CODE LINE:COL `TEXT UNDER THE CARET` MESSAGE (help: HELP)`, so
//! every row also checks that the span is exactly the offending name.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use rulesaga::saga::{Catalog, HandlerRegistry, validate};
use rulesaga::{Diagnostics, Source};

fn catalog() -> Catalog {
    let repositories = ["accounts", "discounts", "inventory", "orders"];
    Catalog {
        repositories: Some(repositories.map(String::from).to_vec()),
        ..Catalog::new(&HandlerRegistry::with_builtins())
    }
}

fn render(diags: &Diagnostics) -> Vec<String> {
    diags
        .items
        .iter()
        .map(|d| {
            let (line, col) = diags.source.line_col(d.span.start);
            let under = &diags.source.text[d.span.range()];
            let help = d
                .help
                .as_ref()
                .map_or(String::new(), |h| format!(" (help: {h})"));
            format!("{} {line}:{col} `{under}` {}{help}", d.code, d.message)
        })
        .collect()
}

/// (what the row shows, the saga, its diagnostics)
const CASES: &[(&str, &str, &[&str])] = &[
    (
        "input types are the rules language's, with did-you-mean; one type per field",
        r#"saga: s
input:
  a: strng
  b: 'list<{amount: numbr}>'
  c: int } rule x = 1
  d: 'list<{amount: number, paid: bool}>'
  e: standard | vip
steps:
  - name: a
    action: {handler: echo}
    compensation: none
"#,
        &[
            "S021 3:6 `strng` unknown type `strng` (help: did you mean `string`?)",
            "S021 4:6 `'list<{amount: numbr}>'` unknown type `numbr` (help: did you mean `number`?)",
            "S021 5:6 `int } rule x = 1` `int } rule x = 1` is not a type",
        ],
    ),
    (
        "a typo in `input` is an unknown name, with did-you-mean",
        r#"saga: s
steps:
  - name: a
    when: 'inptu.tier == vip'
    action: {handler: echo}
    compensation: none
"#,
        &["S013 4:12 `inptu` unknown name `inptu` (help: did you mean `input`?)"],
    ),
    (
        "a step name inside a string literal is text, not a reference",
        r#"saga: s
steps:
  - name: a
    when: 'input.note == "see steps.ghost"'
    action: {handler: echo}
    compensation: none
"#,
        &[],
    ),
    (
        "an unknown input field, with did-you-mean",
        r#"saga: s
input:
  tier: string
steps:
  - name: a
    when: input.teir == vip
    action: {handler: echo}
    compensation: none
"#,
        &["S014 6:17 `teir` the input has no field `teir` (help: did you mean `tier`?)"],
    ),
    (
        "an unknown input field inside a larger expression, nothing close",
        r#"saga: s
input:
  tier: string
steps:
  - name: a
    when: input.tier == vip and input.amount > 10
    action: {handler: echo}
    compensation: none
"#,
        &["S014 6:39 `amount` the input has no field `amount` (help: the input declares `tier`)"],
    ),
    (
        "without an `input` block, input fields are not checked",
        r#"saga: s
steps:
  - name: a
    when: input.anything > 1
    action: {handler: echo}
    compensation: none
"#,
        &[],
    ),
    (
        "declared input types are checked",
        r#"saga: s
input:
  total: number
steps:
  - name: a
    when: input.total == "big"
    action: {handler: echo}
    compensation: none
"#,
        &[
            "S013 6:11 `input.total == \"big\"` invalid expression: cannot compare number with string using `==`",
        ],
    ),
    (
        "a later step's output",
        r#"saga: s
steps:
  - name: a
    action: {handler: echo, args: {x: steps.b.x + 1}}
    compensation: none
  - name: b
    action: {handler: echo}
    compensation: none
"#,
        &["S014 4:45 `b` step `b` runs later, so its output is not available here"],
    ),
    (
        "a later step's output, as a plain path",
        r#"saga: s
steps:
  - name: a
    action: {get: orders, id: steps.b.id}
  - name: b
    action: {handler: echo}
    compensation: none
"#,
        &["S014 4:37 `b` step `b` runs later, so its output is not available here"],
    ),
    (
        "a step's own output in its action",
        r#"saga: s
steps:
  - name: a
    action: {handler: echo, args: {x: steps.a.x}}
    compensation: none
"#,
        &["S014 4:45 `a` step `a` cannot read its own output here"],
    ),
    (
        "a step's own output in its outputs: the action's result is `result`",
        r#"saga: s
steps:
  - name: a
    action: {handler: echo}
    compensation: none
    outputs: {total: steps.a.total}
"#,
        &[
            "S014 6:28 `a` step `a` cannot read its own output here (help: in `outputs`, the action's result is `result`)",
        ],
    ),
    (
        "a compensation reads its own step's output",
        r#"saga: s
steps:
  - name: a
    action: {handler: echo}
    compensate: {handler: echo, args: {x: steps.a.total}}
    outputs: {total: result.total}
"#,
        &[],
    ),
    (
        "an unknown output, with did-you-mean",
        r#"saga: s
steps:
  - name: a
    action: {handler: echo}
    compensation: none
    outputs: {total: result.total}
  - name: b
    when: steps.a.totl > 1
    action: {handler: echo}
    compensation: none
"#,
        &["S014 8:19 `totl` step `a` has no output `totl` (help: did you mean `total`?)"],
    ),
    (
        "an unknown output, nothing close",
        r#"saga: s
steps:
  - name: a
    action: {handler: echo}
    compensation: none
    outputs: {total: result.total}
  - name: b
    when: steps.a.count > 1
    action: {handler: echo}
    compensation: none
"#,
        &["S014 8:19 `count` step `a` has no output `count` (help: its outputs are `total`)"],
    ),
    (
        "an unknown step, with did-you-mean",
        r#"saga: s
steps:
  - name: charge
    action: {handler: echo}
    compensation: none
  - name: b
    when: steps.chrage.ok
    action: {handler: echo}
    compensation: none
"#,
        &["S014 7:17 `chrage` unknown step `chrage` (help: did you mean `charge`?)"],
    ),
    (
        "`entity` outside update and delete",
        r#"saga: s
steps:
  - name: a
    action: {insert: orders, id: input.id, values: {qty: entity.qty + 1}}
    compensation: none
"#,
        &[
            "S013 4:58 `entity` `entity` is not available here (help: only an `update`'s `values` and the `expect` of `update` and `delete` read the current `entity`)",
        ],
    ),
    (
        "`result` outside outputs",
        r#"saga: s
steps:
  - name: a
    when: result.ok and input.go
    action: {handler: echo}
    compensation: none
"#,
        &[
            "S013 4:11 `result` `result` is not available here (help: only `outputs` read the action's `result`)",
        ],
    ),
    (
        "a literal string written without quotes",
        r#"saga: s
steps:
  - name: a
    action: {insert: orders, id: input.id, values: {status: pending}}
    compensation: none
"#,
        &[
            r#"S013 4:61 `pending` unknown name `pending` (help: for the literal string, write '"pending"')"#,
        ],
    ),
    (
        "a bare word inside an expression",
        r#"saga: s
steps:
  - name: a
    when: input.total > limit
    action: {handler: echo}
    compensation: none
"#,
        &["S013 4:25 `limit` unknown name `limit` (help: expressions here read `input`, `steps`)"],
    ),
    (
        "`find where:` reads the entity's fields by any name, and the saga's roots",
        r#"saga: s
input:
  min: number
steps:
  - name: a
    action: {handler: echo}
    compensation: none
    outputs: {limit: result.limit}
  - name: b
    action: {find: orders, where: 'status == open and total < steps.a.limit and any(line in lines, line.qty > input.min)'}
"#,
        &[],
    ),
    (
        "`find where:` checks `input` and `steps` paths",
        r#"saga: s
input:
  min: number
steps:
  - name: a
    action: {find: orders, where: 'status == open and total > input.mni or total < steps.b.limit'}
  - name: b
    action: {handler: echo}
    compensation: none
"#,
        &[
            "S014 6:69 `mni` the input has no field `mni` (help: did you mean `min`?)",
            "S014 6:90 `b` step `b` runs later, so its output is not available here",
        ],
    ),
    (
        "`find where:` reads the entity's fields by name, not through `entity`",
        r#"saga: s
steps:
  - name: a
    action: {find: orders, where: entity.status == open}
"#,
        &[
            "S013 4:35 `entity` `entity` is not available here (help: `where` reads the entity's fields by name: write `status`)",
        ],
    ),
    (
        "spans point into single-quoted scalars with escaped quotes",
        r#"saga: s
steps:
  - name: a
    when: 'input.note == ''x'' or inptu.ok'
    action: {handler: echo}
    compensation: none
"#,
        &["S013 4:35 `inptu` unknown name `inptu` (help: did you mean `input`?)"],
    ),
    (
        "spans point into block scalars",
        r#"saga: s
steps:
  - name: a
    when: |
      input.note == "x"
        or steps.ghost.ok
    action: {handler: echo}
    compensation: none
"#,
        &["S014 6:18 `ghost` unknown step `ghost`"],
    ),
    (
        "a syntax error points at its place in the expression",
        r#"saga: s
steps:
  - name: a
    when: input.total > (1
    action: {handler: echo}
    compensation: none
"#,
        &["S013 4:27 `` invalid expression: expected `)`"],
    ),
];

#[test]
fn expressions_are_checked_against_what_each_position_reads() {
    let mut failures = Vec::new();
    for (what, text, expected) in CASES {
        let got = match validate::load(Source::new("s.yaml", *text), &catalog()) {
            Ok(_) => Vec::new(),
            Err(diags) => render(&diags),
        };
        if got != *expected {
            failures.push(format!(
                "{what}:\n  expected {expected:#?}\n  got      {got:#?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
