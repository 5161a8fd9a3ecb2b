//! The `rulesaga` binary as a user runs it: check, parse, eval.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
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

fn run_stdin(args: &[&str], input: &[u8]) -> Output {
    let mut child = bin()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // written while the output is read, as a shell pipe does: `eval` on a pipe
    // prints as records arrive, so a writer that waits for the end would block both;
    // the process may exit before reading (a rule error): ignore a broken pipe
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    output
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A file in a fresh temporary directory.
fn temp_file(name: &str, contents: &[u8]) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "rulesaga-cli-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

const DISCOUNT: [&str; 6] = [
    "eval",
    "--rules",
    "specs/discount.rules",
    "--rule",
    "discount",
    "--data",
];

#[test]
fn discount_scenario_alice_bob_charlie() {
    let o = run(&[
        &DISCOUNT[..],
        &["specs/customers.json", "--output", "jsonl"],
    ]
    .concat());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let matched: Vec<(u64, bool)> = stdout(&o)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["index"].as_u64().unwrap(),
                v["matched"].as_bool().unwrap(),
            )
        })
        .collect();
    // Alice: premium; Bob: high value and recent; Charlie: neither
    assert_eq!(matched, vec![(0, true), (1, true), (2, false)]);

    let o = run(&[&DISCOUNT[..], &["specs/customers.json", "--count"]].concat());
    assert_eq!(stdout(&o).trim(), "2");

    let o = run(&[&DISCOUNT[..], &["specs/customers.json", "--filter"]].concat());
    let names: Vec<String> = stdout(&o)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["name"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(names, ["Alice", "Bob"]);

    let o = run(&[&DISCOUNT[..], &["specs/customers.json"]].concat());
    insta::assert_snapshot!("discount_table", stdout(&o));
}

#[test]
fn explain_says_why() {
    let o = run(&[&DISCOUNT[..], &["specs/customers.json", "--explain"]].concat());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    insta::assert_snapshot!("discount_explain", stdout(&o));
    let o = run(&[
        &DISCOUNT[..],
        &["specs/customers.json", "--explain", "--output", "jsonl"],
    ]
    .concat());
    let last: serde_json::Value = serde_json::from_str(stdout(&o).lines().last().unwrap()).unwrap();
    assert_eq!(last["matched"], false);
    assert_eq!(last["explain"]["text"], "discount");
}

#[test]
fn filter_prints_jsonl_lines_verbatim() {
    let data = b"{\"a\": 1,  \"b\":\"x\"}\n\n{\"a\":5}\r\n{\"a\" : 7 , \"z\": [1, 2]}\n";
    let o = run_stdin(&["eval", "-e", "a > 2", "--data", "-", "--filter"], data);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "{\"a\":5}\n{\"a\" : 7 , \"z\": [1, 2]}\n");
}

/// JSON lines larger than one chunk are read in chunks: records split across
/// chunks, line numbers and record indexes of errors, output order all hold.
#[test]
fn large_json_lines_are_read_in_chunks() {
    let mut data = String::new();
    let mut expected = Vec::new();
    let mut record = 0;
    for line in 1..=40_000 {
        if line == 5 {
            data.push('\n'); // a blank line: not a record
        } else if line == 20_001 {
            data.push_str("{oops\n");
            record += 1;
        } else {
            data.push_str(&format!(
                "{{\"a\":{line},\"pad\":\"{}\"}}\n",
                "p".repeat(line % 90 + 40)
            ));
            if line % 3 == 0 {
                expected.push(record);
            }
            record += 1;
        }
    }
    assert!(data.len() > 3 << 20);
    let path = temp_file("big.jsonl", data.as_bytes());
    let file = path.display().to_string();
    let rule = "a % 3 == 0";
    let o = run(&[
        "eval",
        "-e",
        rule,
        "--data",
        &file,
        "--output",
        "jsonl",
        "--threads",
        "3",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).starts_with(&format!("error: {file}:20001: record 19999: invalid JSON")),
        "{}",
        stderr(&o)
    );
    let matched: Vec<usize> = stdout(&o)
        .lines()
        .enumerate()
        .map(|(i, l)| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert_eq!(v["index"], i, "in input order");
            v
        })
        .filter(|v| v["matched"] == true)
        .map(|v| v["index"].as_u64().unwrap() as usize)
        .collect();
    assert_eq!(matched, expected);
    let o = run(&["eval", "-e", rule, "--data", &file, "--count"]);
    assert_eq!(stdout(&o).trim(), expected.len().to_string());
    // standard input takes the same path
    let o = run_stdin(
        &["eval", "-e", rule, "--data", "-", "--filter"],
        data.as_bytes(),
    );
    let want: Vec<&str> = data
        .lines()
        .filter(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .is_ok_and(|v| v["a"].as_u64().is_some_and(|a| a % 3 == 0))
        })
        .collect();
    assert_eq!(stdout(&o).lines().collect::<Vec<_>>(), want);
    assert!(
        stderr(&o).contains("<stdin>:20001: record 19999"),
        "{}",
        stderr(&o)
    );
}

/// A reader that goes away (`| head -1`) ends the output quietly: no panic,
/// no error, and the rest of the input is not read to the end.
#[test]
fn a_closed_output_pipe_ends_a_large_filter_quietly() {
    let data = "{\"a\":1,\"pad\":\"0123456789abcdef0123456789abcdef\"}\n".repeat(200_000);
    let mut child = support::cli::spawn_piped(&["eval", "-e", "a == 1", "--data", "-", "--filter"]);
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        // the process stops reading once its output is closed
        let _ = stdin.write_all(data.as_bytes());
    });
    let mut first = [0u8; 15];
    std::io::Read::read_exact(&mut child.stdout.take().unwrap(), &mut first).unwrap();
    assert_eq!(&first, b"{\"a\":1,\"pad\":\"0");
    // the output pipe is closed here, mid-stream
    let o = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stderr(&o), "");
}

/// A line longer than the longest a chunk grows to is an error at its line,
/// after the records before it.
#[test]
fn a_line_too_long_to_read_in_chunks_is_an_error_at_its_line() {
    let mut data = "{\"a\":1}\n".repeat(3);
    data.push_str(&format!("{{\"a\":\"{}\"}}\n", "z".repeat(17 << 20)));
    data.push_str("{\"a\":2}\n");
    let o = run_stdin(
        &["eval", "-e", "a >= 1", "--data", "-", "--count"],
        data.as_bytes(),
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("<stdin>:4: a line longer than 16 MiB"),
        "{}",
        stderr(&o)
    );
    assert_eq!(stdout(&o).trim(), "3");
}

#[test]
fn data_formats() {
    let yaml = temp_file("d.yaml", b"- {a: 1}\n- a: 3\n  b: [1, 2]\n");
    let o = run(&[
        "eval",
        "-e",
        "a > 2",
        "--data",
        yaml.to_str().unwrap(),
        "--count",
    ]);
    assert_eq!(stdout(&o).trim(), "1", "{}", stderr(&o));
    let one = temp_file("one.json", b"{\n  \"a\": 3\n}\n");
    let o = run(&[
        "eval",
        "-e",
        "a > 2",
        "--data",
        one.to_str().unwrap(),
        "--count",
    ]);
    assert_eq!(stdout(&o).trim(), "1", "{}", stderr(&o));
    // a byte order mark from Windows tools is skipped
    let bom = temp_file("bom.jsonl", b"\xEF\xBB\xBF{\"a\":3}\n");
    let o = run(&[
        "eval",
        "-e",
        "a > 2",
        "--data",
        bom.to_str().unwrap(),
        "--count",
    ]);
    assert_eq!(stdout(&o).trim(), "1", "{}", stderr(&o));
    let lines = temp_file("d.jsonl", b"{\"a\":3}\n{\"a\":4}\n");
    let o = run(&[
        "eval",
        "-e",
        "a > 2",
        "--data",
        lines.to_str().unwrap(),
        "--count",
    ]);
    assert_eq!(stdout(&o).trim(), "2", "{}", stderr(&o));
}

#[test]
fn check_reports_every_error_with_position_and_caret() {
    let bad = temp_file(
        "bad.rules",
        b"schema {\n  tier: standard | premium\n  total: number\n}\nrule a = tier == premum\nrule b = totl > 5\nrule c = a and nope(1)\n",
    );
    let o = run(&["check", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let text = stderr(&o).replace(bad.to_str().unwrap(), "bad.rules");
    insta::assert_snapshot!("check_errors", text);

    let o = run(&["--error-format", "json", "check", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let diags: Vec<serde_json::Value> = stderr(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(diags.len(), 3);
    assert_eq!(diags[0]["code"], "E107");
    assert_eq!(diags[0]["line"], 5);
    assert_eq!(diags[0]["column"], 18);
    assert_eq!(diags[0]["help"], "did you mean `premium`?");

    let o = run(&["check", "specs/discount.rules"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn hostile_input_gets_clean_errors() {
    // 100,000 nested parentheses (in a file: one argument may not exceed 128 KiB)
    let deep = format!(
        "rule deep = {}x{}\n",
        "(".repeat(100_000),
        ")".repeat(100_000)
    );
    let deep = temp_file("deep.rules", deep.as_bytes());
    let o = run(&["check", deep.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("E008"), "{}", stderr(&o));
    let nots = format!("{}x", "not ".repeat(30_000));
    let o = run_stdin(&["eval", "-e", &nots, "--data", "-"], b"{}");
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("E008"), "{}", stderr(&o));

    // invalid UTF-8 in a rule file
    let bad = temp_file("bad.rules", b"rule a = x == \"\xff\"\n");
    let o = run(&["check", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("invalid UTF-8 at byte 15 (line 1, column 16)"),
        "{}",
        stderr(&o)
    );

    // a data record that is not JSON
    let o = run_stdin(
        &["eval", "-e", "a > 1", "--data", "-", "--output", "jsonl"],
        b"{\"a\":2}\n{oops\n",
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("<stdin>:2: record 1"), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("{\"index\":0,\"matched\":true}"));

    // overflow is an evaluation error for that record
    let o = run_stdin(
        &[
            "eval",
            "-e",
            "a * 2 > 1",
            "--data",
            "-",
            "--output",
            "jsonl",
        ],
        b"{\"a\":9223372036854775807}\n",
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stdout(&o).contains("integer overflow"), "{}", stdout(&o));

    // with a schema, a record that does not fit it is a data error for that record
    let o = run_stdin(
        &["eval", "--rules", "specs/discount.rules", "-e", "total > 0", "--data", "-", "--output", "jsonl"],
        b"{\"name\":\"a\",\"tier\":\"vip\",\"total\":1,\"days\":2}\n{\"name\":\"b\",\"tier\":\"gold\",\"total\":1,\"days\":2}\n",
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stdout(&o).starts_with("{\"index\":0,\"matched\":true}"),
        "{}",
        stdout(&o)
    );
    assert!(
        stderr(&o).contains("record 1: tier: `gold` is not one of standard | premium | vip"),
        "{}",
        stderr(&o)
    );

    // usage errors exit 2
    let o = run(&["eval", "--data", "x.json"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn parse_prints_the_tree() {
    let o = run(&["parse", "-e", "tier == premium or total >= 100"]);
    assert_eq!(o.status.code(), Some(0));
    let tree: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    insta::assert_json_snapshot!("parse_expr", tree);
    let o = run(&["parse", "specs/discount.rules", "--format", "yaml"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("name: discount"), "{}", stdout(&o));
}

#[test]
fn now_can_be_fixed() {
    let o = run_stdin(
        &[
            "eval",
            "-e",
            "created > today() - 30d",
            "--data",
            "-",
            "--now",
            "2024-06-15T00:00:00Z",
            "--count",
        ],
        b"{\"created\":\"2024-06-01\"}\n{\"created\":\"2024-01-01\"}\n",
    );
    assert_eq!(stdout(&o).trim(), "1", "{}", stderr(&o));
}
