//! `rulesaga check`, `rulesaga parse` and `rulesaga eval`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};

use super::data::{self, Data, DataFormat, Layout, RecordSlot, Share};
use super::output::JsonItems;
use super::progress::{self, Progress};
use super::{ErrorFormat, render, table};
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
    /// `json`/`jsonl`: a summary on standard output (`{"ok", "files", "rules",
    /// "errors", "warnings"}`); diagnostics stay on standard error (`--error-format`).
    #[arg(long, value_enum, default_value_t = Output::Table)]
    output: Output,
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
    /// Records: a JSON array, JSONL, one JSON object, or YAML; `-` for standard
    /// input (the default). From a pipe, JSON lines are evaluated and printed as
    /// they arrive (`tail -f log.jsonl | rulesaga eval ...`).
    #[arg(value_name = "DATA", conflicts_with = "data")]
    file: Option<PathBuf>,
    /// The same as the `DATA` argument.
    #[arg(long, value_name = "DATA")]
    data: Option<PathBuf>,
    /// How to read `--data`.
    #[arg(long, value_enum, default_value_t = DataFormat::Auto)]
    data_format: DataFormat,
    /// How to print results: a table, one JSON array, or one JSON object per
    /// record in input order (`{"index":0,"matched":true}`).
    #[arg(long, value_enum, default_value_t = Output::Table)]
    output: Output,
    /// Print each record's value instead of whether it matched: for a value
    /// rule or expression (`total * 1.2`, `lower(name)`).
    #[arg(long, conflicts_with_all = ["filter", "count", "explain"])]
    value: bool,
    /// Print only the matching records, one per line, as they were written
    /// (not re-serialised, unlike jq).
    #[arg(long, conflicts_with_all = ["count", "explain"])]
    filter: bool,
    /// Print only the number of matching records.
    #[arg(long, conflicts_with = "explain")]
    count: bool,
    /// Exit 1 when no record matched (like `jq -e`), for `if rulesaga eval ...`
    /// in scripts; data errors still exit 2.
    #[arg(long, conflicts_with = "value")]
    exit_status: bool,
    /// Print why each record matched or not: a tree per record (with
    /// `--output jsonl`, the same tree as JSON under `"explain"`).
    #[arg(long)]
    explain: bool,
    /// Fix the clock for `now()` and `today()`, for reproducible runs: an RFC 3339
    /// time, one without offset (UTC), or a date (midnight UTC).
    #[arg(long)]
    now: Option<String>,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
}

pub use super::output::Output;

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
    let summary = |ok: bool, rules: Option<usize>, errors: usize, warnings: usize| {
        if args.output.is_json() {
            let s = serde_json::json!({
                "ok": ok, "files": rule_files.len(), "rules": rules,
                "errors": errors, "warnings": warnings,
            });
            super::output::print_object(args.output, &s);
        }
    };
    match RuleSet::load(&rule_files, &Env::new()) {
        Err(e) => {
            let errors = match &e {
                RuleErrors::Invalid(files) => files
                    .iter()
                    .flat_map(|d| &d.items)
                    .filter(|d| matches!(d.severity, crate::Severity::Error))
                    .count(),
                RuleErrors::Io { .. } => 1,
            };
            summary(false, None, errors, 0);
            report_rule_errors(&e, format)
        }
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
            if format == ErrorFormat::Human && !args.output.is_json() {
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
            let failed = args.deny_warnings && n_warnings > 0;
            summary(!failed, Some(set.names().len()), 0, n_warnings);
            if failed {
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
    let ctx = match context(args.now.as_deref(), format) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let path = args
        .file
        .as_deref()
        .or(args.data.as_deref())
        .unwrap_or(std::path::Path::new("-"));
    let input = match data::open(path, args.data_format) {
        Ok(i) => i,
        Err(e) => return report_load_error(&e, format),
    };
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let eval = Evaluator {
        program: &program,
        schema: rules.as_ref().and_then(RuleSet::schema),
        ctx: &ctx,
        index: FieldIndex::new(program.fields()),
        keep: !args.count,
        values: args.value,
    };
    let (name, streaming) = match &input {
        data::Input::Whole(d) => (d.name.clone(), false),
        data::Input::Lines(l) => (l.name.clone(), l.streaming()),
    };
    let stdout = std::io::stdout();
    let mut writer = Writer {
        out: std::io::BufWriter::with_capacity(1 << 16, stdout.lock()),
        args: &args,
        program: &program,
        ctx: &ctx,
        name: &name,
        format,
        n_records: 0,
        n_lines: 0,
        n_matched: 0,
        n_errors: 0,
        table: Table::default(),
        json: JsonItems::new(args.output),
        streaming,
        progress: match &input {
            // eval over big files: JSON lines larger than one chunk
            data::Input::Lines(l) if progress::wanted_here(args.count) => Progress::bytes(l.size),
            _ => Progress::none(),
        },
        closed: false,
        failed: None,
    };
    match input {
        data::Input::Whole(data) => {
            for (share, r) in eval.whole(&data, threads) {
                writer.emit(&data.bytes, r, matches!(share, Share::Lines { .. }));
            }
        }
        data::Input::Lines(lines) => eval.stream(lines, threads, &mut writer),
    }
    writer.finish()
}

/// The clock: `--now`, else the system's.
fn context(now: Option<&str>, format: ErrorFormat) -> Result<Context, ExitCode> {
    match now {
        Some(text) => match parse_now(text) {
            Ok(t) => Ok(Context::at(t)),
            Err(reason) => {
                let message = format!("--now `{text}`: {reason}");
                err!(
                    "{}",
                    render::plain_error_with_help(&message, NOW_HELP, format)
                );
                Err(ExitCode::from(EXIT_DATA))
            }
        },
        None => Ok(Context::system()),
    }
}

const NOW_HELP: &str = "give an RFC 3339 time (`2024-06-15T10:30:00Z`, \
    `2024-06-15T10:30:00+02:00`), a time without offset (`2024-06-15T10:30:00`, UTC) \
    or a date (`2024-06-15`, midnight UTC)";

/// `--now`: an RFC 3339 time; the same without an offset (UTC); or a date
/// (midnight UTC). The error says what is wrong with the text.
fn parse_now(text: &str) -> Result<chrono::DateTime<chrono::FixedOffset>, String> {
    use chrono::{DateTime, NaiveDate, NaiveDateTime};
    let text = text.trim();
    let rfc3339 = match DateTime::parse_from_rfc3339(text) {
        Ok(t) => return Ok(t),
        Err(e) => e,
    };
    for layout in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, layout) {
            return Ok(t.and_utc().fixed_offset());
        }
    }
    match NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        Ok(d) => Ok(d.and_time(chrono::NaiveTime::MIN).and_utc().fixed_offset()),
        // a date whose day or month does not exist: say so, not that the time is missing
        Err(e) if e.kind() == chrono::format::ParseErrorKind::OutOfRange => {
            Err(format!("not a day of the calendar ({e})"))
        }
        Err(_) if text.len() >= 10 && text.as_bytes().get(4) == Some(&b'-') => {
            Err(format!("not a valid time ({rfc3339})"))
        }
        Err(_) => Err("not a date or a time".to_string()),
    }
}

fn report_load_error(e: &data::LoadError, format: ErrorFormat) -> ExitCode {
    let at = render::At {
        file: &e.file,
        line: e.line,
        column: e.column,
        ..render::At::default()
    };
    err!("{}", render::data_error(&at, &e.message, format));
    ExitCode::from(EXIT_DATA)
}

/// The clock (`--now`, else the system's) and the records of `--data` read
/// whole, or the exit code after reporting why not (for `diff`).
pub(super) fn context_and_data(
    now: Option<&str>,
    path: &std::path::Path,
    data_format: DataFormat,
    format: ErrorFormat,
) -> Result<(Context, Data), ExitCode> {
    let ctx = context(now, format)?;
    match data::load(path, data_format) {
        Ok(d) => Ok((ctx, d)),
        Err(e) => Err(report_load_error(&e, format)),
    }
}

fn compile(args: &EvalArgs, format: ErrorFormat) -> Result<(Program, Option<RuleSet>), ExitCode> {
    // `--rules` takes every file after it: `--rules a.rules data.json` means no data
    let data_like = |p: &PathBuf| {
        let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("");
        ["json", "jsonl", "ndjson", "yaml", "yml"].contains(&ext)
    };
    if args.file.is_none()
        && args.data.is_none()
        && let Some(data) = args.rules.iter().find(|p| data_like(p))
    {
        let message = format!("`{}` is given as a rule file", data.display());
        let help = "`--rules` takes every file after it: put the data file before `--rules`, \
                    or give it with `--data FILE`";
        err!("{}", render::plain_error_with_help(&message, help, format));
        return Err(ExitCode::from(EXIT_DATA));
    }
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

/// One share's results, in input order.
#[derive(Default)]
struct ShareResult {
    n_records: usize,
    n_matched: usize,
    /// Line ends in the share (for a share of lines).
    n_lines: usize,
    /// Every record with its outcome (when asked to keep them).
    records: Vec<(RecordSlot, Outcome)>,
    /// The records that failed: index in the share, place, message.
    errors: Vec<(usize, RecordSlot, Box<str>)>,
    /// Reading stopped here (a failed read, a line too long).
    stopped: Option<String>,
}

/// What every worker shares: the program and what to keep of each record.
struct Evaluator<'a> {
    program: &'a Program,
    schema: Option<&'a Schema>,
    ctx: &'a Context,
    index: FieldIndex,
    keep: bool,
    values: bool,
}

/// Buffers in flight while streaming, per worker: one being evaluated, one
/// waiting to be written. The total is capped so that memory stays bounded
/// whatever the number of cores.
const BUFFERS_PER_WORKER: usize = 2;
const MAX_BUFFERS: usize = 24;

impl Evaluator<'_> {
    /// Evaluate one share (splitting lines, checking UTF-8, parsing, evaluating).
    fn run(&self, share: &Share<'_>, bytes: &[u8]) -> ShareResult {
        let mut record = SparseRecord::new(&self.index);
        let mut out = ShareResult::default();
        out.n_lines = share.for_each(bytes, |slot, text| {
            let outcome = match text {
                Err(e) => Outcome::Error(e.into()),
                Ok(text) => match record.parse(text, &self.index) {
                    Err(e) => Outcome::Error(format!("invalid JSON: {e}").into()),
                    // with a schema, records must fit it (slots are the schema's)
                    Ok(()) => match self.schema.map_or(Ok(()), |s| s.check_record(&record)) {
                        Err(e) => Outcome::Error(e.to_string().into()),
                        Ok(()) if self.values => match self.program.evaluate(&record, self.ctx) {
                            Ok(v) => Outcome::Value(v.map(|v| Box::new(v.to_json()))),
                            Err(e) => Outcome::Error(e.to_string().into()),
                        },
                        Ok(()) => match self.program.matches_typed(&record, self.ctx) {
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
            if self.keep {
                out.records.push((slot, outcome));
            }
            out.n_records += 1;
        });
        out
    }

    /// A whole input: its records in shares, one worker each, in input order.
    fn whole<'d>(&self, data: &'d Data, threads: usize) -> Vec<(Share<'d>, ShareResult)> {
        let small = data.bytes.len() < data::CHUNK_BYTES || matches!(data.layout, Layout::Lines);
        let shares = data.shares(if small { 1 } else { threads });
        let results: Vec<ShareResult> = if shares.len() <= 1 {
            shares.iter().map(|s| self.run(s, &data.bytes)).collect()
        } else {
            std::thread::scope(|s| {
                let handles: Vec<_> = shares
                    .iter()
                    .map(|share| s.spawn(|| self.run(share, &data.bytes)))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|_| worker_failed()))
                    .collect()
            })
        };
        shares.into_iter().zip(results).collect()
    }

    /// JSON lines read in chunks: each worker takes the next chunk (reading is
    /// serial, under a lock), evaluates it and hands it to the writer (this
    /// thread), which writes chunks in input order and gives their buffers
    /// back. Memory is the buffers in flight, whatever the size of the input.
    fn stream(&self, lines: data::LineReader, threads: usize, writer: &mut Writer<'_, impl Write>) {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::{Mutex, mpsc};
        let n_buffers = (threads * BUFFERS_PER_WORKER).clamp(2, MAX_BUFFERS);
        let (done_tx, done_rx) = mpsc::channel::<(usize, Vec<u8>, usize, ShareResult)>();
        let (free_tx, free_rx) = mpsc::channel::<Vec<u8>>();
        for _ in 0..n_buffers {
            let _ = free_tx.send(Vec::new());
        }
        // the next chunk's number, the reader, the free buffers
        let reader = Mutex::new((0usize, lines, free_rx));
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            for _ in 0..threads {
                let done_tx = done_tx.clone();
                let (reader, stop) = (&reader, &stop);
                s.spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let (seq, mut buf, read) = {
                            let Ok(mut guard) = reader.lock() else { return };
                            let (next, lines, free) = &mut *guard;
                            let Ok(mut buf) = free.recv() else { return };
                            let read = lines.next_chunk(&mut buf);
                            if matches!(read, Ok(None)) {
                                return;
                            }
                            *next += 1;
                            (*next - 1, buf, read)
                        };
                        let (len, result) = match read {
                            Ok(Some(len)) => {
                                let share = Share::Lines { start: 0, end: len };
                                (len, self.run(&share, &buf[..len]))
                            }
                            Ok(None) => return,
                            Err(e) => {
                                let stopped = ShareResult {
                                    stopped: Some(e),
                                    ..ShareResult::default()
                                };
                                (0, stopped)
                            }
                        };
                        // a buffer grown for a long line is not kept grown
                        if buf.len() > 2 * data::CHUNK_BYTES {
                            buf = Vec::new();
                        }
                        if done_tx.send((seq, buf, len, result)).is_err() {
                            return;
                        }
                    }
                });
            }
            drop(done_tx);
            let mut pending = std::collections::BTreeMap::new();
            let mut next = 0;
            for (seq, buf, len, result) in done_rx.iter() {
                pending.insert(seq, (buf, len, result));
                while let Some((buf, len, result)) = pending.remove(&next) {
                    if !stop.load(Ordering::Relaxed) {
                        if result.stopped.is_some() {
                            stop.store(true, Ordering::Relaxed);
                        }
                        writer.emit(&buf[..len], result, true);
                        if writer.closed {
                            stop.store(true, Ordering::Relaxed);
                        }
                    }
                    let _ = free_tx.send(buf);
                    next += 1;
                }
            }
        });
    }
}

fn worker_failed() -> ShareResult {
    ShareResult {
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
    }
}

/// Most record errors printed; the rest are counted.
const MAX_ERRORS_SHOWN: usize = 20;

/// Rows of a table whose columns are measured together: a later block widens a
/// column when it has a wider cell (never narrows it), so a table of any length
/// is written as it comes.
const TABLE_BLOCK: usize = 10_000;

/// Writes results as they come, share by share in input order.
struct Writer<'a, W: Write> {
    out: W,
    args: &'a EvalArgs,
    program: &'a Program,
    ctx: &'a Context,
    name: &'a str,
    format: ErrorFormat,
    /// Records and line ends of the shares written so far.
    n_records: usize,
    n_lines: usize,
    n_matched: usize,
    n_errors: usize,
    table: Table,
    /// The JSON results written so far.
    json: JsonItems,
    /// Records arrive as they are written (a pipe): each share's results are
    /// written out (a table's rows too) and flushed at once.
    streaming: bool,
    /// On standard error when it is a terminal.
    progress: Progress,
    /// Standard output was closed (a pipe whose reader went away): stop quietly.
    closed: bool,
    /// Writing failed otherwise.
    failed: Option<std::io::Error>,
}

/// Table rows not yet written and the widths so far.
#[derive(Default)]
struct Table {
    rows: Vec<Vec<String>>,
    columns: table::Columns,
    started: bool,
}

impl<W: Write> Writer<'_, W> {
    /// One share's results; `lines` when its records are lines (their line is
    /// counted from the share's bytes).
    fn emit(&mut self, bytes: &[u8], r: ShareResult, lines: bool) {
        for (i, slot, e) in &r.errors {
            self.n_errors += 1;
            if self.n_errors > MAX_ERRORS_SHOWN {
                continue;
            }
            let line = match slot.line {
                n if n > 0 => n,
                _ if lines => self.n_lines + data::line_of(bytes, slot.start),
                _ => 0,
            };
            let at = render::At {
                file: self.name,
                line: (line > 0).then_some(line),
                record: Some(self.n_records + i),
                ..render::At::default()
            };
            let text = render::data_error(&at, e, self.format);
            self.progress.suspend(|| err!("{text}"));
        }
        if let Some(e) = &r.stopped {
            self.n_errors += 1;
            let at = render::At {
                file: self.name,
                line: Some(self.n_lines + 1),
                ..render::At::default()
            };
            let text = render::data_error(&at, e, self.format);
            self.progress.suspend(|| err!("{text}"));
        }
        if !self.closed && self.failed.is_none() {
            let written = self.write(bytes, &r.records).and_then(|()| {
                if !self.streaming {
                    return Ok(());
                }
                let table = !self.args.count && !self.args.filter && !self.args.explain;
                if table && self.args.output == Output::Table {
                    self.write_table_rows()?;
                }
                self.out.flush()
            });
            self.check(written);
        }
        self.n_matched += r.n_matched;
        self.n_records += r.n_records;
        self.n_lines += r.n_lines;
        self.progress.inc(bytes.len() as u64);
        self.progress.message(format!("{} records", self.n_records));
    }

    fn check(&mut self, written: std::io::Result<()>) {
        match written {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => self.closed = true,
            Err(e) => self.failed = Some(e),
        }
    }

    fn write(&mut self, bytes: &[u8], records: &[(RecordSlot, Outcome)]) -> std::io::Result<()> {
        let base = self.n_records;
        if self.args.count {
            Ok(())
        } else if self.args.filter {
            write_filtered(&mut self.out, bytes, records)
        } else if self.args.explain {
            let (program, ctx) = (self.program, self.ctx);
            let json = self.args.output.is_json().then_some(&mut self.json);
            write_explained(&mut self.out, program, bytes, base, ctx, json, records)
        } else {
            match self.args.output {
                Output::Json | Output::Jsonl => {
                    write_json(&mut self.out, &mut self.json, base, records)
                }
                Output::Table => {
                    let rows = table_rows(self.program, bytes, base, records);
                    self.table.rows.extend(rows);
                    if self.table.rows.len() >= TABLE_BLOCK {
                        self.write_table_rows()
                    } else {
                        Ok(())
                    }
                }
            }
        }
    }

    fn write_table_rows(&mut self) -> std::io::Result<()> {
        let table = &mut self.table;
        if !table.started {
            let result = if self.args.value { "value" } else { "matched" };
            let mut header = vec!["#".to_string(), result.to_string()];
            header.extend(self.program.fields().iter().map(|f| table::cell(f)));
            table.rows.insert(0, header);
            table.started = true;
        }
        for row in &table.rows {
            table.columns.measure(row);
        }
        for row in table.rows.drain(..) {
            writeln!(self.out, "{}", table.columns.line(&row))?;
        }
        Ok(())
    }

    /// The count, the rest of a table, the errors not shown; the exit code.
    fn finish(mut self) -> ExitCode {
        self.progress.finish();
        if !self.closed && self.failed.is_none() {
            let written = if self.args.count && self.args.output.is_json() {
                let count =
                    serde_json::json!({"matched": self.n_matched, "records": self.n_records});
                writeln!(self.out, "{count}")
            } else if self.args.count {
                writeln!(self.out, "{}", self.n_matched)
            } else if self.args.output.is_json() && !self.args.filter {
                self.json.end(&mut self.out)
            } else if !self.args.filter && !self.args.explain && self.args.output == Output::Table {
                self.write_table_rows().and_then(|()| {
                    if self.args.value {
                        writeln!(self.out, "{} records", self.n_records)
                    } else {
                        writeln!(
                            self.out,
                            "{} of {} records matched",
                            self.n_matched, self.n_records
                        )
                    }
                })
            } else {
                Ok(())
            };
            let flushed = written.and_then(|()| self.out.flush());
            self.check(flushed);
        }
        if self.n_errors > MAX_ERRORS_SHOWN {
            let more = format!("{} more records failed", self.n_errors - MAX_ERRORS_SHOWN);
            err!("{}", render::plain_error(&more, self.format));
        }
        if let Some(e) = &self.failed {
            err!("{}", render::plain_error(&e.to_string(), self.format));
            return ExitCode::from(EXIT_DATA);
        }
        if self.n_errors > 0 {
            ExitCode::from(EXIT_DATA)
        } else if self.args.exit_status && self.n_matched == 0 {
            ExitCode::from(EXIT_NONE_MATCHED)
        } else {
            ExitCode::SUCCESS
        }
    }
}

/// `eval --exit-status` when no record matched.
const EXIT_NONE_MATCHED: u8 = 1;

/// The matching records as they were written (not re-serialised, unlike jq):
/// a line of JSON lines verbatim, without its `\r`; a multi-line element of a
/// JSON array compactly on one line.
fn write_filtered(
    out: &mut impl Write,
    bytes: &[u8],
    records: &[(RecordSlot, Outcome)],
) -> std::io::Result<()> {
    for (slot, o) in records {
        if matches!(o, Outcome::Matched(true)) {
            let text = data::record_text(bytes, slot);
            if text.contains('\n') {
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

/// `--output json|jsonl`: `{"index":0,"matched":true}` per record.
fn write_json(
    out: &mut impl Write,
    json: &mut JsonItems,
    base: usize,
    records: &[(RecordSlot, Outcome)],
) -> std::io::Result<()> {
    for (i, (_, o)) in records.iter().enumerate() {
        let i = base + i;
        let line = match o {
            Outcome::Matched(m) => serde_json::json!({"index": i, "matched": m}),
            Outcome::Value(v) => serde_json::json!({"index": i, "value": v}),
            Outcome::Error(e) => serde_json::json!({"index": i, "matched": null, "error": e}),
        };
        json.item(out, &line)?;
    }
    Ok(())
}

/// Table rows: index, result, and the fields the rule reads.
fn table_rows(
    program: &Program,
    bytes: &[u8],
    base: usize,
    records: &[(RecordSlot, Outcome)],
) -> Vec<Vec<String>> {
    let index = FieldIndex::new(program.fields());
    let mut record = SparseRecord::new(&index);
    let mut rows = Vec::with_capacity(records.len());
    for (i, (slot, o)) in records.iter().enumerate() {
        let mut row = vec![(base + i).to_string()];
        row.push(match o {
            Outcome::Matched(true) => "yes".to_string(),
            Outcome::Matched(false) => "no".to_string(),
            Outcome::Value(Some(v)) => match &**v {
                serde_json::Value::String(s) => table::cell(s),
                v => table::cell(&v.to_string()),
            },
            Outcome::Value(None) => "-".to_string(),
            Outcome::Error(_) => "error".to_string(),
        });
        let parsed = record.parse(data::record_text(bytes, slot), &index).is_ok();
        for f in 0..program.fields().len() {
            row.push(match record.get(f) {
                Some(crate::Value::Str(s)) if parsed => table::cell(s),
                Some(v) if parsed => table::cell(&v.to_string()),
                _ => "-".to_string(),
            });
        }
        rows.push(row);
    }
    rows
}

/// `--explain`: evaluate each record again on the explaining path. A record
/// that failed (invalid JSON, not fitting the schema) is not explained: its
/// error is printed in its place, as it was reported.
fn write_explained(
    out: &mut impl Write,
    program: &Program,
    bytes: &[u8],
    base: usize,
    ctx: &Context,
    mut json: Option<&mut JsonItems>,
    records: &[(RecordSlot, Outcome)],
) -> std::io::Result<()> {
    for (i, (slot, outcome)) in records.iter().enumerate() {
        let i = base + i;
        let explained = match outcome {
            Outcome::Error(e) => Err(e.to_string()),
            _ => match serde_json::from_str::<serde_json::Value>(data::record_text(bytes, slot)) {
                Ok(record) => program.explain(&record, ctx).map_err(|e| e.to_string()),
                Err(e) => Err(format!("invalid JSON: {e}")),
            },
        };
        match (json.as_deref_mut(), explained) {
            (Some(json), Ok(e)) => {
                let line = serde_json::json!({"index": i, "matched": e.matched, "explain": e});
                json.item(out, &line)?;
            }
            (Some(json), Err(e)) => {
                let line = serde_json::json!({"index": i, "matched": null, "error": e});
                json.item(out, &line)?;
            }
            (None, Ok(e)) => {
                let verdict = if e.matched {
                    "matched"
                } else {
                    "did not match"
                };
                writeln!(out, "record {i}: {verdict}")?;
                write!(out, "{e}")?;
                writeln!(out)?;
            }
            (None, Err(e)) => writeln!(out, "record {i}: error: {e}\n")?,
        }
    }
    Ok(())
}
