//! Step two: a [`SagaFile`] becomes a [`Saga`], or every problem is reported.
//!
//! Each diagnostic points at the YAML value (file, line, column) and carries the
//! YAML path (`steps[2].retry.max_attempts`) as its label. Expressions are compiled by
//! the rules checker against the schema of what their position may read (`reads.rs`,
//! `expr.rs`), and their diagnostics point at the name inside the expression.

mod action;
mod expr;
mod offsets;
mod reads;
mod service;

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use regex::Regex;
use serde_saphyr::{Location, Spanned};
use sha2::{Digest, Sha256};

use super::file::{RetryFile, SagaFile, StepFile, Template};
use super::handlers::HandlerRegistry;
use super::model::{EntityRef, Require, RetryPolicy, RuleRef, RuleText, Saga, Step, Undo};
use super::yaml::{location_span, parse_yaml};
use crate::diag::{Diagnostic, Diagnostics, Source, Span, did_you_mean};
use crate::rules::{Env, FieldType, ObjectType, RuleSet, Schema, Type};
use reads::Scope;

/// Largest saga file (1 MiB).
pub const MAX_FILE_BYTES: usize = 1024 * 1024;
/// Most steps in one saga.
pub const MAX_STEPS: usize = 256;
/// Largest expression (4 KiB).
pub const MAX_EXPR_BYTES: usize = 4096;
/// Longest duration accepted anywhere (30 days).
pub const MAX_DURATION: Duration = Duration::from_secs(30 * 86_400);

/// What a saga may refer to: handlers, repositories, rules.
#[derive(Clone, Default)]
pub struct Catalog {
    /// Registered handler names.
    pub handlers: Vec<String>,
    /// Repository names (`None`: not checked).
    pub repositories: Option<Vec<String>>,
    /// Rules for `require` and `find ... rule:`.
    pub rules: Option<RuleSet>,
    /// What expressions compile against.
    pub env: Env,
}

impl Catalog {
    /// A catalog with the handlers of `registry`, no repositories checked, no rules.
    pub fn new(registry: &HandlerRegistry) -> Catalog {
        Catalog {
            handlers: registry.names().map(str::to_string).collect(),
            ..Catalog::default()
        }
    }
}

/// Parse and validate a saga text.
pub fn load(source: Arc<Source>, catalog: &Catalog) -> Result<Saga, Diagnostics> {
    let fail = |items: Vec<Diagnostic>, source: &Arc<Source>| Diagnostics {
        source: source.clone(),
        items,
    };
    if source.text.len() > MAX_FILE_BYTES {
        let d = Diagnostic::error(
            "S017",
            Span::new(0, 0),
            format!("saga file is larger than {MAX_FILE_BYTES} bytes"),
        );
        return Err(fail(vec![d], &source));
    }
    let file = match parse_yaml(&source) {
        Ok(file) => file,
        Err(d) => return Err(fail(vec![d], &source)),
    };
    let mut v = Validator {
        source: source.clone(),
        catalog,
        diags: Vec::new(),
        step_names: HashMap::new(),
        step_outputs: Vec::new(),
        step_types: Vec::new(),
        steps_types: HashMap::new(),
        input: None,
        services: Vec::new(),
        env_reads: Vec::new(),
    };
    let saga = v.saga(&file);
    match saga {
        Some(saga) if v.diags.is_empty() => Ok(saga),
        _ => {
            let mut items = v.diags;
            items.sort_by_key(|d| (d.span.start, d.span.end));
            Err(fail(items, &source))
        }
    }
}

/// The rule files of `rules`, to pin with a saga validated against them.
fn rule_texts(rules: Option<&RuleSet>) -> Vec<RuleText> {
    rules
        .map(|r| {
            r.files()
                .map(|(source, _)| RuleText {
                    name: source.name.clone(),
                    hash: definition_hash(&source.text),
                    text: source.text.clone(),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Hex SHA-256 of a text.
pub fn definition_hash(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

static IDENT: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z_][A-Za-z0-9_]*$").ok());

fn is_ident(s: &str) -> bool {
    IDENT.as_ref().is_some_and(|r| r.is_match(s))
}

struct Validator<'c> {
    source: Arc<Source>,
    catalog: &'c Catalog,
    diags: Vec<Diagnostic>,
    /// Step name → index.
    step_names: HashMap<String, usize>,
    /// Declared output names per step (`None`: the action's result).
    step_outputs: Vec<Option<Vec<String>>>,
    /// What later steps read of each step (`None`: a duplicate name).
    step_types: Vec<Option<FieldType>>,
    /// `steps` as read before step `i`, by `i` (built once each).
    steps_types: HashMap<usize, Type>,
    /// Declared input fields (`None`: no `input`, not checked).
    input: Option<Arc<ObjectType>>,
    /// Names of the declared services.
    services: Vec<String>,
    /// The `env` variables the service being validated reads.
    env_reads: Vec<String>,
}

impl Validator<'_> {
    fn span(&self, loc: &Location) -> Span {
        location_span(&self.source, loc)
    }

    fn error(
        &mut self,
        code: &'static str,
        loc: &Location,
        path: &str,
        msg: String,
    ) -> &mut Diagnostic {
        let d = Diagnostic::error(code, self.span(loc), msg).with_label(path);
        self.diags.push(d);
        let last = self.diags.len() - 1;
        &mut self.diags[last]
    }

    fn error_help(
        &mut self,
        code: &'static str,
        loc: &Location,
        path: &str,
        msg: String,
        help: Option<String>,
    ) {
        self.error(code, loc, path, msg).help = help;
    }

    fn saga(&mut self, file: &SagaFile) -> Option<Saga> {
        let name = file.saga.value.trim().to_string();
        if name.is_empty() {
            self.error(
                "S022",
                &file.saga.referenced,
                "saga",
                "the saga needs a name".into(),
            );
        }
        let input = self.input_schema(file);
        let deadline = file
            .deadline
            .as_ref()
            .and_then(|d| self.duration(d, "deadline", false));
        let compensation_retry = match &file.compensation_retry {
            Some(r) => self.retry(r, "compensation_retry", RetryPolicy::compensation_default()),
            None => Some(RetryPolicy::compensation_default()),
        };

        let services = self.services(file);
        let steps_file = &file.steps.value;
        if steps_file.is_empty() {
            self.error(
                "S017",
                &file.steps.referenced,
                "steps",
                "a saga needs at least one step".into(),
            );
        }
        if steps_file.len() > MAX_STEPS {
            self.error(
                "S017",
                &file.steps.referenced,
                "steps",
                format!(
                    "a saga has at most {MAX_STEPS} steps, found {}",
                    steps_file.len()
                ),
            );
            return None;
        }
        // First pass: names, outputs, the pivot.
        let mut pivot: Option<usize> = None;
        for (i, step) in steps_file.iter().enumerate() {
            let s = &step.value;
            let path = format!("steps[{i}].name");
            let n = s.name.value.as_str();
            if !is_ident(n) {
                self.error(
                    "S010",
                    &s.name.referenced,
                    &path,
                    format!(
                        "step name `{n}` must be letters, digits and `_`, not starting with a digit"
                    ),
                );
            }
            let outputs: Option<Vec<String>> = s
                .outputs
                .as_ref()
                .map(|o| o.value.keys().cloned().collect());
            if let Some(&first) = self.step_names.get(n) {
                let line = steps_file
                    .get(first)
                    .map_or(0, |f| f.value.name.referenced.line());
                self.error_help(
                    "S010",
                    &s.name.referenced,
                    &path,
                    format!("duplicate step name `{n}`"),
                    Some(format!("the first `{n}` is on line {line}")),
                );
                self.step_types.push(None);
            } else {
                self.step_names.insert(n.to_string(), i);
                self.step_types
                    .push(Some(reads::step_field(n, outputs.as_deref())));
            }
            self.step_outputs.push(outputs);
            if let Some(p) = &s.pivot
                && p.value
            {
                if let Some(first) = pivot {
                    self.error(
                        "S019",
                        &p.referenced,
                        &format!("steps[{i}].pivot"),
                        format!(
                            "a saga has one pivot, and step `{}` is already it",
                            steps_file
                                .get(first)
                                .map_or("", |f| f.value.name.value.as_str())
                        ),
                    );
                } else {
                    pivot = Some(i);
                }
            }
        }
        let mut steps = Vec::new();
        for (i, step) in steps_file.iter().enumerate() {
            if let Some(s) = self.step(i, &step.value, pivot, steps_file) {
                steps.push(s);
            }
        }
        if !self.diags.is_empty() {
            return None;
        }
        Some(Saga {
            name,
            version: file.version.as_ref().map(|v| v.value),
            description: file.description.as_ref().map(|d| d.value.clone()),
            definition_hash: definition_hash(&self.source.text),
            source: self.source.clone(),
            input,
            deadline,
            compensation_retry: compensation_retry?,
            services,
            steps,
            pivot,
            rule_files: rule_texts(self.catalog.rules.as_ref()),
        })
    }

    /// The input schema: each field's type in the rules language's type syntax,
    /// plus `list` (of anything) and `object` (any object) for short.
    fn input_schema(&mut self, file: &SagaFile) -> Schema {
        let mut types = Vec::new();
        if let Some(input) = &file.input {
            for (name, ty) in &input.value {
                let path = format!("input.{name}");
                let (text, optional) = match ty.value.trim().strip_suffix('?') {
                    Some(t) => (t.trim(), true),
                    None => (ty.value.trim(), false),
                };
                let parsed = match text {
                    "list" => Ok(Type::List(Box::new(Type::Any))),
                    "object" => Ok(Type::Object(Arc::default())),
                    text => Type::parse(text),
                };
                // a field of an unknown type is still declared: read as `any`
                let ty = parsed.unwrap_or_else(|(message, help)| {
                    self.error_help("S021", &ty.referenced, &path, message, help);
                    Type::Any
                });
                types.push(FieldType {
                    name: name.clone(),
                    ty,
                    optional,
                });
            }
        }
        let root = ObjectType { fields: types };
        if file.input.is_some() {
            self.input = Some(Arc::new(root.clone()));
        }
        Schema { root }
    }

    fn duration(&mut self, d: &Spanned<String>, path: &str, zero_ok: bool) -> Option<Duration> {
        match parse_duration(&d.value) {
            Some(v) if v > MAX_DURATION => {
                self.error(
                    "S015",
                    &d.referenced,
                    path,
                    format!("duration `{}` is longer than 30 days", d.value),
                );
                None
            }
            Some(v) if v.is_zero() && !zero_ok => {
                self.error(
                    "S015",
                    &d.referenced,
                    path,
                    "duration must be more than zero".into(),
                );
                None
            }
            Some(v) => Some(v),
            None => {
                self.error_help(
                    "S015",
                    &d.referenced,
                    path,
                    format!("invalid duration `{}`", d.value),
                    Some(
                        "write a whole number and a unit: `250ms`, `10s`, `5m`, `2h`, `1d`".into(),
                    ),
                );
                None
            }
        }
    }

    fn retry(
        &mut self,
        r: &Spanned<RetryFile>,
        path: &str,
        default: RetryPolicy,
    ) -> Option<RetryPolicy> {
        let mut p = default;
        let mut ok = true;
        let r = &r.value;
        if let Some(m) = &r.max_attempts {
            let mpath = format!("{path}.max_attempts");
            match &m.value {
                Template::Int(n) if *n >= 1 && *n <= 1_000_000 => {
                    p.max_attempts = u32::try_from(*n).ok();
                }
                Template::Expr(s) if s == "unlimited" => p.max_attempts = None,
                Template::Int(_) => {
                    self.error(
                        "S016",
                        &m.referenced,
                        &mpath,
                        "max_attempts must be between 1 and 1000000".into(),
                    );
                    ok = false;
                }
                _ => {
                    self.error_help(
                        "S016",
                        &m.referenced,
                        &mpath,
                        "max_attempts must be a number or `unlimited`".into(),
                        None,
                    );
                    ok = false;
                }
            }
        }
        if let Some(d) = &r.initial_backoff {
            match self.duration(d, &format!("{path}.initial_backoff"), true) {
                Some(v) => p.initial_backoff = v,
                None => ok = false,
            }
        }
        if let Some(d) = &r.max_backoff {
            match self.duration(d, &format!("{path}.max_backoff"), true) {
                Some(v) => p.max_backoff = v,
                None => ok = false,
            }
        }
        if r.max_backoff.is_some() && p.max_backoff < p.initial_backoff {
            if let Some(d) = &r.max_backoff {
                self.error(
                    "S016",
                    &d.referenced,
                    &format!("{path}.max_backoff"),
                    "max_backoff is shorter than initial_backoff".into(),
                );
                ok = false;
            }
        } else if p.max_backoff < p.initial_backoff {
            p.max_backoff = p.initial_backoff;
        }
        if let Some(m) = &r.multiplier {
            if !(m.value.is_finite() && (1.0..=100.0).contains(&m.value)) {
                self.error(
                    "S016",
                    &m.referenced,
                    &format!("{path}.multiplier"),
                    "multiplier must be between 1 and 100".into(),
                );
                ok = false;
            } else {
                p.multiplier = m.value;
            }
        }
        if let Some(j) = &r.jitter {
            if !(j.value.is_finite() && (0.0..=1.0).contains(&j.value)) {
                self.error(
                    "S016",
                    &j.referenced,
                    &format!("{path}.jitter"),
                    "jitter must be between 0 and 1".into(),
                );
                ok = false;
            } else {
                p.jitter = j.value;
            }
        }
        ok.then_some(p)
    }

    fn step(
        &mut self,
        i: usize,
        s: &StepFile,
        pivot: Option<usize>,
        all: &[Spanned<StepFile>],
    ) -> Option<Step> {
        let base = format!("steps[{i}]");
        let scope = Scope::step(i);
        let when = s
            .when
            .as_ref()
            .and_then(|w| self.expr(w, &format!("{base}.when"), scope));
        let retry = match &s.retry {
            Some(r) => self.retry(r, &format!("{base}.retry"), RetryPolicy::once()),
            None => Some(RetryPolicy::once()),
        };
        let timeout = s
            .timeout
            .as_ref()
            .and_then(|t| self.duration(t, &format!("{base}.timeout"), false));
        let action = self.action(&s.action, &format!("{base}.action"), scope);
        let comp_scope = Scope {
            own_output: true,
            ..scope
        };
        let compensate = s
            .compensate
            .as_ref()
            .map(|c| self.action(c, &format!("{base}.compensate"), comp_scope));
        let outputs = s.outputs.as_ref().map(|o| {
            let mut out = Vec::new();
            for (name, t) in &o.value {
                let path = format!("{base}.outputs.{name}");
                if !is_ident(name) {
                    self.error(
                        "S022",
                        &t.referenced,
                        &path,
                        format!("output name `{name}` must be letters, digits and `_`"),
                    );
                }
                let scope = Scope {
                    result: true,
                    ..scope
                };
                if let Some(v) = self.template(t, &path, scope) {
                    out.push((name.clone(), v));
                }
            }
            out
        });
        let require = s.require.as_ref().and_then(|r| {
            let path = format!("{base}.require");
            let rule = self.rule(&r.value.rule, &format!("{path}.rule"));
            let entity = match &r.value.entity {
                Some(e) => {
                    let epath = format!("{path}.entity");
                    self.repo(&e.value.repo, &format!("{epath}.repo"));
                    let id = self.template(&e.value.id, &format!("{epath}.id"), scope);
                    Some(EntityRef {
                        repo: e.value.repo.value.clone(),
                        id: id?,
                    })
                }
                None => None,
            };
            Some(Require {
                rule: rule?,
                entity,
            })
        });

        // How the step is undone.
        let name = s.name.value.as_str();
        let is_pivot = s.pivot.as_ref().is_some_and(|p| p.value);
        let undo = match pivot {
            Some(p) if i > p => {
                let pivot_name = all.get(p).map_or("", |f| f.value.name.value.as_str());
                if let Some(c) = &s.compensate {
                    self.error(
                        "S019",
                        &c.referenced,
                        &format!("{base}.compensate"),
                        format!("step `{name}` comes after the pivot `{pivot_name}`, so it is never compensated"),
                    );
                }
                let unlimited = retry.as_ref().is_some_and(|r| r.max_attempts.is_none());
                if !unlimited {
                    let loc = s
                        .retry
                        .as_ref()
                        .map_or(&s.name.referenced, |r| &r.referenced);
                    self.error_help(
                        "S019",
                        loc,
                        &format!("{base}.retry"),
                        format!("step `{name}` comes after the pivot `{pivot_name}` and must be retried to completion"),
                        Some("set `retry: {max_attempts: unlimited}`".into()),
                    );
                }
                if let Some(r) = &s.require {
                    self.error(
                        "S019",
                        &r.referenced,
                        &format!("{base}.require"),
                        format!("step `{name}` comes after the pivot `{pivot_name}`, so it cannot have a guard that may fail"),
                    );
                }
                Some(Undo::AfterPivot)
            }
            Some(p) if i == p => {
                if let Some(c) = &s.compensate {
                    self.error(
                        "S018",
                        &c.referenced,
                        &format!("{base}.compensate"),
                        format!("the pivot `{name}` is never compensated"),
                    );
                }
                Some(Undo::Pivot)
            }
            _ => {
                let _ = is_pivot;
                match (&compensate, &s.compensation) {
                    (Some(_), Some(c)) => {
                        self.error(
                            "S018",
                            &c.referenced,
                            &format!("{base}.compensation"),
                            "a step has either `compensate` or `compensation: none`, not both"
                                .into(),
                        );
                        None
                    }
                    (Some(Some(action)), None) => Some(Undo::Compensate(Box::new(action.clone()))),
                    (Some(None), None) => None,
                    (None, Some(c)) if c.value == "none" => Some(Undo::Nothing),
                    (None, Some(c)) => {
                        self.error_help(
                            "S018",
                            &c.referenced,
                            &format!("{base}.compensation"),
                            format!("unknown compensation `{}`", c.value),
                            Some("write `compensation: none`, or a `compensate:` action".into()),
                        );
                        None
                    }
                    (None, None) => match &action {
                        Some(a) if a.is_read_only() => Some(Undo::Nothing),
                        Some(a) => {
                            self.error_help(
                                "S018",
                                &s.name.referenced,
                                &base,
                                format!(
                                    "step `{name}` ({}) does not say how it is undone",
                                    a.summary()
                                ),
                                Some(
                                    "add `compensate:`, `compensation: none` or `pivot: true`"
                                        .into(),
                                ),
                            );
                            None
                        }
                        None => None,
                    },
                }
            }
        };
        Some(Step {
            name: name.into(),
            action: action?,
            undo: undo?,
            when,
            retry: retry?,
            timeout,
            outputs: outputs.unwrap_or_default(),
            require,
        })
    }

    fn repo(&mut self, r: &Spanned<String>, path: &str) {
        let Some(repos) = &self.catalog.repositories else {
            return;
        };
        if !repos.contains(&r.value) {
            let help = did_you_mean(&r.value, repos.iter().map(String::as_str))
                .or_else(|| Some(format!("the store has {}", list_names(repos))));
            self.error_help(
                "S012",
                &r.referenced,
                path,
                format!("unknown repository `{}`", r.value),
                help,
            );
        }
    }

    fn rule(&mut self, r: &Spanned<String>, path: &str) -> Option<RuleRef> {
        let Some(rules) = &self.catalog.rules else {
            self.error_help(
                "S020",
                &r.referenced,
                path,
                format!("unknown rule `{}`", r.value),
                Some("no rule files were given: pass them with `--rules FILE`".into()),
            );
            return None;
        };
        match rules.rule(&r.value) {
            Some(program) => Some(RuleRef {
                name: r.value.clone(),
                program,
            }),
            None => {
                let names = rules.names();
                let help = did_you_mean(&r.value, names.iter().map(String::as_str));
                self.error_help(
                    "S020",
                    &r.referenced,
                    path,
                    format!("unknown rule `{}`", r.value),
                    help,
                );
                None
            }
        }
    }
}

fn quoted(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn list_names(names: &[String]) -> String {
    if names.is_empty() {
        return "none".to_string();
    }
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `250ms`, `10s`, `5m`, `2h`, `1d`, `2w`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let t = text.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = t.split_at(digits);
    let n: u64 = n.parse().ok()?;
    let ms_per = match unit {
        "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 604_800_000,
        _ => return None,
    };
    Some(Duration::from_millis(n.checked_mul(ms_per)?))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_duration("2 h"), None);
        assert_eq!(parse_duration("h"), None);
        assert_eq!(parse_duration("99999999999999999999s"), None);
    }
}
