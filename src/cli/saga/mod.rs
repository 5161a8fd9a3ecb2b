//! `rulesaga saga ...`: validate, run and draw sagas ([`run`]); recover them and act
//! as an operator on the SQLite database ([`durable`]); query the read model
//! ([`query`]). Events read to people through [`view`].

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Subcommand, ValueEnum};
use serde_json::Value as Json;

use super::ErrorFormat;
use rulesaga::adapters::JsonFileRepository;
use rulesaga::diag::{Diagnostics, Source};
use rulesaga::repo::Repository;
use rulesaga::rules::RuleErrors;
use rulesaga::saga::{
    Catalog, HandlerCall, HandlerError, HandlerRegistry, OperatorAction, graph, validate,
};
use rulesaga::{Env, RuleSet};

mod durable;
mod query;
mod run;
mod view;

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
    /// Run a saga (or one per line of `--inputs`) to completion or compensation.
    Run(run::RunArgs),
    /// Continue one saga from its log (with its pinned definition).
    Resume {
        /// Saga id (or a unique prefix).
        id: String,
        #[command(flatten)]
        db: DbArgs,
        /// Print one final JSON object instead of the live view.
        #[arg(long, value_enum)]
        output: Option<OutputFormat>,
    },
    /// Continue every saga left running or compensating (after a crash).
    Recover {
        #[command(flatten)]
        db: DbArgs,
        /// Sagas recovered at once.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
    },
    /// Operator: try a failed saga's failed step (or compensation) again.
    Retry {
        /// Saga id (or a unique prefix).
        id: String,
        /// Why (kept in the log).
        #[arg(long, default_value = "retried by an operator")]
        reason: String,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Operator: declare a failed forward step done without it; the saga goes on.
    Skip {
        /// Saga id (or a unique prefix).
        id: String,
        /// The failed step.
        step: String,
        /// Why (kept in the log).
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Operator: declare a step whose compensation failed undone by hand; compensation goes on.
    MarkCompensated {
        /// Saga id (or a unique prefix).
        id: String,
        /// The step whose compensation failed.
        step: String,
        /// Why (kept in the log).
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        db: DbArgs,
    },
    /// List sagas from the read model, most recent first.
    List(query::ListArgs),
    /// One saga: status and steps, from the read model.
    Status {
        /// Saga id (or a unique prefix).
        id: String,
        #[command(flatten)]
        db: DbArgs,
        /// Print JSON.
        #[arg(long, value_enum)]
        output: Option<OutputFormat>,
    },
    /// One saga's events as a timeline.
    History {
        /// Saga id (or a unique prefix).
        id: String,
        #[command(flatten)]
        db: DbArgs,
        /// Print the events as JSON.
        #[arg(long, value_enum)]
        output: Option<OutputFormat>,
    },
    /// Load a JSON store's repositories into the database (those it does not have yet).
    Seed {
        /// JSON store file (`{"repo": {"id": {...}}}`).
        file: PathBuf,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Print the database's repositories as a JSON store.
    Export {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Rewrite the read model from the event log.
    RebuildProjection {
        #[command(flatten)]
        db: DbArgs,
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

/// `--db` and `--rules` for commands that work on the database.
#[derive(Args, Debug, Clone)]
pub struct DbArgs {
    /// SQLite database: event log, read model and repositories.
    #[arg(long, default_value = "rulesaga.db")]
    pub db: PathBuf,
    /// Rule files for `require` and `find ... rule:` (rules are not pinned with the definition).
    #[arg(long)]
    pub rules: Vec<PathBuf>,
}

/// `--output`
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// JSON.
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
    let json = |o: Option<OutputFormat>| o == Some(OutputFormat::Json);
    match cmd {
        SagaCommand::Validate {
            files,
            store,
            rules,
        } => cmd_validate(&files, store.as_deref(), &rules, error_format),
        SagaCommand::Run(args) => run::cmd_run(args, error_format),
        SagaCommand::Resume { id, db, output } => {
            durable::cmd_resume(&id, &db, json(output), error_format)
        }
        SagaCommand::Recover { db, concurrency } => {
            durable::cmd_recover(&db, concurrency, error_format)
        }
        SagaCommand::Retry { id, reason, db } => {
            durable::cmd_operate(&id, &db, OperatorAction::Retry { reason }, error_format)
        }
        SagaCommand::Skip {
            id,
            step,
            reason,
            db,
        } => durable::cmd_operate(
            &id,
            &db,
            OperatorAction::Skip { step, reason },
            error_format,
        ),
        SagaCommand::MarkCompensated {
            id,
            step,
            reason,
            db,
        } => durable::cmd_operate(
            &id,
            &db,
            OperatorAction::MarkCompensated { step, reason },
            error_format,
        ),
        SagaCommand::List(args) => query::cmd_list(&args),
        SagaCommand::Status { id, db, output } => query::cmd_status(&id, &db, json(output)),
        SagaCommand::History { id, db, output } => query::cmd_history(&id, &db, json(output)),
        SagaCommand::Seed { file, db } => durable::cmd_seed(&file, &db.db),
        SagaCommand::Export { db } => durable::cmd_export(&db.db),
        SagaCommand::RebuildProjection { db } => durable::cmd_rebuild(&db.db),
        SagaCommand::Graph {
            file,
            format,
            store,
            rules,
        } => cmd_graph(&file, format, store.as_deref(), &rules, error_format),
    }
}

/// The handlers the CLI registers: the built-ins (`echo`, `sleep`) and `outbox`.
fn handlers() -> HandlerRegistry {
    let mut r = HandlerRegistry::with_builtins();
    r.register_sync("outbox", outbox);
    r
}

/// `outbox`: append one JSON line `{"key", "saga_id", "step", "attempt", "args"}` to the
/// file `args.file`, unless a line with the call's idempotency key is there already.
/// Called at least once per key (a crash between the call and its logged outcome
/// calls it again), it has its effect once per key.
fn outbox(call: HandlerCall) -> Result<Json, HandlerError> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let file = call
        .args
        .get("file")
        .and_then(Json::as_str)
        .ok_or_else(|| HandlerError::permanent("`outbox` needs `args.file`, a string"))?;
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let existing = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(HandlerError::transient(format!("`{file}`: {e}"))),
    };
    let seen = existing.lines().any(|l| {
        serde_json::from_str::<Json>(l)
            .ok()
            .is_some_and(|j| j.get("key").and_then(Json::as_str) == Some(&call.idempotency_key))
    });
    if !seen {
        let line = serde_json::json!({
            "key": call.idempotency_key,
            "saga_id": call.saga_id,
            "step": call.step,
            "attempt": call.attempt,
            "args": call.args,
        });
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(file)
            .map_err(|e| HandlerError::transient(format!("`{file}`: {e}")))?;
        writeln!(f, "{line}")
            .and_then(|()| f.sync_all())
            .map_err(|e| HandlerError::transient(format!("`{file}`: {e}")))?;
    }
    Ok(serde_json::json!({ "delivered": call.idempotency_key }))
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

/// A saga file's text and the repository names of its store (the explicit one, or
/// `store.json` beside the file), for validation and drawing.
fn saga_and_repositories(
    file: &Path,
    store: Option<&Path>,
) -> Result<(Arc<Source>, Option<Vec<String>>), ExitCode> {
    let source = read_saga(file)?;
    let repos = match store_path(store, file) {
        Some(p) => Some(open_store(&p)?.repositories()),
        None => None,
    };
    Ok((source, repos))
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
    let handlers = handlers();
    let mut failed = false;
    for file in files {
        let (source, repos) = match saga_and_repositories(file, store) {
            Ok(both) => both,
            Err(code) => return code,
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

/// Print diagnostics: `file:line:col: at `path`: message` with the code, the line and a caret;
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

/// Human rendering of saga diagnostics: the same renderer (carets, help) as rule
/// diagnostics, with the YAML path at the front of the message.
fn render_diagnostics(diags: &Diagnostics) -> String {
    let mut shown = diags.clone();
    for d in &mut shown.items {
        if let Some(path) = d.label.take().filter(|l| !l.is_empty()) {
            d.message = format!("at `{path}`: {}", d.message);
        }
    }
    super::render::diagnostics(&shown, ErrorFormat::Human)
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
    let (source, repos) = match saga_and_repositories(file, store) {
        Ok(both) => both,
        Err(code) => return code,
    };
    let handlers = handlers();
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
