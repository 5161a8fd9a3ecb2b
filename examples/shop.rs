//! An application that embeds the whole rulesaga CLI with a handler of its own.
//!
//! `shop` is `rulesaga` plus the handler `ship`, so `shop saga run`, `shop saga
//! recover` and the operator commands work for sagas that call it, which the plain
//! `rulesaga` binary cannot continue (it does not know `ship`):
//!
//! ```sh
//! cargo run --example shop -- saga run examples/shop.yaml \
//!     --input '{"order": "o-1", "log": "/tmp/shipments.jsonl"}' --db /tmp/shop.db
//! cargo run --example shop -- saga recover --db /tmp/shop.db
//! ```
//!
//! `ship` appends one JSON line per call to the file `args.log` (its idempotency key,
//! attempt and process id: a carrier would deduplicate on the key), then waits while
//! the file `args.hold` exists (so tests can catch it mid-call), and returns a
//! tracking number.

use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use rulesaga::saga::{HandlerCall, HandlerError};
use serde_json::{Value as Json, json};

fn main() -> ExitCode {
    let mut handlers = rulesaga::cli::default_handlers();
    handlers.register_async("ship", ship);
    rulesaga::cli::run_with(handlers)
}

async fn ship(call: HandlerCall) -> Result<Json, HandlerError> {
    let arg = |name: &str| {
        call.args
            .get(name)
            .and_then(Json::as_str)
            .map(str::to_string)
    };
    let log = arg("log").ok_or_else(|| HandlerError::permanent("`ship` needs `args.log`"))?;
    let line = json!({
        "key": call.idempotency_key,
        "attempt": call.attempt,
        "pid": std::process::id(),
    });
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .map_err(|e| HandlerError::transient(format!("`{log}`: {e}")))?;
    writeln!(f, "{line}").map_err(|e| HandlerError::transient(format!("`{log}`: {e}")))?;
    if let Some(hold) = arg("hold") {
        while std::path::Path::new(&hold).exists() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let order = arg("order").unwrap_or_default();
    Ok(json!({ "tracking": format!("TRACK-{order}") }))
}
