//! `saga run`: one saga (`--input`) or one per line (`--inputs`, `--concurrency`),
//! on the SQLite database (`--db`, the default) or a JSON store file (`--store`).

use std::collections::HashMap;
use std::io::BufRead as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;
use serde_json::{Value as Json, json};
use uuid::Uuid;

use super::durable::{attach, exit_for, open_db, runtime, store_failure};
use super::view::{live_view, result_json};
use super::{
    ErrorFormat, OutputFormat, catalog, handlers, load_rules, open_store, print_diagnostics,
    read_saga, usage_error,
};
use rulesaga::adapters::SqliteStore;
use rulesaga::diag::did_you_mean;
use rulesaga::repo::Repository;
use rulesaga::saga::events::{Event, EventStore, MemoryEventStore, SagaState};
use rulesaga::saga::read_model::status_name;
use rulesaga::saga::runner::{Faults, RunError, Runner};
use rulesaga::saga::{Saga, SagaStatus, validate};

/// Largest `--input` file (16 MiB).
const MAX_INPUT_BYTES: u64 = 16 * 1024 * 1024;

/// Largest `--seed` file (64 MiB).
pub(super) const MAX_SEED_BYTES: u64 = 64 * 1024 * 1024;

/// `saga run`
#[derive(Args, Debug)]
pub struct RunArgs {
    /// Saga file.
    file: PathBuf,
    /// Input as JSON text, or `@FILE`.
    #[arg(long, required_unless_present = "inputs", conflicts_with = "inputs")]
    input: Option<String>,
    /// JSON Lines file: one saga per line.
    #[arg(long)]
    inputs: Option<PathBuf>,
    /// With `--inputs`: sagas running at once.
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
    /// SQLite database: event log, read model and repositories.
    #[arg(long, default_value = "rulesaga.db", conflicts_with = "store")]
    db: PathBuf,
    /// Use a JSON store file instead of the database (quick experiments: written
    /// atomically, events kept in memory only, no recovery).
    #[arg(long)]
    store: Option<PathBuf>,
    /// Load this JSON store's repositories into the database first (only the
    /// repositories the database does not have yet).
    #[arg(long, conflicts_with = "store")]
    seed: Option<PathBuf>,
    /// Rule files for `require` and `find ... rule:`.
    #[arg(long)]
    rules: Vec<PathBuf>,
    /// Print one final JSON object (one per line with `--inputs`) instead of the live view.
    #[arg(long, value_enum)]
    output: Option<OutputFormat>,
    /// Make STEP's action fail TIMES times (every time if omitted): `STEP[:TIMES]`.
    #[arg(long = "fail", value_name = "STEP[:TIMES]")]
    fail: Vec<String>,
    /// Make STEP's compensation fail TIMES times: `STEP[:TIMES]`.
    #[arg(long = "fail-compensation", value_name = "STEP[:TIMES]")]
    fail_compensation: Vec<String>,
}

/// Where a run keeps its events and repositories.
enum Backend {
    Db(Arc<SqliteStore>),
    Json {
        repo: Arc<dyn Repository>,
        events: Arc<MemoryEventStore>,
    },
}

impl Backend {
    fn repositories(&self) -> Vec<String> {
        match self {
            Backend::Db(s) => s.repositories(),
            Backend::Json { repo, .. } => repo.repositories(),
        }
    }

    fn runner(&self) -> Runner {
        let handlers = Arc::new(handlers());
        match self {
            Backend::Db(s) => Runner::transactional(s.clone(), handlers),
            Backend::Json { repo, events } => Runner::new(repo.clone(), events.clone(), handlers),
        }
    }

    async fn log(&self, id: Uuid) -> Vec<Event> {
        let loaded = match self {
            Backend::Db(s) => s.load(id).await,
            Backend::Json { events, .. } => events.load(id).await,
        };
        loaded.unwrap_or_default()
    }
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

/// Every non-blank line of a JSON Lines file, parsed, with its line number.
fn read_inputs(path: &PathBuf) -> Result<Vec<(usize, Json)>, ExitCode> {
    let file =
        std::fs::File::open(path).map_err(|e| usage_error(format!("`{}`: {e}", path.display())))?;
    let mut out = Vec::new();
    for (idx, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| usage_error(format!("`{}`: {e}", path.display())))?;
        if line.trim().is_empty() {
            continue;
        }
        if line.len() as u64 > MAX_INPUT_BYTES {
            return Err(usage_error(format!(
                "`{}` line {}: longer than {MAX_INPUT_BYTES} bytes",
                path.display(),
                idx + 1
            )));
        }
        let json = serde_json::from_str(&line).map_err(|e| {
            usage_error(format!(
                "`{}` line {}: invalid JSON: {e}",
                path.display(),
                idx + 1
            ))
        })?;
        out.push((idx + 1, json));
    }
    Ok(out)
}

fn parse_faults(specs: &[String], saga: &Saga) -> Result<HashMap<String, Option<u32>>, ExitCode> {
    let mut out = HashMap::new();
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

fn open_backend(args: &RunArgs) -> Result<Backend, ExitCode> {
    if let Some(p) = &args.store {
        return Ok(Backend::Json {
            repo: Arc::new(open_store(p)?),
            events: Arc::new(MemoryEventStore::new()),
        });
    }
    let store = open_db(&args.db, false)?;
    if let Some(seed) = &args.seed {
        super::durable::seed_from(&store, seed)?;
    }
    Ok(Backend::Db(store))
}

/// Run `saga run`.
pub(super) fn cmd_run(args: RunArgs, error_format: ErrorFormat) -> ExitCode {
    match cmd_run_inner(&args, error_format) {
        Ok(code) | Err(code) => code,
    }
}

fn cmd_run_inner(args: &RunArgs, error_format: ErrorFormat) -> Result<ExitCode, ExitCode> {
    let rules = load_rules(&args.rules, error_format)?;
    let source = read_saga(&args.file)?;
    let backend = open_backend(args)?;
    let handlers = handlers();
    let repos = backend.repositories();
    let saga = match validate::load(source, &catalog(&handlers, Some(repos.clone()), rules)) {
        Ok(s) => s,
        Err(diags) => {
            print_diagnostics(&diags, error_format);
            if repos.is_empty() && matches!(backend, Backend::Db(_)) {
                eprintln!(
                    "hint: the database `{}` has no repositories yet: load them with `--seed FILE` \
                     (a JSON store such as `sagas/store.json`)",
                    args.db.display()
                );
            }
            return Err(ExitCode::from(1));
        }
    };
    let faults = Faults {
        actions: parse_faults(&args.fail, &saga)?,
        compensations: parse_faults(&args.fail_compensation, &saga)?,
    };
    let json = args.output == Some(OutputFormat::Json);
    let runner = backend.runner().with_faults(faults);
    if let Some(path) = &args.inputs {
        let inputs = read_inputs(path)?;
        return Ok(run_many(
            &backend,
            runner,
            saga,
            inputs,
            args.concurrency,
            json,
        ));
    }
    let input = read_input(args.input.as_deref().unwrap_or("{}"))?;
    match &backend {
        Backend::Db(store) => attach(store, json),
        Backend::Json { events, .. } => {
            if !json {
                events.subscribe(Arc::new(live_view));
            }
        }
    }
    let rt = runtime(1)?;
    let saga_id = Uuid::now_v7();
    let result = rt.block_on(runner.run_with_id(&saga, saga_id, input));
    let state = match result {
        Ok(state) => state,
        Err(RunError::Input(problems)) => {
            for p in problems {
                eprintln!("error: invalid input: {p}");
            }
            return Err(ExitCode::from(2));
        }
        Err(RunError::Store(e)) => return Err(store_failure(saga_id, &args.db, &e)),
        Err(e) => return Err(usage_error(e)),
    };
    if json {
        let log = rt.block_on(backend.log(state.saga_id));
        println!(
            "{}",
            serde_json::to_string_pretty(&result_json(&saga, &state, &log)).unwrap_or_default()
        );
    }
    // Do not wait for blocking handlers abandoned by a timeout.
    rt.shutdown_background();
    Ok(exit_for(&state))
}

/// One saga per input line, `concurrency` at a time; one line of output per saga.
fn run_many(
    backend: &Backend,
    runner: Runner,
    saga: Saga,
    inputs: Vec<(usize, Json)>,
    concurrency: usize,
    json: bool,
) -> ExitCode {
    if let Backend::Db(store) = backend {
        attach(store, true);
    }
    let rt = match runtime(concurrency) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let saga = Arc::new(saga);
    let limit = Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
    let results: Vec<(usize, Uuid, Result<SagaState, RunError>)> = rt.block_on(async {
        let mut tasks = Vec::with_capacity(inputs.len());
        for (line, input) in inputs {
            let (runner, saga, limit) = (runner.clone(), saga.clone(), limit.clone());
            tasks.push(tokio::spawn(async move {
                let _permit = limit.acquire_owned().await;
                let id = Uuid::now_v7();
                let result = runner.run_with_id(&saga, id, input).await;
                (line, id, result)
            }));
        }
        let mut out = Vec::with_capacity(tasks.len());
        for t in tasks {
            if let Ok(r) = t.await {
                out.push(r);
            }
        }
        out
    });
    let mut counts: std::collections::BTreeMap<&'static str, usize> = Default::default();
    let mut store_failed = false;
    for (line, id, result) in &results {
        let (status, detail) = match result {
            Ok(state) => (status_name(state.status), state.reason.clone()),
            Err(RunError::Input(p)) => ("rejected", Some(p.join("; "))),
            Err(RunError::Store(e)) => {
                store_failed = true;
                ("stopped", Some(e.to_string()))
            }
            Err(e) => ("rejected", Some(e.to_string())),
        };
        *counts.entry(status).or_default() += 1;
        if json {
            println!(
                "{}",
                json!({"line": line, "saga_id": id, "status": status, "reason": detail})
            );
        } else {
            let detail = detail.map(|d| format!(": {d}")).unwrap_or_default();
            println!("line {line}: {id} {status}{detail}");
        }
    }
    if !json {
        let summary: Vec<String> = counts.iter().map(|(k, v)| format!("{v} {k}")).collect();
        println!("{} sagas: {}", results.len(), summary.join(", "));
    }
    rt.shutdown_background();
    if store_failed {
        ExitCode::from(3)
    } else if results
        .iter()
        .all(|(_, _, r)| matches!(r, Ok(s) if s.status == SagaStatus::Completed))
    {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
