//! `rulesaga diff OLD NEW --rule NAME --data FILE`: which records a change of a
//! rule flips, in both directions, with the new result's explanation.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::data::DataFormat;
use super::rules::{EXIT_DATA, EXIT_RULES, Output};
use super::{ErrorFormat, render};
use crate::rules::RuleErrors;
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
    /// How to print the flips.
    #[arg(long, value_enum, default_value_t = Output::Table)]
    output: Output,
    /// Fix the clock for `now()` and `today()` (RFC 3339).
    #[arg(long)]
    now: Option<String>,
}

fn load(path: &PathBuf, name: &str, format: ErrorFormat) -> Result<Program, ExitCode> {
    let files = match super::test::split_inputs(std::slice::from_ref(path)) {
        Ok((rules, _)) => rules,
        Err(e) => {
            err!("{}", render::plain_error(&e, format));
            return Err(ExitCode::from(EXIT_DATA));
        }
    };
    match RuleSet::load(&files, &Env::new()) {
        Ok(set) => set.require(name).map_err(|msg| {
            err!(
                "{}",
                render::plain_error(&format!("{}: {msg}", path.display()), format)
            );
            ExitCode::from(EXIT_RULES)
        }),
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
    let old = match load(&args.old, &args.rule, format) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let new = match load(&args.new, &args.rule, format) {
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
        share.for_each(&data.bytes, |_, text| {
            let index = n_records;
            n_records += 1;
            let record: serde_json::Value = match text
                .map_err(|e| e.to_string())
                .and_then(|t| serde_json::from_str(t).map_err(|e| format!("invalid JSON: {e}")))
            {
                Ok(r) => r,
                Err(e) => {
                    n_errors += 1;
                    problems.push(format!("{}: record {index}: {e}", data.name));
                    return;
                }
            };
            let (was, is) = match (old.matches(&record, &ctx), new.matches(&record, &ctx)) {
                (Ok(a), Ok(b)) => (a, b),
                (Err(e), _) | (_, Err(e)) => {
                    n_errors += 1;
                    problems.push(format!("{}: record {index}: {e}", data.name));
                    return;
                }
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
    for p in problems.iter().take(20) {
        err!("{}", render::plain_error(p, format));
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let written = (|| -> std::io::Result<()> {
        match args.output {
            Output::Jsonl => {
                for (index, key, was, is, explanation) in &lines {
                    let line = serde_json::json!({
                        "index": index, "key": key, "old": was, "new": is, "explain": explanation,
                    });
                    writeln!(out, "{line}")?;
                }
                let summary = serde_json::json!({"summary": {
                    "rule": args.rule, "records": n_records, "flipped": n_gained + n_lost,
                    "false_to_true": n_gained, "true_to_false": n_lost, "errors": n_errors,
                }});
                writeln!(out, "{summary}")?;
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
    ExitCode::SUCCESS
}
