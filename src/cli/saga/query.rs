//! The read side: `saga list`, `saga status` (from the read model) and `saga history`
//! (the log itself). Queries never append.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use chrono::{DateTime, NaiveDate, Utc};
use clap::Args;
use serde_json::json;

use super::durable::{open_db, resolve_id, runtime};
use super::view::event_line;
use super::{DbArgs, OutputFormat, usage_error};
use rulesaga::adapters::SqliteStore;
use rulesaga::saga::EventStore;
use rulesaga::saga::read_model::{SagaFilter, SagaSummary, parse_status, status_name};
use rulesaga::saga::validate::parse_duration;

/// `saga list`
#[derive(Args, Debug)]
pub struct ListArgs {
    /// Only sagas in this status: running, completed, compensating, compensated, failed.
    #[arg(long)]
    status: Option<String>,
    /// Only sagas with this name.
    #[arg(long)]
    name: Option<String>,
    /// Only sagas started since: an RFC 3339 time, a date (`2025-01-31`), or a
    /// duration ago (`30m`, `2h`, `1d`).
    #[arg(long)]
    since: Option<String>,
    /// At most this many.
    #[arg(long, default_value_t = 100)]
    limit: usize,
    /// SQLite database.
    #[arg(long, default_value = "rulesaga.db")]
    db: PathBuf,
    /// Print JSON.
    #[arg(long, value_enum)]
    output: Option<OutputFormat>,
}

fn parse_since(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return d.and_hms_opt(0, 0, 0).map(|t| t.and_utc());
    }
    let ago = parse_duration(text)?;
    Some(Utc::now() - chrono::Duration::from_std(ago).ok()?)
}

fn open(db: &Path) -> Result<std::sync::Arc<SqliteStore>, ExitCode> {
    open_db(db, true)
}

fn time(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

fn note(s: &SagaSummary) -> String {
    match (&s.failed_step, &s.reason) {
        (Some(step), Some(reason)) => {
            let mut r = format!("{step}: {reason}");
            if r.chars().count() > 80 {
                r = r.chars().take(77).collect::<String>() + "...";
            }
            r
        }
        _ => String::new(),
    }
}

/// `saga list`
pub(super) fn cmd_list(args: &ListArgs) -> ExitCode {
    let run = || -> Result<ExitCode, ExitCode> {
        let status = match &args.status {
            Some(s) => Some(parse_status(s).ok_or_else(|| {
                usage_error(format!(
                    "unknown status `{s}`: use running, completed, compensating, compensated or failed"
                ))
            })?),
            None => None,
        };
        let since = match &args.since {
            Some(t) => Some(parse_since(t).ok_or_else(|| {
                usage_error(format!(
                    "invalid `--since {t}`: give an RFC 3339 time, a date (2025-01-31) or a duration ago (30m, 2h, 1d)"
                ))
            })?),
            None => None,
        };
        let store = open(&args.db)?;
        let sagas = store
            .list_sagas(&SagaFilter {
                status,
                name: args.name.clone(),
                since,
                limit: Some(args.limit),
            })
            .map_err(usage_error)?;
        if args.output == Some(OutputFormat::Json) {
            println!(
                "{}",
                serde_json::to_string_pretty(&sagas).unwrap_or_default()
            );
            return Ok(ExitCode::SUCCESS);
        }
        if sagas.is_empty() {
            println!("no sagas");
            return Ok(ExitCode::SUCCESS);
        }
        println!(
            "{:<36}  {:<16}  {:<12}  {:<19}  {:<19}  NOTE",
            "ID", "SAGA", "STATUS", "STARTED", "UPDATED"
        );
        for s in &sagas {
            println!(
                "{:<36}  {:<16}  {:<12}  {:<19}  {:<19}  {}",
                s.saga_id,
                s.saga,
                status_name(s.status),
                time(&s.started_at),
                time(&s.updated_at),
                note(s)
            );
        }
        Ok(ExitCode::SUCCESS)
    };
    match run() {
        Ok(c) | Err(c) => c,
    }
}

/// `saga status ID`
pub(super) fn cmd_status(id: &str, db: &DbArgs, json: bool) -> ExitCode {
    let run = || -> Result<ExitCode, ExitCode> {
        let store = open(&db.db)?;
        let id = resolve_id(&store, id)?;
        let Some((summary, state)) = store.saga_status(id).map_err(usage_error)? else {
            return Err(usage_error(format!("no saga `{id}`")));
        };
        if json {
            let out = json!({
                "saga_id": summary.saga_id,
                "saga": summary.saga,
                "status": summary.status,
                "started_at": summary.started_at,
                "updated_at": summary.updated_at,
                "last_seq": summary.last_seq,
                "failed_step": summary.failed_step,
                "reason": summary.reason,
                "definition_hash": state.definition_hash,
                "input": state.input,
                "steps": state.steps,
            });
            println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
            return Ok(ExitCode::SUCCESS);
        }
        println!("saga        {} ({})", summary.saga, summary.saga_id);
        println!("status      {}", status_name(summary.status));
        println!(
            "definition  {}",
            state.definition_hash.get(..12).unwrap_or_default()
        );
        println!("started     {}", time(&summary.started_at));
        println!(
            "updated     {} ({} events)",
            time(&summary.updated_at),
            summary.last_seq
        );
        if let Some(step) = &summary.failed_step {
            println!("failed at   {step}");
        }
        if let Some(reason) = &summary.reason {
            println!("reason      {reason}");
        }
        println!("steps");
        for s in &state.steps {
            let status = serde_json::to_value(s.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            let mut line = format!("  {:<24} {:<20} attempts {}", s.name, status, s.attempts);
            if s.compensation_attempts > 0 {
                line.push_str(&format!(", undo attempts {}", s.compensation_attempts));
            }
            if let Some(r) = &s.operator_reason {
                line.push_str(&format!(" (operator: {r})"));
            }
            println!("{line}");
        }
        Ok(ExitCode::SUCCESS)
    };
    match run() {
        Ok(c) | Err(c) => c,
    }
}

/// `saga history ID`
pub(super) fn cmd_history(id: &str, db: &DbArgs, json: bool) -> ExitCode {
    let run = || -> Result<ExitCode, ExitCode> {
        let store = open(&db.db)?;
        let id = resolve_id(&store, id)?;
        let rt = runtime(1)?;
        let events = rt.block_on(store.load(id)).map_err(usage_error)?;
        if events.is_empty() {
            return Err(usage_error(format!("no saga `{id}`")));
        }
        if json {
            println!(
                "{}",
                serde_json::to_string_pretty(&events).unwrap_or_default()
            );
            return Ok(ExitCode::SUCCESS);
        }
        for e in &events {
            println!(
                "{:>4}  {}  {}",
                e.seq,
                e.at.format("%Y-%m-%d %H:%M:%S%.3f"),
                event_line(e)
            );
        }
        Ok(ExitCode::SUCCESS)
    };
    match run() {
        Ok(c) | Err(c) => c,
    }
}
