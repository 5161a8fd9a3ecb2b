//! The handlers the `rulesaga` binary registers: the library's built-ins (`echo`,
//! `sleep`) and `outbox`.

use std::io::Write as _;

use serde_json::Value as Json;

use crate::saga::{HandlerCall, HandlerError, HandlerRegistry};

/// The saga handlers of the `rulesaga` binary: `echo` (returns its args), `sleep`
/// (waits `args.ms` milliseconds) and `outbox` (appends one JSON line per idempotency
/// key to the file `args.file`). Applications extend this registry and pass it to
/// [`crate::cli::run_with`].
pub fn default_handlers() -> HandlerRegistry {
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
