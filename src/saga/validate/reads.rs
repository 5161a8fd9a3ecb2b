//! What an expression may read where it stands, as a rules [`Schema`].
//!
//! Every saga expression is compiled against a schema whose top-level fields are exactly
//! the roots its position may read:
//!
//! - `input`: an object of the declared input fields with their types, or `any` when the
//!   saga declares no `input` (undeclared inputs are not checked);
//! - `steps`: one field per earlier step (and the own step, in a compensation), an object
//!   of its declared `outputs` when it declares them, else `any`;
//! - `entity` (`any`): only in an `update`'s `values` and the `expect` of `update` and
//!   `delete`;
//! - `result` (`any`): only in `outputs`.
//!
//! A `find ... where:` reads the entity's own fields, which are not declared anywhere: every
//! name there other than these four roots is an entity field of type `any`, so a bare word
//! stays legal while `input.x` and `steps.x` are checked as everywhere else.
//!
//! The rules checker then reports unknown names (E101) with their spans; [`read_at`] finds
//! the path a report points at, so `expr.rs` can say it in saga terms.

use std::sync::Arc;

use super::Validator;
use crate::rules::ast::{BinaryOp, Expr, ExprKind, Ident, PathSegment};
use crate::rules::{FieldType, ObjectType, Schema, Type};
use crate::saga::scope::ROOTS;

/// Where an expression stands: which roots it may read.
#[derive(Clone, Copy)]
pub(super) struct Scope {
    /// Index of the step (references must point earlier).
    pub step_idx: usize,
    /// May read its own step's output (compensations).
    pub own_output: bool,
    /// May read the current `entity` (`update` values, `update`/`delete` expect).
    pub entity: bool,
    /// May read the action's `result` (outputs).
    pub result: bool,
    /// Other names are the fields of the entity being filtered (`find ... where:`).
    pub entity_fields: bool,
    /// A service's configuration: reads `env` and nothing else.
    pub env: bool,
}

impl Scope {
    /// What the plain expressions of step `step_idx` read: `input` and earlier steps.
    pub fn step(step_idx: usize) -> Scope {
        Scope {
            step_idx,
            own_output: false,
            entity: false,
            result: false,
            entity_fields: false,
            env: false,
        }
    }

    /// What a service's configuration reads: `env` alone.
    pub fn service() -> Scope {
        Scope {
            env: true,
            ..Scope::step(0)
        }
    }

    /// The roots this position may read, for messages.
    pub fn roots(self) -> Vec<&'static str> {
        let allowed = [!self.env, !self.env, self.entity, self.result, self.env];
        ROOTS
            .into_iter()
            .zip(allowed)
            .filter_map(|(root, ok)| ok.then_some(root))
            .collect()
    }
}

/// The rules type of a declared input type.
fn any_field(name: &str) -> FieldType {
    FieldType {
        name: name.to_string(),
        ty: Type::Any,
        optional: true,
    }
}

/// The type of a step's output as later steps read it.
pub(super) fn step_field(name: &str, outputs: Option<&[String]>) -> FieldType {
    let ty = match outputs {
        Some(names) => Type::Object(Arc::new(ObjectType {
            fields: names.iter().map(|n| any_field(n)).collect(),
        })),
        None => Type::Any,
    };
    // a skipped step's output is missing
    FieldType {
        ty,
        ..any_field(name)
    }
}

impl Validator<'_> {
    /// The schema of what an expression at `scope` may read; `entity_fields` are the
    /// names a `where` reads from the entity.
    pub(super) fn schema(&mut self, scope: Scope, entity_fields: Vec<String>) -> Schema {
        if scope.env {
            return Schema {
                root: ObjectType {
                    fields: vec![FieldType {
                        optional: false,
                        ..any_field("env")
                    }],
                },
            };
        }
        let input = match &self.input {
            Some(fields) => Type::Object(fields.clone()),
            None => Type::Any,
        };
        let mut fields = vec![
            FieldType {
                name: "input".to_string(),
                ty: input,
                optional: false,
            },
            FieldType {
                optional: false,
                ..self.steps_field(scope)
            },
        ];
        if scope.entity {
            fields.push(any_field("entity"));
        }
        if scope.result {
            fields.push(any_field("result"));
        }
        fields.extend(entity_fields.iter().map(|f| any_field(f)));
        Schema {
            root: ObjectType { fields },
        }
    }

    /// `steps`: the steps before `scope` (with it, in a compensation), built once per end.
    fn steps_field(&mut self, scope: Scope) -> FieldType {
        let end = scope.step_idx + usize::from(scope.own_output);
        let ty = match self.steps_types.get(&end) {
            Some(ty) => ty.clone(),
            None => {
                let fields = self
                    .step_types
                    .iter()
                    .take(end)
                    .flatten()
                    .cloned()
                    .collect();
                let ty = Type::Object(Arc::new(ObjectType { fields }));
                self.steps_types.insert(end, ty.clone());
                ty
            }
        };
        FieldType {
            ty,
            ..any_field("steps")
        }
    }
}

/// A path an expression reads: its first name and the steps after it.
pub(super) struct Read<'e> {
    pub head: &'e Ident,
    pub rest: &'e [PathSegment],
}

/// Every name or path in an expression (`input.x`, `$x`, `status`), in no particular
/// order; iterative, so a deep expression cannot exhaust the stack.
pub(super) fn reads(expr: &Expr) -> Vec<Read<'_>> {
    let mut out = Vec::new();
    let mut todo = vec![expr];
    while let Some(e) = todo.pop() {
        if let ExprKind::Name { head, rest } | ExprKind::Field { head, rest } = &e.kind {
            out.push(Read { head, rest });
        }
        e.push_children(&mut todo);
    }
    out
}

/// The read whose first name (`None`) or `rest[i]` (`Some(i)`) is at `span`.
pub(super) fn read_at<'r, 'e>(
    reads: &'r [Read<'e>],
    span: crate::diag::Span,
) -> Option<(&'r Read<'e>, Option<usize>)> {
    reads.iter().find_map(|r| {
        if r.head.span == span {
            return Some((r, None));
        }
        r.rest
            .iter()
            .position(|seg| matches!(seg, PathSegment::Field(id) if id.span == span))
            .map(|i| (r, Some(i)))
    })
}

/// The names a `where` reads from the entity: every first name but the saga's roots.
pub(super) fn entity_fields(expr: &Expr) -> Vec<String> {
    // a bare word where the rules language reads a symbol (right of `==`/`!=`, in a
    // list) is a string, not a field of the entity
    let symbol = |e: &Expr| matches!(&e.kind, ExprKind::Name { rest, .. } if rest.is_empty());
    let mut names: Vec<String> = Vec::new();
    let mut todo = vec![expr];
    while let Some(e) = todo.pop() {
        match &e.kind {
            ExprKind::Name { head, .. } | ExprKind::Field { head, .. } => {
                let name = head.name.as_str();
                if !ROOTS.contains(&name) && !names.iter().any(|n| n == name) {
                    names.push(name.to_string());
                }
            }
            ExprKind::Binary {
                op: BinaryOp::Eq | BinaryOp::Ne,
                left,
                right,
            } => {
                todo.push(left);
                if !symbol(right) {
                    todo.push(right);
                }
            }
            ExprKind::List { items } => todo.extend(items.iter().filter(|i| !symbol(i))),
            _ => e.push_children(&mut todo),
        }
    }
    names
}
