//! `rulesaga test [PATH...]`: discover `*.test.yaml` files, run them, report
//! failures with their explanation trees (or JUnit XML for CI).

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};

use super::rules::{EXIT_DATA, EXIT_RULES};
use super::{ErrorFormat, render};
use crate::Env;
use crate::rules::RuleErrors;
use crate::rules::testfile::{self, CaseResult, CheckResult, LoadError};

/// `rulesaga test`
#[derive(Args, Debug)]
pub struct TestArgs {
    /// Test files or folders to search for `*.test.yaml` (default: `specs/`).
    paths: Vec<PathBuf>,
    /// Report format (`--format` is the older spelling).
    #[arg(long, alias = "format", value_enum, default_value_t = ReportFormat::Table)]
    output: ReportFormat,
}

/// `--output` of `test`: the common vocabulary, and JUnit XML.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// Failures with their explanation trees, and a summary line.
    #[value(alias = "human")]
    Table,
    /// One JSON object: every file with its cases, and the counts.
    Json,
    /// One JSON object per case (or per file that could not be loaded).
    Jsonl,
    /// JUnit XML on standard output, for CI systems.
    Junit,
}

/// Test files under the given paths (folders searched recursively), sorted and deduplicated.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    super::files::find(paths, testfile::is_test_file)
}

/// `check` inputs: rule files and test files (folders give both, recursively).
pub fn split_inputs(paths: &[PathBuf]) -> Result<(Vec<PathBuf>, Vec<PathBuf>), String> {
    let found = super::files::find(paths, |p| {
        testfile::is_test_file(p) || super::files::is_rule_file(p)
    })?;
    Ok(found.into_iter().partition(|p| !testfile::is_test_file(p)))
}

/// The rules that test files name or call; a test file that does not load is an error.
pub fn used_rules(test_files: &[PathBuf]) -> Result<std::collections::HashSet<String>, String> {
    let mut used = std::collections::HashSet::new();
    for path in test_files {
        let suite = testfile::load_test_file(path, &Env::new()).map_err(|e| e.to_string())?;
        used.extend(suite.used_rules());
    }
    Ok(used)
}

/// One test file's outcome.
enum FileOutcome {
    Ran(Vec<CaseResult>),
    Broken(LoadError),
}

/// `rulesaga test`
pub fn run(args: TestArgs, format: ErrorFormat) -> ExitCode {
    let paths = if args.paths.is_empty() {
        vec![PathBuf::from("specs")]
    } else {
        args.paths.clone()
    };
    let files = match discover(&paths) {
        Ok(f) => f,
        Err(e) => {
            err!("{}", render::plain_error(&e, format));
            return ExitCode::from(EXIT_DATA);
        }
    };
    if files.is_empty() {
        err!(
            "{}",
            render::plain_error("no test files (`*.test.yaml`) found", format)
        );
        return ExitCode::from(EXIT_DATA);
    }
    let env = Env::new();
    let outcomes: Vec<(PathBuf, FileOutcome)> = files
        .into_iter()
        .map(|path| {
            let outcome = match testfile::load_test_file(&path, &env) {
                Ok(suite) => FileOutcome::Ran(suite.run()),
                Err(e) => FileOutcome::Broken(e),
            };
            (path, outcome)
        })
        .collect();
    let failed = outcomes.iter().any(|(_, o)| match o {
        FileOutcome::Ran(cases) => cases.iter().any(|c| !c.passed()),
        FileOutcome::Broken(_) => true,
    });
    let text = match args.output {
        ReportFormat::Table => {
            report_load_errors(&outcomes, format);
            human(&outcomes)
        }
        ReportFormat::Json | ReportFormat::Jsonl => {
            report_load_errors(&outcomes, format);
            json_report(&outcomes, args.output == ReportFormat::Jsonl)
        }
        ReportFormat::Junit => junit(&outcomes),
    };
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush())
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        err!("{}", render::plain_error(&e.to_string(), format));
        return ExitCode::from(EXIT_DATA);
    }
    if failed {
        ExitCode::from(EXIT_RULES)
    } else {
        ExitCode::SUCCESS
    }
}

/// Broken test files, as diagnostics on stderr.
fn report_load_errors(outcomes: &[(PathBuf, FileOutcome)], format: ErrorFormat) {
    for (_, outcome) in outcomes {
        match outcome {
            FileOutcome::Broken(LoadError::Rules(RuleErrors::Invalid(files))) => {
                for d in files {
                    err!("{}", render::diagnostics(d, format));
                }
            }
            FileOutcome::Broken(LoadError::File(e)) => {
                let file = e.file.display().to_string();
                let at = render::At {
                    file: &file,
                    line: e.line.and_then(|l| usize::try_from(l).ok()),
                    column: e.column.and_then(|c| usize::try_from(c).ok()),
                    record: None,
                    yaml_path: e.yaml_path.as_deref(),
                };
                err!("{}", render::data_error(&at, &e.message, format));
            }
            FileOutcome::Broken(e) => err!("{}", render::plain_error(&e.to_string(), format)),
            FileOutcome::Ran(_) => {}
        }
    }
}

fn verdict(check: &CheckResult) -> String {
    let expected = check.expected;
    match &check.actual {
        Ok(actual) => format!("{}: expected {expected}, got {actual}", check.target),
        Err(e) => format!("{}: expected {expected}, got an error: {e}", check.target),
    }
}

fn record_label(case: &CaseResult, check: &CheckResult) -> String {
    let n_records = case
        .checks
        .iter()
        .map(|c| c.record_index)
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    if n_records > 1 {
        format!("record {}: ", check.record_index)
    } else {
        String::new()
    }
}

fn human(outcomes: &[(PathBuf, FileOutcome)]) -> String {
    let mut out = String::new();
    let (mut passed, mut failed, mut broken) = (0, 0, 0);
    for (path, outcome) in outcomes {
        let _ = writeln!(out, "{}", path.display());
        match outcome {
            FileOutcome::Broken(_) => {
                broken += 1;
                let _ = writeln!(out, "  error  the file could not be loaded (see above)");
            }
            FileOutcome::Ran(cases) => {
                for case in cases {
                    if case.passed() {
                        passed += 1;
                        let _ = writeln!(out, "  ok     {}", case.name);
                        continue;
                    }
                    failed += 1;
                    let _ = writeln!(
                        out,
                        "  FAIL   {} ({}:{})",
                        case.name,
                        path.display(),
                        case.line
                    );
                    for check in case.failures() {
                        let _ = writeln!(
                            out,
                            "         {}{}",
                            record_label(case, check),
                            verdict(check)
                        );
                        if let Some(record) = &check.record {
                            let _ = writeln!(out, "           record: {record}");
                        }
                        if let Some(e) = &check.explanation {
                            for line in e.to_string().lines() {
                                let _ = writeln!(out, "           {line}");
                            }
                        }
                    }
                }
            }
        }
    }
    let result = if failed + broken == 0 { "ok" } else { "FAILED" };
    let _ = write!(
        out,
        "\ntest result: {result}. {passed} passed, {failed} failed"
    );
    if broken > 0 {
        let _ = write!(out, ", {broken} file{} could not be loaded", plural(broken));
    }
    let _ = writeln!(
        out,
        " ({} test file{})",
        outcomes.len(),
        plural(outcomes.len())
    );
    out
}

/// One case as JSON: `file`, `case`, `line`, `passed`, and each failed check.
fn case_json(path: &std::path::Path, case: &CaseResult) -> serde_json::Value {
    let failures: Vec<serde_json::Value> = case
        .failures()
        .map(|c| {
            let (actual, error) = match &c.actual {
                Ok(a) => (Some(*a), None),
                Err(e) => (None, Some(e.to_string())),
            };
            serde_json::json!({
                "target": c.target, "record_index": c.record_index, "expected": c.expected,
                "actual": actual, "error": error, "record": c.record, "explain": c.explanation,
            })
        })
        .collect();
    serde_json::json!({
        "file": path.display().to_string(), "case": case.name, "line": case.line,
        "passed": case.passed(), "failures": failures,
    })
}

/// `--output json` (one object with every case and the counts) or `jsonl`
/// (one object per case, or per file that could not be loaded).
fn json_report(outcomes: &[(PathBuf, FileOutcome)], lines: bool) -> String {
    let mut items = Vec::new();
    let (mut passed, mut failed, mut broken) = (0, 0, 0);
    for (path, outcome) in outcomes {
        match outcome {
            FileOutcome::Broken(e) => {
                broken += 1;
                let file = path.display().to_string();
                items.push(serde_json::json!({"file": file, "error": e.to_string()}));
            }
            FileOutcome::Ran(cases) => {
                for case in cases {
                    if case.passed() {
                        passed += 1;
                    } else {
                        failed += 1;
                    }
                    items.push(case_json(path, case));
                }
            }
        }
    }
    if lines {
        return items.iter().map(|i| format!("{i}\n")).collect();
    }
    let doc = serde_json::json!({
        "ok": failed + broken == 0, "passed": passed, "failed": failed,
        "broken_files": broken, "files": outcomes.len(), "cases": items,
    });
    format!(
        "{}\n",
        serde_json::to_string_pretty(&doc).unwrap_or_default()
    )
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Escape text for XML 1.0 content and attributes; characters XML cannot carry become U+FFFD.
pub fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

fn junit(outcomes: &[(PathBuf, FileOutcome)]) -> String {
    let mut body = String::new();
    let (mut n_tests, mut n_failures, mut n_errors) = (0, 0, 0);
    for (path, outcome) in outcomes {
        let suite = xml_escape(&path.display().to_string());
        match outcome {
            FileOutcome::Broken(e) => {
                n_tests += 1;
                n_errors += 1;
                let message = xml_escape(&e.to_string());
                let _ = writeln!(
                    body,
                    "  <testsuite name=\"{suite}\" tests=\"1\" failures=\"0\" errors=\"1\">\n    <testcase classname=\"{suite}\" name=\"load\">\n      <error message=\"the test file could not be loaded\">{message}</error>\n    </testcase>\n  </testsuite>"
                );
            }
            FileOutcome::Ran(cases) => {
                let n_failed = cases.iter().filter(|c| !c.passed()).count();
                n_tests += cases.len();
                n_failures += n_failed;
                let _ = writeln!(
                    body,
                    "  <testsuite name=\"{suite}\" tests=\"{}\" failures=\"{n_failed}\" errors=\"0\">",
                    cases.len()
                );
                for case in cases {
                    let name = xml_escape(&case.name);
                    if case.passed() {
                        let _ = writeln!(
                            body,
                            "    <testcase classname=\"{suite}\" name=\"{name}\"/>"
                        );
                        continue;
                    }
                    let messages: Vec<String> = case
                        .failures()
                        .map(|c| format!("{}{}", record_label(case, c), verdict(c)))
                        .collect();
                    let mut detail = String::new();
                    for check in case.failures() {
                        let _ = writeln!(detail, "{}{}", record_label(case, check), verdict(check));
                        if let Some(e) = &check.explanation {
                            let _ = writeln!(detail, "{e}");
                        }
                    }
                    let _ = writeln!(
                        body,
                        "    <testcase classname=\"{suite}\" name=\"{name}\">\n      <failure message=\"{}\">{}</failure>\n    </testcase>",
                        xml_escape(&messages.join("; ")),
                        xml_escape(&detail)
                    );
                }
                let _ = writeln!(body, "  </testsuite>");
            }
        }
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"rulesaga\" tests=\"{n_tests}\" failures=\"{n_failures}\" errors=\"{n_errors}\">\n{body}</testsuites>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_escape_covers_markup_and_control_characters() {
        assert_eq!(
            xml_escape("a<b & \"c\" 'd'>\u{1}\n"),
            "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;\u{FFFD}\n"
        );
    }
}
