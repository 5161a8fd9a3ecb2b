//! The authoring commands through the real binary: test, fmt, diff, check lints.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rulesaga"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c.env("NO_COLOR", "1");
    c
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A fresh temporary folder holding a copy of the discount rules and data.
fn temp_dir() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "rulesaga-authoring-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let specs = Path::new(env!("CARGO_MANIFEST_DIR")).join("specs");
    for f in ["discount.rules", "customers.json"] {
        std::fs::copy(specs.join(f), dir.join(f)).unwrap();
    }
    dir
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn shipped_rule_tests_pass() {
    let o = run(&["test"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("ok     Alice is premium"), "{out}");
    assert!(out.contains("test result: ok."), "{out}");
    assert!(!out.contains("FAIL"), "{out}");
}

#[test]
fn a_failing_case_shows_the_explain_tree() {
    let dir = temp_dir();
    let test = write(
        &dir,
        "discount.test.yaml",
        "cases:\n  - name: Charlie gets a discount (wrong on purpose)\n    record: { name: Charlie, tier: standard, total: 30, days: 5 }\n    expect: { discount: true, recent: true }\n",
    );
    let o = run(&["test", &test]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let out = stdout(&o).replace(&dir.display().to_string(), "DIR");
    insta::assert_snapshot!("test_failure_human", out);

    let o = run(&["test", "--format", "junit", &test]);
    assert_eq!(o.status.code(), Some(1));
    let xml = stdout(&o);
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"));
    assert!(
        xml.contains("tests=\"1\" failures=\"1\" errors=\"0\""),
        "{xml}"
    );
    assert!(
        xml.contains("<failure message=\"discount: expected true, got false\">"),
        "{xml}"
    );
    // the tree is in the failure body, escaped
    assert!(xml.contains("✗ total &gt;= threshold"), "{xml}");
}

#[test]
fn junit_escapes_names_and_lists_passing_cases() {
    let dir = temp_dir();
    let test = write(
        &dir,
        "discount.test.yaml",
        "cases:\n  - name: \"<Alice> & 'Bob' \\\"quoted\\\"\"\n    record: { name: A, tier: premium, total: 1, days: 1 }\n    expect: { premium: true }\n",
    );
    let o = run(&["test", "--format", "junit", &test]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let xml = stdout(&o);
    assert!(
        xml.contains("name=\"&lt;Alice&gt; &amp; &apos;Bob&apos; &quot;quoted&quot;\"/>"),
        "{xml}"
    );
    assert!(
        xml.contains("tests=\"1\" failures=\"0\" errors=\"0\""),
        "{xml}"
    );
}

#[test]
fn broken_test_files_name_file_line_and_yaml_path() {
    let dir = temp_dir();
    let unknown_key = write(
        &dir,
        "a.test.yaml",
        "rules: [discount.rules]\ncases:\n  - name: x\n    record: { name: A, tier: vip, total: 1, days: 1 }\n    expect: { premium: false }\n    expct: 1\n",
    );
    let o = run(&["test", &unknown_key]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("a.test.yaml:6:5: cases[0].expct: unknown field `expct`"),
        "{err}"
    );

    let typo = write(
        &dir,
        "b.test.yaml",
        "rules: [discount.rules]\ncases:\n  - name: x\n    record: { name: A, tier: vip, total: 1, days: 1 }\n    expect: { discont: true }\n",
    );
    let err = stderr(&run(&["test", &typo]));
    assert!(
        err.contains("b.test.yaml:3: cases[0].expect.discont: unknown rule `discont` (did you mean `discount`?)"),
        "{err}"
    );

    let field = write(
        &dir,
        "c.test.yaml",
        "rules: [discount.rules]\ncases:\n  - name: x\n    record: { totl: 5 }\n    expect: { premium: false }\n",
    );
    let err = stderr(&run(&["test", &field]));
    assert!(
        err.contains(
            "cases[0].record.totl: field `totl` is not in the schema (did you mean `total`?)"
        ),
        "{err}"
    );

    let no_rules = write(&dir, "none.test.yaml", "cases: []\n");
    let err = stderr(&run(&["test", &no_rules]));
    assert!(err.contains("none.rules` does not exist"), "{err}");

    let both = write(
        &dir,
        "d.test.yaml",
        "rules: [discount.rules]\ncases:\n  - name: x\n    record: { name: A, tier: vip, total: 1, days: 1 }\n    data: customers.json\n    expect: { premium: false }\n",
    );
    let err = stderr(&run(&["test", &both]));
    assert!(err.contains("either `record` or `data`, not both"), "{err}");

    let bad_now = write(
        &dir,
        "e.test.yaml",
        "rules: [discount.rules]\nnow: yesterday\ncases: []\n",
    );
    let err = stderr(&run(&["test", &bad_now]));
    assert!(
        err.contains("e.test.yaml:2: now: `yesterday` is not an RFC 3339 datetime"),
        "{err}"
    );

    // a folder: every file is run, the broken ones counted
    let o = run(&["test", &dir.display().to_string()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("6 files could not be loaded (6 test files)"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn data_files_and_fixed_clock() {
    let dir = temp_dir();
    write(
        &dir,
        "clock.rules",
        "schema { seen: date }\nrule fresh = seen >= today() - 7d\n",
    );
    let test = write(
        &dir,
        "clock.test.yaml",
        "now: 2024-06-10T12:00:00Z\ncases:\n  - name: seen three days ago\n    record: { seen: 2024-06-07 }\n    expect: { fresh: true }\n  - name: seen a month ago\n    record: { seen: 2024-05-10 }\n    expect: { fresh: false }\n  - name: the clock can be set per case\n    now: 2024-05-12T00:00:00Z\n    record: { seen: 2024-05-10 }\n    expect: { fresh: true }\n",
    );
    let o = run(&["test", &test]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("3 passed, 0 failed"));

    // every record of a data file, and a failure names the record
    let test = write(
        &dir,
        "discount.test.yaml",
        "cases:\n  - name: everyone gets the discount\n    data: customers.json\n    expect: { discount: true }\n",
    );
    let o = run(&["test", &test]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(
        out.contains("record 2: discount: expected true, got false"),
        "{out}"
    );
    assert!(!out.contains("record 0:"), "{out}");
}

#[test]
fn test_needs_existing_paths() {
    let o = run(&["test", "no/such/dir"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("`no/such/dir` does not exist"));
}

#[test]
fn fmt_rewrites_keeps_comments_and_is_idempotent() {
    let dir = temp_dir();
    let messy = "# prices\nschema{total:number # euros\ntier : a|b}\n\n\n## Big orders.\nrule   big( t = 100 )=total>=t   # inclusive\nrule both = big and\n  # only tier a\n  tier==a\n";
    let file = write(&dir, "messy.rules", messy);
    let o = run(&["fmt", "--check", &file]);
    assert_eq!(o.status.code(), Some(1));
    let diff = stdout(&o).replace(&dir.display().to_string(), "DIR");
    insta::assert_snapshot!("fmt_check_diff", diff);
    // --check changed nothing
    assert_eq!(std::fs::read_to_string(&file).unwrap(), messy);

    let o = run(&["fmt", &file]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("a comment inside a rule moves above the rule"));
    let once = std::fs::read_to_string(&file).unwrap();
    insta::assert_snapshot!("fmt_result", once);
    // idempotent: nothing left to do
    let o = run(&["fmt", "--check", &file]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).is_empty());
    // and the rules are the same rules
    let tests = "rules: [messy.rules]\ncases:\n  - name: a big order of tier a\n    record: { total: 100, tier: a }\n    expect: { both: true, \"big(101)\": false }\n";
    let o = run(&["test", &write(&dir, "messy.test.yaml", tests)]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
}

#[test]
fn fmt_never_rewrites_a_file_that_does_not_parse() {
    let dir = temp_dir();
    let broken = "rule a = total >\nrule b=1\n";
    let file = write(&dir, "broken.rules", broken);
    let o = run(&["fmt", &file]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("E001"), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), broken);
    // the other files are still formatted
    let good = write(&dir, "good.rules", "rule b=1\n");
    let o = run(&["fmt", &dir.display().to_string()]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(std::fs::read_to_string(&good).unwrap(), "rule b = 1\n");
}

#[test]
fn check_reports_lints_and_deny_warnings_fails() {
    let dir = temp_dir();
    let file = write(
        &dir,
        "lints.rules",
        "schema { total: number\n  coupon?: string }\nrule a = total > 100 and total < 50\nrule b = coupon == \"X\" or 1 > 2\nrule c = total between 10 and 5\n",
    );
    let o = run(&["check", &file]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("4 warnings"), "{}", stderr(&o));
    let o = run(&["check", "--deny-warnings", &file]);
    assert_eq!(o.status.code(), Some(1));
    let o = run(&["--error-format", "json", "check", &file]);
    let codes: Vec<String> = stderr(&o)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert_eq!(v["severity"], "warning");
            v["code"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(codes, ["W002", "W004", "W001", "W001"]);
}

#[test]
fn check_with_tests_reports_unused_rules() {
    let dir = temp_dir();
    write(
        &dir,
        "discount.test.yaml",
        "cases:\n  - name: Bob\n    record: { name: Bob, tier: standard, total: 150, days: 15 }\n    expect: { discount: true }\n",
    );
    let o = run(&["check", &dir.display().to_string()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let err = stderr(&o);
    // premium, high_value and recent are used by discount; big_spender by nothing
    assert!(
        err.contains("rule `big_spender` is not used by any rule or test"),
        "{err}"
    );
    assert!(!err.contains("rule `premium` is not used"), "{err}");
    assert!(err.contains("1 warning"), "{err}");
    // without the tests, nothing is said about unused rules
    let o = run(&["check", &dir.join("discount.rules").display().to_string()]);
    assert!(stderr(&o).contains("0 warnings"), "{}", stderr(&o));
    // the shipped rules and tests are clean
    let o = run(&["check", "--deny-warnings", "specs"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn diff_lists_flips_both_ways() {
    let dir = temp_dir();
    let old = std::fs::read_to_string(dir.join("discount.rules")).unwrap();
    let new = old
        .replace("threshold = 100", "threshold = 25")
        .replace("max_days = 30", "max_days = 10");
    let new = write(&dir, "new.rules", &new);
    let args = [
        "diff",
        "specs/discount.rules",
        &new,
        "--rule",
        "discount",
        "--data",
        "specs/customers.json",
    ];
    let o = run(&args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    insta::assert_snapshot!("diff_table", stdout(&o));

    let o = run(&[&args[..], &["--output", "jsonl", "--key", "tier"]].concat());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["index"], 1);
    assert_eq!(lines[0]["key"], serde_json::json!({"tier": "standard"}));
    assert_eq!(
        (&lines[0]["old"], &lines[0]["new"]),
        (&true.into(), &false.into())
    );
    assert_eq!(lines[1]["index"], 2);
    assert_eq!(lines[1]["explain"]["matched"], true);
    assert_eq!(
        lines[2]["summary"],
        serde_json::json!({"rule": "discount", "records": 3, "flipped": 2,
            "false_to_true": 1, "true_to_false": 1, "errors": 0})
    );

    // an unknown rule in either version is an error
    let o = run(&[
        "diff",
        "specs/discount.rules",
        &new,
        "--rule",
        "discont",
        "--data",
        "specs/customers.json",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("did you mean `discount`?"),
        "{}",
        stderr(&o)
    );
}

/// One rendered diagnostic per warning code, carets included.
#[test]
fn every_warning_code_renders() {
    let dir = temp_dir();
    write(
        &dir,
        "w.rules",
        "schema { total: number\n  coupon?: string }\nrule w001 = total between 10 and 5\nrule w002 = total > 100 and total < 50\nrule w004 = coupon == \"X\"\n",
    );
    write(
        &dir,
        "w.test.yaml",
        "cases:\n  - name: x\n    record: { total: 1 }\n    expect: { w001: false, w002: false }\n",
    );
    let o = run(&["check", &dir.display().to_string()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let err = stderr(&o).replace(&dir.display().to_string(), "DIR");
    for code in ["W001", "W002", "W003", "W004"] {
        assert!(err.contains(code), "{code} missing: {err}");
    }
    insta::assert_snapshot!("warning_codes", err);
    // W005 needs a file without a schema (with one, an undeclared word is error E101)
    let dir = temp_dir().join("no-schema");
    std::fs::create_dir_all(&dir).unwrap();
    write(
        &dir,
        "n.rules",
        "rule w005 = tags contains vip\nrule fine = tags contains \"vip\"\n",
    );
    let o = run(&["check", &dir.display().to_string()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let err = stderr(&o).replace(&dir.display().to_string(), "DIR");
    assert_eq!(err.matches("W005").count(), 1, "{err}");
    insta::assert_snapshot!("warning_w005", err);
}

/// Run with `input` on standard input.
fn run_stdin(args: &[&str], input: &[u8]) -> Output {
    use std::io::Write as _;
    let mut child = bin()
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // a command that refuses early may close its end first
    let _ = child.stdin.take().unwrap().write_all(input);
    child.wait_with_output().unwrap()
}

/// `-` is standard input wherever a file is read: check, fmt (to standard output),
/// parse, `--rules -`, `saga validate -`, `--input @-`; limits hold there too.
#[test]
fn a_dash_reads_standard_input_everywhere() {
    let rules =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("specs/discount.rules")).unwrap();
    let o = run_stdin(&["check", "-"], &rules);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run_stdin(&["check", "-"], b"rule a = x >\n");
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("-:1:13"), "{}", stderr(&o));

    let o = run_stdin(&["fmt", "-"], b"rule a = x>1\n");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "rule a = x > 1\n");
    let o = run_stdin(&["fmt", "--check", "-"], b"rule a = x>1\n");
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("+rule a = x > 1"), "{}", stdout(&o));

    let o = run_stdin(&["parse", "-"], b"rule a = x > 1\n");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("\"rules\""), "{}", stdout(&o));

    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let data = root.join("specs/customers.json");
    let o = run_stdin(
        &[
            "eval",
            "--rules",
            "-",
            "--rule",
            "premium",
            "--data",
            data.to_str().unwrap(),
            "--count",
        ],
        &rules,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), "1");

    let saga = std::fs::read(root.join("sagas/place_order.yaml")).unwrap();
    let o = run_stdin(&["saga", "validate", "-"], &saga);
    assert!(o.status.success(), "{}", stderr(&o));
    let dir = temp_dir();
    let input = std::fs::read(root.join("sagas/inputs/order_ok.json")).unwrap();
    let o = run_stdin(
        &[
            "saga",
            "run",
            root.join("sagas/place_order.yaml").to_str().unwrap(),
            "--input",
            "@-",
            "--db",
            dir.join("s.db").to_str().unwrap(),
            "--seed",
            root.join("sagas/store.json").to_str().unwrap(),
        ],
        &input,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("saga completed"), "{}", stdout(&o));

    // the size limit holds on a pipe too, and nothing is checked
    let o = run_stdin(&["check", "-"], &vec![b' '; 2 << 20]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("the limit is"), "{}", stderr(&o));
}

/// `eval --exit-status` exits 1 when no record matched, in every output mode;
/// without it, matching nothing is a success; data errors still exit 2.
#[test]
fn exit_status_says_whether_anything_matched() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("specs/customers.json");
    let data = data.to_str().unwrap();
    for mode in [
        &["--count"][..],
        &["--filter"],
        &["--explain"],
        &["--output", "jsonl"],
        &[],
    ] {
        let eval = |expr: &str, exit_status: bool| {
            let mut args = vec!["eval", "-e", expr, "--data", data];
            args.extend_from_slice(mode);
            if exit_status {
                args.push("--exit-status");
            }
            run(&args).status.code()
        };
        assert_eq!(eval("tier == premium", true), Some(0), "{mode:?}");
        assert_eq!(eval("total > 1000000", true), Some(1), "{mode:?}");
        assert_eq!(eval("total > 1000000", false), Some(0), "{mode:?}");
    }
    let bad = temp_dir().join("bad.jsonl");
    std::fs::write(&bad, "{\"total\": 1}\n{\"total\":\n").unwrap();
    let o = run(&[
        "eval",
        "-e",
        "total > 5",
        "--data",
        bad.to_str().unwrap(),
        "--exit-status",
    ]);
    assert_eq!(o.status.code(), Some(2));
}
