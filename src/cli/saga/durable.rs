//! Commands on the SQLite database: `resume`, `recover`, the operator commands
//! (`retry`, `skip`, `mark-compensated`) and maintenance (`seed`, `export`,
//! `rebuild-projection`). Every saga continues with the definition pinned in the
//! database when it started, not the file as it is now.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value as Json;
use uuid::Uuid;

use super::run::MAX_SEED_BYTES;
use super::view::{live_view, result_json};
use super::{DbArgs, ErrorFormat, catalog, handlers, load_rules, print_diagnostics, usage_error};
use rulesaga::adapters::SqliteStore;
use rulesaga::diag::Source;
use rulesaga::repo::Repository;
use rulesaga::saga::events::{Event, EventStore, SagaState, StoreError, fold};
use rulesaga::saga::read_model::status_name;
use rulesaga::saga::runner::{OperatorAction, RunError, Runner};
use rulesaga::saga::{Saga, SagaStatus, validate};

/// Environment variable of the crash failpoint: kill this process with SIGKILL right
/// after the n-th event it appended is durable (for crash tests).
const CRASH_AFTER: &str = "RULESAGA_CRASH_AFTER";

/// Open the database; `must_exist` for commands that only read or continue sagas.
pub(super) fn open_db(path: &Path, must_exist: bool) -> Result<Arc<SqliteStore>, ExitCode> {
    if must_exist && !path.exists() {
        return Err(usage_error(format!(
            "no database at `{}` (give one with `--db FILE`)",
            path.display()
        )));
    }
    SqliteStore::open(path).map(Arc::new).map_err(usage_error)
}

/// A tokio runtime: current-thread for one saga, multi-thread for more.
pub(super) fn runtime(concurrency: usize) -> Result<tokio::runtime::Runtime, ExitCode> {
    let built = if concurrency <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .enable_time()
            .build()
    };
    built.map_err(|e| usage_error(format!("cannot start the runtime: {e}")))
}

/// Subscribe the live view (unless `quiet`) and the crash failpoint (when set).
pub(super) fn attach(store: &SqliteStore, quiet: bool) {
    if !quiet {
        store.subscribe(Arc::new(live_view));
    }
    if let Some(n) = std::env::var(CRASH_AFTER)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
    {
        let seen = AtomicU64::new(0);
        store.subscribe(Arc::new(move |_: &Event| {
            if seen.fetch_add(1, Ordering::SeqCst) + 1 == n {
                kill_self();
            }
        }));
    }
}

/// Die at once, as a crash does: SIGKILL, no cleanup (abort if `kill` is missing).
fn kill_self() -> ! {
    let pid = std::process::id().to_string();
    let _ = std::process::Command::new("kill")
        .args(["-9", &pid])
        .status();
    std::process::abort()
}

/// The exit code of a saga that reached `state`: 0 completed, 1 otherwise.
pub(super) fn exit_for(state: &SagaState) -> ExitCode {
    if state.status == SagaStatus::Completed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Report a store failure: the saga stopped where its log ends; exit 3.
pub(super) fn store_failure(id: Uuid, db: &Path, e: &StoreError) -> ExitCode {
    eprintln!("error: {e}");
    eprintln!(
        "saga {id} stopped without advancing; everything logged is kept. Continue it with \
         `rulesaga saga resume {id} --db {}` once the store works again",
        db.display()
    );
    ExitCode::from(3)
}

/// A saga id, or a unique prefix of one.
pub(super) fn resolve_id(store: &SqliteStore, text: &str) -> Result<Uuid, ExitCode> {
    if let Ok(id) = Uuid::parse_str(text) {
        return Ok(id);
    }
    match store.find_saga_ids(text).map_err(usage_error)?.as_slice() {
        [id] => Ok(*id),
        [] => Err(usage_error(format!("no saga `{text}`"))),
        _ => Err(usage_error(format!(
            "`{text}` names more than one saga: give more of the id"
        ))),
    }
}

/// The saga's events and its pinned definition, validated against the database.
async fn load_saga(
    store: &SqliteStore,
    id: Uuid,
    db: &DbArgs,
    error_format: ErrorFormat,
) -> Result<(Vec<Event>, Saga), ExitCode> {
    let events = store.load(id).await.map_err(usage_error)?;
    if events.is_empty() {
        return Err(usage_error(format!("no saga `{id}`")));
    }
    let state = fold(&events);
    let text = store
        .load_definition(&state.definition_hash)
        .await
        .map_err(usage_error)?
        .ok_or_else(|| {
            usage_error(format!(
                "the definition of saga `{id}` ({}) is not in the database",
                state.definition_hash
            ))
        })?;
    let rules = load_rules(&db.rules, error_format)?;
    let handlers = handlers();
    let short = state.definition_hash.get(..12).unwrap_or_default();
    let source = Source::new(format!("{} (pinned definition {short})", state.saga), text);
    match validate::load(
        source,
        &catalog(&handlers, Some(store.repositories()), rules),
    ) {
        Ok(saga) => Ok((events, saga)),
        Err(diags) => {
            print_diagnostics(&diags, error_format);
            Err(ExitCode::from(1))
        }
    }
}

/// `saga resume ID`
pub(super) fn cmd_resume(id: &str, db: &DbArgs, json: bool, error_format: ErrorFormat) -> ExitCode {
    let run = || -> Result<ExitCode, ExitCode> {
        let store = open_db(&db.db, true)?;
        let id = resolve_id(&store, id)?;
        let rt = runtime(1)?;
        let (events, saga) = rt.block_on(load_saga(&store, id, db, error_format))?;
        attach(&store, json);
        let runner = Runner::transactional(store.clone(), Arc::new(handlers()));
        let state = match rt.block_on(runner.resume(&saga, &events)) {
            Ok(s) => s,
            Err(RunError::Store(e)) => return Err(store_failure(id, &db.db, &e)),
            Err(e) => return Err(usage_error(e)),
        };
        if json {
            let log = rt.block_on(store.load(id)).unwrap_or_default();
            println!(
                "{}",
                serde_json::to_string_pretty(&result_json(&saga, &state, &log)).unwrap_or_default()
            );
        } else if events.last().map(|e| e.seq) == Some(state.last_seq) {
            println!("saga {id} is {}: nothing to do", status_name(state.status));
        }
        rt.shutdown_background();
        Ok(exit_for(&state))
    };
    match run() {
        Ok(c) | Err(c) => c,
    }
}

/// `saga recover`: resume every saga left running or compensating.
pub(super) fn cmd_recover(db: &DbArgs, concurrency: usize, error_format: ErrorFormat) -> ExitCode {
    let run = || -> Result<ExitCode, ExitCode> {
        let store = open_db(&db.db, true)?;
        let ids = store.unfinished().map_err(usage_error)?;
        if ids.is_empty() {
            println!("nothing to recover");
            return Ok(ExitCode::SUCCESS);
        }
        attach(&store, true);
        let rt = runtime(concurrency)?;
        let runner = Runner::transactional(store.clone(), Arc::new(handlers()));
        let mut code = ExitCode::SUCCESS;
        let mut loaded = Vec::new();
        for id in ids {
            match rt.block_on(load_saga(&store, id, db, error_format)) {
                Ok(x) => loaded.push((id, x)),
                Err(c) => code = c,
            }
        }
        let limit = Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
        let results = rt.block_on(async {
            let mut tasks = Vec::new();
            for (id, (events, saga)) in loaded {
                let (runner, limit) = (runner.clone(), limit.clone());
                tasks.push(tokio::spawn(async move {
                    let _permit = limit.acquire_owned().await;
                    (id, runner.resume(&saga, &events).await)
                }));
            }
            let mut out = Vec::new();
            for t in tasks {
                if let Ok(r) = t.await {
                    out.push(r);
                }
            }
            out
        });
        for (id, result) in results {
            match result {
                Ok(state) => println!(
                    "recovered {id} ({}): {}",
                    state.saga,
                    status_name(state.status)
                ),
                Err(RunError::Store(e)) => code = store_failure(id, &db.db, &e),
                Err(e) => {
                    eprintln!("error: saga {id}: {e}");
                    code = ExitCode::from(1);
                }
            }
        }
        rt.shutdown_background();
        Ok(code)
    };
    match run() {
        Ok(c) | Err(c) => c,
    }
}

/// `saga retry|skip|mark-compensated`
pub(super) fn cmd_operate(
    id: &str,
    db: &DbArgs,
    action: OperatorAction,
    error_format: ErrorFormat,
) -> ExitCode {
    let run = || -> Result<ExitCode, ExitCode> {
        let store = open_db(&db.db, true)?;
        let id = resolve_id(&store, id)?;
        let rt = runtime(1)?;
        let (events, saga) = rt.block_on(load_saga(&store, id, db, error_format))?;
        attach(&store, false);
        let runner = Runner::transactional(store.clone(), Arc::new(handlers()));
        let state = match rt.block_on(runner.operate(&saga, &events, &action)) {
            Ok(s) => s,
            Err(RunError::Store(e)) => return Err(store_failure(id, &db.db, &e)),
            Err(e) => return Err(usage_error(e)),
        };
        rt.shutdown_background();
        Ok(exit_for(&state))
    };
    match run() {
        Ok(c) | Err(c) => c,
    }
}

/// Load the repositories of a JSON store file that the database lacks.
pub(super) fn seed_from(store: &SqliteStore, file: &Path) -> Result<Vec<String>, ExitCode> {
    let meta =
        std::fs::metadata(file).map_err(|e| usage_error(format!("`{}`: {e}", file.display())))?;
    if meta.len() > MAX_SEED_BYTES {
        return Err(usage_error(format!(
            "`{}` is larger than {MAX_SEED_BYTES} bytes",
            file.display()
        )));
    }
    let text = std::fs::read_to_string(file)
        .map_err(|e| usage_error(format!("`{}`: {e}", file.display())))?;
    let json: Json = serde_json::from_str(&text)
        .map_err(|e| usage_error(format!("`{}`: {e}", file.display())))?;
    store
        .seed(&json)
        .map_err(|e| usage_error(format!("`{}`: {e}", file.display())))
}

/// `saga seed FILE`
pub(super) fn cmd_seed(file: &Path, db: &Path) -> ExitCode {
    let run = || -> Result<ExitCode, ExitCode> {
        let store = open_db(db, false)?;
        let names = seed_from(&store, file)?;
        if names.is_empty() {
            println!(
                "nothing to seed: `{}` has every repository of `{}`",
                db.display(),
                file.display()
            );
        } else {
            println!("seeded {}: {}", db.display(), names.join(", "));
        }
        Ok(ExitCode::SUCCESS)
    };
    match run() {
        Ok(c) | Err(c) => c,
    }
}

/// `saga export`
pub(super) fn cmd_export(db: &Path) -> ExitCode {
    let run = || -> Result<ExitCode, ExitCode> {
        let store = open_db(db, true)?;
        let json = store.export().map_err(usage_error)?;
        println!(
            "{}",
            serde_json::to_string_pretty(&json).unwrap_or_default()
        );
        Ok(ExitCode::SUCCESS)
    };
    match run() {
        Ok(c) | Err(c) => c,
    }
}

/// `saga rebuild-projection`
pub(super) fn cmd_rebuild(db: &Path) -> ExitCode {
    let run = || -> Result<ExitCode, ExitCode> {
        let store = open_db(db, true)?;
        let n = store.rebuild_projection().map_err(usage_error)?;
        println!("rebuilt the read model from the log: {n} sagas");
        Ok(ExitCode::SUCCESS)
    };
    match run() {
        Ok(c) | Err(c) => c,
    }
}
