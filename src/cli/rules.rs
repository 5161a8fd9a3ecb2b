//! `rulesaga check`, `rulesaga parse` and `rulesaga eval`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, ValueEnum};

use super::data::{self, Data, DataFormat};
use super::{ErrorFormat, render};
use rulesaga::json::{FieldIndex, SparseRecord};
use rulesaga::rules::{self, RuleErrors};
use rulesaga::{Context, Env, Program, RuleSet, Source};

/// Exit code for errors in rules.
pub const EXIT_RULES: u8 = 1;
/// Exit code for usage and data errors.
pub const EXIT_DATA: u8 = 2;

/// `rulesaga check`
#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Rule files, checked together (rules may refer to rules in other files).
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
    /// The expression to evaluate.
    #[arg(
        short = 'e',
        long = "expr",
        required_unless_present = "rule",
        conflicts_with = "rule"
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
            eprint!("{}", render::plain_error(&e.to_string(), format));
            ExitCode::from(EXIT_DATA)
        }
        RuleErrors::Invalid(files) => {
            for d in files {
                eprint!("{}", render::diagnostics(d, format));
            }
            ExitCode::from(EXIT_RULES)
        }
    }
}

/// `rulesaga check FILE...`
pub fn check(args: CheckArgs, format: ErrorFormat) -> ExitCode {
    match RuleSet::load(&args.files, &Env::new()) {
        Err(e) => report_rule_errors(&e, format),
        Ok(set) => {
            let mut n_warnings = 0;
            for d in set.warnings() {
                n_warnings += d.items.len();
                eprint!("{}", render::diagnostics(d, format));
            }
            if format == ErrorFormat::Human {
                eprintln!(
                    "checked {} rule{} in {} file{}: {} warning{}",
                    set.names().len(),
                    plural(set.names().len()),
                    args.files.len(),
                    plural(args.files.len()),
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
            rules::parse_expr(&source).map(|e| serde_json::to_value(e))
        }
        (None, Some(path)) => {
            let text = match rules::read_text(path) {
                Ok(t) => t,
                Err(e) => return report_rule_errors(&e, format),
            };
            let source = Source::new(path.display().to_string(), text);
            rules::parse_rule_file(&source).map(|f| serde_json::to_value(f))
        }
        (None, None) => return ExitCode::from(EXIT_DATA),
    };
    let tree = match tree {
        Ok(Ok(t)) => t,
        Ok(Err(e)) => {
            eprint!("{}", render::plain_error(&e.to_string(), format));
            return ExitCode::from(EXIT_DATA);
        }
        Err(d) => {
            eprint!("{}", render::diagnostics(&d, format));
            return ExitCode::from(EXIT_RULES);
        }
    };
    let text = match args.format {
        TreeFormat::Json => serde_json::to_string_pretty(&tree).map_err(|e| e.to_string()),
        TreeFormat::Yaml => serde_saphyr::to_string(&tree).map_err(|e| e.to_string()),
    };
    match text {
        Ok(t) => {
            println!("{}", t.trim_end());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprint!("{}", render::plain_error(&e, format));
            ExitCode::from(EXIT_DATA)
        }
    }
}

/// The outcome of one record.
#[derive(Clone, Debug)]
enum Outcome {
    Matched(bool),
    Error(String),
}

/// `rulesaga eval`
pub fn eval(args: EvalArgs, format: ErrorFormat) -> ExitCode {
    let (program, _rules) = match compile(&args, format) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let ctx = match &args.now {
        Some(now) => match chrono::DateTime::parse_from_rfc3339(now) {
            Ok(t) => Context::at(t),
            Err(e) => {
                eprint!(
                    "{}",
                    render::plain_error(&format!("--now `{now}`: {e}"), format)
                );
                return ExitCode::from(EXIT_DATA);
            }
        },
        None => Context::system(),
    };
    let data = match data::load(&args.data, args.data_format) {
        Ok(d) => d,
        Err(e) => {
            eprint!("{}", render::plain_error(&e, format));
            return ExitCode::from(EXIT_DATA);
        }
    };
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let outcomes = evaluate_all(&program, &data, &ctx, threads);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut n_errors = 0;
    for (i, o) in outcomes.iter().enumerate() {
        if let Outcome::Error(e) = o {
            n_errors += 1;
            if n_errors <= 20 {
                let slot = &data.records[i];
                let at = if slot.line > 0 {
                    format!("{}:{}", data.name, slot.line)
                } else {
                    data.name.clone()
                };
                eprint!(
                    "{}",
                    render::plain_error(&format!("{at}: record {i}: {e}"), format)
                );
            }
        }
    }
    if n_errors > 20 {
        eprint!(
            "{}",
            render::plain_error(&format!("{} more records failed", n_errors - 20), format)
        );
    }
    let written = if args.count {
        let n = outcomes
            .iter()
            .filter(|o| matches!(o, Outcome::Matched(true)))
            .count();
        writeln!(out, "{n}")
    } else if args.filter {
        write_filtered(&mut out, &data, &outcomes)
    } else if args.explain {
        write_explained(&mut out, &program, &data, &ctx, args.output)
    } else {
        match args.output {
            Output::Jsonl => write_jsonl(&mut out, &outcomes),
            Output::Table => write_table(&mut out, &program, &data, &outcomes),
        }
    };
    if let Err(e) = written.and_then(|()| out.flush()) {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprint!("{}", render::plain_error(&e.to_string(), format));
            return ExitCode::from(EXIT_DATA);
        }
    }
    if n_errors > 0 {
        ExitCode::from(EXIT_DATA)
    } else {
        ExitCode::SUCCESS
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
        return match Program::compile(Source::new("<expr>", expr.clone()), &env) {
            Ok(p) => Ok((p, ruleset)),
            Err(d) => {
                eprint!("{}", render::diagnostics(&d, format));
                Err(ExitCode::from(EXIT_RULES))
            }
        };
    }
    let name = args.rule.as_deref().unwrap_or_default();
    match ruleset.as_ref().map(|s| s.require(name)) {
        Some(Ok(p)) => Ok((p, ruleset)),
        Some(Err(msg)) => {
            eprint!("{}", render::plain_error(&msg, format));
            Err(ExitCode::from(EXIT_RULES))
        }
        None => {
            eprint!(
                "{}",
                render::plain_error("`--rule` needs `--rules FILE`", format)
            );
            Err(ExitCode::from(EXIT_DATA))
        }
    }
}

/// Evaluate every record, in parallel chunks, keeping input order.
fn evaluate_all(program: &Program, data: &Data, ctx: &Context, threads: usize) -> Vec<Outcome> {
    let index = Arc::new(FieldIndex::new(program.fields()));
    let run = |chunk: &[data::RecordSlot]| -> Vec<Outcome> {
        let mut record = SparseRecord::new(&index);
        chunk
            .iter()
            .map(|slot| {
                let bytes = data.record_bytes(slot);
                match record.parse(bytes, &index) {
                    Err(e) => Outcome::Error(format!("invalid JSON record: {e}")),
                    Ok(()) => match program.matches(&record, ctx) {
                        Ok(m) => Outcome::Matched(m),
                        Err(e) => Outcome::Error(e.to_string()),
                    },
                }
            })
            .collect()
    };
    let n = data.records.len();
    if threads <= 1 || n < 20_000 {
        return run(&data.records);
    }
    let chunk = n.div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = data
            .records
            .chunks(chunk)
            .map(|c| s.spawn(move || run(c)))
            .collect();
        let mut all = Vec::with_capacity(n);
        for h in handles {
            match h.join() {
                Ok(part) => all.extend(part),
                Err(_) => all.push(Outcome::Error("worker thread failed".to_string())),
            }
        }
        all
    })
}

fn write_filtered(out: &mut impl Write, data: &Data, outcomes: &[Outcome]) -> std::io::Result<()> {
    for (slot, o) in data.records.iter().zip(outcomes) {
        if matches!(o, Outcome::Matched(true)) {
            let bytes = data.record_bytes(slot);
            if bytes.contains(&b'\n') {
                // a multi-line element of a JSON array: print it compactly on one line
                match serde_json::from_slice::<serde_json::Value>(bytes) {
                    Ok(v) => writeln!(out, "{v}")?,
                    Err(_) => out.write_all(bytes)?,
                }
            } else {
                out.write_all(bytes.strip_suffix(b"\r").unwrap_or(bytes))?;
                out.write_all(b"\n")?;
            }
        }
    }
    Ok(())
}

fn write_jsonl(out: &mut impl Write, outcomes: &[Outcome]) -> std::io::Result<()> {
    for (i, o) in outcomes.iter().enumerate() {
        let line = match o {
            Outcome::Matched(m) => serde_json::json!({"index": i, "matched": m}),
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
    outcomes: &[Outcome],
) -> std::io::Result<()> {
    let index = FieldIndex::new(program.fields());
    let mut header = vec!["#".to_string(), "matched".to_string()];
    header.extend(program.fields().iter().cloned());
    let mut rows = vec![header];
    let mut record = SparseRecord::new(&index);
    for (i, (slot, o)) in data.records.iter().zip(outcomes).enumerate() {
        let mut row = vec![i.to_string()];
        row.push(match o {
            Outcome::Matched(true) => "yes".to_string(),
            Outcome::Matched(false) => "no".to_string(),
            Outcome::Error(_) => "error".to_string(),
        });
        let parsed = record.parse(data.record_bytes(slot), &index).is_ok();
        for f in 0..program.fields().len() {
            row.push(match record.get(f) {
                Some(rulesaga::Value::Str(s)) if parsed => s.to_string(),
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
    let n = outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Matched(true)))
        .count();
    writeln!(out, "{n} of {} records matched", outcomes.len())
}

/// `--explain`: evaluate each record again on the explaining path.
fn write_explained(
    out: &mut impl Write,
    program: &Program,
    data: &Data,
    ctx: &Context,
    output: Output,
) -> std::io::Result<()> {
    for (i, slot) in data.records.iter().enumerate() {
        let record: serde_json::Value = match serde_json::from_slice(data.record_bytes(slot)) {
            Ok(v) => v,
            Err(_) => continue, // reported with the other record errors
        };
        let explained = program.explain(&record, ctx);
        match (output, explained) {
            (Output::Jsonl, Ok(e)) => {
                let line = serde_json::json!({"index": i, "matched": e.matched, "explain": e});
                writeln!(out, "{line}")?;
            }
            (Output::Jsonl, Err(e)) => {
                let line = serde_json::json!({"index": i, "matched": null, "error": e.to_string()});
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
