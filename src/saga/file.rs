//! Step one: the serialised shape of a saga file (serde types only).
//!
//! Every value keeps its YAML location (`Spanned`) so validation can point at it.
//! Unknown keys are rejected here; meaning is checked in `validate`.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// A whole saga file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SagaFile {
    /// The saga's name.
    pub saga: Spanned<String>,
    /// Its version.
    pub version: Option<Spanned<u32>>,
    /// Free text.
    pub description: Option<Spanned<String>>,
    /// Input schema: field name → type (`string`, `int?`, ...).
    pub input: Option<Spanned<BTreeMap<String, Spanned<String>>>>,
    /// Deadline for the whole saga (`30s`).
    pub deadline: Option<Spanned<String>>,
    /// Retry policy of every compensation.
    pub compensation_retry: Option<Spanned<RetryFile>>,
    /// The HTTP services the steps call, by name.
    pub services: Option<Spanned<BTreeMap<String, Spanned<ServiceFile>>>>,
    /// The steps, in order.
    pub steps: Spanned<Vec<Spanned<StepFile>>>,
}

/// One step.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepFile {
    /// Unique name.
    pub name: Spanned<String>,
    /// What the step does.
    pub action: Spanned<ActionFile>,
    /// How it is undone.
    pub compensate: Option<Spanned<ActionFile>>,
    /// `none`: nothing to undo.
    pub compensation: Option<Spanned<String>>,
    /// The point of no return.
    pub pivot: Option<Spanned<bool>>,
    /// Run only when this condition holds.
    pub when: Option<Spanned<String>>,
    /// Retry policy of the action.
    pub retry: Option<Spanned<RetryFile>>,
    /// Per-attempt timeout.
    pub timeout: Option<Spanned<String>>,
    /// Named outputs: name → expression (over `result`, `input`, `steps`).
    pub outputs: Option<Spanned<BTreeMap<String, Spanned<Template>>>>,
    /// A named rule that must hold first.
    pub require: Option<Spanned<RequireFile>>,
}

/// An action: exactly one verb key (`handler`, `get`, `insert`, `update`, `delete`,
/// `find`, `noop`) plus its arguments.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionFile {
    /// Call a registered handler.
    pub handler: Option<Spanned<String>>,
    /// Handler arguments.
    pub args: Option<Spanned<Template>>,
    /// Read one entity.
    pub get: Option<Spanned<String>>,
    /// Insert one entity.
    pub insert: Option<Spanned<String>>,
    /// Merge fields into one entity.
    pub update: Option<Spanned<String>>,
    /// Delete one entity.
    pub delete: Option<Spanned<String>>,
    /// Find entities by a condition or a rule.
    pub find: Option<Spanned<String>>,
    /// Do nothing.
    pub noop: Option<Spanned<bool>>,
    /// Call an HTTP service.
    pub http: Option<Spanned<HttpFile>>,
    /// Entity id expression.
    pub id: Option<Spanned<Template>>,
    /// Field values (insert, update).
    pub values: Option<Spanned<Template>>,
    /// Condition on the current entity (update, delete).
    pub expect: Option<Spanned<String>>,
    /// Condition on each entity (find).
    #[serde(rename = "where")]
    pub where_: Option<Spanned<String>>,
    /// Named rule on each entity (find).
    pub rule: Option<Spanned<String>>,
}

/// `http:`: one request to a service of the `services:` section.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpFile {
    /// The service's name.
    pub service: Spanned<String>,
    /// `GET`, `POST`, `PUT`, `PATCH` or `DELETE`.
    pub method: Spanned<String>,
    /// Path expression, joined to the service's base URL (`'"/charges/" + steps.charge.id'`).
    pub path: Spanned<Template>,
    /// Query parameters: name → value.
    pub query: Option<Spanned<Template>>,
    /// The JSON body.
    pub body: Option<Spanned<Template>>,
    /// The statuses that succeed (default: every 2xx).
    pub success: Option<Spanned<Vec<Spanned<u16>>>>,
}

/// A service of the `services:` section.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceFile {
    /// Expression over `env` (`env.PAYMENTS_URL`), read when a run starts.
    pub base_url: Spanned<Template>,
    /// Per-request timeout (`2s`).
    pub timeout: Option<Spanned<String>>,
    /// Headers of every request: name → expression over `env`.
    pub headers: Option<Spanned<BTreeMap<String, Spanned<Template>>>>,
    /// Follow redirects (default: no).
    pub follow_redirects: Option<Spanned<bool>>,
    /// The circuit breaker of the service.
    pub circuit_breaker: Option<Spanned<BreakerFile>>,
    /// The bulkhead of the service.
    pub bulkhead: Option<Spanned<BulkheadFile>>,
}

/// `circuit_breaker:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakerFile {
    /// Calls in the sliding window.
    pub window: Option<Spanned<u32>>,
    /// Calls recorded before the failure rate counts.
    pub min_calls: Option<Spanned<u32>>,
    /// Failure rate (0..=1) at which the breaker opens.
    pub failure_rate: Option<Spanned<f64>>,
    /// How long it stays open.
    pub open_for: Option<Spanned<String>>,
    /// Trial calls while half-open.
    pub half_open_calls: Option<Spanned<u32>>,
}

/// `bulkhead:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BulkheadFile {
    /// Calls in flight at most.
    pub max_concurrent: Spanned<u32>,
    /// Longest wait for a free slot (default 0: fail at once).
    pub max_wait: Option<Spanned<String>>,
}

/// `require:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequireFile {
    /// Rule name (from `--rules` files).
    pub rule: Spanned<String>,
    /// Evaluate on an entity instead of the input.
    pub entity: Option<Spanned<EntityRefFile>>,
}

/// An entity to evaluate a rule on.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntityRefFile {
    /// Repository name.
    pub repo: Spanned<String>,
    /// Id expression.
    pub id: Spanned<Template>,
}

/// `retry:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryFile {
    /// A number ≥ 1, or `unlimited`.
    pub max_attempts: Option<Spanned<Template>>,
    /// First wait (`100ms`).
    pub initial_backoff: Option<Spanned<String>>,
    /// Longest wait.
    pub max_backoff: Option<Spanned<String>>,
    /// Growth per attempt (≥ 1).
    pub multiplier: Option<Spanned<f64>>,
    /// Random spread, 0..=1, as a fraction of the wait.
    pub jitter: Option<Spanned<f64>>,
}

/// A value in `values:`, `args:`, `id:` and `outputs:`: a string is an expression
/// of the rules language; numbers, booleans and null are literals; lists and maps
/// hold templates.
#[derive(Debug, Clone, PartialEq)]
pub enum Template {
    /// An expression (a literal string is written as a rules string: `'"pending"'`).
    Expr(String),
    /// An integer literal.
    Int(i64),
    /// A float literal.
    Float(f64),
    /// A boolean literal.
    Bool(bool),
    /// `null`.
    Null,
    /// A list of templates.
    List(Vec<Spanned<Template>>),
    /// A map of templates, in file order.
    Map(Vec<(String, Spanned<Template>)>),
}

impl<'de> Deserialize<'de> for Template {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Template, D::Error> {
        d.deserialize_any(TemplateVisitor)
    }
}

struct TemplateVisitor;

impl<'de> Visitor<'de> for TemplateVisitor {
    type Value = Template;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an expression, a literal, a list or a map")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Template, E> {
        Ok(Template::Expr(v.to_string()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Template, E> {
        Ok(Template::Expr(v))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Template, E> {
        Ok(Template::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Template, E> {
        Ok(Template::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Template, E> {
        match i64::try_from(v) {
            Ok(i) => Ok(Template::Int(i)),
            Err(_) => Ok(Template::Float(v as f64)),
        }
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Template, E> {
        if v.is_finite() {
            Ok(Template::Float(v))
        } else {
            Err(E::custom("numbers must be finite"))
        }
    }
    fn visit_unit<E: de::Error>(self) -> Result<Template, E> {
        Ok(Template::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Template, E> {
        Ok(Template::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Template, D::Error> {
        Template::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Template, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Template>>()? {
            items.push(item);
        }
        Ok(Template::List(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Template, A::Error> {
        let mut items = Vec::new();
        while let Some((k, v)) = map.next_entry::<String, Spanned<Template>>()? {
            items.push((k, v));
        }
        Ok(Template::Map(items))
    }
}
