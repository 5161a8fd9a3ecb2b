//! Step three: the validated saga the runner executes.
//!
//! Built only by `validate` from a [`crate::saga::file::SagaFile`]: names are
//! resolved, expressions compiled, durations parsed, and the undo plan checked.

use std::sync::Arc;
use std::time::Duration;

use serde::{Serialize, Serializer};
use serde_json::Value as Json;

use crate::diag::Source;
use crate::rules::{Context, EvalError, FieldType, Program, Schema};
use crate::saga::events::StepName;
use crate::value::{FieldRef, Record, Value, json_value};

/// A validated saga.
#[derive(Clone, Debug, Serialize)]
pub struct Saga {
    /// Name.
    pub(crate) name: String,
    /// Version.
    pub(crate) version: Option<u32>,
    /// Free text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) description: Option<String>,
    /// SHA-256 of the definition text, hex.
    pub(crate) definition_hash: String,
    /// The definition text, pinned by the run (kept for recovery).
    #[serde(skip)]
    pub(crate) source: Arc<Source>,
    /// Input schema: the rules language's types, checked all the way down.
    #[serde(serialize_with = "ser_input")]
    pub(crate) input: Schema,
    /// Deadline of the whole saga.
    #[serde(serialize_with = "ser_opt_duration")]
    pub(crate) deadline: Option<Duration>,
    /// Retry policy of every compensation.
    pub(crate) compensation_retry: RetryPolicy,
    /// The HTTP services the steps call.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) services: Vec<Service>,
    /// The steps, in order.
    pub(crate) steps: Vec<Step>,
    /// Index of the pivot step.
    pub(crate) pivot: Option<usize>,
    /// The rule files the saga was validated with (pinned with it when it starts).
    #[serde(skip)]
    pub(crate) rule_files: Vec<RuleText>,
}

/// A rule file a saga was validated with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleText {
    /// Its name (the path it was read from).
    pub name: String,
    /// SHA-256 of the text, hex.
    pub hash: String,
    /// The text.
    pub text: String,
}

impl Saga {
    /// The saga's name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Its version, when it declares one.
    pub fn version(&self) -> Option<u32> {
        self.version
    }
    /// Its description.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }
    /// SHA-256 of the definition text, hex.
    pub fn definition_hash(&self) -> &str {
        &self.definition_hash
    }
    /// The definition text.
    pub fn source(&self) -> &Arc<Source> {
        &self.source
    }
    /// The input schema's fields.
    pub fn input(&self) -> &[FieldType] {
        &self.input.root.fields
    }

    /// Check `input` against the input schema: the first bad value of each declared
    /// field, by its path (`input.loans[0].amount: expected number, found string
    /// "lots"`), or nothing when it fits. Fields not declared are not looked at.
    pub fn check_input(&self, input: &Json) -> Vec<String> {
        self.input_errors(input)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    /// [`Saga::check_input`] as data: each bad value's path and problem.
    pub fn input_errors(&self, input: &Json) -> Vec<crate::rules::SchemaError> {
        self.input.check_json_fields(input, "input")
    }
    /// The deadline of the whole saga, counted from its start.
    pub fn deadline(&self) -> Option<Duration> {
        self.deadline
    }
    /// The retry policy of every compensation.
    pub fn compensation_retry(&self) -> &RetryPolicy {
        &self.compensation_retry
    }
    /// The HTTP services the steps call.
    pub fn services(&self) -> &[Service] {
        &self.services
    }
    /// The service named `name`.
    pub fn service(&self, name: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.name == name)
    }
    /// The steps, in order.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }
    /// The step named `name`.
    pub fn step(&self, name: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.name == name)
    }
    /// Index of the pivot step.
    pub fn pivot(&self) -> Option<usize> {
        self.pivot
    }
    /// The rule files the saga was validated with.
    pub fn rule_files(&self) -> &[RuleText] {
        &self.rule_files
    }
}

/// One step.
#[derive(Clone, Debug, Serialize)]
pub struct Step {
    /// Unique name.
    pub(crate) name: StepName,
    /// What it does.
    pub(crate) action: Action,
    /// How it is undone.
    pub(crate) undo: Undo,
    /// Runs only when this holds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) when: Option<Expr>,
    /// Retry policy of the action.
    pub(crate) retry: RetryPolicy,
    /// Per-attempt timeout.
    #[serde(
        serialize_with = "ser_opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) timeout: Option<Duration>,
    /// Named outputs (empty: the output is the action's result).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) outputs: Vec<(String, ValueExpr)>,
    /// A rule that must hold before the action runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) require: Option<Require>,
}

impl Step {
    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// What it does.
    pub fn action(&self) -> &Action {
        &self.action
    }
    /// How it is undone.
    pub fn undo(&self) -> &Undo {
        &self.undo
    }
    /// Its condition.
    pub fn when(&self) -> Option<&Expr> {
        self.when.as_ref()
    }
    /// The retry policy of its action.
    pub fn retry(&self) -> &RetryPolicy {
        &self.retry
    }
    /// Its per-attempt timeout.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }
    /// Its named outputs (empty: the output is the action's result).
    pub fn outputs(&self) -> &[(String, ValueExpr)] {
        &self.outputs
    }
    /// Its guard.
    pub fn require(&self) -> Option<&Require> {
        self.require.as_ref()
    }
}

/// How a step is undone.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Undo {
    /// Run this action.
    Compensate(Box<Action>),
    /// Nothing to undo (read-only).
    Nothing,
    /// The pivot: once it succeeds, nothing is undone.
    Pivot,
    /// After the pivot: never undone (retried to completion instead).
    AfterPivot,
}

/// An action.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Does nothing; outputs `null`.
    Noop,
    /// A registered handler.
    Handler {
        /// Handler name.
        name: String,
        /// Arguments.
        args: ValueExpr,
    },
    /// Read one entity (fails when missing).
    Get {
        /// Repository.
        repo: String,
        /// Id.
        id: ValueExpr,
    },
    /// Insert one entity (fails when the id exists).
    Insert {
        /// Repository.
        repo: String,
        /// Id.
        id: ValueExpr,
        /// Fields.
        values: ValueExpr,
    },
    /// Merge fields into one entity (fails when missing or when `expect` is false).
    Update {
        /// Repository.
        repo: String,
        /// Id.
        id: ValueExpr,
        /// Fields (may read `entity`, the current entity).
        values: ValueExpr,
        /// Condition on the current entity.
        #[serde(skip_serializing_if = "Option::is_none")]
        expect: Option<Expr>,
    },
    /// Delete one entity (missing is fine; `expect` is checked when present).
    Delete {
        /// Repository.
        repo: String,
        /// Id.
        id: ValueExpr,
        /// Condition on the current entity.
        #[serde(skip_serializing_if = "Option::is_none")]
        expect: Option<Expr>,
    },
    /// Entities matching a condition or a rule.
    Find {
        /// Repository.
        repo: String,
        /// The filter.
        filter: Filter,
    },
    /// One request to an HTTP service.
    Http(Box<HttpAction>),
}

/// A request of an `http:` action.
#[derive(Clone, Debug, Serialize)]
pub struct HttpAction {
    /// The service (a name of the `services:` section).
    pub service: String,
    /// The method.
    pub method: Method,
    /// The path below the service's base URL.
    pub path: ValueExpr,
    /// Query parameters (a map).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<ValueExpr>,
    /// The JSON body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<ValueExpr>,
    /// The statuses that succeed (empty: every 2xx).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub success: Vec<u16>,
}

/// An HTTP method.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    /// `GET` (read-only: needs no compensation).
    Get,
    /// `POST`.
    Post,
    /// `PUT`.
    Put,
    /// `PATCH`.
    Patch,
    /// `DELETE`.
    Delete,
}

impl Method {
    /// Every method, as files write them.
    pub const NAMES: [&'static str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

    /// The method named `name` (upper case).
    pub fn parse(name: &str) -> Option<Method> {
        Some(match name {
            "GET" => Method::Get,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "PATCH" => Method::Patch,
            "DELETE" => Method::Delete,
            _ => return None,
        })
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}

/// An HTTP service of the saga: where it is (read from the environment when a run
/// starts) and how calls to it are protected.
#[derive(Clone, Debug, Serialize)]
pub struct Service {
    /// Its name.
    pub name: String,
    /// The base URL, an expression over `env`.
    pub base_url: ValueExpr,
    /// Per-request timeout.
    #[serde(
        serialize_with = "ser_opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout: Option<Duration>,
    /// Headers of every request: name (lower case) → expression over `env`. Their
    /// values are secret: never logged.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<(String, ValueExpr)>,
    /// Follow redirects (at most 10).
    pub follow_redirects: bool,
    /// The circuit breaker.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub circuit_breaker: Option<BreakerConfig>,
    /// The bulkhead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bulkhead: Option<BulkheadConfig>,
    /// The environment variables its configuration reads, sorted.
    pub env: Vec<String>,
}

/// A count-based circuit breaker (resilience4j's semantics).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BreakerConfig {
    /// Outcomes in the sliding window.
    pub window: u32,
    /// Outcomes recorded before the failure rate counts.
    pub min_calls: u32,
    /// Failure rate (0..=1) at which it opens.
    pub failure_rate: f64,
    /// How long it stays open before trial calls.
    #[serde(serialize_with = "ser_duration")]
    pub open_for: Duration,
    /// Trial calls while half-open.
    pub half_open_calls: u32,
}

impl Default for BreakerConfig {
    fn default() -> BreakerConfig {
        BreakerConfig {
            window: 100,
            min_calls: 100,
            failure_rate: 0.5,
            open_for: Duration::from_secs(60),
            half_open_calls: 10,
        }
    }
}

/// A bulkhead: calls in flight at once, across every saga of the process.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BulkheadConfig {
    /// Calls in flight at most.
    pub max_concurrent: u32,
    /// Longest wait for a free slot.
    #[serde(serialize_with = "ser_duration")]
    pub max_wait: Duration,
}

impl Action {
    /// A short description: `insert orders`, `handler charge`.
    pub fn summary(&self) -> String {
        match self {
            Action::Noop => "noop".to_string(),
            Action::Handler { name, .. } => format!("handler {name}"),
            Action::Get { repo, .. } => format!("get {repo}"),
            Action::Insert { repo, .. } => format!("insert {repo}"),
            Action::Update { repo, .. } => format!("update {repo}"),
            Action::Delete { repo, .. } => format!("delete {repo}"),
            Action::Find { repo, .. } => format!("find {repo}"),
            Action::Http(h) => format!("http {} {}", h.method.name(), h.service),
        }
    }

    /// True for actions that change nothing (`GET` requests included).
    pub fn is_read_only(&self) -> bool {
        match self {
            Action::Noop | Action::Get { .. } | Action::Find { .. } => true,
            Action::Http(h) => h.method == Method::Get,
            _ => false,
        }
    }
}

/// A `find` filter.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Filter {
    /// An expression over each entity's fields.
    Where(Expr),
    /// A named rule over each entity.
    Rule(RuleRef),
    /// Every entity.
    All,
}

/// `require`.
#[derive(Clone, Debug, Serialize)]
pub struct Require {
    /// The rule.
    pub rule: RuleRef,
    /// Evaluate on this entity instead of the input.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entity: Option<EntityRef>,
}

/// A repository entity.
#[derive(Clone, Debug, Serialize)]
pub struct EntityRef {
    /// Repository.
    pub repo: String,
    /// Id.
    pub id: ValueExpr,
}

/// A compiled named rule.
#[derive(Clone)]
pub struct RuleRef {
    /// Rule name.
    pub name: String,
    /// The compiled rule.
    pub program: Program,
}

impl std::fmt::Debug for RuleRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "rule {}", self.name)
    }
}

impl Serialize for RuleRef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name)
    }
}

/// A compiled expression with its text.
#[derive(Clone)]
pub struct Expr {
    /// The text as written.
    pub text: String,
    /// How it runs.
    pub(crate) compiled: Compiled,
}

/// How an expression runs: a plain path is read directly, anything else by the evaluator.
#[derive(Clone)]
pub(crate) enum Compiled {
    /// A field path: true as a condition only when it holds `true`.
    Path(Path),
    /// A compiled rules-language program.
    Program(Program),
}

impl Expr {
    /// Evaluate as a condition: missing and null are false, anything else that is not
    /// true or false is an error (as in the rules language).
    pub fn matches(&self, record: &dyn Record, ctx: &Context) -> Result<bool, EvalError> {
        match &self.compiled {
            Compiled::Program(p) => p.matches(record, ctx),
            Compiled::Path(_) => match self.evaluate(record, ctx)? {
                None | Some(Json::Null) => Ok(false),
                Some(Json::Bool(b)) => Ok(b),
                Some(other) => Err(EvalError::NotACondition {
                    what: self.text.clone(),
                    found: json_value(&other).type_name(),
                }),
            },
        }
    }

    /// Why a condition did not hold, as `: reason; reason` (the explanation's
    /// reasons, with the values read), or nothing when there is no more to say.
    pub(crate) fn why_not(&self, record: &dyn Record, ctx: &Context) -> String {
        match &self.compiled {
            Compiled::Program(p) => why_not(p, record, ctx),
            Compiled::Path(_) => String::new(),
        }
    }

    /// Evaluate to a value (`None` when missing).
    pub fn evaluate(&self, record: &dyn Record, ctx: &Context) -> Result<Option<Json>, EvalError> {
        match &self.compiled {
            Compiled::Program(p) => Ok(p.evaluate(record, ctx)?.map(|v| v.to_json())),
            Compiled::Path(path) => {
                let Some((PathSegment::Field(root), rest)) = path.segments.split_first() else {
                    return Ok(None);
                };
                let field = FieldRef {
                    name: root,
                    slot: None,
                };
                Ok(record.field(field).and_then(|v| path_json(v, rest)))
            }
        }
    }
}

fn path_json(v: Value<'_>, rest: &[PathSegment]) -> Option<Json> {
    match rest.split_first() {
        None => Some(v.to_json()),
        Some((seg, tail)) => step(&v, seg, &mut |x| path_json(x, tail)).flatten(),
    }
}

/// Apply `f` to the value one segment down, when there is one.
fn step<T>(v: &Value<'_>, seg: &PathSegment, f: &mut dyn FnMut(Value<'_>) -> T) -> Option<T> {
    match (v, seg) {
        (Value::Object(r), PathSegment::Field(name)) => {
            r.field(FieldRef { name, slot: None }).map(f)
        }
        (Value::OwnedObject(m), PathSegment::Field(name)) => m.get(name).map(|j| f(json_value(j))),
        (_, PathSegment::Index(i)) => v.list_get(*i).map(f),
        _ => None,
    }
}

impl std::fmt::Debug for Expr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.text)
    }
}

impl Serialize for Expr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

/// A computed value: literal, path, expression, or a list or map of them.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueExpr {
    /// A literal.
    Const(Json),
    /// A field path (`input.order_id`, `steps.reserve.items[0]`), read without the evaluator.
    Path(Path),
    /// Any other expression.
    Expr(Expr),
    /// A list.
    List(Vec<ValueExpr>),
    /// A map, in file order.
    Map(Vec<(String, ValueExpr)>),
}

/// A plain field path.
#[derive(Clone, Debug, PartialEq)]
pub struct Path {
    /// The text as written.
    pub text: String,
    /// Its segments.
    pub segments: Vec<PathSegment>,
}

impl Serialize for Path {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

/// One segment of a [`Path`].
#[derive(Clone, Debug, PartialEq)]
pub enum PathSegment {
    /// `.name` (or the first name).
    Field(String),
    /// `[3]`.
    Index(usize),
}

/// A retry policy.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RetryPolicy {
    /// Attempts in all (`None`: unlimited).
    pub max_attempts: Option<u32>,
    /// Wait before the second attempt.
    #[serde(serialize_with = "ser_duration")]
    pub initial_backoff: Duration,
    /// Longest wait.
    #[serde(serialize_with = "ser_duration")]
    pub max_backoff: Duration,
    /// Growth factor per attempt.
    pub multiplier: f64,
    /// Random spread as a fraction of the wait (0..=1).
    pub jitter: f64,
}

impl RetryPolicy {
    /// One attempt, no retry: the default for actions.
    pub fn once() -> RetryPolicy {
        RetryPolicy {
            max_attempts: Some(1),
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            multiplier: 2.0,
            jitter: 0.0,
        }
    }

    /// Three attempts, 100 ms then 200 ms: the default for compensations.
    pub fn compensation_default() -> RetryPolicy {
        RetryPolicy {
            max_attempts: Some(3),
            ..RetryPolicy::once()
        }
    }

    /// True when `attempt` (1-based, just failed) may be followed by another.
    pub fn allows_another(&self, attempt: u32) -> bool {
        self.max_attempts.is_none_or(|max| attempt < max)
    }

    /// The wait after failed attempt `attempt` (1-based); `unit` in 0..1 spreads the jitter.
    pub fn backoff(&self, attempt: u32, unit: f64) -> Duration {
        let exp = i32::try_from(attempt.saturating_sub(1))
            .unwrap_or(i32::MAX)
            .min(64);
        let base = self.initial_backoff.as_secs_f64() * self.multiplier.powi(exp);
        let capped = base.min(self.max_backoff.as_secs_f64());
        let spread = capped * self.jitter * (2.0 * unit.clamp(0.0, 1.0) - 1.0);
        let secs = (capped + spread).clamp(0.0, self.max_backoff.as_secs_f64());
        Duration::try_from_secs_f64(secs).unwrap_or(self.max_backoff)
    }
}

/// A duration as the files write it: `250ms`, `10s`, `5m`, `2h`, `1d`.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    for (size, unit) in [
        (86_400_000, "d"),
        (3_600_000, "h"),
        (60_000, "m"),
        (1000, "s"),
    ] {
        if ms != 0 && ms.is_multiple_of(size) {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

fn ser_duration<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_duration(*d))
}

/// The input schema as `[{name, type, optional}]`, types written as files write them.
fn ser_input<S: Serializer>(schema: &Schema, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    #[derive(Serialize)]
    struct Field<'a> {
        name: &'a str,
        #[serde(rename = "type")]
        ty: String,
        optional: bool,
    }
    let mut seq = s.serialize_seq(Some(schema.root.fields.len()))?;
    for f in &schema.root.fields {
        seq.serialize_element(&Field {
            name: &f.name,
            ty: f.ty.to_string(),
            optional: f.optional,
        })?;
    }
    seq.end()
}

fn ser_opt_duration<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_str(&format_duration(*d)),
        None => s.serialize_none(),
    }
}

/// Why `program` did not hold on `record`: `: reason; reason`, or nothing.
pub(crate) fn why_not(program: &Program, record: &dyn Record, ctx: &Context) -> String {
    match program.explain(record, ctx) {
        Ok(ex) if !ex.reasons().is_empty() => format!(": {}", ex.reasons().join("; ")),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        let p = RetryPolicy {
            max_attempts: None,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(35),
            multiplier: 2.0,
            jitter: 0.0,
        };
        assert_eq!(p.backoff(1, 0.5), Duration::from_millis(10));
        assert_eq!(p.backoff(2, 0.5), Duration::from_millis(20));
        assert_eq!(p.backoff(3, 0.5), Duration::from_millis(35));
        assert_eq!(p.backoff(1000, 0.5), Duration::from_millis(35));
        assert!(p.allows_another(u32::MAX - 1));
        let jittery = RetryPolicy { jitter: 0.5, ..p };
        assert!(jittery.backoff(1, 0.0) >= Duration::from_millis(5));
        assert!(jittery.backoff(1, 1.0) <= Duration::from_millis(15));
    }

    #[test]
    fn durations_print_in_largest_unit() {
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(format_duration(Duration::from_secs(120)), "2m");
    }
}
