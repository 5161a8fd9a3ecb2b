//! The CLI in the shell, through the real binary: one `--output` vocabulary,
//! `--error-format json` in every command.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::Path;
use std::process::Output;

use serde_json::Value as Json;
use support::cli::{run_in, temp_dir};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn run(args: &[&str]) -> Output {
    run_in(Path::new(ROOT), args)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Standard output as one JSON document.
fn json_doc(o: &Output) -> Json {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not one JSON document ({e}): {}{}", stdout(o), stderr(o)))
}

/// Standard output as JSON lines.
fn json_lines(o: &Output) -> Vec<Json> {
    stdout(o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// Standard error as JSON lines (`--error-format json`).
fn error_lines(o: &Output) -> Vec<Json> {
    stderr(o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

const EVAL: &[&str] = &["eval", "-e", "total > 40", "--data", "specs/customers.json"];

#[test]
fn eval_prints_table_json_and_jsonl() {
    let table = run(&[EVAL, &["--output", "table"]].concat());
    assert!(
        stdout(&table).contains("2 of 3 records matched"),
        "{}",
        stdout(&table)
    );
    let doc = json_doc(&run(&[EVAL, &["--output", "json"]].concat()));
    let matched: Vec<bool> = doc
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["matched"].as_bool().unwrap())
        .collect();
    assert_eq!(matched, [true, true, false]);
    let lines = json_lines(&run(&[EVAL, &["--output", "jsonl"]].concat()));
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[1], serde_json::json!({"index": 1, "matched": true}));
    // the same objects either way
    assert_eq!(doc.as_array().unwrap(), &lines);
    let count = json_doc(&run(&[EVAL, &["--count", "--output", "json"]].concat()));
    assert_eq!(count, serde_json::json!({"matched": 2, "records": 3}));
    let explained = json_doc(&run(&[EVAL, &["--explain", "--output", "json"]].concat()));
    assert_eq!(explained[0]["explain"]["matched"], true);
}

#[test]
fn check_test_and_diff_print_json() {
    let o = run(&["check", "specs/discount.rules", "--output", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let doc = json_doc(&o);
    assert_eq!(doc["ok"], true);
    assert_eq!(doc["files"], 1);
    assert_eq!(doc["rules"], 5);
    // the human summary line is not printed beside the JSON
    assert!(!stderr(&o).contains("checked"), "{}", stderr(&o));

    let doc = json_doc(&run(&["test", "specs/", "--output", "json"]));
    assert_eq!(doc["ok"], true);
    assert!(doc["passed"].as_u64().unwrap() > 0);
    let cases = json_lines(&run(&["test", "specs/", "--output", "jsonl"]));
    assert_eq!(cases.len() as u64, doc["passed"].as_u64().unwrap());
    assert!(
        cases
            .iter()
            .all(|c| c["passed"] == true && c["file"].is_string())
    );

    let dir = temp_dir();
    let v2 = std::fs::read_to_string(Path::new(ROOT).join("specs/discount.rules"))
        .unwrap()
        .replace("threshold = 100", "threshold = 200");
    std::fs::write(dir.join("v2.rules"), v2).unwrap();
    let v2 = dir.join("v2.rules").display().to_string();
    let diff = [
        "diff",
        "specs/discount.rules",
        &v2,
        "--rule",
        "discount",
        "--data",
        "specs/customers.json",
        "--output",
    ];
    let doc = json_doc(&run(&[&diff[..], &["json"]].concat()));
    assert_eq!(doc["summary"]["flipped"], 1);
    assert_eq!(doc["flips"][0]["index"], 1);
    let lines = json_lines(&run(&[&diff[..], &["jsonl"]].concat()));
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0], doc["flips"][0]);
    assert_eq!(lines[1]["summary"], doc["summary"]);
}

#[test]
fn saga_validate_prints_json() {
    let dir = temp_dir();
    std::fs::write(dir.join("bad.yaml"), "name: x\nsteps: 3\n").unwrap();
    let good = format!("{ROOT}/sagas/place_order.yaml");
    let o = run_in(
        &dir,
        &["saga", "validate", &good, "bad.yaml", "--output", "json"],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let doc = json_doc(&o);
    assert_eq!(doc[0]["ok"], true);
    assert_eq!(doc[0]["saga"], "place_order");
    assert_eq!(doc[0]["steps"], 4);
    assert_eq!(doc[1]["file"], "bad.yaml");
    assert_eq!(doc[1]["ok"], false);
    assert!(doc[1]["errors"].as_u64().unwrap() > 0);
    let lines = json_lines(&run_in(
        &dir,
        &["saga", "validate", &good, "bad.yaml", "--output", "jsonl"],
    ));
    assert_eq!(&lines, doc.as_array().unwrap());
}

#[test]
fn old_spellings_stay() {
    // `test --format junit|human`
    let o = run(&["test", "specs/", "--format", "junit"]);
    assert!(stdout(&o).starts_with("<?xml"), "{}", stdout(&o));
    let o = run(&["test", "specs/", "--format", "human"]);
    assert!(stdout(&o).contains("test result: ok"), "{}", stdout(&o));
    let o = run(&["test", "specs/", "--output", "junit"]);
    assert!(stdout(&o).starts_with("<?xml"), "{}", stdout(&o));
}

/// A fresh folder with one completed saga in `demo.db`; its id.
fn saga_db() -> (std::path::PathBuf, String) {
    let dir = temp_dir();
    let o = run_in(
        &dir,
        &[
            "saga",
            "run",
            &format!("{ROOT}/sagas/place_order.yaml"),
            "--input",
            &format!("@{ROOT}/sagas/inputs/order_ok.json"),
            "--db",
            "demo.db",
            "--seed",
            &format!("{ROOT}/sagas/store.json"),
            "--output",
            "jsonl",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let lines = json_lines(&o);
    assert_eq!(lines.len(), 1, "one line: {}", stdout(&o));
    assert_eq!(lines[0]["status"], "completed");
    (dir, lines[0]["saga_id"].as_str().unwrap().to_string())
}

#[test]
fn saga_commands_print_table_json_and_jsonl() {
    let (dir, id) = saga_db();
    let db = ["--db", "demo.db"];
    let list = run_in(
        &dir,
        &[&["saga", "list"][..], &db, &["--output", "json"]].concat(),
    );
    let doc = json_doc(&list);
    assert_eq!(doc[0]["saga_id"], id.as_str());
    let lines = json_lines(&run_in(
        &dir,
        &[&["saga", "list"][..], &db, &["--output", "jsonl"]].concat(),
    ));
    assert_eq!(lines, doc.as_array().unwrap().clone());
    let table = run_in(&dir, &[&["saga", "list"][..], &db].concat());
    assert!(stdout(&table).contains(&id), "{}", stdout(&table));

    let status = json_doc(&run_in(
        &dir,
        &[&["saga", "status", &id][..], &db, &["--output", "json"]].concat(),
    ));
    assert_eq!(status["status"], "completed");
    let status_line = json_lines(&run_in(
        &dir,
        &[&["saga", "status", &id][..], &db, &["--output", "jsonl"]].concat(),
    ));
    assert_eq!(status_line, [status]);

    let history = json_doc(&run_in(
        &dir,
        &[&["saga", "history", &id][..], &db, &["--output", "json"]].concat(),
    ));
    let events = json_lines(&run_in(
        &dir,
        &[&["saga", "history", &id][..], &db, &["--output", "jsonl"]].concat(),
    ));
    assert!(events.len() > 2);
    assert_eq!(history.as_array().unwrap(), &events);
}

#[test]
fn saga_run_inputs_json_is_an_array_jsonl_a_line_per_saga() {
    let dir = temp_dir();
    let order = std::fs::read_to_string(Path::new(ROOT).join("sagas/inputs/order_ok.json"))
        .unwrap()
        .replace('\n', " ");
    let second = order.replace("order-123", "order-124");
    std::fs::write(dir.join("orders.jsonl"), format!("{order}\n\n{second}\n")).unwrap();
    std::fs::copy(
        Path::new(ROOT).join("sagas/store.json"),
        dir.join("store.json"),
    )
    .unwrap();
    let run_with = |output: &str| {
        run_in(
            &dir,
            &[
                "saga",
                "run",
                &format!("{ROOT}/sagas/place_order.yaml"),
                "--inputs",
                "orders.jsonl",
                "--db",
                &format!("{output}.db"),
                "--seed",
                "store.json",
                "--output",
                output,
            ],
        )
    };
    let doc = json_doc(&run_with("json"));
    let lines: Vec<u64> = doc
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [1, 3]);
    let each = json_lines(&run_with("jsonl"));
    assert_eq!(each.len(), 2);
    assert!(each.iter().all(|s| s["status"] == "completed"), "{each:?}");
}

/// Every command reports its errors as JSON objects with the place as fields.
#[test]
fn error_format_json_in_every_command() {
    let dir = temp_dir();
    std::fs::write(dir.join("bad.rules"), "rule a = total >\n").unwrap();
    std::fs::write(dir.join("data.jsonl"), "{\"total\": 1}\nnot json\n").unwrap();
    std::fs::write(dir.join("inputs.jsonl"), "{}\n\n{\"a\": }\n").unwrap();
    std::fs::write(
        dir.join("broken.test.yaml"),
        "rules: [missing.rules]\ncases: 3\n",
    )
    .unwrap();
    std::fs::copy(
        Path::new(ROOT).join("sagas/store.json"),
        dir.join("store.json"),
    )
    .unwrap();
    let json = ["--error-format", "json"];
    let place_order = format!("{ROOT}/sagas/place_order.yaml");
    let cases: Vec<(Vec<&str>, i32, Json)> = vec![
        (
            vec!["check", "bad.rules"],
            1,
            serde_json::json!({"file": "bad.rules", "line": 1, "column": 17}),
        ),
        (
            vec!["eval", "-e", "total > 0", "--data", "data.jsonl"],
            2,
            serde_json::json!({"file": "data.jsonl", "line": 2, "record": 1}),
        ),
        (
            vec!["fmt", "--check", "bad.rules"],
            1,
            serde_json::json!({"file": "bad.rules", "line": 1}),
        ),
        (
            vec![
                "saga",
                "run",
                &place_order,
                "--store",
                "store.json",
                "--inputs",
                "inputs.jsonl",
            ],
            2,
            serde_json::json!({"file": "inputs.jsonl", "line": 3, "column": 7, "record": 1}),
        ),
        (
            vec![
                "saga",
                "run",
                &place_order,
                "--store",
                "store.json",
                "--input",
                "{\n\"a\" 1}",
            ],
            2,
            serde_json::json!({"file": "--input", "line": 2, "column": 5}),
        ),
        (
            vec!["saga", "list", "--db", "none.db"],
            2,
            serde_json::json!({"severity": "error"}),
        ),
        (
            vec![
                "eval",
                "-e",
                "true",
                "--now",
                "June",
                "--data",
                "data.jsonl",
            ],
            2,
            serde_json::json!({"severity": "error"}),
        ),
        (
            vec!["eval", "--no-such-flag"],
            2,
            serde_json::json!({"kind": "UnknownArgument"}),
        ),
        (
            vec!["test", "broken.test.yaml"],
            1,
            serde_json::json!({"file": "broken.test.yaml"}),
        ),
    ];
    for (args, exit, fields) in cases {
        let o = run_in(&dir, &[&args[..], &json].concat());
        assert_eq!(o.status.code(), Some(exit), "{args:?}: {}", stderr(&o));
        let errors = error_lines(&o);
        let found = errors.iter().any(|e| {
            e["severity"] == "error"
                && e["message"].is_string()
                && fields
                    .as_object()
                    .unwrap()
                    .iter()
                    .all(|(k, v)| &e[k.as_str()] == v)
        });
        assert!(found, "{args:?}: no error with {fields}: {}", stderr(&o));
    }
}

/// `eval -e EXPR FILE`, `--data FILE`, and standard input when neither is given.
#[test]
fn eval_takes_its_data_as_an_argument() {
    let by_arg = run(&[
        "eval",
        "-e",
        "total > 40",
        "specs/customers.json",
        "--count",
    ]);
    assert_eq!(stdout(&by_arg), "2\n", "{}", stderr(&by_arg));
    let by_flag = run(&[
        "eval",
        "-e",
        "total > 40",
        "--data",
        "specs/customers.json",
        "--count",
    ]);
    assert_eq!(stdout(&by_flag), "2\n");
    let both = run(&["eval", "-e", "true", "a.json", "--data", "b.json"]);
    assert_eq!(both.status.code(), Some(2));
    // `--rules` takes every file after it: a data file there is named, with the fix
    let swallowed = run(&[
        "eval",
        "--rule",
        "discount",
        "--rules",
        "specs/discount.rules",
        "specs/customers.json",
    ]);
    assert_eq!(swallowed.status.code(), Some(2));
    assert!(
        stderr(&swallowed).contains("`specs/customers.json` is given as a rule file"),
        "{}",
        stderr(&swallowed)
    );
    let o = pipe(
        &["eval", "-e", "total > 40", "--count"],
        b"{\"total\": 50}\n{\"total\": 5}\n",
    );
    assert_eq!(stdout(&o), "1\n", "{}", stderr(&o));
    let o = pipe(&["saga", "validate", "-"], b"not: [a saga");
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
}

/// Run with `input` written to a pipe on standard input.
fn pipe(args: &[&str], input: &[u8]) -> Output {
    use std::io::Write as _;
    use std::process::Stdio;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_rulesaga"))
        .current_dir(ROOT)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _ = child.stdin.take().unwrap().write_all(input);
    child.wait_with_output().unwrap()
}

/// A running `eval` on a pipe: each line written is evaluated and its result
/// printed before the next is written (as behind `tail -f`). The timeout only
/// keeps a broken build from hanging the test; it measures nothing.
#[test]
fn eval_on_a_pipe_prints_each_record_as_it_arrives() {
    use std::io::{BufRead as _, Write as _};
    use std::process::Stdio;
    use std::time::Duration;
    for (output, first, second) in [
        (
            "jsonl",
            r#"{"index":0,"matched":true}"#,
            r#"{"index":1,"matched":false}"#,
        ),
        ("table", "#  matched  total", "0  yes      50"),
    ] {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_rulesaga"))
            .args([
                "eval",
                "-e",
                "total > 40",
                "--output",
                output,
                "--threads",
                "2",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                if tx.send(line.unwrap()).is_err() {
                    return;
                }
            }
        });
        let guard = Duration::from_secs(120);
        stdin.write_all(b"{\"total\": 50}\n").unwrap();
        stdin.flush().unwrap();
        assert_eq!(rx.recv_timeout(guard).unwrap(), first, "{output}");
        if output == "table" {
            assert_eq!(rx.recv_timeout(guard).unwrap(), second, "{output}");
            stdin.write_all(b"{\"total\": 5}\n").unwrap();
            stdin.flush().unwrap();
            assert_eq!(rx.recv_timeout(guard).unwrap(), "1  no       5");
        } else {
            stdin.write_all(b"{\"total\": 5}\n").unwrap();
            stdin.flush().unwrap();
            assert_eq!(rx.recv_timeout(guard).unwrap(), second, "{output}");
        }
        drop(stdin);
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(0), "{output}");
        let rest: Vec<String> = rx.iter().collect();
        if output == "table" {
            assert_eq!(rest, ["1 of 2 records matched"]);
        } else {
            assert!(rest.is_empty(), "{rest:?}");
        }
    }
}

/// `saga run --inputs -`: the lines from standard input.
#[test]
fn saga_run_inputs_from_standard_input() {
    let dir = temp_dir();
    std::fs::copy(
        Path::new(ROOT).join("sagas/store.json"),
        dir.join("store.json"),
    )
    .unwrap();
    let order = std::fs::read(Path::new(ROOT).join("sagas/inputs/order_ok.json")).unwrap();
    let store = dir.join("store.json").display().to_string();
    let saga = format!("{ROOT}/sagas/place_order.yaml");
    let args = [
        "saga", "run", &saga, "--store", &store, "--inputs", "-", "--output", "jsonl",
    ];
    let o = pipe(&args, &order);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let lines = json_lines(&o);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["status"], "completed");
}

/// Every subcommand, with its path (`saga run`), walking clap's command tree.
fn subcommands(cmd: &clap::Command, path: &str, out: &mut Vec<(String, clap::Command)>) {
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let full = format!("{path} {}", sub.get_name()).trim().to_string();
        out.push((full.clone(), sub.clone()));
        subcommands(sub, &full, out);
    }
}

/// Shell words of one command (single and double quotes; `> FILE` dropped).
fn shell_words(text: &str) -> Vec<String> {
    let (mut words, mut word, mut quote, mut any) = (Vec::new(), String::new(), None, false);
    for c in text.chars() {
        match (quote, c) {
            (None, '\'' | '"') => (quote, any) = (Some(c), true),
            (Some(q), c) if c == q => quote = None,
            (None, ' ') => {
                if any {
                    words.push(std::mem::take(&mut word));
                }
                any = false;
            }
            (_, c) => {
                word.push(c);
                any = true;
            }
        }
    }
    if any {
        words.push(word);
    }
    if let Some(i) = words.iter().position(|w| w == ">") {
        words.truncate(i);
    }
    words
}

/// `--help` of every subcommand ends with two or three examples, and each
/// example is a command line `rulesaga` accepts. A subcommand added later needs
/// its examples in `src/cli/help.rs`.
#[test]
fn every_subcommand_ends_its_help_with_examples_that_parse() {
    let mut all = Vec::new();
    subcommands(&rulesaga::cli::command(), "", &mut all);
    assert!(all.len() > 20, "{}", all.len());
    for (path, cmd) in &all {
        let help = cmd
            .get_after_help()
            .unwrap_or_else(|| panic!("`rulesaga {path} --help` has no examples (src/cli/help.rs)"))
            .to_string();
        let mut lines = help.lines();
        assert_eq!(lines.next(), Some("Examples:"), "{path}");
        let examples: Vec<&str> = lines.map(|l| l.strip_prefix("  ").unwrap()).collect();
        assert!((2..=3).contains(&examples.len()), "{path}: {examples:?}");
        for example in examples {
            let words = example
                .split(" | ")
                .find(|part| part.starts_with("rulesaga "))
                .map(shell_words)
                .unwrap_or_else(|| panic!("{path}: `{example}` does not run rulesaga"));
            let needed: Vec<&str> = path.split(' ').collect();
            assert_eq!(&words[1..=needed.len()], needed, "{path}: `{example}`");
            if let Err(e) = rulesaga::cli::command().try_get_matches_from(&words) {
                panic!("{path}: `{example}` does not parse: {e}");
            }
        }
    }
    // through the binary, the examples are the end of `--help`
    let o = run(&["saga", "run", "--help"]);
    let help = stdout(&o);
    let tail: Vec<&str> = help.trim_end().lines().rev().take(4).collect();
    assert_eq!(tail[3], "Examples:", "{help}");
    assert!(
        tail[..3]
            .iter()
            .all(|l| l.starts_with("  rulesaga saga run ")),
        "{help}"
    );
}

#[test]
fn completions_for_each_shell() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let o = run(&["completions", shell]);
        assert_eq!(o.status.code(), Some(0), "{shell}: {}", stderr(&o));
        let script = stdout(&o);
        for word in ["rulesaga", "eval", "mark-compensated", "--error-format"] {
            assert!(script.contains(word), "{shell}: no `{word}`");
        }
    }
    let o = run(&["completions", "tcsh"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("possible values"), "{}", stderr(&o));
}

#[test]
fn man_pages() {
    let o = run(&["man"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let page = stdout(&o);
    assert!(page.contains(".TH rulesaga 1"), "{page}");
    assert!(
        page.contains("Declarative business rules and sagas"),
        "{page}"
    );
    let dir = temp_dir().join("man1");
    let o = run(&["man", "--dir", &dir.display().to_string()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let eval = std::fs::read_to_string(dir.join("rulesaga-eval.1")).unwrap();
    // roff escapes dashes: `\-e`
    assert!(
        eval.contains("Examples:"),
        "the examples are in the page: {eval}"
    );
    assert!(
        eval.contains("rulesaga eval \\-e"),
        "the examples are in the page: {eval}"
    );
    assert!(dir.join("rulesaga-saga-run.1").exists());
}

/// A table measures display width: CJK (two columns a character) aligns, and
/// a value wider than 40 columns is cut with `…`.
#[test]
fn tables_align_wide_characters_and_cut_wide_values() {
    let dir = temp_dir();
    let long = "x".repeat(50);
    let data = format!(
        "[{{\"name\": \"東京太郎\", \"n\": 1}}, {{\"name\": \"Bob\", \"n\": 22}}, {{\"name\": \"{long}\", \"n\": 3}}]"
    );
    std::fs::write(dir.join("people.json"), data).unwrap();
    let o = run_in(
        &dir,
        &["eval", "-e", "name != \"\" and n > 1", "people.json"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let cut = format!("{}…", "x".repeat(39));
    let want = [
        "#  matched  name                                      n".to_string(),
        "0  no       東京太郎                                  1".to_string(),
        "1  yes      Bob                                       22".to_string(),
        format!("2  yes      {cut}  3"),
        "2 of 3 records matched".to_string(),
    ];
    assert_eq!(stdout(&o).lines().collect::<Vec<_>>(), want);
}

/// Progress is drawn only on a terminal: with standard error piped, a long
/// `eval` (JSON lines larger than one chunk) and `saga run --inputs` write
/// nothing there, not a carriage return nor an escape sequence.
#[test]
fn no_progress_bytes_when_standard_error_is_piped() {
    let dir = temp_dir();
    let data: String = (0..120_000)
        .map(|i| format!("{{\"a\": {i}, \"pad\": \"xxxxxxxxxx\"}}\n"))
        .collect();
    assert!(data.len() > 3 << 20);
    std::fs::write(dir.join("big.jsonl"), &data).unwrap();
    for extra in [&["--count"][..], &["--output", "jsonl"], &["--filter"]] {
        let o = run_in(
            &dir,
            &[&["eval", "-e", "a % 3 == 0", "big.jsonl"][..], extra].concat(),
        );
        assert_eq!(o.status.code(), Some(0), "{extra:?}");
        assert!(o.stderr.is_empty(), "{extra:?}: {:?}", stderr(&o));
    }
    let o = pipe(&["eval", "-e", "a % 3 == 0", "--count"], data.as_bytes());
    assert_eq!(stdout(&o), "40000\n");
    assert!(o.stderr.is_empty(), "{:?}", stderr(&o));

    std::fs::copy(
        Path::new(ROOT).join("sagas/store.json"),
        dir.join("store.json"),
    )
    .unwrap();
    let order =
        std::fs::read_to_string(Path::new(ROOT).join("sagas/inputs/order_ok.json")).unwrap();
    let orders: String = (0..20)
        .map(|i| {
            order
                .replace("order-123", &format!("o{i}"))
                .replace('\n', " ")
                + "\n"
        })
        .collect();
    std::fs::write(dir.join("orders.jsonl"), orders).unwrap();
    let saga = format!("{ROOT}/sagas/place_order.yaml");
    let args = [
        "saga",
        "run",
        &saga,
        "--inputs",
        "orders.jsonl",
        "--db",
        "p.db",
        "--seed",
        "store.json",
    ];
    let o = run_in(&dir, &args);
    assert!(stdout(&o).contains("20 sagas:"), "{}", stdout(&o));
    assert!(o.stderr.is_empty(), "{:?}", stderr(&o));
}

/// `--now` takes an RFC 3339 time, one without offset (UTC) or a date
/// (midnight UTC); anything else is refused with what is wrong and what to give.
#[test]
fn now_accepts_dates_and_says_what_it_expects() {
    let now = |text: &str| {
        pipe(
            &[
                "eval", "--value", "-e", "now()", "--now", text, "--output", "jsonl",
            ],
            b"{}\n",
        )
    };
    for (text, want) in [
        ("2024-06-15", "2024-06-15T00:00:00+00:00"),
        ("2024-06-15T10:30:00", "2024-06-15T10:30:00+00:00"),
        ("2024-06-15 10:30:00", "2024-06-15T10:30:00+00:00"),
        ("2024-06-15T10:30:00Z", "2024-06-15T10:30:00+00:00"),
        ("2024-06-15T10:30:00+02:00", "2024-06-15T10:30:00+02:00"),
    ] {
        let o = now(text);
        assert_eq!(o.status.code(), Some(0), "{text}: {}", stderr(&o));
        assert_eq!(json_lines(&o)[0]["value"], want, "{text}");
    }
    for (text, reason) in [
        ("June", "--now `June`: not a date or a time"),
        (
            "2024-02-30",
            "--now `2024-02-30`: not a day of the calendar",
        ),
        (
            "2024-06-15T25:00:00Z",
            "--now `2024-06-15T25:00:00Z`: not a valid time",
        ),
    ] {
        let o = now(text);
        assert_eq!(o.status.code(), Some(2), "{text}");
        let err = stderr(&o);
        assert!(err.starts_with(&format!("error: {reason}")), "{err}");
        assert!(err.contains("help: give an RFC 3339 time"), "{err}");
        assert!(
            err.contains("or a date (`2024-06-15`, midnight UTC)"),
            "{err}"
        );
        assert!(o.stdout.is_empty());
    }
    // diff reads the clock the same way
    let o = run(&[
        "diff",
        "specs/discount.rules",
        "specs/discount.rules",
        "--rule",
        "discount",
        "--data",
        "specs/customers.json",
        "--now",
        "2024-6-15x",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("help: give an RFC 3339 time"),
        "{}",
        stderr(&o)
    );
}
