//! Every rules example in the docs and the README compiles: `rules` code
//! blocks (a rule file, or one expression per line), the example columns of
//! the tables in docs/language.md, and every `rulesaga eval -e '...'` (with
//! the `--rules` files it names). language.md's own regex example once failed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use rulesaga::{Env, Program, RuleSet, Source};

const DOCS: &[&str] = &[
    "README.md",
    "docs/language.md",
    "docs/authoring.md",
    "docs/errors.md",
];

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

/// The fenced blocks of a Markdown text: (info string, first line number, body).
fn blocks(text: &str) -> Vec<(String, usize, String)> {
    let mut out = Vec::new();
    let mut open: Option<(String, usize, String)> = None;
    for (n, line) in text.lines().enumerate() {
        match (&mut open, line.strip_prefix("```")) {
            (None, Some(info)) => open = Some((info.trim().to_string(), n + 2, String::new())),
            (Some(_), Some(_)) => out.extend(open.take()),
            (Some((_, _, body)), None) => {
                body.push_str(line);
                body.push('\n');
            }
            (None, None) => {}
        }
    }
    out
}

/// The code spans of the last column of every table row under `heading`.
fn table_examples(text: &str, heading: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut inside = false;
    for (n, line) in text.lines().enumerate() {
        if line.starts_with('#') {
            inside = line.trim_start_matches('#').trim() == heading;
            continue;
        }
        if !inside || !line.starts_with('|') || line.starts_with("|---") {
            continue;
        }
        let cells: Vec<&str> = line.trim_matches('|').split('|').collect();
        let Some(last) = cells.last() else { continue };
        if cells.len() < 2 || last.trim() == "examples" || last.trim() == "literals" {
            continue;
        }
        for (i, piece) in last.split('`').enumerate() {
            if i % 2 == 1 {
                out.push((n + 1, piece.to_string()));
            }
        }
    }
    out
}

/// The rule names declared in the `rules` blocks of a text.
fn declared_rules(text: &str) -> Vec<String> {
    blocks(text)
        .into_iter()
        .filter(|(info, ..)| info == "rules")
        .flat_map(|(_, _, body)| {
            body.lines()
                .filter_map(|l| l.trim().strip_prefix("rule "))
                .map(|rest| {
                    rest.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                        .next()
                        .unwrap_or("")
                        .to_string()
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Compile an example as a value; the only error allowed is a call of a rule
/// that the document declares in one of its rule files.
fn compiles(expr: &str, rules: &[String]) -> Result<(), String> {
    match Program::compile_value(Source::new("<doc>", expr), &Env::new()) {
        Ok(_) => Ok(()),
        Err(d) => {
            let only_known_rules = d.items.iter().all(|i| {
                i.code == "E102" && rules.iter().any(|r| i.message.contains(&format!("`{r}`")))
            });
            if only_known_rules {
                Ok(())
            } else {
                Err(d.to_string())
            }
        }
    }
}

#[test]
fn rules_blocks_compile() {
    let mut failures = Vec::new();
    let mut n_blocks = 0;
    for doc in DOCS {
        let text = read(doc);
        for (info, line, body) in blocks(&text) {
            if info != "rules" {
                continue;
            }
            n_blocks += 1;
            let is_file = body.lines().any(|l| {
                l.trim_start().starts_with("rule ") || l.trim_start().starts_with("schema")
            });
            if is_file {
                let source = Source::new(format!("{doc}:{line}"), body.clone());
                if let Err(e) = RuleSet::compile(vec![source], &Env::new()) {
                    failures.push(format!("{doc}:{line}: {e}"));
                }
                continue;
            }
            for (i, expr) in body.lines().enumerate() {
                if expr.trim().is_empty() || expr.trim_start().starts_with('#') {
                    continue;
                }
                if let Err(e) = Program::compile(Source::new("<doc>", expr), &Env::new()) {
                    failures.push(format!("{doc}:{}: `{expr}`: {e}", line + i));
                }
            }
        }
    }
    assert!(n_blocks >= 3, "the docs have rules blocks");
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn language_tables_compile() {
    let text = read("docs/language.md");
    let rules = declared_rules(&text);
    let mut failures = Vec::new();
    let mut n = 0;
    for heading in ["Syntax", "Literals"] {
        for (line, example) in table_examples(&text, heading) {
            n += 1;
            if let Err(e) = compiles(&example, &rules) {
                failures.push(format!("docs/language.md:{line}: `{example}`: {e}"));
            }
        }
    }
    assert!(n > 40, "only {n} examples found");
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// `-e 'EXPR'` and `--rules FILE` of every `rulesaga eval` line of `sh` blocks.
#[test]
fn eval_examples_compile() {
    let mut failures = Vec::new();
    let mut n = 0;
    for doc in DOCS {
        for (info, line, body) in blocks(&read(doc)) {
            if info != "sh" {
                continue;
            }
            for (i, command) in body.lines().enumerate() {
                let Some(at) = command.find("rulesaga eval") else {
                    continue;
                };
                let command = &command[at..];
                let Some(expr) = command
                    .split_once("-e '")
                    .and_then(|(_, rest)| rest.split_once('\''))
                    .map(|(e, _)| e)
                else {
                    continue;
                };
                n += 1;
                let words: Vec<&str> = command.split_whitespace().collect();
                let env = match words.iter().position(|w| *w == "--rules") {
                    Some(k) => {
                        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(words[k + 1]);
                        Env::new().with_rules(RuleSet::load(&[path], &Env::new()).unwrap())
                    }
                    None => Env::new(),
                };
                let source = Source::new("<doc>", expr);
                let compiled = if words.contains(&"--value") {
                    Program::compile_value(source, &env)
                } else {
                    Program::compile(source, &env)
                };
                if let Err(e) = compiled {
                    failures.push(format!("{doc}:{}: `{expr}`: {e}", line + i));
                }
            }
        }
    }
    assert!(n >= 5, "only {n} eval examples found");
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}
