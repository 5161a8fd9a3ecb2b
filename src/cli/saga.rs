//! `rulesaga saga validate|run|graph`.
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Subcommand, ValueEnum};
use serde_json::{Value as Json, json};

use super::ErrorFormat;
use rulesaga::adapters::JsonFileRepository;
use rulesaga::diag::{Diagnostics, Severity, Source, did_you_mean};
use rulesaga::repo::{MemoryRepository, Repository};
use rulesaga::rules::RuleErrors;
use rulesaga::saga::events::{Event, EventKind, EventStore, MemoryEventStore};
use rulesaga::saga::runner::{Faults, RunError, Runner};
use rulesaga::saga::{Catalog, HandlerRegistry, Saga, SagaStatus, graph, validate};
use rulesaga::{Env, RuleSet};

/// Largest `--input` file (16 MiB).
const MAX_INPUT_BYTES: u64 = 16 * 1024 * 1024;

/// Saga subcommands.
#[derive(Subcommand, Debug)]
pub enum SagaCommand {
    /// Check saga files: every error with file, line, column and YAML path.
    Validate {
        /// Saga files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Store whose repositories the sagas may use (default: `store.json` next to each saga, if any).
        #[arg(long)]
        store: Option<PathBuf>,
        /// Rule files for `require` and `find ... rule:`.
        #[arg(long)]
        rules: Vec<PathBuf>,
    },
    /// Run a saga to completion (or compensation).
    Run {
        /// Saga file.
        file: PathBuf,
        /// Input as JSON text, or `@FILE`.
        #[arg(long)]
        input: String,
        /// JSON store file (default: `store.json` next to the saga). Written atomically.
        #[arg(long)]
        store: Option<PathBuf>,
        /// Rule files for `require` and `find ... rule:`.
        #[arg(long)]
        rules: Vec<PathBuf>,
        /// Print one final JSON object instead of the live view.
        #[arg(long, value_enum)]
        output: Option<OutputFormat>,
        /// Make STEP's action fail TIMES times (every time if omitted): `STEP[:TIMES]`.
        #[arg(long = "fail", value_name = "STEP[:TIMES]")]
        fail: Vec<String>,
        /// Make STEP's compensation fail TIMES times: `STEP[:TIMES]`.
        #[arg(long = "fail-compensation", value_name = "STEP[:TIMES]")]
        fail_compensation: Vec<String>,
    },
    /// Draw the steps, their conditions and the compensation path of each failure.
    Graph {
        /// Saga file.
        file: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = GraphFormat::Mermaid)]
        format: GraphFormat,
        /// Store whose repositories the saga may use.
        #[arg(long)]
        store: Option<PathBuf>,
        /// Rule files.
        #[arg(long)]
        rules: Vec<PathBuf>,
    },
}

/// `--output`
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// One JSON object.
    Json,
}

/// `--format`
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    /// Mermaid flowchart.
    Mermaid,
    /// Graphviz dot.
    Dot,
}

/// Run a saga subcommand.
pub fn run(cmd: SagaCommand, error_format: ErrorFormat) -> ExitCode {
    match cmd {
        SagaCommand::Validate {
            files,
            store,
            rules,
        } => cmd_validate(&files, store.as_deref(), &rules, error_format),
        SagaCommand::Run {
            file,
            input,
            store,
            rules,
            output,
            fail,
            fail_compensation,
        } => cmd_run(RunArgs {
            file,
            input,
            store,
            rules,
            json: output == Some(OutputFormat::Json),
            fail,
            fail_compensation,
            error_format,
        }),
        SagaCommand::Graph {
            file,
            format,
            store,
            rules,
        } => cmd_graph(&file, format, store.as_deref(), &rules, error_format),
    }
}

fn usage_error(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(2)
}

/// The store file to use: explicit, or `store.json` next to the saga when it exists.
fn store_path(explicit: Option<&Path>, saga_file: &Path) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return Some(p.to_path_buf());
    }
    let candidate = saga_file
        .parent()
        .unwrap_or(Path::new("."))
        .join("store.json");
    candidate.exists().then_some(candidate)
}

fn load_rules(rules: &[PathBuf], error_format: ErrorFormat) -> Result<Option<RuleSet>, ExitCode> {
    if rules.is_empty() {
        return Ok(None);
    }
    match RuleSet::load(rules, &Env::default()) {
        Ok(r) => Ok(Some(r)),
        Err(RuleErrors::Io { path, message }) => Err(usage_error(format!(
            "cannot read `{}`: {message}",
            path.display()
        ))),
        Err(RuleErrors::Invalid(files)) => {
            for d in &files {
                print_diagnostics(d, error_format);
            }
            Err(ExitCode::from(1))
        }
    }
}

fn read_saga(file: &Path) -> Result<Arc<Source>, ExitCode> {
    let meta =
        std::fs::metadata(file).map_err(|e| usage_error(format!("`{}`: {e}", file.display())))?;
    if meta.len() > validate::MAX_FILE_BYTES as u64 {
        return Err(usage_error(format!(
            "`{}` is larger than {} bytes",
            file.display(),
            validate::MAX_FILE_BYTES
        )));
    }
    let text = std::fs::read_to_string(file)
        .map_err(|e| usage_error(format!("`{}`: {e}", file.display())))?;
    Ok(Source::new(file.display().to_string(), text))
}

fn catalog(
    handlers: &HandlerRegistry,
    repos: Option<Vec<String>>,
    rules: Option<RuleSet>,
) -> Catalog {
    Catalog {
        repositories: repos,
        rules,
        ..Catalog::new(handlers)
    }
}

fn open_store(path: &Path) -> Result<JsonFileRepository, ExitCode> {
    JsonFileRepository::open(path).map_err(usage_error)
}

fn cmd_validate(
    files: &[PathBuf],
    store: Option<&Path>,
    rules: &[PathBuf],
    error_format: ErrorFormat,
) -> ExitCode {
    let rules = match load_rules(rules, error_format) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let handlers = HandlerRegistry::with_builtins();
    let mut failed = false;
    for file in files {
        let source = match read_saga(file) {
            Ok(s) => s,
            Err(code) => return code,
        };
        let repos = match store_path(store, file) {
            Some(p) => match open_store(&p) {
                Ok(s) => Some(s.repositories()),
                Err(code) => return code,
            },
            None => None,
        };
        match validate::load(source, &catalog(&handlers, repos, rules.clone())) {
            Ok(saga) => {
                if error_format == ErrorFormat::Human {
                    println!(
                        "ok: {} (saga `{}`, {} steps)",
                        file.display(),
                        saga.name,
                        saga.steps.len()
                    );
                }
            }
            Err(diags) => {
                failed |= diags.has_errors();
                print_diagnostics(&diags, error_format);
            }
        }
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Print diagnostics: `file:line:col: error[code] at path: message`, the line and a caret;
/// or one JSON object per line.
fn print_diagnostics(diags: &Diagnostics, error_format: ErrorFormat) {
    let mut err = std::io::stderr().lock();
    if error_format == ErrorFormat::Json {
        for j in diags.to_json() {
            let mut j = j;
            if let Some(obj) = j.as_object_mut() {
                let path = obj.get("label").cloned().unwrap_or(Json::Null);
                obj.insert("path".into(), path);
            }
            let _ = writeln!(err, "{j}");
        }
        return;
    }
    let _ = write!(err, "{}", render_diagnostics(diags));
}

/// Human rendering of saga diagnostics (also used by tests through the binary).
fn render_diagnostics(diags: &Diagnostics) -> String {
    let mut out = String::new();
    for d in &diags.items {
        let (line, col) = diags.source.line_col(d.span.start);
        let sev = match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let at = d
            .label
            .as_deref()
            .filter(|l| !l.is_empty())
            .map(|l| format!(" at {l}"))
            .unwrap_or_default();
        out.push_str(&format!(
            "{}:{line}:{col}: {sev}[{}]{at}: {}\n",
            diags.source.name, d.code, d.message
        ));
        if let Some(text) = diags.source.text.lines().nth(line.saturating_sub(1)) {
            out.push_str(&format!("  {line:>4} | {text}\n"));
            let width = diags.source.text[d.span.range().start.min(diags.source.text.len())..]
                .lines()
                .next()
                .map_or(1, |rest| {
                    let len = (d.span.end.saturating_sub(d.span.start)) as usize;
                    rest.chars().take(len.max(1)).count().max(1)
                });
            out.push_str(&format!(
                "       | {}{}\n",
                " ".repeat(col.saturating_sub(1)),
                "^".repeat(width)
            ));
        }
        if let Some(help) = &d.help {
            out.push_str(&format!("       = help: {help}\n"));
        }
    }
    out
}

struct RunArgs {
    file: PathBuf,
    input: String,
    store: Option<PathBuf>,
    rules: Vec<PathBuf>,
    json: bool,
    fail: Vec<String>,
    fail_compensation: Vec<String>,
    error_format: ErrorFormat,
}

fn read_input(arg: &str) -> Result<Json, ExitCode> {
    let text = if let Some(path) = arg.strip_prefix('@') {
        let meta = std::fs::metadata(path).map_err(|e| usage_error(format!("`{path}`: {e}")))?;
        if meta.len() > MAX_INPUT_BYTES {
            return Err(usage_error(format!(
                "`{path}` is larger than {MAX_INPUT_BYTES} bytes"
            )));
        }
        std::fs::read_to_string(path).map_err(|e| usage_error(format!("`{path}`: {e}")))?
    } else {
        arg.to_string()
    };
    serde_json::from_str(&text).map_err(|e| usage_error(format!("invalid input JSON: {e}")))
}

fn parse_faults(
    specs: &[String],
    saga: &Saga,
) -> Result<std::collections::HashMap<String, Option<u32>>, ExitCode> {
    let mut out = std::collections::HashMap::new();
    for spec in specs {
        let (step, times) = match spec.split_once(':') {
            Some((s, t)) => match t.parse::<u32>() {
                Ok(n) => (s, Some(n)),
                Err(_) => {
                    return Err(usage_error(format!(
                        "invalid count in `{spec}`: write STEP[:TIMES]"
                    )));
                }
            },
            None => (spec.as_str(), None),
        };
        if !saga.steps.iter().any(|s| s.name == step) {
            let help = did_you_mean(step, saga.steps.iter().map(|s| s.name.as_str()))
                .map(|h| format!(" ({h})"))
                .unwrap_or_default();
            return Err(usage_error(format!("unknown step `{step}`{help}")));
        }
        out.insert(step.to_string(), times);
    }
    Ok(out)
}

fn cmd_run(args: RunArgs) -> ExitCode {
    let rules = match load_rules(&args.rules, args.error_format) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let source = match read_saga(&args.file) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let repo: Arc<dyn Repository> = match store_path(args.store.as_deref(), &args.file) {
        Some(p) => match open_store(&p) {
            Ok(s) => Arc::new(s),
            Err(code) => return code,
        },
        None => Arc::new(MemoryRepository::default()),
    };
    let handlers = HandlerRegistry::with_builtins();
    let saga = match validate::load(
        source,
        &catalog(&handlers, Some(repo.repositories()), rules),
    ) {
        Ok(s) => s,
        Err(diags) => {
            print_diagnostics(&diags, args.error_format);
            return ExitCode::from(1);
        }
    };
    let input = match read_input(&args.input) {
        Ok(i) => i,
        Err(code) => return code,
    };
    let faults = match (
        parse_faults(&args.fail, &saga),
        parse_faults(&args.fail_compensation, &saga),
    ) {
        (Ok(actions), Ok(compensations)) => Faults {
            actions,
            compensations,
        },
        (Err(code), _) | (_, Err(code)) => return code,
    };
    let events = Arc::new(MemoryEventStore::new());
    if !args.json {
        events.subscribe(Arc::new(live_view));
    }
    let runner = Runner::new(repo, events.clone(), Arc::new(handlers)).with_faults(faults);
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return usage_error(format!("cannot start the runtime: {e}")),
    };
    let result = rt.block_on(runner.run(&saga, input));
    let state = match result {
        Ok(state) => state,
        Err(RunError::Input(problems)) => {
            for p in problems {
                eprintln!("error: invalid input: {p}");
            }
            return ExitCode::from(2);
        }
        Err(e) => return usage_error(e),
    };
    if args.json {
        let log = rt.block_on(events.load(state.saga_id)).unwrap_or_default();
        let steps: Vec<Json> = saga
            .steps
            .iter()
            .map(|s| match state.step(&s.name) {
                Some(st) => serde_json::to_value(st).unwrap_or(Json::Null),
                None => json!({"name": s.name, "status": "not_started", "attempts": 0}),
            })
            .collect();
        let out = json!({
            "saga_id": state.saga_id,
            "saga": state.saga,
            "status": state.status,
            "failed_step": state.failed_step,
            "reason": state.reason,
            "steps": steps,
            "events": log,
        });
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    }
    // Do not wait for blocking handlers abandoned by a timeout.
    rt.shutdown_background();
    if state.status == SagaStatus::Completed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// The live step-by-step view: one line per event.
fn live_view(e: &Event) {
    let line = match &e.kind {
        EventKind::SagaStarted { saga, .. } => format!("saga `{saga}` {} started", e.saga_id),
        EventKind::StepStarted { step, attempt } if *attempt > 1 => {
            format!("  > {step} (attempt {attempt})")
        }
        EventKind::StepStarted { step, .. } => format!("  > {step}"),
        EventKind::StepSucceeded { step, output, .. } => {
            let mut out = output.to_string();
            if out.len() > 120 {
                out.truncate(117);
                out.push_str("...");
            }
            format!("  ok {step} -> {out}")
        }
        EventKind::StepFailed {
            step,
            error,
            will_retry,
            ..
        } => {
            let then = if *will_retry { ", retrying" } else { "" };
            format!("  FAILED {step}: {error}{then}")
        }
        EventKind::StepSkipped { step } => format!("  - {step} skipped (`when` is false)"),
        EventKind::CompensationStarted { failed_step, .. } => {
            format!("compensating after `{failed_step}` failed")
        }
        EventKind::StepCompensationStarted { step, attempt } if *attempt > 1 => {
            format!("  < undo {step} (attempt {attempt})")
        }
        EventKind::StepCompensationStarted { step, .. } => format!("  < undo {step}"),
        EventKind::StepCompensated { step, .. } => format!("  ok {step} compensated"),
        EventKind::CompensationFailed {
            step,
            error,
            will_retry,
            ..
        } => {
            let then = if *will_retry { ", retrying" } else { "" };
            format!("  FAILED undo {step}: {error}{then}")
        }
        EventKind::SagaCompleted => "saga completed".to_string(),
        EventKind::SagaCompensated => "saga compensated".to_string(),
        EventKind::SagaFailed { step, reason } => {
            format!("saga FAILED at `{step}`: {reason} (needs intervention)")
        }
        EventKind::SagaRetried { step, reason } => {
            format!("operator: retry `{step}` ({reason})")
        }
        EventKind::StepSkippedByOperator { step, reason } => {
            format!("operator: skip `{step}` ({reason})")
        }
        EventKind::StepMarkedCompensated { step, reason } => {
            format!("operator: `{step}` marked compensated ({reason})")
        }
    };
    println!("{line}");
}

fn cmd_graph(
    file: &Path,
    format: GraphFormat,
    store: Option<&Path>,
    rules: &[PathBuf],
    error_format: ErrorFormat,
) -> ExitCode {
    let rules = match load_rules(rules, error_format) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let source = match read_saga(file) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let repos = match store_path(store, file) {
        Some(p) => match open_store(&p) {
            Ok(s) => Some(s.repositories()),
            Err(code) => return code,
        },
        None => None,
    };
    let handlers = HandlerRegistry::with_builtins();
    match validate::load(source, &catalog(&handlers, repos, rules)) {
        Ok(saga) => {
            let text = match format {
                GraphFormat::Mermaid => graph::mermaid(&saga),
                GraphFormat::Dot => graph::dot(&saga),
            };
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(diags) => {
            print_diagnostics(&diags, error_format);
            ExitCode::from(1)
        }
    }
}
