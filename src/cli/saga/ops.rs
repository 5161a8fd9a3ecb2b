//! Commands that continue or change sagas: `resume`, `recover`, the operator commands
//! (`retry`, `skip`, `mark-compensated`) and maintenance (`seed`, `export`,
//! `rebuild-projection`). Every saga continues with the definition and rule files
//! pinned in the store when it started, not the files as they are now.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value as Json;

use super::run::MAX_SEED_BYTES;
use super::view::{live_view, result_json};
use super::{Ctx, DbArgs, LeaseArgs, runtime, usage_error};
use crate::cli::output::{self, Output};
use crate::saga::actions::ActionFuture;
use crate::saga::{
    ActionCall, Event, Executor, Layer, OperatorAction, Phase, SagaService, SagaState, SagaStatus,
    ServiceError,
};

/// Environment variable of the crash failpoint: kill this process with SIGKILL right
/// after the n-th event it appended is durable (for crash tests).
const CRASH_AFTER: &str = "RULESAGA_CRASH_AFTER";

/// Environment variable of the second crash failpoint: kill this process with SIGKILL
/// right after the action of step `STEP` answered (an HTTP response arrived), before
/// its outcome is appended (for crash tests).
const CRASH_AFTER_RESPONSE: &str = "RULESAGA_CRASH_AFTER_RESPONSE";

/// The layer of [`CRASH_AFTER_RESPONSE`].
struct CrashAfterResponse(String);

impl Layer for CrashAfterResponse {
    fn wrap(&self, inner: Arc<dyn Executor>) -> Arc<dyn Executor> {
        Arc::new(CrashingExecutor {
            step: self.0.clone(),
            inner,
        })
    }
}

struct CrashingExecutor {
    step: String,
    inner: Arc<dyn Executor>,
}

impl Executor for CrashingExecutor {
    fn execute<'a>(&'a self, call: &'a ActionCall<'a>) -> ActionFuture<'a> {
        Box::pin(async move {
            let out = self.inner.execute(call).await;
            if call.step == self.step && call.phase == Phase::Action {
                kill_self();
            }
            out
        })
    }
}

/// Subscribe the live view (unless `quiet`) and the crash failpoints (when set).
pub(super) fn attach(service: SagaService, quiet: bool) -> SagaService {
    let mut service = service;
    if let Ok(step) = std::env::var(CRASH_AFTER_RESPONSE) {
        service = service.with_layer(Arc::new(CrashAfterResponse(step)));
    }
    if !quiet {
        service = service.subscribe(Arc::new(live_view));
    }
    if let Some(n) = std::env::var(CRASH_AFTER)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
    {
        let seen = AtomicU64::new(0);
        service = service.subscribe(Arc::new(move |_: &Event| {
            if seen.fetch_add(1, Ordering::SeqCst) + 1 == n {
                kill_self();
            }
        }));
    }
    service
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

fn leased(ctx: &Ctx, db: &DbArgs, lease: &LeaseArgs) -> Result<SagaService, ExitCode> {
    Ok(ctx.service(db, false)?.with_lease_ttl(lease.lease_ttl))
}

/// `saga resume ID`
pub(super) fn cmd_resume(
    ctx: &Ctx,
    id: &str,
    db: &DbArgs,
    lease: &LeaseArgs,
    output: Output,
) -> ExitCode {
    let run = || -> Result<ExitCode, ExitCode> {
        let service = attach(leased(ctx, db, lease)?, output.is_json());
        let rt = runtime(1)?;
        let fail = |e| ctx.fail(e, db);
        let id = rt.block_on(service.resolve(id)).map_err(fail)?;
        let before = rt.block_on(service.history(id)).map_err(fail)?;
        let state = rt.block_on(service.resume(id)).map_err(fail)?;
        if output.is_json() {
            let (saga, log) = rt.block_on(service.pinned(id)).map_err(fail)?;
            output::print_object(output, &result_json(&saga, &state, &log));
        } else if before.last().map(|e| e.seq) == Some(state.last_seq) {
            outln!("saga {id} is {}: nothing to do", state.status.name());
        }
        rt.shutdown_background();
        Ok(exit_for(&state))
    };
    match run() {
        Ok(c) | Err(c) => c,
    }
}

/// `saga recover`: resume every saga left running or compensating.
pub(super) fn cmd_recover(
    ctx: &Ctx,
    db: &DbArgs,
    lease: &LeaseArgs,
    concurrency: usize,
) -> ExitCode {
    let run = || -> Result<ExitCode, ExitCode> {
        let service = attach(leased(ctx, db, lease)?, true);
        let rt = runtime(concurrency)?;
        let results = rt
            .block_on(service.recover(concurrency))
            .map_err(|e| ctx.fail(e, db))?;
        if results.is_empty() {
            outln!("nothing to recover");
            return Ok(ExitCode::SUCCESS);
        }
        let mut code = ExitCode::SUCCESS;
        for r in results {
            match r.outcome {
                Ok(state) => outln!(
                    "recovered {} ({}): {}",
                    r.saga_id,
                    state.saga,
                    state.status.name()
                ),
                Err(ServiceError::Held(l)) => outln!(
                    "left {} alone: `{}` holds it until {}",
                    r.saga_id,
                    l.owner,
                    l.expires_at
                        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                ),
                Err(e) => {
                    super::report(&format!("saga {}:", r.saga_id));
                    code = ctx.fail(e, db);
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
    ctx: &Ctx,
    id: &str,
    db: &DbArgs,
    lease: &LeaseArgs,
    action: OperatorAction,
) -> ExitCode {
    let run = || -> Result<ExitCode, ExitCode> {
        let service = attach(leased(ctx, db, lease)?, false);
        let rt = runtime(1)?;
        let fail = |e| ctx.fail(e, db);
        let id = rt.block_on(service.resolve(id)).map_err(fail)?;
        let state = rt.block_on(service.operate(id, &action)).map_err(fail)?;
        rt.shutdown_background();
        Ok(exit_for(&state))
    };
    match run() {
        Ok(c) | Err(c) => c,
    }
}

/// Load the repositories of a JSON store file that the store lacks.
pub(super) async fn seed_from(service: &SagaService, file: &Path) -> Result<Vec<String>, ExitCode> {
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
    service
        .store()
        .seed(&json)
        .await
        .map_err(|e| usage_error(format!("`{}`: {e}", file.display())))
}

/// `saga seed FILE`
pub(super) fn cmd_seed(ctx: &Ctx, file: &Path, db: &DbArgs) -> ExitCode {
    let run = || -> Result<ExitCode, ExitCode> {
        let service = ctx.service(db, true)?;
        let rt = runtime(1)?;
        let names = rt.block_on(seed_from(&service, file))?;
        if names.is_empty() {
            outln!(
                "nothing to seed: `{}` has every repository of `{}`",
                db.db,
                file.display()
            );
        } else {
            outln!("seeded {}: {}", db.db, names.join(", "));
        }
        Ok(ExitCode::SUCCESS)
    };
    match run() {
        Ok(c) | Err(c) => c,
    }
}

/// `saga export`
pub(super) fn cmd_export(ctx: &Ctx, db: &DbArgs) -> ExitCode {
    let run = || -> Result<ExitCode, ExitCode> {
        let service = ctx.service(db, false)?;
        let rt = runtime(1)?;
        let json = rt.block_on(service.store().export()).map_err(usage_error)?;
        outln!(
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
pub(super) fn cmd_rebuild(ctx: &Ctx, db: &DbArgs) -> ExitCode {
    let run = || -> Result<ExitCode, ExitCode> {
        let service = ctx.service(db, false)?;
        let rt = runtime(1)?;
        let n = rt
            .block_on(service.store().rebuild_projection())
            .map_err(usage_error)?;
        outln!("rebuilt the read model from the log: {n} sagas");
        Ok(ExitCode::SUCCESS)
    };
    match run() {
        Ok(c) | Err(c) => c,
    }
}
