//! `saga run`: one saga (`--input`) or one per line (`--inputs`, `--concurrency`), on
//! the store named by `--db` (a SQLite file by default) or a JSON store file
//! (`--store`).

use std::collections::HashMap;
use std::io::BufRead as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;
use serde_json::{Value as Json, json};
use uuid::Uuid;

use super::ops::{attach, exit_for, seed_from};
use super::view::result_json;
use super::{Ctx, DbArgs, LeaseArgs, read_saga, runtime, store_failure, usage_error};
use crate::cli::output::{self, Output};
use crate::cli::progress::{self, Progress};
use crate::diag::did_you_mean;
use crate::saga::runner::RunError;
use crate::saga::service::Started;
use crate::saga::{FaultLayer, Faults, Saga, SagaService, SagaStatus, ServiceError, Start};

/// Largest `--input` file (16 MiB).
const MAX_INPUT_BYTES: u64 = 16 * 1024 * 1024;

/// Largest `--seed` file (64 MiB).
pub(super) const MAX_SEED_BYTES: u64 = 64 * 1024 * 1024;

/// `saga run`
#[derive(Args, Debug)]
pub(crate) struct RunArgs {
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
    /// A business key (an order id): a second run with the same key does not start a
    /// second saga, it reports the first. Commands that take a saga id take the key too.
    #[arg(long, conflicts_with = "inputs")]
    key: Option<String>,
    /// With `--inputs`: the input field whose value is each saga's business key.
    #[arg(long, requires = "inputs")]
    key_field: Option<String>,
    #[command(flatten)]
    db: DbArgs,
    /// Use a JSON store file instead of the database (quick experiments: written
    /// atomically, events kept in memory only, no recovery); the same as `--db json:FILE`.
    #[arg(long, conflicts_with = "seed")]
    store: Option<PathBuf>,
    /// Load this JSON store's repositories into the database first (only the
    /// repositories the database does not have yet).
    #[arg(long)]
    seed: Option<PathBuf>,
    /// Rule files for `require` and `find ... rule:` (pinned with the saga).
    #[arg(long)]
    rules: Vec<PathBuf>,
    #[command(flatten)]
    lease: LeaseArgs,
    /// The live view, or one final JSON object (`json` pretty, `jsonl` on one line);
    /// with `--inputs`, one result per saga (`json`: an array, `jsonl`: one per line).
    #[arg(long, value_enum, default_value_t = Output::Table)]
    output: Output,
    /// Make STEP's action fail TIMES times (every time if omitted): `STEP[:TIMES]`.
    #[arg(long = "fail", value_name = "STEP[:TIMES]")]
    fail: Vec<String>,
    /// Make STEP's compensation fail TIMES times: `STEP[:TIMES]`.
    #[arg(long = "fail-compensation", value_name = "STEP[:TIMES]")]
    fail_compensation: Vec<String>,
}

fn read_input(arg: &str) -> Result<Json, ExitCode> {
    let text = if let Some(path) = arg.strip_prefix('@') {
        let bytes = crate::diag::read_bytes(std::path::Path::new(path), MAX_INPUT_BYTES)
            .map_err(|e| usage_error(format!("`{path}`: {e}")))?;
        String::from_utf8(bytes).map_err(|e| usage_error(format!("`{path}`: {e}")))?
    } else {
        arg.to_string()
    };
    serde_json::from_str(&text).map_err(|e| {
        let at = super::render::At {
            file: arg.strip_prefix('@').unwrap_or("--input"),
            line: Some(e.line()),
            column: Some(e.column()),
            ..super::render::At::default()
        };
        let message = format!("invalid input JSON: {}", super::render::json_message(&e));
        super::report_at(&at, &message);
        ExitCode::from(2)
    })
}

/// Every non-blank line of a JSON Lines file (`-`: standard input), parsed, with
/// its line number. A bad line is reported with file, line, column and record index.
fn read_inputs(path: &PathBuf) -> Result<Vec<(usize, Json)>, ExitCode> {
    let name = if path.as_os_str() == "-" {
        "<stdin>".to_string()
    } else {
        path.display().to_string()
    };
    let src: Box<dyn std::io::Read> = if path.as_os_str() == "-" {
        Box::new(std::io::stdin())
    } else {
        Box::new(std::fs::File::open(path).map_err(|e| usage_error(format!("`{name}`: {e}")))?)
    };
    let mut out = Vec::new();
    for (idx, line) in std::io::BufReader::new(src).lines().enumerate() {
        let line = line.map_err(|e| usage_error(format!("`{name}`: {e}")))?;
        if line.trim().is_empty() {
            continue;
        }
        let at = |column: Option<usize>| super::render::At {
            file: &name,
            line: Some(idx + 1),
            column,
            record: Some(out.len()),
            ..super::render::At::default()
        };
        if line.len() as u64 > MAX_INPUT_BYTES {
            super::report_at(&at(None), &format!("longer than {MAX_INPUT_BYTES} bytes"));
            return Err(ExitCode::from(2));
        }
        match serde_json::from_str(&line) {
            Ok(json) => out.push((idx + 1, json)),
            Err(e) => {
                let message = format!("invalid JSON: {}", super::render::json_message(&e));
                super::report_at(&at(Some(e.column())), &message);
                return Err(ExitCode::from(2));
            }
        }
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
        if saga.step(step).is_none() {
            let help = did_you_mean(step, saga.steps().iter().map(|s| s.name()))
                .map(|h| format!(" ({h})"))
                .unwrap_or_default();
            return Err(usage_error(format!("unknown step `{step}`{help}")));
        }
        out.insert(step.to_string(), times);
    }
    Ok(out)
}

/// Run `saga run`.
pub(super) fn cmd_run(ctx: &Ctx, args: RunArgs) -> ExitCode {
    match cmd_run_inner(ctx, &args) {
        Ok(code) | Err(code) => code,
    }
}

fn cmd_run_inner(ctx: &Ctx, args: &RunArgs) -> Result<ExitCode, ExitCode> {
    let rules = ctx.load_rules(&args.rules)?;
    let source = read_saga(&args.file)?;
    let db = match &args.store {
        Some(p) => DbArgs {
            db: format!("json:{}", p.display()),
        },
        None => args.db.clone(),
    };
    let service = ctx.service(&db, true)?;
    if let Some(seed) = &args.seed {
        let rt = runtime(1)?;
        rt.block_on(seed_from(&service, seed))?;
    }
    let saga = match service.load(source, rules) {
        Ok(s) => s,
        Err(diags) => {
            super::print_diagnostics(&diags, ctx.error_format);
            if service.store().repositories().is_empty() && args.store.is_none() {
                super::hint(&format!(
                    "the store `{}` has no repositories yet: load them with `--seed FILE` \
                     (a JSON store such as `sagas/store.json`)",
                    db.db
                ));
            }
            return Err(ExitCode::from(1));
        }
    };
    let faults = Faults {
        actions: parse_faults(&args.fail, &saga)?,
        compensations: parse_faults(&args.fail_compensation, &saga)?,
    };
    let json = args.output.is_json();
    let mut service = service.with_lease_ttl(args.lease.lease_ttl);
    if !faults.is_empty() {
        service = service.with_layer(Arc::new(FaultLayer::new(faults)));
    }
    if let Some(path) = &args.inputs {
        let inputs = read_inputs(path)?;
        let service = attach(service, true);
        return Ok(run_many(
            &service,
            saga,
            inputs,
            args.concurrency,
            args.key_field.as_deref(),
            args.output,
            &db,
        ));
    }
    let input = read_input(args.input.as_deref().unwrap_or("{}"))?;
    let service = attach(service, json);
    let rt = runtime(1)?;
    let start = Start::new(input).with_key(args.key.clone());
    let saga_id = start.saga_id;
    let started = match rt.block_on(service.start(&saga, start)) {
        Ok(s) => s,
        Err(ServiceError::Run(RunError::Input(problems))) => {
            for p in problems {
                super::report(&format!("invalid input: {p}"));
            }
            return Err(ExitCode::from(2));
        }
        Err(ServiceError::Run(RunError::Store(e))) => {
            return Err(store_failure(Some(saga_id), &db, &e));
        }
        Err(e) => return Err(ctx.fail(e, &db)),
    };
    let Started { state, existing } = started;
    if existing && !json {
        outln!(
            "saga `{}` with key `{}` exists: {} ({}); nothing new ran",
            state.saga,
            state.key.as_deref().unwrap_or_default(),
            state.saga_id,
            state.status.name()
        );
    }
    if json {
        let log = rt
            .block_on(service.history(state.saga_id))
            .unwrap_or_default();
        let mut out = result_json(&saga, &state, &log);
        if let Some(o) = out.as_object_mut() {
            o.insert("existing".into(), Json::Bool(existing));
        }
        output::print_object(args.output, &out);
    }
    // Do not wait for blocking handlers abandoned by a timeout.
    rt.shutdown_background();
    Ok(exit_for(&state))
}

/// One saga per input line, `concurrency` at a time; one line of output per saga.
fn run_many(
    service: &SagaService,
    saga: Saga,
    inputs: Vec<(usize, Json)>,
    concurrency: usize,
    key_field: Option<&str>,
    output: Output,
    db: &DbArgs,
) -> ExitCode {
    let rt = match runtime(concurrency) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let saga = Arc::new(saga);
    let limit = Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
    // the results are printed when every saga is done: the bar never crosses them
    let progress = if progress::wanted_here(true) {
        Progress::items(inputs.len() as u64, "sagas")
    } else {
        Progress::none()
    };
    let results: Vec<(usize, Uuid, Result<Started, ServiceError>)> = rt.block_on(async {
        let mut tasks = Vec::with_capacity(inputs.len());
        for (line, input) in inputs {
            let (service, saga, limit) = (service.clone(), saga.clone(), limit.clone());
            let progress = progress.clone();
            let key = key_field.and_then(|f| match input.get(f) {
                Some(Json::String(s)) => Some(s.clone()),
                Some(Json::Null) | None => None,
                Some(other) => Some(other.to_string()),
            });
            tasks.push(tokio::spawn(async move {
                let _permit = limit.acquire_owned().await;
                let start = Start::new(input).with_key(key);
                let id = start.saga_id;
                let result = service.start(&saga, start).await;
                progress.inc(1);
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
    progress.finish();
    let mut counts: std::collections::BTreeMap<&'static str, usize> = Default::default();
    let mut store_failed = false;
    let mut items = Vec::new();
    for (line, id, result) in &results {
        let (id, status, detail) = match result {
            Ok(Started { state, existing }) => {
                let status = if *existing {
                    "existing"
                } else {
                    state.status.name()
                };
                (
                    state.saga_id,
                    status,
                    state.problem().map(|p| p.reason.clone()),
                )
            }
            Err(ServiceError::Run(RunError::Input(p))) => (*id, "rejected", Some(p.join("; "))),
            Err(ServiceError::Run(RunError::Store(e)) | ServiceError::Store(e)) => {
                store_failed = true;
                (*id, "stopped", Some(e.to_string()))
            }
            Err(e) => (*id, "rejected", Some(e.to_string())),
        };
        *counts.entry(status).or_default() += 1;
        if output.is_json() {
            items.push(json!({"line": line, "saga_id": id, "status": status, "reason": detail}));
        } else {
            let detail = detail.map(|d| format!(": {d}")).unwrap_or_default();
            outln!("line {line}: {id} {status}{detail}");
        }
    }
    if output.is_json() {
        output::print_list(output, &items);
    } else {
        let summary: Vec<String> = counts.iter().map(|(k, v)| format!("{v} {k}")).collect();
        outln!("{} sagas: {}", results.len(), summary.join(", "));
        for s in service.service_status() {
            let breaker = s.breaker.map_or("no breaker", |b| b.name());
            let in_flight = s
                .in_flight
                .map(|n| format!(", {n} calls in flight"))
                .unwrap_or_default();
            outln!("service {}: circuit breaker {breaker}{in_flight}", s.name);
        }
    }
    rt.shutdown_background();
    if store_failed {
        super::hint(&format!(
            "some sagas stopped because the store failed: continue them with `rulesaga saga recover --db {}`",
            db.db
        ));
        ExitCode::from(super::EXIT_STORE)
    } else if results.iter().all(
        |(_, _, r)| matches!(r, Ok(Started { state, .. }) if state.status == SagaStatus::Completed),
    ) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
