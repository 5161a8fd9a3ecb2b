//! `POST /v1/rules/{rule}:eval`: one record (`{"input": {...}}` → `{"result": ...}`) or
//! many (`{"inputs": [...]}` → `{"results": [...]}`), each checked against the rule
//! files' schema before it is evaluated; `?explain=true` adds the explanation trees.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value as Json, json};

use super::problem::Problem;
use super::{App, body};
use crate::json::{FieldIndex, SparseRecord};
use crate::rules::{Context, Program, RuleError, RuleSet};

/// `?explain=`
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct EvalQuery {
    #[serde(default)]
    explain: bool,
}

/// The query of `uri` as `T`, or a 400.
pub(super) fn query<T: serde::de::DeserializeOwned>(uri: &Uri) -> Result<T, Problem> {
    axum::extract::Query::<T>::try_from_uri(uri)
        .map(|q| q.0)
        .map_err(|e| Problem::bad_request(format!("invalid query: {}", e.body_text())))
}

/// Split `name:verb` (a path segment); the verb must be one of `verbs`.
pub(super) fn split_verb<'a>(
    segment: &'a str,
    verbs: &[&str],
) -> Result<(&'a str, &'a str), Problem> {
    let (name, verb) = segment.rsplit_once(':').ok_or_else(|| {
        Problem::no_route(segment).with(
            "help",
            json!(format!(
                "add the action to the segment: `{segment}:{}`",
                verbs.first().copied().unwrap_or_default()
            )),
        )
    })?;
    if !verbs.contains(&verb) {
        let help = crate::diag::did_you_mean(verb, verbs.iter().copied())
            .map(|h| format!(" ({h})"))
            .unwrap_or_default();
        return Err(Problem::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "no such route",
            format!("unknown action `:{verb}`{help}"),
        ));
    }
    Ok((name, verb))
}

fn rule_problem(e: &RuleError, rules: &RuleSet) -> Problem {
    let (status, code) = match e {
        RuleError::Unknown { .. } => (StatusCode::NOT_FOUND, "unknown-rule"),
        RuleError::NeedsArguments { .. } | RuleError::NotACondition { .. } => {
            (StatusCode::UNPROCESSABLE_ENTITY, "rule-not-usable")
        }
    };
    let mut p = Problem::new(status, code, "the rule cannot be evaluated", e.to_string());
    if let Some(help) = e.help() {
        p = p.with("help", json!(help));
    }
    let name = match e {
        RuleError::Unknown { .. } => None,
        RuleError::NeedsArguments { name, .. } | RuleError::NotACondition { name, .. } => {
            Some(name)
        }
    };
    if let Some((source, span)) = name.and_then(|n| rules.rule_span(n)) {
        let (line, column) = source.line_col(span.start);
        p = p
            .with("file", json!(source.name))
            .with("line", json!(line))
            .with("column", json!(column));
    }
    p
}

/// `{"input"}` or `{"inputs"}`, each record kept as its text: it is read sparsely
/// (only the fields the rule reads), as the CLI reads data.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct EvalBody<'a> {
    #[serde(borrow)]
    input: Option<&'a RawValue>,
    #[serde(borrow)]
    inputs: Option<Vec<&'a RawValue>>,
}

/// What every record of a request shares.
struct Eval<'a> {
    program: &'a Program,
    rules: &'a RuleSet,
    index: FieldIndex,
    explain: bool,
    ctx: Context,
}

impl Eval<'_> {
    /// One record's outcome: its result (and explanation), or what is wrong with it.
    fn one<'t>(
        &self,
        record: &mut SparseRecord<'t>,
        text: &'t str,
    ) -> Result<(Json, Option<Json>), Json> {
        let schema_error = |path: &str, message: String| json!({"kind": "schema", "path": path, "message": message});
        if !text.trim_start().starts_with('{') {
            return Err(schema_error(
                "",
                "a record must be a JSON object".to_string(),
            ));
        }
        record
            .parse(text, &self.index)
            .map_err(|e| schema_error("", format!("invalid record: {e}")))?;
        if let Some(schema) = self.rules.schema() {
            schema
                .check_record(record)
                .map_err(|e| schema_error(&e.path, e.to_string()))?;
        }
        let eval_error =
            |e: crate::rules::EvalError| json!({"kind": "evaluation", "message": e.to_string()});
        let result = if self.program.is_condition() {
            Json::Bool(
                self.program
                    .matches_typed(record, &self.ctx)
                    .map_err(eval_error)?,
            )
        } else {
            self.program
                .evaluate(record, &self.ctx)
                .map_err(eval_error)?
                .map_or(Json::Null, |v| v.to_json())
        };
        let tree = if self.explain {
            // the slow path reads the whole record
            let whole: Json = serde_json::from_str(text)
                .map_err(|e| schema_error("", format!("invalid record: {e}")))?;
            let e = self
                .program
                .explain(&whole, &self.ctx)
                .map_err(eval_error)?;
            Some(serde_json::to_value(e).unwrap_or(Json::Null))
        } else {
            None
        };
        Ok((result, tree))
    }
}

fn outcome(result: &Result<(Json, Option<Json>), Json>) -> &'static str {
    match result {
        Ok((Json::Bool(true), _)) => "true",
        Ok((Json::Bool(false), _)) => "false",
        Ok(_) => "value",
        Err(_) => "error",
    }
}

/// `POST /v1/rules/{rule}:eval`
pub(super) async fn post(
    State(app): State<Arc<App>>,
    Path(segment): Path<String>,
    uri: Uri,
    bytes: Bytes,
) -> Result<Response, Problem> {
    let (name, _) = split_verb(&segment, &["eval"])?;
    let q: EvalQuery = query(&uri)?;
    let defs = app.defs();
    let Some(rules) = &defs.rules else {
        return Err(Problem::new(
            StatusCode::NOT_FOUND,
            "unknown-rule",
            "the rule cannot be evaluated",
            format!("unknown rule `{name}`: the server was started without `--rules`"),
        ));
    };
    let program = rules.require(name).map_err(|e| rule_problem(&e, rules))?;
    let body: EvalBody<'_> = body::parse(&bytes)?;
    let eval = Eval {
        program: &program,
        rules,
        index: FieldIndex::new(program.fields()),
        explain: q.explain,
        ctx: Context::system(),
    };
    let started = Instant::now();
    let mut record = SparseRecord::new(&eval.index);
    // counted per request, not per record: one lock for a batch
    let mut outcomes: Vec<(&'static str, u64)> = Vec::new();
    let mut count = |r: &Result<(Json, Option<Json>), Json>| {
        let o = outcome(r);
        match outcomes.iter_mut().find(|(k, _)| *k == o) {
            Some((_, n)) => *n += 1,
            None => outcomes.push((o, 1)),
        }
    };
    let response = match (body.input, body.inputs) {
        (Some(raw), None) => {
            let r = eval.one(&mut record, raw.get());
            count(&r);
            match r {
                Ok((result, tree)) => {
                    let mut out = json!({ "result": result });
                    if let Some(t) = tree {
                        out["explain"] = t;
                    }
                    axum::Json(out).into_response()
                }
                Err(error) => {
                    let detail = error["message"].as_str().unwrap_or_default().to_string();
                    let mut p = Problem::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "invalid-record",
                        "the record cannot be evaluated",
                        detail,
                    );
                    if let Some(path) = error.get("path") {
                        p = p.with("path", path.clone());
                    }
                    p.with("errors", json!([error])).into_response()
                }
            }
        }
        (None, Some(records)) => {
            let mut results = Vec::with_capacity(records.len());
            let mut trees = Vec::new();
            let mut errors = Vec::new();
            for (index, raw) in records.iter().enumerate() {
                let r = eval.one(&mut record, raw.get());
                count(&r);
                match r {
                    Ok((result, tree)) => {
                        results.push(result);
                        trees.extend(tree);
                    }
                    Err(mut error) => {
                        error["index"] = json!(index);
                        errors.push(error);
                        results.push(Json::Null);
                        if q.explain {
                            trees.push(Json::Null);
                        }
                    }
                }
            }
            let mut out = json!({ "results": results });
            if q.explain {
                out["explain"] = Json::Array(trees);
            }
            if !errors.is_empty() {
                out["errors"] = Json::Array(errors);
            }
            axum::Json(out).into_response()
        }
        (Some(_), Some(_)) => {
            return Err(Problem::bad_request("give `input` or `inputs`, not both"));
        }
        (None, None) => {
            return Err(Problem::bad_request(
                "the body needs `input` (one record) or `inputs` (an array of records)",
            ));
        }
    };
    for (o, n) in outcomes {
        app.metrics.add(
            "rulesaga_decisions_total",
            &[("rule", name), ("outcome", o)],
            n,
        );
    }
    app.metrics.observe(
        "rulesaga_decision_seconds",
        &[("rule", name)],
        started.elapsed().as_secs_f64(),
    );
    Ok(response)
}
