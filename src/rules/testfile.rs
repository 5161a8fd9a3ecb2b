//! Rule tests: `*.test.yaml` files beside the rule files, loaded and run.
//!
//! 1. The YAML text becomes the serialised form (`TestFileDoc`, `deny_unknown_fields`,
//!    spans kept for every case) — the boundary with the user's file;
//! 2. it is validated into a [`TestSuite`]: rule files resolved against the test
//!    file's folder, records read (inline or from a data file), every expectation
//!    compiled against the rule set (a rule name, or an expression that may call rules);
//! 3. [`TestSuite::run`] evaluates each expectation on the fast path and explains
//!    the ones that fail.
//!
//! ```yaml
//! rules: [discount.rules]          # default: the `.rules` file with the same stem
//! now: 2024-06-01T00:00:00Z        # optional: fixes `now()` and `today()`
//! cases:
//!   - name: premium customers always get the discount
//!     record: { name: Alice, tier: premium, total: 50, days: 60 }
//!     expect: { discount: true, big_spender: false }
//!   - name: every customer of the data file is recent
//!     data: customers.json          # a JSON array, JSONL or YAML file
//!     index: 1                      # optional: one record; default every record
//!     expect: { recent: true, "high_value(120)": true }
//! ```

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, FixedOffset};
use serde::Deserialize;
use serde::de::{MapAccess, Visitor};
use serde_saphyr::Spanned;

use super::api::{Context, Env, EvalError, Program, RuleErrors, RuleSet, read_text};
use super::explain::Explanation;

/// The serialised form of a test file, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestFileDoc {
    /// Rule files, relative to the test file.
    #[serde(default)]
    rules: Option<Vec<String>>,
    /// The clock for every case, RFC 3339.
    #[serde(default)]
    now: Option<Spanned<String>>,
    /// The cases.
    cases: Vec<Spanned<CaseDoc>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseDoc {
    name: String,
    #[serde(default)]
    record: Option<serde_json::Value>,
    #[serde(default)]
    data: Option<String>,
    #[serde(default)]
    index: Option<usize>,
    #[serde(default)]
    now: Option<Spanned<String>>,
    expect: Expectations,
}

/// `rule: bool` pairs in the order written.
#[derive(Debug)]
struct Expectations(Vec<(String, bool)>);

impl<'de> Deserialize<'de> for Expectations {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Expectations, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Expectations;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping from rule names (or expressions) to true or false")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Expectations, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, bool>()? {
                    out.push((k, v));
                }
                Ok(Expectations(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// A test file that cannot be used: where (file, line, YAML path) and why.
#[derive(Debug)]
pub struct TestFileError {
    /// The test file.
    pub file: PathBuf,
    /// 1-based line, when known.
    pub line: Option<u64>,
    /// 1-based column, when known.
    pub column: Option<u64>,
    /// The YAML path of the offending value (`cases[2].expect.discount`), when known.
    pub yaml_path: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for TestFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        if let Some(path) = &self.yaml_path {
            write!(f, ": {path}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for TestFileError {}

/// Why a test file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The test file itself is wrong.
    #[error("{0}")]
    File(#[from] TestFileError),
    /// The rule files it tests do not compile.
    #[error("{0}")]
    Rules(RuleErrors),
}

/// One expectation: a rule (or expression) and the result it must give.
#[derive(Clone, Debug)]
pub struct Expectation {
    /// The rule name or expression, as written.
    pub target: String,
    /// The expected result.
    pub expected: bool,
    program: Program,
}

/// One case of a test file.
#[derive(Clone, Debug)]
pub struct TestCase {
    /// The case's name.
    pub name: String,
    /// The line of the case in the test file.
    pub line: u64,
    /// The records, each with its index in the data file (0 for an inline record).
    records: Vec<(usize, serde_json::Value)>,
    /// Where the records come from: `inline` or the data file's path.
    pub origin: String,
    /// What each record must give.
    pub expectations: Vec<Expectation>,
    ctx: Context,
}

/// A loaded test file, ready to run.
#[derive(Clone)]
pub struct TestSuite {
    /// The test file.
    pub path: PathBuf,
    /// The rule files it tests.
    pub rule_files: Vec<PathBuf>,
    /// The rule set compiled from them.
    pub rules: RuleSet,
    /// The cases, in file order.
    pub cases: Vec<TestCase>,
}

/// The result of one expectation on one record.
#[derive(Clone, Debug)]
pub struct CheckResult {
    /// The rule name or expression.
    pub target: String,
    /// The record's index in its data file (0 for an inline record).
    pub record_index: usize,
    /// The expected result.
    pub expected: bool,
    /// The actual result, or the evaluation error.
    pub actual: Result<bool, EvalError>,
    /// For a failed check: why the rule decided as it did.
    pub explanation: Option<Explanation>,
    /// For a failed check: the record.
    pub record: Option<serde_json::Value>,
}

impl CheckResult {
    /// True when the rule gave the expected result.
    pub fn passed(&self) -> bool {
        self.actual.as_ref().is_ok_and(|a| *a == self.expected)
    }
}

/// The result of one case: every expectation on every record.
#[derive(Clone, Debug)]
pub struct CaseResult {
    /// The case's name.
    pub name: String,
    /// Its line in the test file.
    pub line: u64,
    /// Every check, in order (records outer, expectations inner).
    pub checks: Vec<CheckResult>,
}

impl CaseResult {
    /// True when every check passed.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(CheckResult::passed)
    }

    /// The checks that failed.
    pub fn failures(&self) -> impl Iterator<Item = &CheckResult> {
        self.checks.iter().filter(|c| !c.passed())
    }
}

/// Is this path a rule test file (`*.test.yaml` or `*.test.yml`)?
pub fn is_test_file(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.ends_with(".test.yaml") || n.ends_with(".test.yml"))
}

/// The rule file a test file tests by default: `x.test.yaml` → `x.rules`.
pub fn default_rule_file(path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?.to_str()?;
    let stem = name
        .strip_suffix(".test.yaml")
        .or_else(|| name.strip_suffix(".test.yml"))?;
    Some(path.with_file_name(format!("{stem}.rules")))
}

fn error_at(
    file: &Path,
    line: Option<u64>,
    yaml_path: Option<String>,
    message: String,
) -> TestFileError {
    TestFileError {
        file: file.to_path_buf(),
        line,
        column: None,
        yaml_path,
        message,
    }
}

fn parse_now(
    file: &Path,
    now: &Spanned<String>,
    yaml_path: String,
) -> Result<DateTime<FixedOffset>, TestFileError> {
    DateTime::parse_from_rfc3339(&now.value).map_err(|e| {
        error_at(
            file,
            Some(now.referenced.line()),
            Some(yaml_path),
            format!("`{}` is not an RFC 3339 datetime: {e}", now.value),
        )
    })
}

/// Read a data file of records: a JSON array, one JSON object, JSONL, or YAML.
fn read_records(path: &Path) -> Result<Vec<serde_json::Value>, String> {
    let text = read_text(path).map_err(|e| e.to_string())?;
    let is_yaml = matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    );
    let value: serde_json::Value = if is_yaml {
        serde_saphyr::from_str(&text).map_err(|e| format!("invalid YAML: {e}"))?
    } else {
        match serde_json::from_str(&text) {
            Ok(v) => v,
            Err(whole) => {
                // JSONL: one object per non-blank line
                let mut items = Vec::new();
                for (i, line) in text.lines().enumerate() {
                    if line.trim().is_empty() {
                        continue;
                    }
                    let item = serde_json::from_str(line).map_err(|e| {
                        if i == 0 {
                            format!("invalid JSON: {whole}")
                        } else {
                            format!("line {}: invalid JSON: {e}", i + 1)
                        }
                    })?;
                    items.push(item);
                }
                serde_json::Value::Array(items)
            }
        }
    };
    Ok(match value {
        serde_json::Value::Array(items) => items,
        serde_json::Value::Null => Vec::new(),
        other => vec![other],
    })
}

/// `error: line 6 column 5: unknown field` → `unknown field`.
fn strip_position(message: &str) -> &str {
    let m = message.strip_prefix("error: ").unwrap_or(message);
    match m.strip_prefix("line ") {
        Some(rest) => match rest.split_once(": ") {
            Some((position, tail)) if position.contains("column") => tail,
            _ => m,
        },
        None => m,
    }
}

/// The YAML path (`cases[0].expect`) of the key or item on a 1-based line of
/// block-style YAML, found from indentation (flow collections count as one value).
fn yaml_path_at(text: &str, line: u64) -> Option<String> {
    enum Seg {
        Key(String),
        Item(usize),
    }
    let mut stack: Vec<(usize, Seg)> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        if i as u64 >= line {
            break;
        }
        let content = raw.trim_start_matches(' ');
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        let mut indent = raw.len() - content.len();
        let mut content = content;
        while let Some(rest) = content
            .strip_prefix('-')
            .filter(|r| r.is_empty() || r.starts_with(' '))
        {
            while stack.last().is_some_and(|(d, _)| *d > indent) {
                stack.pop();
            }
            match stack.last_mut() {
                Some((d, Seg::Item(n))) if *d == indent => *n += 1,
                _ => stack.push((indent, Seg::Item(0))),
            }
            let trimmed = rest.trim_start_matches(' ');
            indent += 1 + rest.len() - trimmed.len();
            content = trimmed;
        }
        let key = content
            .split_once(':')
            .map(|(k, _)| k.trim().trim_matches(['"', '\'']))
            .filter(|k| !k.is_empty() && !k.starts_with(['{', '[']));
        if let Some(key) = key {
            while stack
                .last()
                .is_some_and(|(d, seg)| *d > indent || (*d == indent && matches!(seg, Seg::Key(_))))
            {
                stack.pop();
            }
            stack.push((indent, Seg::Key(key.to_string())));
        }
    }
    let mut path = String::new();
    for (_, seg) in &stack {
        match seg {
            Seg::Key(k) => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
            }
            Seg::Item(n) => path.push_str(&format!("[{n}]")),
        }
    }
    (!path.is_empty()).then_some(path)
}

/// Is `text` a plain rule name (as opposed to an expression)?
fn is_name(text: &str) -> bool {
    super::lexical::is_word(text)
}

/// Load and validate a test file: the YAML, its rule files, records and expectations.
pub fn load_test_file(path: &Path, env: &Env) -> Result<TestSuite, LoadError> {
    let file_error =
        |line, yaml_path, message| LoadError::File(error_at(path, line, yaml_path, message));
    let text = read_text(path).map_err(|e| file_error(None, None, e.to_string()))?;
    let doc: TestFileDoc = serde_saphyr::from_str(&text).map_err(|e| {
        let location = e.location();
        let line = location.map(|l| l.line()).filter(|l| *l > 0);
        let message = e.to_string();
        let message = message.lines().next().unwrap_or("invalid YAML");
        // saphyr prefixes its own position; ours is already in front
        let message = strip_position(message);
        LoadError::File(TestFileError {
            file: path.to_path_buf(),
            line,
            column: location.map(|l| l.column()).filter(|c| *c > 0),
            yaml_path: line.and_then(|l| yaml_path_at(&text, l)),
            message: message.to_string(),
        })
    })?;
    let dir = path.parent().unwrap_or(Path::new(""));
    let rule_files: Vec<PathBuf> = match &doc.rules {
        Some(files) => files.iter().map(|f| dir.join(f)).collect(),
        None => default_rule_file(path).into_iter().collect(),
    };
    if rule_files.is_empty() {
        return Err(file_error(
            Some(1),
            Some("rules".into()),
            "no rule files to test".into(),
        ));
    }
    for file in &rule_files {
        if !file.is_file() {
            let why = if doc.rules.is_some() {
                "is listed under `rules` but does not exist"
            } else {
                "does not exist; name the rule files with `rules: [...]`"
            };
            return Err(file_error(
                Some(1),
                Some("rules".into()),
                format!("rule file `{}` {why}", file.display()),
            ));
        }
    }
    let rules = RuleSet::load(&rule_files, env).map_err(LoadError::Rules)?;
    let file_now = match &doc.now {
        Some(now) => Some(parse_now(path, now, "now".into())?),
        None => None,
    };
    let mut cases = Vec::new();
    for (i, case) in doc.cases.iter().enumerate() {
        let line = case.referenced.line();
        let at = |field: &str| Some(format!("cases[{i}]{field}"));
        let case = &case.value;
        let now = match &case.now {
            Some(now) => Some(parse_now(path, now, format!("cases[{i}].now"))?),
            None => file_now,
        };
        let ctx = now.map_or_else(Context::system, Context::at);
        let (records, origin) = match (&case.record, &case.data) {
            (Some(record), None) => {
                if case.index.is_some() {
                    return Err(file_error(
                        Some(line),
                        at(".index"),
                        "`index` needs `data`".into(),
                    ));
                }
                (vec![(0, record.clone())], "inline".to_string())
            }
            (None, Some(data)) => {
                let data_path = dir.join(data);
                let all = read_records(&data_path).map_err(|e| {
                    file_error(
                        Some(line),
                        at(".data"),
                        format!("`{}`: {e}", data_path.display()),
                    )
                })?;
                let records: Vec<(usize, serde_json::Value)> = match case.index {
                    Some(n) => match all.into_iter().nth(n) {
                        Some(r) => vec![(n, r)],
                        None => {
                            return Err(file_error(
                                Some(line),
                                at(".index"),
                                format!("`{}` has no record {n}", data_path.display()),
                            ));
                        }
                    },
                    None => all.into_iter().enumerate().collect(),
                };
                (records, data_path.display().to_string())
            }
            (Some(_), Some(_)) => {
                return Err(file_error(
                    Some(line),
                    at(""),
                    "a case has either `record` or `data`, not both".into(),
                ));
            }
            (None, None) => {
                return Err(file_error(
                    Some(line),
                    at(""),
                    "a case needs `record` (inline) or `data` (a file)".into(),
                ));
            }
        };
        for (n, record) in &records {
            let Some(map) = record.as_object() else {
                return Err(file_error(
                    Some(line),
                    at(".record"),
                    format!("record {n} is not a mapping"),
                ));
            };
            if let Some(schema) = rules.schema() {
                for key in map.keys() {
                    if schema.root.get(key).is_none() {
                        let help = schema
                            .root
                            .suggest(key)
                            .map(|h| format!(" ({h})"))
                            .unwrap_or_default();
                        return Err(file_error(
                            Some(line),
                            at(&format!(".record.{key}")),
                            format!("field `{key}` is not in the schema{help}"),
                        ));
                    }
                }
                // every value fits, nested ones included: a test of data the rules
                // would reject proves nothing
                if let Err(e) = schema.check_json(record) {
                    return Err(match &case.data {
                        None => file_error(
                            Some(line),
                            at(&format!(".record.{}", e.path)),
                            e.to_string(),
                        ),
                        Some(data) => file_error(
                            Some(line),
                            at(".data"),
                            format!("`{}`: record {n}: {e}", dir.join(data).display()),
                        ),
                    });
                }
            }
        }
        if case.expect.0.is_empty() {
            return Err(file_error(
                Some(line),
                at(".expect"),
                "no expectations".into(),
            ));
        }
        let mut expectations = Vec::new();
        for (target, expected) in &case.expect.0 {
            let program = if is_name(target) {
                rules.condition(target).map_err(|e| match e.help() {
                    Some(help) => format!("{e} ({help})"),
                    None => e.to_string(),
                })
            } else {
                rules.compile_expr(target).map_err(|d| {
                    d.items
                        .iter()
                        .map(|d| d.message.clone())
                        .collect::<Vec<_>>()
                        .join("; ")
                })
            }
            .map_err(|message| file_error(Some(line), at(&format!(".expect.{target}")), message))?;
            expectations.push(Expectation {
                target: target.clone(),
                expected: *expected,
                program,
            });
        }
        cases.push(TestCase {
            name: case.name.clone(),
            line,
            records,
            origin,
            expectations,
            ctx,
        });
    }
    Ok(TestSuite {
        path: path.to_path_buf(),
        rule_files,
        rules,
        cases,
    })
}

impl TestCase {
    /// Evaluate every expectation on every record; explain the failures.
    pub fn run(&self) -> CaseResult {
        let mut checks = Vec::new();
        for (index, record) in &self.records {
            for e in &self.expectations {
                let actual = e.program.matches(record, &self.ctx);
                let failed = !actual.as_ref().is_ok_and(|a| *a == e.expected);
                let explanation = if failed {
                    e.program.explain(record, &self.ctx).ok()
                } else {
                    None
                };
                checks.push(CheckResult {
                    target: e.target.clone(),
                    record_index: *index,
                    expected: e.expected,
                    actual,
                    explanation,
                    record: failed.then(|| record.clone()),
                });
            }
        }
        CaseResult {
            name: self.name.clone(),
            line: self.line,
            checks,
        }
    }
}

impl TestSuite {
    /// Run every case, in order.
    pub fn run(&self) -> Vec<CaseResult> {
        self.cases.iter().map(TestCase::run).collect()
    }

    /// The rules this file's expectations use (for the unused-rule lint).
    pub fn used_rules(&self) -> HashSet<String> {
        let mut used = HashSet::new();
        for case in &self.cases {
            for e in &case.expectations {
                used.extend(e.program.rules_used());
            }
        }
        used
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn yaml_paths_follow_indentation() {
        let text = "now: x\ncases:\n  - name: a\n    expect: { a: true }\n  - name: b\n    record:\n      total: 5\n    extra: 1\n";
        assert_eq!(yaml_path_at(text, 1).as_deref(), Some("now"));
        assert_eq!(yaml_path_at(text, 4).as_deref(), Some("cases[0].expect"));
        assert_eq!(yaml_path_at(text, 5).as_deref(), Some("cases[1].name"));
        assert_eq!(
            yaml_path_at(text, 7).as_deref(),
            Some("cases[1].record.total")
        );
        assert_eq!(yaml_path_at(text, 8).as_deref(), Some("cases[1].extra"));
        let flat = "cases:\n- name: a\n  expect: {}\n";
        assert_eq!(yaml_path_at(flat, 3).as_deref(), Some("cases[0].expect"));
        assert_eq!(
            strip_position("error: line 6 column 5: unknown field `x`"),
            "unknown field `x`"
        );
    }

    #[test]
    fn names_and_expressions() {
        assert!(is_name("discount"));
        assert!(is_name("_x1"));
        assert!(!is_name("high_value(200)"));
        assert!(!is_name("1abc"));
        assert!(!is_name(""));
    }

    #[test]
    fn default_rule_file_has_the_same_stem() {
        assert_eq!(
            default_rule_file(Path::new("specs/discount.test.yaml")),
            Some(PathBuf::from("specs/discount.rules"))
        );
        assert_eq!(default_rule_file(Path::new("specs/discount.yaml")), None);
        assert!(is_test_file(Path::new("a/b.test.yml")));
        assert!(!is_test_file(Path::new("a/b.yaml")));
    }
}
