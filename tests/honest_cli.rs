//! Issue 9, through the CLI: every case here once exited 0 with a wrong or
//! meaningless answer. Each row is a run of the binary with the files it needs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use support::cli::{Case, check_cases};

const ONE: &str = r#"{"a": 1, "n": 5, "total": 20, "name": "Al"}"#;

/// A condition must be true or false: a value where one is expected is E106;
/// value rules and `--value` print values instead.
#[test]
fn conditions_are_boolean() {
    let mut cases = Vec::new();
    for expr in ["1 + 1", "17", "\"apple\"", "null", "[1, 2]"] {
        cases.push(Case {
            files: &[("r.json", ONE)],
            args: Box::leak(Box::new(["eval", "-e", expr, "--data", "r.json"])),
            exit: 1,
            stdout: &[],
            stderr: &["E106", "expected a condition"],
        });
    }
    cases.extend([
        Case {
            files: &[(
                "a.rules",
                "schema { a: int }\nrule r = a\nrule s = r and true\n",
            )],
            args: &["check", "a.rules"],
            exit: 1,
            stdout: &[],
            stderr: &["E106", "expected a condition, found int"],
        },
        Case {
            files: &[
                ("a.rules", "schema { a: int }\nrule r = a\n"),
                ("r.json", ONE),
            ],
            args: &[
                "eval", "--rules", "a.rules", "--rule", "r", "--data", "r.json",
            ],
            exit: 1,
            stdout: &[],
            stderr: &["rule `r` is a value (int), not a condition", "--value"],
        },
        Case {
            files: &[
                ("a.rules", "schema { a: int }\nrule r = a * 10\n"),
                ("r.json", ONE),
            ],
            args: &[
                "eval", "--rules", "a.rules", "--rule", "r", "--value", "--data", "r.json",
                "--output", "jsonl",
            ],
            exit: 0,
            stdout: &[r#"{"index":0,"value":10}"#],
            stderr: &[],
        },
        Case {
            files: &[("r.json", ONE)],
            args: &[
                "eval",
                "--value",
                "-e",
                "lower(name) + \"!\"",
                "--data",
                "r.json",
            ],
            exit: 0,
            stdout: &["value", "al!"],
            stderr: &[],
        },
        // without a schema the data decides: a value that is not true or false is an error
        Case {
            files: &[("r.json", ONE)],
            args: &["eval", "-e", "n", "--data", "r.json"],
            exit: 2,
            stdout: &[],
            stderr: &["record 0: `n` is not true or false: it is int"],
        },
        // an expression may start with `-`
        Case {
            files: &[("r.json", ONE)],
            args: &[
                "eval", "-e", "-n < 0", "--data", "r.json", "--output", "jsonl",
            ],
            exit: 0,
            stdout: &[r#"{"index":0,"matched":true}"#],
            stderr: &[],
        },
    ]);
    check_cases(&cases);
}
