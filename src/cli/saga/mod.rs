//! `rulesaga saga ...`: a thin layer over [`SagaService`]. Validate, run and draw sagas
//! ([`run`]); recover them and act as an operator ([`ops`]); query the read model and
//! the log ([`query`]). Events read to people through [`view`].

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use serde_json::Value as Json;

use std::sync::atomic::{AtomicBool, Ordering};

use super::output::Output;
use super::{ErrorFormat, render};
use crate::adapters::{self, JsonFileRepository};
use crate::diag::{Diagnostics, Source};
use crate::repo::Repository;
use crate::rules::RuleErrors;
use crate::saga::runner::RunError;
use crate::saga::store::StoreError;
use crate::saga::validate::{self, parse_duration};
use crate::saga::{Catalog, HandlerRegistry, OperatorAction, SagaService, ServiceError, graph};
use crate::{Env, RuleSet};

mod handlers;
mod ops;
mod query;
mod run;
mod view;

pub use handlers::default_handlers;

/// Saga subcommands.
#[derive(Subcommand, Debug)]
pub(crate) enum SagaCommand {
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
        /// A handler registered by another program (checked by name only); repeatable.
        #[arg(long = "handler", value_name = "NAME")]
        handlers: Vec<String>,
        /// `ok: FILE` lines, or JSON: per file `{"file", "ok", "saga", "steps",
        /// "errors", "warnings"}` (`json`: an array, `jsonl`: one per line);
        /// diagnostics stay on standard error (`--error-format`).
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// Run a saga (or one per line of `--inputs`) to completion or compensation.
    Run(run::RunArgs),
    /// Continue one saga from its log, with its pinned definition and rules.
    Resume {
        /// Saga id, a unique prefix or suffix of one, or its business key.
        id: String,
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        lease: LeaseArgs,
        /// The live view, or one final JSON object (`json` pretty, `jsonl` on one line).
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// Continue every saga left running or compensating (after a crash); sagas another
    /// live process holds are left alone.
    Recover {
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        lease: LeaseArgs,
        /// Sagas recovered at once.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
    },
    /// Operator: try a failed saga's failed step (or compensation) again.
    Retry {
        /// Saga id, a unique prefix or suffix of one, or its business key.
        id: String,
        /// Why (kept in the log).
        #[arg(long, default_value = "retried by an operator")]
        reason: String,
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        lease: LeaseArgs,
    },
    /// Operator: declare a failed forward step done without it; the saga goes on.
    Skip {
        /// Saga id, a unique prefix or suffix of one, or its business key.
        id: String,
        /// The failed step.
        step: String,
        /// Why (kept in the log).
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        lease: LeaseArgs,
    },
    /// Operator: declare a step whose compensation failed undone by hand; compensation goes on.
    MarkCompensated {
        /// Saga id, a unique prefix or suffix of one, or its business key.
        id: String,
        /// The step whose compensation failed.
        step: String,
        /// Why (kept in the log).
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        lease: LeaseArgs,
    },
    /// List sagas from the read model, most recent first.
    List(query::ListArgs),
    /// One saga: status, steps and who runs it.
    Status {
        /// Saga id, a unique prefix or suffix of one, or its business key.
        id: String,
        #[command(flatten)]
        db: DbArgs,
        /// A summary for people, or JSON (`json` pretty, `jsonl` on one line).
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// One saga's events as a timeline.
    History {
        /// Saga id, a unique prefix or suffix of one, or its business key.
        id: String,
        #[command(flatten)]
        db: DbArgs,
        /// A timeline, or the events as JSON (`json`: an array, `jsonl`: one per line).
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
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
        /// A handler registered by another program (checked by name only); repeatable.
        #[arg(long = "handler", value_name = "NAME")]
        handlers: Vec<String>,
    },
}

/// `--db`: the saga store.
#[derive(Args, Debug, Clone)]
pub(crate) struct DbArgs {
    /// The saga store: a SQLite file (`sqlite:PATH`, or just a path), a PostgreSQL
    /// database (`postgres://USER@HOST:PORT/DB`), `memory:`, or `json:FILE`
    /// (repositories in a JSON file, events in memory).
    #[arg(long, default_value = "rulesaga.db")]
    pub db: String,
}

/// `--lease-ttl`: how long this process's hold on a saga lasts without renewal.
#[derive(Args, Debug, Clone)]
pub(crate) struct LeaseArgs {
    /// How long a lease on a saga lives without renewal (renewed every third of it
    /// while the saga runs); another process may take over a saga only after its
    /// lease expired.
    #[arg(long, default_value = "30s", value_parser = parse_ttl)]
    pub lease_ttl: Duration,
}

fn parse_ttl(text: &str) -> Result<Duration, String> {
    match parse_duration(text) {
        Some(d) if d >= Duration::from_millis(100) && d <= validate::MAX_DURATION => Ok(d),
        _ => Err(format!(
            "`{text}`: give a duration from 100ms to 30d (`500ms`, `30s`, `5m`)"
        )),
    }
}

/// `--format`
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum GraphFormat {
    /// Mermaid flowchart.
    Mermaid,
    /// Graphviz dot.
    Dot,
}

/// Exit code: the store failed and the saga stopped.
const EXIT_STORE: u8 = 3;
/// Exit code: another process holds the saga.
const EXIT_HELD: u8 = 4;

/// Run a saga subcommand.
pub(crate) fn run(
    cmd: SagaCommand,
    handlers: HandlerRegistry,
    error_format: ErrorFormat,
) -> ExitCode {
    JSON_ERRORS.store(error_format == ErrorFormat::Json, Ordering::Relaxed);
    let ctx = Ctx {
        handlers,
        error_format,
    };
    match cmd {
        SagaCommand::Validate {
            files,
            store,
            rules,
            handlers,
            output,
        } => ctx.validate(&files, store.as_deref(), &rules, &handlers, output),
        SagaCommand::Run(args) => run::cmd_run(&ctx, args),
        SagaCommand::Resume {
            id,
            db,
            lease,
            output,
        } => ops::cmd_resume(&ctx, &id, &db, &lease, output),
        SagaCommand::Recover {
            db,
            lease,
            concurrency,
        } => ops::cmd_recover(&ctx, &db, &lease, concurrency),
        SagaCommand::Retry {
            id,
            reason,
            db,
            lease,
        } => ops::cmd_operate(&ctx, &id, &db, &lease, OperatorAction::Retry { reason }),
        SagaCommand::Skip {
            id,
            step,
            reason,
            db,
            lease,
        } => ops::cmd_operate(
            &ctx,
            &id,
            &db,
            &lease,
            OperatorAction::Skip { step, reason },
        ),
        SagaCommand::MarkCompensated {
            id,
            step,
            reason,
            db,
            lease,
        } => ops::cmd_operate(
            &ctx,
            &id,
            &db,
            &lease,
            OperatorAction::MarkCompensated { step, reason },
        ),
        SagaCommand::List(args) => query::cmd_list(&ctx, &args),
        SagaCommand::Status { id, db, output } => query::cmd_status(&ctx, &id, &db, output),
        SagaCommand::History { id, db, output } => query::cmd_history(&ctx, &id, &db, output),
        SagaCommand::Seed { file, db } => ops::cmd_seed(&ctx, &file, &db),
        SagaCommand::Export { db } => ops::cmd_export(&ctx, &db),
        SagaCommand::RebuildProjection { db } => ops::cmd_rebuild(&ctx, &db),
        SagaCommand::Graph {
            file,
            format,
            store,
            rules,
            handlers,
        } => ctx.graph(&file, format, store.as_deref(), &rules, &handlers),
    }
}

/// What every saga command has: the program's handlers and how to print errors.
pub(crate) struct Ctx {
    handlers: HandlerRegistry,
    error_format: ErrorFormat,
}

impl Ctx {
    /// The service over the store named by `--db` (which must exist unless `create`).
    fn service(&self, db: &DbArgs, create: bool) -> Result<SagaService, ExitCode> {
        if !create
            && let Some(path) = adapters::sqlite_path(&db.db)
            && !path.exists()
        {
            return Err(usage_error(format!(
                "no database at `{}` (give one with `--db FILE`)",
                path.display()
            )));
        }
        let store = adapters::open(&db.db).map_err(usage_error)?;
        Ok(SagaService::new(store, self.handlers.clone()))
    }

    /// Report a service error: the exit code, after printing why.
    fn fail(&self, e: ServiceError, db: &DbArgs) -> ExitCode {
        match e {
            ServiceError::NotFound(_) | ServiceError::Ambiguous { .. } => usage_error(e),
            ServiceError::Held(_) => {
                report(&e);
                ExitCode::from(EXIT_HELD)
            }
            ServiceError::Invalid {
                saga_id,
                ref diagnostics,
            } => {
                print_diagnostics(diagnostics, self.error_format);
                if diagnostics.items.iter().any(|d| d.code == "S011") {
                    hint(&format!(
                        "saga {saga_id} uses a handler this program does not register: \
                         continue it from the application that registers it (`rulesaga::cli::run_with`)"
                    ));
                }
                ExitCode::from(1)
            }
            ServiceError::Rules { ref errors, .. } => {
                self.print_rule_errors(errors);
                ExitCode::from(1)
            }
            ServiceError::Run(RunError::TakenOver { .. }) => {
                report(&format!("{e}; this process stopped without advancing it"));
                ExitCode::from(EXIT_HELD)
            }
            ServiceError::Run(RunError::Store(se)) | ServiceError::Store(se) => {
                store_failure(None, db, &se)
            }
            ServiceError::Run(RunError::Corrupt(ref t)) => {
                report(&e);
                hint(&format!(
                    "saga {} has an event its state does not allow: the log was corrupted or edited",
                    t.saga_id
                ));
                ExitCode::from(1)
            }
            ServiceError::Run(_) => usage_error(e),
        }
    }

    fn print_rule_errors(&self, e: &RuleErrors) {
        match e {
            RuleErrors::Io { path, message } => {
                report(&format!("cannot read `{}`: {message}", path.display()));
            }
            RuleErrors::Invalid(files) => {
                for d in files {
                    print_diagnostics(d, self.error_format);
                }
            }
        }
    }

    fn load_rules(&self, rules: &[PathBuf]) -> Result<Option<RuleSet>, ExitCode> {
        if rules.is_empty() {
            return Ok(None);
        }
        RuleSet::load(rules, &Env::default())
            .map(Some)
            .map_err(|e| {
                self.print_rule_errors(&e);
                match e {
                    RuleErrors::Io { .. } => ExitCode::from(2),
                    RuleErrors::Invalid(_) => ExitCode::from(1),
                }
            })
    }

    /// The catalog for checking a saga file by itself: this program's handlers plus
    /// `extra` names, the repositories of its store file (if any), `rules`.
    fn file_catalog(
        &self,
        file: &Path,
        store: Option<&Path>,
        rules: Option<RuleSet>,
        extra: &[String],
    ) -> Result<Catalog, ExitCode> {
        let repositories = match store_path(store, file) {
            Some(p) => Some(
                JsonFileRepository::open(&p)
                    .map_err(usage_error)?
                    .repositories(),
            ),
            None => None,
        };
        let mut catalog = Catalog {
            repositories,
            rules,
            ..Catalog::new(&self.handlers)
        };
        catalog.handlers.extend(extra.iter().cloned());
        Ok(catalog)
    }

    fn validate(
        &self,
        files: &[PathBuf],
        store: Option<&Path>,
        rules: &[PathBuf],
        extra: &[String],
        output: Output,
    ) -> ExitCode {
        let rules = match self.load_rules(rules) {
            Ok(r) => r,
            Err(code) => return code,
        };
        let mut failed = false;
        let mut results = Vec::new();
        let count = |diags: &Diagnostics, severity: crate::Severity| {
            diags
                .items
                .iter()
                .filter(|d| d.severity == severity)
                .count()
        };
        for file in files {
            let loaded = read_saga(file).and_then(|source| {
                Ok((
                    source,
                    self.file_catalog(file, store, rules.clone(), extra)?,
                ))
            });
            let (source, catalog) = match loaded {
                Ok(both) => both,
                Err(code) => return code,
            };
            let file_name = file.display().to_string();
            match validate::load(source, &catalog) {
                Ok(saga) => {
                    results.push(serde_json::json!({
                        "file": file_name, "ok": true, "saga": saga.name(),
                        "steps": saga.steps().len(), "errors": 0, "warnings": 0,
                    }));
                    if !output.is_json() && self.error_format == ErrorFormat::Human {
                        outln!(
                            "ok: {} (saga `{}`, {} steps)",
                            file.display(),
                            saga.name(),
                            saga.steps().len()
                        );
                    }
                }
                Err(diags) => {
                    failed |= diags.has_errors();
                    results.push(serde_json::json!({
                        "file": file_name, "ok": !diags.has_errors(), "saga": null, "steps": null,
                        "errors": count(&diags, crate::Severity::Error),
                        "warnings": count(&diags, crate::Severity::Warning),
                    }));
                    print_diagnostics(&diags, self.error_format);
                }
            }
        }
        if output.is_json() {
            super::output::print_list(output, &results);
        }
        if failed {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        }
    }

    fn graph(
        &self,
        file: &Path,
        format: GraphFormat,
        store: Option<&Path>,
        rules: &[PathBuf],
        extra: &[String],
    ) -> ExitCode {
        let loaded = self.load_rules(rules).and_then(|rules| {
            let source = read_saga(file)?;
            Ok((source, self.file_catalog(file, store, rules, extra)?))
        });
        let (source, catalog) = match loaded {
            Ok(both) => both,
            Err(code) => return code,
        };
        match validate::load(source, &catalog) {
            Ok(saga) => {
                let text = match format {
                    GraphFormat::Mermaid => graph::mermaid(&saga),
                    GraphFormat::Dot => graph::dot(&saga),
                };
                out!("{text}");
                ExitCode::SUCCESS
            }
            Err(diags) => {
                print_diagnostics(&diags, self.error_format);
                ExitCode::from(1)
            }
        }
    }
}

fn usage_error(msg: impl std::fmt::Display) -> ExitCode {
    report(&msg);
    ExitCode::from(2)
}

/// `--error-format json` for the saga command being run: errors are reported
/// far from [`Ctx`] (argument parsing, store failures), so it is kept here.
static JSON_ERRORS: AtomicBool = AtomicBool::new(false);

fn error_format() -> ErrorFormat {
    if JSON_ERRORS.load(Ordering::Relaxed) {
        ErrorFormat::Json
    } else {
        ErrorFormat::Human
    }
}

/// An error on standard error, in the `--error-format`.
fn report(message: &dyn std::fmt::Display) {
    err!(
        "{}",
        render::plain_error(&message.to_string(), error_format())
    );
}

/// An error about data at a place (file, line, record), in the `--error-format`.
fn report_at(at: &render::At<'_>, message: &str) {
    err!("{}", render::data_error(at, message, error_format()));
}

/// What to do next, after an error: `hint: ...`, or `{"severity":"help","message":...}`.
fn hint(text: &str) {
    match error_format() {
        ErrorFormat::Json => errln!(
            "{}",
            serde_json::json!({"severity": "help", "message": text})
        ),
        ErrorFormat::Human => errln!("hint: {text}"),
    }
}

/// Report a store failure: the saga stopped where its log ends; exit 3 (4 when
/// another process owns the saga).
fn store_failure(id: Option<uuid::Uuid>, db: &DbArgs, e: &StoreError) -> ExitCode {
    report(e);
    if let StoreError::Fenced { saga_id, .. } = e {
        hint(&format!(
            "saga {saga_id} was taken over by another process while this one held it (its \
             lease expired); this process stopped without advancing it"
        ));
        return ExitCode::from(EXIT_HELD);
    }
    if let StoreError::Conflict { saga_id, .. } = e {
        hint(&format!(
            "another writer appended to saga {saga_id} first; this process stopped without \
             advancing it"
        ));
        return ExitCode::from(EXIT_STORE);
    }
    if let Some(id) = id {
        hint(&format!(
            "saga {id} stopped without advancing; everything logged is kept. Continue it with \
             `rulesaga saga resume {id} --db {}` once the store works again",
            db.db
        ));
    }
    ExitCode::from(EXIT_STORE)
}

/// A tokio runtime: current-thread for one saga, multi-thread for more.
fn runtime(concurrency: usize) -> Result<tokio::runtime::Runtime, ExitCode> {
    let built = if concurrency <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    };
    built.map_err(|e| usage_error(format!("cannot start the runtime: {e}")))
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

fn read_saga(file: &Path) -> Result<Arc<Source>, ExitCode> {
    let bytes = crate::diag::read_bytes(file, validate::MAX_FILE_BYTES as u64)
        .map_err(|e| usage_error(format!("`{}`: {e}", file.display())))?;
    let text =
        String::from_utf8(bytes).map_err(|e| usage_error(format!("`{}`: {e}", file.display())))?;
    Ok(Source::new(file.display().to_string(), text))
}

/// Print diagnostics: `file:line:col: at `path`: message` with the code, the line and a caret;
/// or one JSON object per line.
pub(crate) fn print_diagnostics(diags: &Diagnostics, error_format: ErrorFormat) {
    if error_format == ErrorFormat::Json {
        for j in diags.to_json() {
            let mut j = j;
            if let Some(obj) = j.as_object_mut() {
                let path = obj.get("label").cloned().unwrap_or(Json::Null);
                obj.insert("path".into(), path);
            }
            errln!("{j}");
        }
        return;
    }
    err!("{}", render_diagnostics(diags));
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
