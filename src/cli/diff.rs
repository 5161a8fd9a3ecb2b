//! `rulesaga diff OLD NEW --rule NAME --data FILE`: which records a change of a
//! rule flips, in both directions, with the new result's explanation.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::data::{DataFormat, Layout};
use super::rules::{EXIT_DATA, EXIT_RULES, Output};
use super::{ErrorFormat, render};
use crate::rules::{RuleErrors, Schema};
use crate::{Env, Program, RuleSet};

/// `rulesaga diff`
#[derive(Args, Debug)]
pub struct DiffArgs {
    /// The old version: a rule file or a folder of them.
    old: PathBuf,
    /// The new version: a rule file or a folder of them.
    new: PathBuf,
    /// The rule to compare (evaluated with its default arguments).
    #[arg(long)]
    rule: String,
    /// Records: a JSON array, JSONL, one JSON object, or YAML; `-` for standard input.
    #[arg(long)]
    data: PathBuf,
    /// How to read `--data`.
    #[arg(long, value_enum, default_value_t = DataFormat::Auto)]
    data_format: DataFormat,
    /// Fields that name a record in the report (default: `id`, `key` or `name`, whichever it has).
    #[arg(long = "key")]
    keys: Vec<String>,
    /// How to print the flips: text; one JSON object `{"flips": [...], "summary": {...}}`;
    /// or one flip per line, then `{"summary": ...}`.
    #[arg(long, value_enum, default_value_t = Output::Table)]
    output: Output,
    /// Fix the clock for `now()` and `today()`: an RFC 3339 time, one without
    /// offset (UTC), or a date (midnight UTC).
    #[arg(long)]
    now: Option<String>,
}

/// The rule of one side, with its rule set's schema.
fn load(
    path: &PathBuf,
    name: &str,
    format: ErrorFormat,
) -> Result<(Program, Option<Schema>), ExitCode> {
    let files = match super::test::split_inputs(std::slice::from_ref(path)) {
        Ok((rules, _)) => rules,
        Err(e) => {
            err!("{}", render::plain_error(&e, format));
            return Err(ExitCode::from(EXIT_DATA));
        }
    };
    match RuleSet::load(&files, &Env::new()) {
        Ok(set) => {
            let program = set.condition(name).map_err(|e| {
                let message = format!("{}: {e}", path.display());
                err!(
                    "{}",
                    render::rule_error(&message, e.help().as_deref(), format)
                );
                ExitCode::from(EXIT_RULES)
            })?;
            Ok((program, set.schema().cloned()))
        }
        Err(RuleErrors::Invalid(files)) => {
            for d in &files {
                err!("{}", render::diagnostics(d, format));
            }
            Err(ExitCode::from(EXIT_RULES))
        }
        Err(e) => {
            err!("{}", render::plain_error(&e.to_string(), format));
            Err(ExitCode::from(EXIT_DATA))
        }
    }
}

/// The fields that name a record: the `--key` ones, or the first of `id`, `key`, `name`.
fn key_of(
    record: &serde_json::Value,
    keys: &[String],
) -> serde_json::Map<String, serde_json::Value> {
    let mut out = serde_json::Map::new();
    if keys.is_empty() {
        if let Some((k, v)) = ["id", "key", "name"]
            .iter()
            .find_map(|k| record.get(*k).map(|v| (k.to_string(), v.clone())))
        {
            out.insert(k, v);
        }
    } else {
        for k in keys {
            out.insert(
                k.clone(),
                record.get(k).cloned().unwrap_or(serde_json::Value::Null),
            );
        }
    }
    out
}

/// `rulesaga diff`
pub fn run(args: DiffArgs, format: ErrorFormat) -> ExitCode {
    let (old, old_schema) = match load(&args.old, &args.rule, format) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let (new, new_schema) = match load(&args.new, &args.rule, format) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let (ctx, data) = match super::rules::context_and_data(
        args.now.as_deref(),
        &args.data,
        args.data_format,
        format,
    ) {
        Ok(both) => both,
        Err(code) => return code,
    };
    let mut n_records = 0usize;
    let (mut n_gained, mut n_lost, mut n_errors) = (0usize, 0usize, 0usize);
    let mut lines = Vec::new();
    let mut problems = Vec::new();
    for share in data.shares(1) {
        share.for_each(&data.bytes, |slot, text| {
            let index = n_records;
            n_records += 1;
            let line = match (&data.layout, slot.line) {
                (_, n) if n > 0 => Some(n),
                (Layout::Lines, _) => Some(data.line_at(slot.start)),
                _ => None,
            };
            let mut fail = |e: String| {
                n_errors += 1;
                problems.push((index, line, e));
            };
            let record: serde_json::Value = match text
                .map_err(|e| e.to_string())
                .and_then(|t| serde_json::from_str(t).map_err(|e| format!("invalid JSON: {e}")))
            {
                Ok(r) => r,
                Err(e) => return fail(e),
            };
            // a record must fit both sides' schemas: otherwise neither answer means anything
            for schema in [&old_schema, &new_schema].into_iter().flatten() {
                if let Err(e) = schema.check_json(&record) {
                    return fail(e.to_string());
                }
            }
            let (was, is) = match (old.matches(&record, &ctx), new.matches(&record, &ctx)) {
                (Ok(a), Ok(b)) => (a, b),
                (Err(e), _) | (_, Err(e)) => return fail(e.to_string()),
            };
            if was == is {
                return;
            }
            if is {
                n_gained += 1;
            } else {
                n_lost += 1;
            }
            let key = key_of(&record, &args.keys);
            let explanation = new.explain(&record, &ctx).ok();
            lines.push((index, key, was, is, explanation));
        });
    }
    for (index, line, e) in problems.iter().take(20) {
        let at = render::At {
            file: &data.name,
            line: *line,
            record: Some(*index),
            ..render::At::default()
        };
        err!("{}", render::data_error(&at, e, format));
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let written = (|| -> std::io::Result<()> {
        match args.output {
            Output::Json | Output::Jsonl => {
                let flips = lines.iter().map(|(index, key, was, is, explanation)| {
                    serde_json::json!({
                        "index": index, "key": key, "old": was, "new": is, "explain": explanation,
                    })
                });
                let summary = serde_json::json!({
                    "rule": args.rule, "records": n_records, "flipped": n_gained + n_lost,
                    "false_to_true": n_gained, "true_to_false": n_lost, "errors": n_errors,
                });
                if args.output == Output::Json {
                    let doc =
                        serde_json::json!({"flips": flips.collect::<Vec<_>>(), "summary": summary});
                    let text = serde_json::to_string_pretty(&doc).map_err(std::io::Error::other)?;
                    writeln!(out, "{text}")?;
                } else {
                    for line in flips {
                        writeln!(out, "{line}")?;
                    }
                    writeln!(out, "{}", serde_json::json!({ "summary": summary }))?;
                }
            }
            Output::Table => {
                for (index, key, was, is, explanation) in &lines {
                    let name = key
                        .iter()
                        .map(|(k, v)| format!("{k} = {v}"))
                        .collect::<Vec<_>>()
                        .join(", ");
                    let name = if name.is_empty() {
                        String::new()
                    } else {
                        format!(" ({name})")
                    };
                    writeln!(out, "record {index}{name}: {was} → {is}")?;
                    if let Some(e) = explanation {
                        for line in e.to_string().lines() {
                            writeln!(out, "  {line}")?;
                        }
                    }
                    writeln!(out)?;
                }
                writeln!(
                    out,
                    "rule `{}`: {} of {n_records} records flip: {n_gained} false → true, {n_lost} true → false{}",
                    args.rule,
                    n_gained + n_lost,
                    if n_errors > 0 {
                        format!(", {n_errors} could not be evaluated")
                    } else {
                        String::new()
                    }
                )?;
            }
        }
        out.flush()
    })();
    if let Err(e) = written
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        err!("{}", render::plain_error(&e.to_string(), format));
        return ExitCode::from(EXIT_DATA);
    }
    if n_errors > 0 {
        ExitCode::from(EXIT_DATA)
    } else {
        ExitCode::SUCCESS
    }
}
