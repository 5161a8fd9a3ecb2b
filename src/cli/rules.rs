//! `rulesaga check`, `rulesaga parse` and `rulesaga eval`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};

use super::data::{self, Data, DataFormat, Layout, RecordSlot, Share};
use super::{ErrorFormat, render};
use crate::json::{FieldIndex, SparseRecord};
use crate::rules::{self, RuleError, RuleErrors, Schema};
use crate::{Context, Env, Program, RuleSet, Source};

/// Exit code for errors in rules.
pub const EXIT_RULES: u8 = 1;
/// Exit code for usage and data errors.
pub const EXIT_DATA: u8 = 2;

/// `rulesaga check`
#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Rule files, checked together (rules may refer to rules in other files);
    /// folders add their `*.rules` and `*.test.yaml` files. With test files, rules
    /// that no rule and no test uses are reported (W003).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Treat warnings as errors.
    #[arg(long)]
    deny_warnings: bool,
}

/// `rulesaga parse`
#[derive(Args, Debug)]
pub struct ParseArgs {
    /// A rule file.
    #[arg(required_unless_present = "expr", conflicts_with = "expr")]
    file: Option<PathBuf>,
    /// An expression instead of a file.
    #[arg(short = 'e', long = "expr")]
    expr: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = TreeFormat::Json)]
    format: TreeFormat,
}

/// `--format` of `parse`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TreeFormat {
    /// Pretty JSON.
    Json,
    /// YAML.
    Yaml,
}

/// `rulesaga eval`
#[derive(Args, Debug)]
pub struct EvalArgs {
    /// The expression to evaluate (a condition; with `--value`, any value).
    #[arg(
        short = 'e',
        long = "expr",
        required_unless_present = "rule",
        conflicts_with = "rule",
        allow_hyphen_values = true
    )]
    expr: Option<String>,
    /// A rule from the `--rules` files (evaluated with its default arguments).
    #[arg(long, requires = "rules")]
    rule: Option<String>,
    /// Rule files (their rules and schema are available to `-e` too).
    #[arg(long, num_args = 1..)]
    rules: Vec<PathBuf>,
    /// Records: a JSON array, JSONL, one JSON object, or YAML; `-` for standard input.
    #[arg(long)]
    data: PathBuf,
    /// How to read `--data`.
    #[arg(long, value_enum, default_value_t = DataFormat::Auto)]
    data_format: DataFormat,
    /// How to print results.
    #[arg(long, value_enum, default_value_t = Output::Table)]
    output: Output,
    /// Print each record's value instead of whether it matched: for a value
    /// rule or expression (`total * 1.2`, `lower(name)`).
    #[arg(long, conflicts_with_all = ["filter", "count", "explain"])]
    value: bool,
    /// Print only the matching records, verbatim, one per line.
    #[arg(long, conflicts_with_all = ["count", "explain"])]
    filter: bool,
    /// Print only the number of matching records.
    #[arg(long, conflicts_with = "explain")]
    count: bool,
    /// Print why each record matched or not: a tree per record (with
    /// `--output jsonl`, the same tree as JSON under `"explain"`).
    #[arg(long)]
    explain: bool,
    /// Fix the clock for `now()` and `today()` (RFC 3339), for reproducible runs.
    #[arg(long)]
    now: Option<String>,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
}

/// `--output` of `eval`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// A readable table.
    Table,
    /// One JSON object per record, in input order.
    Jsonl,
}

fn report_rule_errors(e: &RuleErrors, format: ErrorFormat) -> ExitCode {
    match e {
        RuleErrors::Io { .. } => {
            err!("{}", render::plain_error(&e.to_string(), format));
            ExitCode::from(EXIT_DATA)
        }
        RuleErrors::Invalid(files) => {
            for d in files {
                err!("{}", render::diagnostics(d, format));
            }
            ExitCode::from(EXIT_RULES)
        }
    }
}

/// `rulesaga check FILE...`
pub fn check(args: CheckArgs, format: ErrorFormat) -> ExitCode {
    let (rule_files, test_files) = match super::test::split_inputs(&args.files) {
        Ok(split) => split,
        Err(e) => {
            err!("{}", render::plain_error(&e, format));
            return ExitCode::from(EXIT_DATA);
        }
    };
    match RuleSet::load(&rule_files, &Env::new()) {
        Err(e) => report_rule_errors(&e, format),
        Ok(set) => {
            let mut n_warnings = 0;
            let mut warnings = set.lint();
            if !test_files.is_empty() {
                match super::test::used_rules(&test_files) {
                    Ok(used) => warnings.extend(rules::lint::unused_rules(&set, &used)),
                    Err(e) => {
                        err!("{}", render::plain_error(&e, format));
                        return ExitCode::from(EXIT_RULES);
                    }
                }
            }
            for d in &warnings {
                n_warnings += d.items.len();
                err!("{}", render::diagnostics(d, format));
            }
            if format == ErrorFormat::Human {
                errln!(
                    "checked {} rule{} in {} file{}: {} warning{}",
                    set.names().len(),
                    plural(set.names().len()),
                    rule_files.len(),
                    plural(rule_files.len()),
                    n_warnings,
                    plural(n_warnings)
                );
            }
            if args.deny_warnings && n_warnings > 0 {
                ExitCode::from(EXIT_RULES)
            } else {
                ExitCode::SUCCESS
            }
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// `rulesaga parse`
pub fn parse(args: ParseArgs, format: ErrorFormat) -> ExitCode {
    let tree = match (&args.expr, &args.file) {
        (Some(expr), _) => {
            let source = Source::new("<expr>", expr.clone());
            rules::parse_expr(&source).map(serde_json::to_value)
        }
        (None, Some(path)) => {
            let text = match rules::read_text(path) {
                Ok(t) => t,
                Err(e) => return report_rule_errors(&e, format),
            };
            let source = Source::new(path.display().to_string(), text);
            rules::parse_rule_file(&source).map(serde_json::to_value)
        }
        (None, None) => return ExitCode::from(EXIT_DATA),
    };
    let tree = match tree {
        Ok(Ok(t)) => t,
        Ok(Err(e)) => {
            err!("{}", render::plain_error(&e.to_string(), format));
            return ExitCode::from(EXIT_DATA);
        }
        Err(d) => {
            err!("{}", render::diagnostics(&d, format));
            return ExitCode::from(EXIT_RULES);
        }
    };
    let text = match args.format {
        TreeFormat::Json => serde_json::to_string_pretty(&tree).map_err(|e| e.to_string()),
        TreeFormat::Yaml => serde_saphyr::to_string(&tree).map_err(|e| e.to_string()),
    };
    match text {
        Ok(t) => {
            outln!("{}", t.trim_end());
            ExitCode::SUCCESS
        }
        Err(e) => {
            err!("{}", render::plain_error(&e, format));
            ExitCode::from(EXIT_DATA)
        }
    }
}

/// The outcome of one record (16 bytes: a million of them stay small).
#[derive(Clone, Debug)]
enum Outcome {
    Matched(bool),
    /// With `--value`: the value (`None` when missing).
    Value(Option<Box<serde_json::Value>>),
    Error(Box<str>),
}

/// `rulesaga eval`
pub fn eval(args: EvalArgs, format: ErrorFormat) -> ExitCode {
    let (program, rules) = match compile(&args, format) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let (ctx, data) =
        match context_and_data(args.now.as_deref(), &args.data, args.data_format, format) {
            Ok(both) => both,
            Err(code) => return code,
        };
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let schema = rules.as_ref().and_then(RuleSet::schema);
    let evaluated = evaluate_all(
        &program,
        schema,
        &data,
        &ctx,
        threads,
        !args.count,
        args.value,
    );
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let errors: Vec<(usize, &RecordSlot, &str)> = evaluated
        .errors
        .iter()
        .map(|(i, slot, e)| (*i, slot, &**e))
        .collect();
    for (i, slot, e) in errors.iter().take(20) {
        let line = match (&data.layout, slot.line) {
            (_, n) if n > 0 => n,
            (Layout::Lines, _) => data.line_at(slot.start),
            _ => 0,
        };
        let at = render::At {
            file: &data.name,
            line: (line > 0).then_some(line),
            record: Some(*i),
            ..render::At::default()
        };
        err!("{}", render::data_error(&at, e, format));
    }
    let n_errors = errors.len();
    if n_errors > 20 {
        err!(
            "{}",
            render::plain_error(&format!("{} more records failed", n_errors - 20), format)
        );
    }
    let records = &evaluated.records;
    let written = if args.count {
        writeln!(out, "{}", evaluated.n_matched)
    } else if args.filter {
        write_filtered(&mut out, &data, records)
    } else if args.explain {
        write_explained(&mut out, &program, &data, &ctx, args.output, records)
    } else {
        match args.output {
            Output::Jsonl => write_jsonl(&mut out, records),
            Output::Table => write_table(&mut out, &program, &data, records, args.value),
        }
    };
    if let Err(e) = written.and_then(|()| out.flush())
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        err!("{}", render::plain_error(&e.to_string(), format));
        return ExitCode::from(EXIT_DATA);
    }
    if n_errors > 0 {
        ExitCode::from(EXIT_DATA)
    } else {
        ExitCode::SUCCESS
    }
}

/// The clock (`--now`, else the system's) and the records of `--data`, or the exit
/// code after reporting why not. Shared by `eval` and `diff`.
pub(super) fn context_and_data(
    now: Option<&str>,
    path: &std::path::Path,
    data_format: DataFormat,
    format: ErrorFormat,
) -> Result<(Context, Data), ExitCode> {
    let ctx = match now {
        Some(now) => match chrono::DateTime::parse_from_rfc3339(now) {
            Ok(t) => Context::at(t),
            Err(e) => {
                err!(
                    "{}",
                    render::plain_error(&format!("--now `{now}`: {e}"), format)
                );
                return Err(ExitCode::from(EXIT_DATA));
            }
        },
        None => Context::system(),
    };
    match data::load(path, data_format) {
        Ok(d) => Ok((ctx, d)),
        Err(e) => {
            let at = render::At {
                file: &e.file,
                line: e.line,
                column: e.column,
                ..render::At::default()
            };
            err!("{}", render::data_error(&at, &e.message, format));
            Err(ExitCode::from(EXIT_DATA))
        }
    }
}

fn compile(args: &EvalArgs, format: ErrorFormat) -> Result<(Program, Option<RuleSet>), ExitCode> {
    let ruleset = if args.rules.is_empty() {
        None
    } else {
        match RuleSet::load(&args.rules, &Env::new()) {
            Ok(s) => Some(s),
            Err(e) => return Err(report_rule_errors(&e, format)),
        }
    };
    if let Some(expr) = &args.expr {
        let env = match &ruleset {
            Some(set) => Env::new().with_rules(set.clone()),
            None => Env::new(),
        };
        let source = Source::new("<expr>", expr.clone());
        let compiled = if args.value {
            Program::compile_value(source, &env)
        } else {
            Program::compile(source, &env)
        };
        return match compiled {
            Ok(p) => Ok((p, ruleset)),
            Err(d) => {
                err!("{}", render::diagnostics(&d, format));
                Err(ExitCode::from(EXIT_RULES))
            }
        };
    }
    let name = args.rule.as_deref().unwrap_or_default();
    let found = ruleset.as_ref().map(|s| {
        if args.value {
            s.require(name)
        } else {
            s.condition(name)
        }
    });
    match found {
        Some(Ok(p)) => Ok((p, ruleset)),
        Some(Err(e)) => {
            let help = match &e {
                RuleError::NotACondition { .. } => {
                    Some("print its value per record with `--value`".to_string())
                }
                e => e.help(),
            };
            err!(
                "{}",
                render::rule_error(&e.to_string(), help.as_deref(), format)
            );
            Err(ExitCode::from(EXIT_RULES))
        }
        None => {
            err!(
                "{}",
                render::plain_error("`--rule` needs `--rules FILE`", format)
            );
            Err(ExitCode::from(EXIT_DATA))
        }
    }
}

/// The results of one `eval` run, in input order.
struct Evaluated {
    n_matched: usize,
    /// Every record with its outcome (when asked to keep them).
    records: Vec<(RecordSlot, Outcome)>,
    /// The records that failed: index, place, message.
    errors: Vec<(usize, RecordSlot, Box<str>)>,
}

/// One worker's share of the results.
#[derive(Default)]
struct ShareResult {
    n_records: usize,
    n_matched: usize,
    records: Vec<(RecordSlot, Outcome)>,
    errors: Vec<(usize, RecordSlot, Box<str>)>,
}

/// Evaluate every record, each worker on its own share (splitting lines,
/// checking UTF-8, parsing and evaluating), keeping input order.
fn evaluate_all(
    program: &Program,
    schema: Option<&Schema>,
    data: &Data,
    ctx: &Context,
    threads: usize,
    keep: bool,
    values: bool,
) -> Evaluated {
    let index = FieldIndex::new(program.fields());
    let run = |share: &Share<'_>| -> ShareResult {
        let mut record = SparseRecord::new(&index);
        let mut out = ShareResult::default();
        share.for_each(&data.bytes, |slot, text| {
            let outcome = match text {
                Err(e) => Outcome::Error(e.into()),
                Ok(text) => match record.parse(text, &index) {
                    Err(e) => Outcome::Error(format!("invalid JSON: {e}").into()),
                    // with a schema, records must fit it (slots are the schema's)
                    Ok(()) => match schema.map_or(Ok(()), |s| s.check_record(&record)) {
                        Err(e) => Outcome::Error(e.to_string().into()),
                        Ok(()) if values => match program.evaluate(&record, ctx) {
                            Ok(v) => Outcome::Value(v.map(|v| Box::new(v.to_json()))),
                            Err(e) => Outcome::Error(e.to_string().into()),
                        },
                        Ok(()) => match program.matches_typed(&record, ctx) {
                            Ok(m) => Outcome::Matched(m),
                            Err(e) => Outcome::Error(e.to_string().into()),
                        },
                    },
                },
            };
            match &outcome {
                Outcome::Matched(true) => out.n_matched += 1,
                Outcome::Matched(false) | Outcome::Value(_) => {}
                Outcome::Error(e) => out.errors.push((out.n_records, slot, e.clone())),
            }
            if keep {
                out.records.push((slot, outcome));
            }
            out.n_records += 1;
        });
        out
    };
    let small = data.bytes.len() < (1 << 20);
    let shares = data.shares(if small { 1 } else { threads });
    let results: Vec<ShareResult> = if shares.len() <= 1 {
        shares.iter().map(run).collect()
    } else {
        std::thread::scope(|s| {
            let handles: Vec<_> = shares.iter().map(|share| s.spawn(|| run(share))).collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| ShareResult {
                        errors: vec![(
                            0,
                            RecordSlot {
                                start: 0,
                                end: 0,
                                line: 0,
                            },
                            "worker failed".into(),
                        )],
                        ..ShareResult::default()
                    })
                })
                .collect()
        })
    };
    let mut all = Evaluated {
        n_matched: 0,
        records: Vec::new(),
        errors: Vec::new(),
    };
    let mut before = 0;
    for r in results {
        all.n_matched += r.n_matched;
        all.errors.extend(
            r.errors
                .into_iter()
                .map(|(i, slot, e)| (before + i, slot, e)),
        );
        if all.records.is_empty() {
            all.records = r.records;
        } else {
            all.records.extend(r.records);
        }
        before += r.n_records;
    }
    all
}

fn write_filtered(
    out: &mut impl Write,
    data: &Data,
    records: &[(RecordSlot, Outcome)],
) -> std::io::Result<()> {
    for (slot, o) in records {
        if matches!(o, Outcome::Matched(true)) {
            let text = data.record_text(slot);
            if text.contains('\n') {
                // a multi-line element of a JSON array: print it compactly on one line
                match serde_json::from_str::<serde_json::Value>(text) {
                    Ok(v) => writeln!(out, "{v}")?,
                    Err(_) => writeln!(out, "{text}")?,
                }
            } else {
                writeln!(out, "{}", text.strip_suffix('\r').unwrap_or(text))?;
            }
        }
    }
    Ok(())
}

fn write_jsonl(out: &mut impl Write, records: &[(RecordSlot, Outcome)]) -> std::io::Result<()> {
    for (i, (_, o)) in records.iter().enumerate() {
        let line = match o {
            Outcome::Matched(m) => serde_json::json!({"index": i, "matched": m}),
            Outcome::Value(v) => serde_json::json!({"index": i, "value": v}),
            Outcome::Error(e) => serde_json::json!({"index": i, "matched": null, "error": e}),
        };
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// Index, result, and the fields the rule reads.
fn write_table(
    out: &mut impl Write,
    program: &Program,
    data: &Data,
    records: &[(RecordSlot, Outcome)],
    values: bool,
) -> std::io::Result<()> {
    let index = FieldIndex::new(program.fields());
    let result = if values { "value" } else { "matched" };
    let mut header = vec!["#".to_string(), result.to_string()];
    header.extend(program.fields().iter().cloned());
    let mut rows = vec![header];
    let mut record = SparseRecord::new(&index);
    for (i, (slot, o)) in records.iter().enumerate() {
        let mut row = vec![i.to_string()];
        row.push(match o {
            Outcome::Matched(true) => "yes".to_string(),
            Outcome::Matched(false) => "no".to_string(),
            Outcome::Value(Some(v)) => match &**v {
                serde_json::Value::String(s) => s.clone(),
                v => v.to_string(),
            },
            Outcome::Value(None) => "-".to_string(),
            Outcome::Error(_) => "error".to_string(),
        });
        let parsed = record.parse(data.record_text(slot), &index).is_ok();
        for f in 0..program.fields().len() {
            row.push(match record.get(f) {
                Some(crate::Value::Str(s)) if parsed => s.to_string(),
                Some(v) if parsed => v.to_string(),
                _ => "-".to_string(),
            });
        }
        rows.push(row);
    }
    let n_cols = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..n_cols)
        .map(|c| {
            rows.iter()
                .map(|r| r.get(c).map_or(0, |s| s.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in &rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            if c + 1 < row.len() {
                let pad = widths[c].saturating_sub(cell.chars().count());
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        writeln!(out, "{line}")?;
    }
    if values {
        return writeln!(out, "{} records", records.len());
    }
    let n = records
        .iter()
        .filter(|(_, o)| matches!(o, Outcome::Matched(true)))
        .count();
    writeln!(out, "{n} of {} records matched", records.len())
}

/// `--explain`: evaluate each record again on the explaining path. A record
/// that failed (invalid JSON, not fitting the schema) is not explained: its
/// error is printed in its place, as it was reported.
fn write_explained(
    out: &mut impl Write,
    program: &Program,
    data: &Data,
    ctx: &Context,
    output: Output,
    records: &[(RecordSlot, Outcome)],
) -> std::io::Result<()> {
    for (i, (slot, outcome)) in records.iter().enumerate() {
        let explained = match outcome {
            Outcome::Error(e) => Err(e.to_string()),
            _ => match serde_json::from_str::<serde_json::Value>(data.record_text(slot)) {
                Ok(record) => program.explain(&record, ctx).map_err(|e| e.to_string()),
                Err(e) => Err(format!("invalid JSON: {e}")),
            },
        };
        match (output, explained) {
            (Output::Jsonl, Ok(e)) => {
                let line = serde_json::json!({"index": i, "matched": e.matched, "explain": e});
                writeln!(out, "{line}")?;
            }
            (Output::Jsonl, Err(e)) => {
                let line = serde_json::json!({"index": i, "matched": null, "error": e});
                writeln!(out, "{line}")?;
            }
            (Output::Table, Ok(e)) => {
                let verdict = if e.matched {
                    "matched"
                } else {
                    "did not match"
                };
                writeln!(out, "record {i}: {verdict}")?;
                write!(out, "{e}")?;
                writeln!(out)?;
            }
            (Output::Table, Err(e)) => writeln!(out, "record {i}: error: {e}\n")?,
        }
    }
    Ok(())
}
