//! The read side: `saga list` (the read model), `saga status` and `saga history` (the
//! log). Queries never append.

use std::process::ExitCode;

use chrono::{DateTime, NaiveDate, Utc};
use clap::Args;

use super::view::event_line;
use super::{Ctx, DbArgs, runtime, usage_error};
use crate::cli::output::{self, Output};
use crate::cli::table;
use crate::saga::SagaStatus;
use crate::saga::read_model::{SagaFilter, SagaSummary};
use crate::saga::validate::parse_duration;

/// `saga list`
#[derive(Args, Debug)]
pub(crate) struct ListArgs {
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
    #[command(flatten)]
    db: DbArgs,
    /// A table, or JSON (`json`: an array, `jsonl`: one saga per line).
    #[arg(long, value_enum, default_value_t = Output::Table)]
    output: Output,
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

fn time(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

fn note(s: &SagaSummary) -> String {
    match (&s.failed_step, &s.reason) {
        (Some(step), Some(reason)) => table::cell_max(&format!("{step}: {reason}"), 80),
        _ => String::new(),
    }
}

/// `saga list`
pub(super) fn cmd_list(ctx: &Ctx, args: &ListArgs) -> ExitCode {
    let run = || -> Result<ExitCode, ExitCode> {
        let status = match &args.status {
            Some(s) => Some(SagaStatus::parse(s).ok_or_else(|| {
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
        let service = ctx.service(&args.db, false)?;
        let rt = runtime(1)?;
        let filter = SagaFilter {
            status,
            name: args.name.clone(),
            since,
            limit: Some(args.limit),
        };
        let sagas = rt
            .block_on(service.list(&filter))
            .map_err(|e| ctx.fail(e, &args.db))?;
        if args.output.is_json() {
            output::print_list(args.output, &sagas);
            return Ok(ExitCode::SUCCESS);
        }
        if sagas.is_empty() {
            outln!("no sagas");
            return Ok(ExitCode::SUCCESS);
        }
        let header = ["ID", "SAGA", "KEY", "STATUS", "STARTED", "UPDATED", "NOTE"];
        let mut rows = vec![header.map(String::from).to_vec()];
        for s in &sagas {
            rows.push(vec![
                s.saga_id.to_string(),
                table::cell(&s.saga),
                table::cell(s.key.as_deref().unwrap_or("-")),
                s.status.name().to_string(),
                time(&s.started_at),
                time(&s.updated_at),
                note(s),
            ]);
        }
        let mut columns = table::Columns::default();
        rows.iter().for_each(|r| columns.measure(r));
        for row in &rows {
            outln!("{}", columns.line(row));
        }
        Ok(ExitCode::SUCCESS)
    };
    match run() {
        Ok(c) | Err(c) => c,
    }
}

/// `saga status ID`
pub(super) fn cmd_status(ctx: &Ctx, id: &str, db: &DbArgs, output: Output) -> ExitCode {
    let run = || -> Result<ExitCode, ExitCode> {
        let service = ctx.service(db, false)?;
        let rt = runtime(1)?;
        let fail = |e| ctx.fail(e, db);
        let id = rt.block_on(service.resolve(id)).map_err(fail)?;
        let report = rt.block_on(service.status(id)).map_err(fail)?;
        let (summary, state) = (&report.summary, &report.state);
        if output.is_json() {
            output::print_object(output, &report.to_json());
            return Ok(ExitCode::SUCCESS);
        }
        outln!("saga        {} ({})", summary.saga, summary.saga_id);
        if let Some(k) = &summary.key {
            outln!("key         {k}");
        }
        outln!("status      {}", summary.status.name());
        outln!(
            "definition  {}",
            state.definition_hash.get(..12).unwrap_or_default()
        );
        for r in &state.rules {
            outln!(
                "rules       {} ({})",
                r.name,
                r.hash.get(..12).unwrap_or_default()
            );
        }
        outln!("started     {}", time(&summary.started_at));
        outln!(
            "updated     {} ({} events)",
            time(&summary.updated_at),
            summary.last_seq
        );
        if let Some(l) = &report.lease {
            outln!("run by      {} until {}", l.owner, time(&l.expires_at));
        }
        if let Some(step) = &summary.failed_step {
            outln!("failed at   {step}");
        }
        if let Some(reason) = &summary.reason {
            outln!("reason      {reason}");
        }
        outln!("steps");
        for s in &state.steps {
            let mut line = format!(
                "  {:<24} {:<20} attempts {}",
                s.name,
                s.status.name(),
                s.attempts
            );
            if s.conflicts > 0 {
                line.push_str(&format!(" ({} conflicts)", s.conflicts));
            }
            if s.compensation_attempts > 0 {
                line.push_str(&format!(", undo attempts {}", s.compensation_attempts));
            }
            if let Some(r) = &s.operator_reason {
                line.push_str(&format!(" (operator: {r})"));
            }
            outln!("{line}");
        }
        Ok(ExitCode::SUCCESS)
    };
    match run() {
        Ok(c) | Err(c) => c,
    }
}

/// `saga history ID`
pub(super) fn cmd_history(ctx: &Ctx, id: &str, db: &DbArgs, output: Output) -> ExitCode {
    let run = || -> Result<ExitCode, ExitCode> {
        let service = ctx.service(db, false)?;
        let rt = runtime(1)?;
        let fail = |e| ctx.fail(e, db);
        let id = rt.block_on(service.resolve(id)).map_err(fail)?;
        let events = rt.block_on(service.history(id)).map_err(fail)?;
        if output.is_json() {
            output::print_list(output, &events);
            return Ok(ExitCode::SUCCESS);
        }
        for e in &events {
            outln!(
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
