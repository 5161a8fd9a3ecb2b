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

const LOANS: &str = "schema {\n  name: string\n  applicant: { dob: date, city?: string }\n  \
    previous_loans: list<{ amount: number, defaulted: bool }>\n}\n\
    rule adult = applicant.dob + 6575d <= today()\n\
    rule clean = all(l in previous_loans, not l.defaulted)\n";

const LOANS_DATA: &str = r#"[
  {"name": "ok", "applicant": {"dob": "1990-01-01"}, "previous_loans": [{"amount": 5, "defaulted": false}]},
  {"name": "lots", "applicant": {"dob": "1990-01-01"}, "previous_loans": [{"amount": "lots", "defaulted": "yes"}]},
  {"name": "nope", "applicant": {"dob": "nope"}, "previous_loans": []},
  {"name": "nested missing", "applicant": {}, "previous_loans": []}
]"#;

/// Records are checked against the whole schema, nested objects and list
/// elements included, in eval, --explain, diff and test files; the first bad
/// value is named by its path. A value the schema declares a date is a date.
#[test]
fn nested_data_is_validated_everywhere() {
    check_cases(&[
        Case {
            files: &[("l.rules", LOANS), ("d.json", LOANS_DATA)],
            args: &[
                "eval",
                "--rules",
                "l.rules",
                "-e",
                "adult and clean",
                "--data",
                "d.json",
                "--now",
                "2024-06-15T00:00:00Z",
                "--output",
                "jsonl",
            ],
            exit: 2,
            stdout: &[r#"{"index":0,"matched":true}"#],
            stderr: &[
                r#"d.json:3: record 1: previous_loans[0].amount: expected number, found string "lots""#,
                r#"d.json:4: record 2: applicant.dob: expected date, found string "nope""#,
                "d.json:5: record 3: `applicant.dob` is missing",
            ],
        },
        // --explain never explains a record that eval rejects
        Case {
            files: &[("l.rules", LOANS), ("d.json", LOANS_DATA)],
            args: &[
                "eval",
                "--rules",
                "l.rules",
                "--rule",
                "clean",
                "--data",
                "d.json",
                "--explain",
            ],
            exit: 2,
            stdout: &[
                "record 0: matched",
                r#"record 1: error: previous_loans[0].amount: expected number, found string "lots""#,
            ],
            stderr: &[],
        },
        // data errors as JSON carry file, line and record as fields
        Case {
            files: &[("l.rules", LOANS), ("d.json", LOANS_DATA)],
            args: &[
                "--error-format",
                "json",
                "eval",
                "--rules",
                "l.rules",
                "--rule",
                "clean",
                "--data",
                "d.json",
                "--count",
            ],
            exit: 2,
            stdout: &["1"],
            stderr: &[
                r#""file":"d.json""#,
                r#""line":3"#,
                r#""record":1"#,
                r#""message":"previous_loans[0].amount: expected number, found string \"lots\"""#,
            ],
        },
        // a data file that does not parse: its position as fields too
        Case {
            files: &[
                ("bad.json", "[\n{\"a\":1},\n{\"a\": }\n]"),
                ("bad.yaml", "- a: 1\n- a: [\n"),
            ],
            args: &[
                "--error-format",
                "json",
                "eval",
                "-e",
                "a > 0",
                "--data",
                "bad.json",
            ],
            exit: 2,
            stdout: &[],
            stderr: &[
                r#""file":"bad.json""#,
                r#""line":3"#,
                r#""column":7"#,
                "invalid JSON: expected value\"",
            ],
        },
        Case {
            files: &[("bad.yaml", "- a: 1\n- a: [\n")],
            args: &["eval", "-e", "a > 0", "--data", "bad.yaml"],
            exit: 2,
            stdout: &[],
            stderr: &["error: bad.yaml:2:6: invalid YAML: unclosed bracket"],
        },
        // diff: a record that does not fit is an error, not a flip
        Case {
            files: &[("l.rules", LOANS), ("d.json", LOANS_DATA)],
            args: &[
                "diff", "l.rules", "l.rules", "--rule", "clean", "--data", "d.json",
            ],
            exit: 2,
            stdout: &["0 of 4 records flip", "3 could not be evaluated"],
            stderr: &["d.json:3: record 1: previous_loans[0].amount"],
        },
        // test files: an inline record, by its YAML path and schema path
        Case {
            files: &[
                ("l.rules", LOANS),
                (
                    "l.test.yaml",
                    "cases:\n  - name: bad loan\n    record: { name: x, applicant: { dob: 1990-01-01 }, \
                     previous_loans: [{ amount: lots, defaulted: false }] }\n    expect: { clean: true }\n",
                ),
            ],
            args: &["--error-format", "json", "test", "l.test.yaml"],
            exit: 1,
            stdout: &[],
            stderr: &[
                r#""yaml_path":"cases[0].record.previous_loans[0].amount""#,
                r#""line":2"#,
                r#"expected number, found string \"lots\""#,
            ],
        },
    ]);
}

/// A word the schema declares as a field is never silently read as a string:
/// in a list literal, or compared with a field (`name == other`).
#[test]
fn schema_fields_are_never_read_as_strings() {
    const FILE: &str = "schema { name: string, other: string, x: int, n: int, m: int }\n\
                        rule list = [1, x, 3] == [1, 2, 3]\nrule words = name == other\n\
                        rule numbers = n == m\nrule fine = name == $other and n >= m\n";
    check_cases(&[Case {
        files: &[("f.rules", FILE)],
        args: &["check", "f.rules"],
        exit: 1,
        stdout: &[],
        stderr: &[
            "f.rules:2:17: `x` is a field of the schema, but here it is the string \"x\"",
            "f.rules:3:22: `other` is a field of the schema",
            "help: write `$other` to compare with the field, or \"other\" for the string",
            "f.rules:4:21: cannot compare int with the symbol `m`",
            "to compare with the field `m`, write `$m`",
        ],
    }]);
}
