//! What saga expressions read: `input`, `steps.<name>`, and where it applies the
//! current `entity` or the action's `result`; and how templates are evaluated.

use chrono::Utc;
use serde_json::{Map, Value as Json};

use super::model::{PathSegment, ValueExpr};
use super::state::StepState;
use crate::rules::Context;
use crate::value::{FieldRef, Record, Value, json_value};

/// The evaluation context for one run.
pub(crate) fn eval_context() -> Context {
    Context {
        now: Utc::now().fixed_offset(),
        max_steps: 100_000,
    }
}

/// The names of what saga expressions read, whether or not a position may read them
/// (`env` only in the `services:` section).
pub(crate) const ROOTS: [&str; 5] = ["input", "steps", "entity", "result", "env"];

/// The outputs of the steps that succeeded, by step name (`steps.<name>`): read
/// from the step states themselves, so the state keeps each output once.
#[derive(Clone, Copy)]
pub(crate) struct Steps<'a>(pub &'a [StepState]);

impl<'a> Steps<'a> {
    fn get(&self, name: &str) -> Option<&'a Json> {
        self.0
            .iter()
            .find(|s| s.name == name)
            .and_then(|s| s.output.as_ref())
    }

    fn to_map(self) -> Map<String, Json> {
        self.0
            .iter()
            .filter_map(|s| Some((s.name.to_string(), s.output.clone()?)))
            .collect()
    }
}

impl Record for Steps<'_> {
    fn field(&self, field: FieldRef<'_>) -> Option<Value<'_>> {
        self.get(field.name).map(json_value)
    }
    fn to_json(&self) -> Option<Json> {
        Some(Json::Object(self.to_map()))
    }
}

/// Names an expression can read.
#[derive(Clone, Copy)]
pub(crate) struct Scope<'a> {
    pub input: &'a Json,
    pub steps: Steps<'a>,
    pub entity: Option<&'a Map<String, Json>>,
    pub result: Option<&'a Json>,
}

impl Record for Scope<'_> {
    fn field(&self, field: FieldRef<'_>) -> Option<Value<'_>> {
        match field.name {
            "input" => Some(json_value(self.input)),
            "steps" => Some(Value::Object(&self.steps)),
            "entity" => self.entity.map(|e| Value::Object(e) as Value<'_>),
            "result" => self.result.map(json_value),
            _ => None,
        }
    }
}

/// What a `find ... where:` reads: the scope's roots (`input`, `steps`), and the
/// entity's own fields by every other name. Which one a name reads depends on the name
/// alone, never on the entity, so validation checks `input.x` and `steps.x` there too.
pub(crate) struct EntityScope<'a> {
    pub entity: &'a Map<String, Json>,
    pub outer: Scope<'a>,
}

impl Record for EntityScope<'_> {
    fn field(&self, field: FieldRef<'_>) -> Option<Value<'_>> {
        if ROOTS.contains(&field.name) {
            return self.outer.field(field);
        }
        self.entity.get(field.name).map(json_value)
    }
    fn to_json(&self) -> Option<Json> {
        Some(Json::Object(self.entity.clone()))
    }
}

enum Node<'a> {
    Json(&'a Json),
    Map(&'a Map<String, Json>),
    Steps(Steps<'a>),
}

impl Scope<'_> {
    fn read_path(&self, segments: &[PathSegment]) -> Option<Json> {
        let (first, rest) = segments.split_first()?;
        let PathSegment::Field(root) = first else {
            return None;
        };
        let mut node = match root.as_str() {
            "input" => Node::Json(self.input),
            "steps" => Node::Steps(self.steps),
            "entity" => Node::Map(self.entity?),
            "result" => Node::Json(self.result?),
            _ => return None,
        };
        for seg in rest {
            node = match (node, seg) {
                (Node::Map(m), PathSegment::Field(f)) => Node::Json(m.get(f)?),
                (Node::Steps(s), PathSegment::Field(f)) => Node::Json(s.get(f)?),
                (Node::Json(Json::Object(m)), PathSegment::Field(f)) => Node::Json(m.get(f)?),
                (Node::Json(Json::Array(a)), PathSegment::Index(i)) => Node::Json(a.get(*i)?),
                _ => return None,
            };
        }
        Some(match node {
            Node::Json(j) => j.clone(),
            Node::Map(m) => Json::Object(m.clone()),
            Node::Steps(s) => Json::Object(s.to_map()),
        })
    }

    /// Evaluate a template; `Ok(None)` when its value is missing.
    pub(crate) fn eval(&self, v: &ValueExpr, ctx: &Context) -> Result<Option<Json>, String> {
        Ok(match v {
            ValueExpr::Const(j) => Some(j.clone()),
            ValueExpr::Path(p) => self.read_path(&p.segments),
            ValueExpr::Expr(e) => e
                .evaluate(self, ctx)
                .map_err(|err| format!("`{}`: {err}", e.text))?,
            ValueExpr::List(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    out.push(self.eval(item, ctx)?.unwrap_or(Json::Null));
                }
                Some(Json::Array(out))
            }
            ValueExpr::Map(items) => {
                let mut out = Map::new();
                for (k, item) in items {
                    // A missing value leaves the key out.
                    if let Some(v) = self.eval(item, ctx)? {
                        out.insert(k.clone(), v);
                    }
                }
                Some(Json::Object(out))
            }
        })
    }
}

/// An entity id from a computed value: a string, or an integer written as text.
pub(crate) fn id_string(v: Option<Json>, what: &str) -> Result<String, String> {
    match v {
        Some(Json::String(s)) if !s.is_empty() => Ok(s),
        Some(Json::Number(n)) if n.is_i64() || n.is_u64() => Ok(n.to_string()),
        Some(other) => Err(format!(
            "{what} must be a string or an integer, found `{other}`"
        )),
        None => Err(format!("{what} is missing")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn where_reads_the_roots_by_name_and_the_entity_by_every_other_name() {
        let input = serde_json::json!({"min": 5});
        let entity = serde_json::json!({"input": "shadow?", "total": 7});
        let scope = EntityScope {
            entity: entity.as_object().unwrap(),
            outer: Scope {
                input: &input,
                steps: Steps(&[]),
                entity: None,
                result: None,
            },
        };
        let read = |name| {
            scope
                .field(FieldRef { name, slot: None })
                .map(|v| v.to_json())
        };
        // the entity's own `input` field never hides the saga's input
        assert_eq!(read("input"), Some(input.clone()));
        assert_eq!(read("total"), Some(serde_json::json!(7)));
        assert_eq!(read("min"), None);
    }
}
