//! Step two: a [`SagaFile`] becomes a [`Saga`], or every problem is reported.
//!
//! Each diagnostic points at the YAML value (file, line, column) and carries the
//! YAML path (`steps[2].retry.max_attempts`) as its label.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use regex::Regex;
use serde_saphyr::{Location, Spanned};
use sha2::{Digest, Sha256};

use super::file::{ActionFile, RetryFile, SagaFile, StepFile, Template};
use super::handlers::HandlerRegistry;
use super::model::{
    Action, Compiled, EntityRef, Expr, Filter, InputField, InputType, Path, PathSegment, Require,
    RetryPolicy, RuleRef, Saga, Step, Undo, ValueExpr,
};
use crate::diag::{Diagnostic, Diagnostics, Source, Span, did_you_mean};
use crate::rules::{Env, Program, RuleSet};

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
        input_fields: file
            .input
            .as_ref()
            .map(|i| i.value.keys().cloned().collect()),
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

/// Hex SHA-256 of a text.
pub fn definition_hash(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn yaml_options() -> serde_saphyr::Options {
    let mut options = serde_saphyr::Options::default();
    let mut budget = serde_saphyr::Budget::default();
    budget.max_depth = 32;
    budget.max_aliases = 256;
    budget.max_anchors = 256;
    budget.max_nodes = 100_000;
    budget.max_total_scalar_bytes = MAX_FILE_BYTES;
    budget.max_documents = 1;
    options.budget = Some(budget);
    options.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::Error;
    options.with_snippet = false;
    options
}

fn parse_yaml(source: &Source) -> Result<SagaFile, Diagnostic> {
    let err = match serde_saphyr::from_str_with_options::<SagaFile>(&source.text, yaml_options()) {
        Ok(file) => return Ok(file),
        Err(err) => err,
    };
    let span = err
        .location()
        .map_or(Span::new(0, 0), |loc| location_span(source, &loc));
    let path = yaml_path_at(&source.text, span.start as usize);
    let d = match &err {
        serde_saphyr::Error::SerdeUnknownField {
            field, expected, ..
        } => Diagnostic::error("S002", span, format!("unknown key `{field}`"))
            .with_help_opt(did_you_mean(field, expected.iter().copied())),
        serde_saphyr::Error::DuplicateMappingKey { key, .. } => Diagnostic::error(
            "S003",
            span,
            match key {
                Some(k) => format!("duplicate key `{k}`"),
                None => "duplicate key".to_string(),
            },
        ),
        serde_saphyr::Error::SerdeMissingField { field, .. } => {
            Diagnostic::error("S004", span, format!("missing key `{field}`"))
        }
        other => Diagnostic::error("S001", span, clean_message(&other.to_string())),
    };
    Err(d.with_label(path))
}

/// serde-saphyr messages, in house style: first letter lowercase, no position suffix.
fn clean_message(m: &str) -> String {
    let first_line = m.lines().next().unwrap_or("invalid yaml");
    let trimmed = match first_line.find(" at line ") {
        Some(i) => &first_line[..i],
        None => first_line,
    };
    let trimmed = trimmed.trim_end_matches('.');
    let mut chars = trimmed.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().collect::<String>() + chars.as_str(),
        None => "invalid yaml".to_string(),
    }
}

/// The byte span of a YAML location.
fn location_span(source: &Source, loc: &Location) -> Span {
    let span = loc.span();
    if let (Some(off), Some(len)) = (span.byte_offset(), span.byte_len()) {
        let start = usize::try_from(off)
            .unwrap_or(usize::MAX)
            .min(source.text.len());
        let end = start
            .saturating_add(usize::try_from(len).unwrap_or(0))
            .min(source.text.len());
        return Span::new(start, end);
    }
    // Fall back to line and column (characters, 1-based).
    let line = usize::try_from(loc.line()).unwrap_or(0);
    let col = usize::try_from(loc.column()).unwrap_or(0);
    let mut offset = 0;
    for (i, l) in source.text.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            let in_line: usize = l
                .chars()
                .take(col.saturating_sub(1))
                .map(char::len_utf8)
                .sum();
            return Span::new(offset + in_line, offset + in_line);
        }
        offset += l.len();
    }
    Span::new(offset, offset)
}

/// The YAML path of the block-style node at a byte offset (`steps[1].retry`), found
/// from indentation: good for the block style saga files use.
pub fn yaml_path_at(text: &str, offset: usize) -> String {
    // Stack of (indent, segment, is_sequence_item).
    let mut stack: Vec<(usize, String)> = Vec::new();
    let mut seq_counters: HashMap<(usize, usize), usize> = HashMap::new();
    let mut line_start = 0;
    for line in text.split_inclusive('\n') {
        if line_start > offset {
            break;
        }
        let content = line.trim_end_matches(['\n', '\r']);
        let mut indent = content.len() - content.trim_start().len();
        let mut rest = content.trim_start();
        if rest.is_empty() || rest.starts_with('#') {
            line_start += line.len();
            continue;
        }
        let cut_at = offset.saturating_sub(line_start);
        // Sequence items: `- ` (possibly several on one line).
        while rest.starts_with("- ") || rest == "-" {
            if line_start + indent > offset {
                break;
            }
            stack.retain(|(i, _)| *i < indent);
            let parent_depth = stack.len();
            let counter = seq_counters.entry((parent_depth, indent)).or_insert(0);
            let idx = *counter;
            *counter += 1;
            // Reset counters of deeper sequences.
            seq_counters.retain(|(d, _), _| *d <= parent_depth);
            stack.push((indent, format!("[{idx}]")));
            let after = rest.get(1..).unwrap_or("");
            let spaces = after.len() - after.trim_start().len();
            indent += 1 + spaces;
            rest = after.trim_start();
        }
        if let Some(colon) = key_colon(rest) {
            if line_start + indent <= offset || cut_at >= indent {
                let key = rest[..colon].trim().trim_matches(['"', '\'']).to_string();
                stack.retain(|(i, _)| *i < indent);
                let depth = stack.len();
                seq_counters.retain(|(d, _), _| *d <= depth);
                stack.push((indent, key));
            }
        }
        line_start += line.len();
    }
    let mut out = String::new();
    for (_, seg) in &stack {
        if seg.starts_with('[') || out.is_empty() {
            out.push_str(seg);
        } else {
            out.push('.');
            out.push_str(seg);
        }
    }
    out
}

/// Position of the `:` ending a mapping key at the start of `rest`.
fn key_colon(rest: &str) -> Option<usize> {
    if rest.starts_with(['"', '\'', '{', '[', '|', '>']) {
        return None;
    }
    let i = rest.find(':')?;
    let after = rest.get(i + 1..).unwrap_or("");
    (after.is_empty() || after.starts_with([' ', '\t'])).then_some(i)
}

static IDENT: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z_][A-Za-z0-9_]*$").ok());
static PATH: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*|\[[0-9]{1,9}\])*$").ok()
});
static INPUT_REF: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"(?:^|[^A-Za-z0-9_.$])input\.([A-Za-z_][A-Za-z0-9_]*)").ok());
static STEP_REF: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(
        r"(?:^|[^A-Za-z0-9_.$])steps\.([A-Za-z_][A-Za-z0-9_]*)(?:\.([A-Za-z_][A-Za-z0-9_]*))?",
    )
    .ok()
});

fn is_ident(s: &str) -> bool {
    IDENT.as_ref().is_some_and(|r| r.is_match(s))
}

const KEYWORDS: [&str; 9] = [
    "true", "false", "null", "and", "or", "not", "in", "between", "is",
];

/// Where an expression stands: which names it may read.
#[derive(Clone, Copy)]
struct Scope<'r> {
    /// Index of the step (references must point earlier).
    step_idx: usize,
    /// May read its own step's output (compensations).
    own_output: bool,
    /// Root names a plain path may start with.
    roots: &'r [&'r str],
}

const ROOTS: &[&str] = &["input", "steps"];
const ROOTS_ENTITY: &[&str] = &["input", "steps", "entity"];
const ROOTS_RESULT: &[&str] = &["input", "steps", "result"];

struct Validator<'c> {
    source: Arc<Source>,
    catalog: &'c Catalog,
    diags: Vec<Diagnostic>,
    /// Step name → index.
    step_names: HashMap<String, usize>,
    /// Declared output names per step (`None`: the action's result).
    step_outputs: Vec<Option<Vec<String>>>,
    /// Declared input fields (`None`: no schema, not checked).
    input_fields: Option<Vec<String>>,
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
            } else {
                self.step_names.insert(n.to_string(), i);
            }
            self.step_outputs.push(
                s.outputs
                    .as_ref()
                    .map(|o| o.value.keys().cloned().collect()),
            );
            if let Some(p) = &s.pivot {
                if p.value {
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
            steps,
            pivot,
        })
    }

    fn input_schema(&mut self, file: &SagaFile) -> Vec<InputField> {
        let mut fields = Vec::new();
        let Some(input) = &file.input else {
            return fields;
        };
        for (name, ty) in &input.value {
            let path = format!("input.{name}");
            let (ty_name, optional) = match ty.value.trim().strip_suffix('?') {
                Some(t) => (t.trim(), true),
                None => (ty.value.trim(), false),
            };
            match InputType::parse(ty_name) {
                Some(t) => fields.push(InputField {
                    name: name.clone(),
                    ty: t,
                    optional,
                }),
                None => {
                    let help = did_you_mean(ty_name, InputType::NAMES)
                        .or_else(|| Some(format!("types are {}", InputType::NAMES.join(", "))));
                    self.error_help(
                        "S021",
                        &ty.referenced,
                        &path,
                        format!("unknown type `{ty_name}`"),
                        help,
                    );
                }
            }
        }
        fields
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
        let scope = Scope {
            step_idx: i,
            own_output: false,
            roots: ROOTS,
        };
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
                    roots: ROOTS_RESULT,
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
            name: name.to_string(),
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

    fn action(&mut self, a: &Spanned<ActionFile>, path: &str, scope: Scope<'_>) -> Option<Action> {
        let f = &a.value;
        let verbs: Vec<(&str, Option<&Spanned<String>>)> = vec![
            ("handler", f.handler.as_ref()),
            ("get", f.get.as_ref()),
            ("insert", f.insert.as_ref()),
            ("update", f.update.as_ref()),
            ("delete", f.delete.as_ref()),
            ("find", f.find.as_ref()),
        ];
        let mut present: Vec<(&str, Option<&Spanned<String>>)> =
            verbs.into_iter().filter(|(_, v)| v.is_some()).collect();
        if f.noop.as_ref().is_some_and(|n| n.value) {
            present.push(("noop", None));
        }
        let (verb, target) = match present.as_slice() {
            [one] => *one,
            [] => {
                self.error_help(
                    "S022",
                    &a.referenced,
                    path,
                    "an action needs one of `handler`, `get`, `insert`, `update`, `delete`, `find`, `noop`".into(),
                    None,
                );
                return None;
            }
            [first, second, ..] => {
                self.error(
                    "S022",
                    &a.referenced,
                    path,
                    format!(
                        "an action does one thing, found `{}` and `{}`",
                        first.0, second.0
                    ),
                );
                return None;
            }
        };
        // Keys that do not belong to the verb.
        let allowed: &[&str] = match verb {
            "handler" => &["args"],
            "get" => &["id"],
            "insert" => &["id", "values"],
            "update" => &["id", "values", "expect"],
            "delete" => &["id", "expect"],
            "find" => &["where", "rule"],
            _ => &[],
        };
        let extras: [(&str, Option<&Location>); 6] = [
            ("args", f.args.as_ref().map(|x| &x.referenced)),
            ("id", f.id.as_ref().map(|x| &x.referenced)),
            ("values", f.values.as_ref().map(|x| &x.referenced)),
            ("expect", f.expect.as_ref().map(|x| &x.referenced)),
            ("where", f.where_.as_ref().map(|x| &x.referenced)),
            ("rule", f.rule.as_ref().map(|x| &x.referenced)),
        ];
        let mut ok = true;
        for (key, loc) in extras {
            if let Some(loc) = loc {
                if !allowed.contains(&key) {
                    self.error(
                        "S022",
                        loc,
                        &format!("{path}.{key}"),
                        format!("`{key}` does not apply to `{verb}`"),
                    );
                    ok = false;
                }
            }
        }
        let need = |v: &mut Self, key: &str, present: bool| {
            if !present {
                v.error(
                    "S022",
                    &a.referenced,
                    path,
                    format!("`{verb}` needs `{key}`"),
                );
            }
            present
        };
        let target_name = target.map(|t| t.value.clone()).unwrap_or_default();
        if let Some(t) = target {
            if verb == "handler" {
                if !self.catalog.handlers.contains(&t.value) {
                    let help =
                        did_you_mean(&t.value, self.catalog.handlers.iter().map(String::as_str))
                            .or_else(|| {
                                Some(format!(
                                    "registered handlers: {}",
                                    list_names(&self.catalog.handlers)
                                ))
                            });
                    self.error_help(
                        "S011",
                        &t.referenced,
                        &format!("{path}.handler"),
                        format!("unknown handler `{}`", t.value),
                        help,
                    );
                    ok = false;
                }
            } else {
                self.repo(t, &format!("{path}.{verb}"));
            }
        }
        let entity_scope = Scope {
            roots: ROOTS_ENTITY,
            ..scope
        };
        let id = match &f.id {
            Some(id) if allowed.contains(&"id") => self.template(id, &format!("{path}.id"), scope),
            _ => None,
        };
        let values_scope = if verb == "update" {
            entity_scope
        } else {
            scope
        };
        let values = match &f.values {
            Some(v) if allowed.contains(&"values") => {
                if !matches!(v.value, Template::Map(_)) {
                    self.error(
                        "S022",
                        &v.referenced,
                        &format!("{path}.values"),
                        "`values` must be a map of field names to values".into(),
                    );
                    None
                } else {
                    self.template(v, &format!("{path}.values"), values_scope)
                }
            }
            _ => None,
        };
        let expect = match &f.expect {
            Some(e) if allowed.contains(&"expect") => {
                self.expr(e, &format!("{path}.expect"), entity_scope)
            }
            _ => None,
        };
        let action = match verb {
            "noop" => Some(Action::Noop),
            "handler" => {
                let args = match &f.args {
                    Some(a) => self.template(a, &format!("{path}.args"), scope),
                    None => Some(ValueExpr::Const(serde_json::Value::Null)),
                };
                Some(Action::Handler {
                    name: target_name,
                    args: args?,
                })
            }
            "get" => {
                let has = need(self, "id", f.id.is_some());
                has.then_some(()).and(id).map(|id| Action::Get {
                    repo: target_name,
                    id,
                })
            }
            "insert" => {
                let has_id = need(self, "id", f.id.is_some());
                let has_values = need(self, "values", f.values.is_some());
                match (has_id && has_values, id, values) {
                    (true, Some(id), Some(values)) => Some(Action::Insert {
                        repo: target_name,
                        id,
                        values,
                    }),
                    _ => None,
                }
            }
            "update" => {
                let has_id = need(self, "id", f.id.is_some());
                let has_values = need(self, "values", f.values.is_some());
                match (has_id && has_values, id, values) {
                    (true, Some(id), Some(values)) => Some(Action::Update {
                        repo: target_name,
                        id,
                        values,
                        expect,
                    }),
                    _ => None,
                }
            }
            "delete" => {
                let has = need(self, "id", f.id.is_some());
                has.then_some(()).and(id).map(|id| Action::Delete {
                    repo: target_name,
                    id,
                    expect,
                })
            }
            "find" => {
                let filter = match (&f.where_, &f.rule) {
                    (Some(_), Some(r)) => {
                        self.error(
                            "S022",
                            &r.referenced,
                            &format!("{path}.rule"),
                            "`find` takes `where` or `rule`, not both".into(),
                        );
                        None
                    }
                    (Some(w), None) => {
                        // `where` reads each entity's own fields: no root check.
                        let any_scope = Scope {
                            roots: &[],
                            ..scope
                        };
                        self.expr(w, &format!("{path}.where"), any_scope)
                            .map(Filter::Where)
                    }
                    (None, Some(r)) => self.rule(r, &format!("{path}.rule")).map(Filter::Rule),
                    (None, None) => Some(Filter::All),
                };
                filter.map(|filter| Action::Find {
                    repo: target_name,
                    filter,
                })
            }
            _ => None,
        };
        if ok { action } else { None }
    }

    /// Check `steps.NAME[.OUTPUT]` references in an expression text.
    fn step_refs(&mut self, text: &str, loc: &Location, path: &str, scope: Scope<'_>) -> bool {
        let mut ok = true;
        if let (Some(fields), Some(re)) = (self.input_fields.clone(), INPUT_REF.as_ref()) {
            let unknown: Vec<String> = re
                .captures_iter(text)
                .filter_map(|c| c.get(1).map(|m| m.as_str().to_string()))
                .filter(|f| !fields.contains(f))
                .collect();
            for field in unknown {
                let help = did_you_mean(&field, fields.iter().map(String::as_str))
                    .or_else(|| Some(format!("the input declares {}", list_names(&fields))));
                self.error_help(
                    "S014",
                    loc,
                    path,
                    format!("the input has no field `{field}`"),
                    help,
                );
                ok = false;
            }
        }
        let Some(re) = STEP_REF.as_ref() else {
            return ok;
        };
        let refs: Vec<(String, Option<String>)> = re
            .captures_iter(text)
            .filter_map(|c| {
                Some((
                    c.get(1)?.as_str().to_string(),
                    c.get(2).map(|m| m.as_str().to_string()),
                ))
            })
            .collect();
        for (name, output) in refs {
            match self.step_names.get(&name).copied() {
                None => {
                    let help = did_you_mean(&name, self.step_names.keys().map(String::as_str));
                    self.error_help("S014", loc, path, format!("unknown step `{name}`"), help);
                    ok = false;
                }
                Some(j) if j > scope.step_idx || (j == scope.step_idx && !scope.own_output) => {
                    let msg = if j == scope.step_idx {
                        format!("step `{name}` cannot read its own output here")
                    } else {
                        format!("step `{name}` runs later, so its output is not available here")
                    };
                    let help = (j == scope.step_idx && scope.roots.contains(&"result"))
                        .then(|| "in `outputs`, the action's result is `result`".to_string());
                    self.error_help("S014", loc, path, msg, help);
                    ok = false;
                }
                Some(j) => {
                    if let (Some(out), Some(Some(declared))) = (&output, self.step_outputs.get(j)) {
                        if !declared.iter().any(|d| d == out) {
                            let help = did_you_mean(out, declared.iter().map(String::as_str))
                                .or_else(|| {
                                    Some(format!("its outputs are {}", list_names(declared)))
                                });
                            let declared_msg = format!("step `{name}` has no output `{out}`");
                            self.error_help("S014", loc, path, declared_msg, help);
                            ok = false;
                        }
                    }
                }
            }
        }
        ok
    }

    /// Compile a condition or value expression.
    fn expr(&mut self, s: &Spanned<String>, path: &str, scope: Scope<'_>) -> Option<Expr> {
        let text = s.value.as_str();
        if text.len() > MAX_EXPR_BYTES {
            self.error(
                "S017",
                &s.referenced,
                path,
                format!("expression is longer than {MAX_EXPR_BYTES} bytes"),
            );
            return None;
        }
        if text.trim().is_empty() {
            self.error("S013", &s.referenced, path, "empty expression".into());
            return None;
        }
        // A bare name that is not a root is almost always a literal string by mistake.
        if !scope.roots.is_empty()
            && is_path(text)
            && !self.path_root_ok(text, &s.referenced, path, scope)
        {
            return None;
        }
        if !self.step_refs(text, &s.referenced, path, scope) {
            return None;
        }
        if is_path(text) && !KEYWORDS.contains(&text) {
            return Some(Expr {
                text: text.to_string(),
                compiled: Compiled::Path(parse_path(text)),
            });
        }
        let (line, col) = self.source.line_col(self.span(&s.referenced).start);
        let name = format!("{}:{line}:{col} ({path})", self.source.name);
        match Program::compile(Source::new(name, text), &self.catalog.env) {
            Ok(program) => Some(Expr {
                text: text.to_string(),
                compiled: Compiled::Program(program),
            }),
            Err(diags) => {
                for d in diags
                    .items
                    .iter()
                    .filter(|d| d.severity == crate::diag::Severity::Error)
                {
                    let help = d.help.clone();
                    self.error_help(
                        "S013",
                        &s.referenced,
                        path,
                        format!("invalid expression: {}", d.message),
                        help,
                    );
                }
                None
            }
        }
    }

    fn path_root_ok(&mut self, text: &str, loc: &Location, path: &str, scope: Scope<'_>) -> bool {
        let root = text.split(['.', '[']).next().unwrap_or("");
        if KEYWORDS.contains(&root) && !text.contains(['.', '[']) || scope.roots.contains(&root) {
            return true;
        }
        let help = did_you_mean(root, scope.roots.iter().copied()).or_else(|| {
            if text.contains(['.', '[']) {
                Some(format!("expressions here read {}", quoted(scope.roots)))
            } else {
                Some(format!("for the literal string, write '\"{text}\"'"))
            }
        });
        self.error_help("S013", loc, path, format!("unknown name `{root}`"), help);
        false
    }

    fn template(
        &mut self,
        t: &Spanned<Template>,
        path: &str,
        scope: Scope<'_>,
    ) -> Option<ValueExpr> {
        use serde_json::Value as Json;
        match &t.value {
            Template::Null => Some(ValueExpr::Const(Json::Null)),
            Template::Bool(b) => Some(ValueExpr::Const(Json::Bool(*b))),
            Template::Int(i) => Some(ValueExpr::Const(Json::from(*i))),
            Template::Float(f) => Some(ValueExpr::Const(
                serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
            )),
            Template::Expr(text) => {
                if let Some(lit) = string_literal(text) {
                    return Some(ValueExpr::Const(Json::String(lit)));
                }
                if is_path(text) && !KEYWORDS.contains(&text.as_str()) {
                    if text.len() > MAX_EXPR_BYTES {
                        self.error(
                            "S017",
                            &t.referenced,
                            path,
                            format!("expression is longer than {MAX_EXPR_BYTES} bytes"),
                        );
                        return None;
                    }
                    let ok_root = self.path_root_ok(text, &t.referenced, path, scope);
                    let ok_refs = self.step_refs(text, &t.referenced, path, scope);
                    return (ok_root && ok_refs).then(|| ValueExpr::Path(parse_path(text)));
                }
                let spanned = Spanned::new(text.clone(), t.referenced, t.defined);
                self.expr(&spanned, path, scope).map(ValueExpr::Expr)
            }
            Template::List(items) => {
                let mut out = Vec::new();
                let mut ok = true;
                for (i, item) in items.iter().enumerate() {
                    match self.template(item, &format!("{path}[{i}]"), scope) {
                        Some(v) => out.push(v),
                        None => ok = false,
                    }
                }
                ok.then_some(ValueExpr::List(out))
            }
            Template::Map(items) => {
                let mut out = Vec::new();
                let mut ok = true;
                for (k, item) in items {
                    match self.template(item, &format!("{path}.{k}"), scope) {
                        Some(v) => out.push((k.clone(), v)),
                        None => ok = false,
                    }
                }
                ok.then_some(ValueExpr::Map(out))
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

fn is_path(text: &str) -> bool {
    PATH.as_ref().is_some_and(|r| r.is_match(text))
}

fn parse_path(text: &str) -> Path {
    let mut segments = Vec::new();
    for part in text.split('.') {
        let mut rest = part;
        if let Some(i) = rest.find('[') {
            segments.push(PathSegment::Field(rest[..i].to_string()));
            rest = &rest[i..];
            while let Some(stripped) = rest.strip_prefix('[') {
                let end = stripped.find(']').unwrap_or(stripped.len());
                let n = stripped[..end].parse().unwrap_or(usize::MAX);
                segments.push(PathSegment::Index(n));
                rest = stripped.get(end + 1..).unwrap_or("");
            }
        } else {
            segments.push(PathSegment::Field(rest.to_string()));
        }
    }
    Path {
        text: text.to_string(),
        segments,
    }
}

/// `"text"` or `'text'` as a whole: a literal string of the rules language.
fn string_literal(text: &str) -> Option<String> {
    let t = text.trim();
    if t.len() >= 2 && t.starts_with('"') && t.ends_with('"') {
        if let Ok(serde_json::Value::String(s)) = serde_json::from_str(t) {
            return Some(s);
        }
    }
    if t.len() >= 2 && t.starts_with('\'') && t.ends_with('\'') {
        let inner = &t[1..t.len() - 1];
        if !inner.contains(['\'', '\\']) {
            return Some(inner.to_string());
        }
    }
    None
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

    #[test]
    fn literals_and_paths() {
        assert_eq!(string_literal(r#""pending""#).as_deref(), Some("pending"));
        assert_eq!(string_literal("'pending'").as_deref(), Some("pending"));
        assert_eq!(string_literal("pending"), None);
        assert!(is_path("steps.create_order.items[0].sku"));
        assert!(!is_path("total * 2"));
        assert_eq!(
            parse_path("a.b[2]").segments,
            vec![
                PathSegment::Field("a".into()),
                PathSegment::Field("b".into()),
                PathSegment::Index(2)
            ]
        );
    }

    #[test]
    fn yaml_paths_from_indentation() {
        let text = "saga: x\nsteps:\n  - name: a\n    action: {noop: true}\n  - name: b\n    retry:\n      max_attempts: 0\n";
        let at = text.find("0\n").unwrap();
        assert_eq!(yaml_path_at(text, at), "steps[1].retry.max_attempts");
        let at = text.find("name: a").unwrap();
        assert_eq!(yaml_path_at(text, at), "steps[0].name");
    }
}
