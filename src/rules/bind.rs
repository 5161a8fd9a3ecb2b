//! Records read by position, bound to a program by name.
//!
//! A struct that reads its fields by slot (`match field.slot { Some(0) => ...}`)
//! is fast, and silently wrong the day the schema's fields are reordered. A
//! [`RecordType`] says which field each of its slots is; [`Program::bind`]
//! matches them to the fields the program reads, by name, once, and compiles
//! the program with the struct's slots (a field the struct lacks is an error).
//! Evaluation is then exactly as fast as reading by the schema's slots.

use std::marker::PhantomData;

use super::api::{Context, EvalError, Program};
use super::checked::{Node, NodeKind};
use super::explain::Explanation;
use crate::diag::closest;
use crate::value::{OwnedValue, Record};

/// A record type whose fields are read by position: [`Record::field`] is
/// given `slot: Some(i)` for the field named `FIELDS[i]`.
///
/// ```
/// use rulesaga::rules::RecordType;
/// use rulesaga::{Context, Env, FieldRef, Program, Record, Source, Value};
///
/// struct Order { total: i64, country: &'static str }
/// impl Record for Order {
///     fn field(&self, f: FieldRef<'_>) -> Option<Value<'_>> {
///         match f.slot {
///             Some(0) => Some(Value::str(self.country)),
///             Some(1) => Some(Value::Int(self.total)),
///             _ => None,
///         }
///     }
/// }
/// impl RecordType for Order {
///     const FIELDS: &'static [&'static str] = &["country", "total"];
/// }
///
/// let rule = Program::compile(Source::new("<e>", "total > 100 and country == \"FR\""), &Env::new())?;
/// let rule = rule.bind::<Order>()?;
/// assert!(rule.matches(&Order { total: 150, country: "FR" }, &Context::system())?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait RecordType: Record {
    /// The type's field names, by slot.
    const FIELDS: &'static [&'static str];
}

/// A program reads a field that a record type does not have.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the rule reads `{field}`, which `{record_type}` does not have")]
pub struct BindError {
    /// The field.
    pub field: String,
    /// The record type's name.
    pub record_type: &'static str,
    /// The closest field the type has, if one is close.
    pub suggestion: Option<String>,
}

/// A program bound to a record type: evaluated with the type's own slots.
pub struct Bound<R> {
    program: Program,
    record: PhantomData<fn(&R)>,
}

impl<R> Clone for Bound<R> {
    fn clone(&self) -> Bound<R> {
        Bound {
            program: self.program.clone(),
            record: PhantomData,
        }
    }
}

impl<R: RecordType> Bound<R> {
    /// Evaluate as a condition ([`Program::matches`]), with `R::field` inlined.
    #[inline]
    pub fn matches(&self, record: &R, ctx: &Context) -> Result<bool, EvalError> {
        self.program.matches_typed(record, ctx)
    }

    /// Evaluate to a value ([`Program::evaluate`]).
    pub fn evaluate(&self, record: &R, ctx: &Context) -> Result<Option<OwnedValue>, EvalError> {
        self.program.evaluate(record, ctx)
    }

    /// Explain the result ([`Program::explain`]).
    pub fn explain(&self, record: &R, ctx: &Context) -> Result<Explanation, EvalError> {
        self.program.explain(record, ctx)
    }

    /// The bound program (its [`Program::fields`] are `R::FIELDS`).
    pub fn program(&self) -> &Program {
        &self.program
    }
}

impl Program {
    /// Bind the program to a record type that reads its fields by position
    /// ([`RecordType`]): every field the program reads is matched to the
    /// type's slot of the same name, once; a field the type does not have is
    /// an error, never a silent read of another field.
    pub fn bind<R: RecordType>(&self) -> Result<Bound<R>, BindError> {
        let root = rebind(self.root(), R::FIELDS, std::any::type_name::<R>())?;
        let fields = R::FIELDS.iter().map(ToString::to_string).collect();
        Ok(Bound {
            program: self.rebuilt(root, fields),
            record: PhantomData,
        })
    }
}

/// The tree with every field read by its slot in `fields`.
fn rebind(node: &Node, fields: &[&str], record_type: &'static str) -> Result<Node, BindError> {
    if let NodeKind::Field { name, rest, .. } = &node.kind {
        let Some(slot) = fields.iter().position(|f| f == name) else {
            return Err(BindError {
                field: name.clone(),
                record_type,
                suggestion: closest(name, fields.iter().copied()).map(str::to_string),
            });
        };
        return Ok(Node {
            kind: NodeKind::Field {
                slot: u32::try_from(slot).unwrap_or(u32::MAX),
                name: name.clone(),
                rest: rest.clone(),
            },
            ty: node.ty.clone(),
            span: node.span,
        });
    }
    let mut error = None;
    let rebuilt = node.try_map_children(&mut |child| match rebind(child, fields, record_type) {
        Ok(n) => Some(n),
        Err(e) => {
            error = Some(e);
            None
        }
    });
    match (rebuilt, error) {
        (Some(n), _) => Ok(n),
        (None, Some(e)) => Err(e),
        (None, None) => Ok(node.clone()),
    }
}
