//! Data against a schema: every value checked, nested objects and list
//! elements included, and the first bad one named by its path
//! (`previous_loans[0].amount: expected number, found string "lots"`).
//!
//! [`Schema::check_record`] checks any [`Record`] (read by slot, as programs
//! read it); [`Schema::check_json`] a JSON value (saga inputs, test records);
//! [`Schema::row`] checks and converts to a schema-typed [`Row`]. The CLI checks
//! every record before it evaluates or explains it, so data that does not fit
//! is a data error, never a silent answer.

use std::fmt;

use super::lexical;
use super::ops;
use super::schema::{FieldType, ObjectType, Schema, Type};
use crate::value::{FieldRef, OwnedValue, Record, Row, Value, json_value};

/// A value that does not fit its schema: where, and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchemaError {
    /// The path of the value from the top of the record (`previous_loans[0].amount`);
    /// empty for the record itself.
    pub path: String,
    /// What is wrong with it.
    pub problem: Problem,
}

/// What is wrong with a value, for [`SchemaError`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// A required field is missing.
    Missing,
    /// A required field is null.
    Null,
    /// A value of another type: the declared type and what was found
    /// (`string "lots"`).
    Expected {
        /// The declared type.
        expected: String,
        /// The value found, with its type.
        found: String,
    },
    /// A symbol that is not one of the enum's.
    UnknownSymbol {
        /// The symbol.
        symbol: String,
        /// The enum's values.
        expected: String,
    },
    /// A negative number for a `uint`.
    Negative,
}

impl fmt::Display for SchemaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = &self.path;
        match &self.problem {
            Problem::Missing => write!(f, "`{path}` is missing"),
            Problem::Null => write!(f, "`{path}` is null"),
            problem if path.is_empty() => write!(f, "{problem}"),
            problem => write!(f, "{path}: {problem}"),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Missing => write!(f, "missing"),
            Problem::Null => write!(f, "null"),
            Problem::Expected { expected, found } => {
                write!(f, "expected {expected}, found {found}")
            }
            Problem::UnknownSymbol { symbol, expected } => {
                write!(f, "`{symbol}` is not one of {expected}")
            }
            Problem::Negative => write!(f, "expected uint, found a negative number"),
        }
    }
}

impl std::error::Error for SchemaError {}

impl Schema {
    /// Check a record against the schema: every declared field (read by slot)
    /// present unless optional, not null unless optional, of its declared type
    /// — ints for `int`, never negative for `uint`, known symbols for enums,
    /// dates that parse — and, inside lists and objects, every element and
    /// declared field likewise. Fields the schema does not declare are not
    /// looked at. The error names the first bad value by its path.
    pub fn check_record(&self, record: &dyn Record) -> Result<(), SchemaError> {
        let mut path = String::new();
        check_fields(
            &self.root,
            |slot, name| {
                record.field(FieldRef {
                    name,
                    slot: u32::try_from(slot).ok(),
                })
            },
            &mut path,
        )
    }

    /// [`Schema::check_record`] for a JSON value, which must be an object.
    pub fn check_json(&self, json: &serde_json::Value) -> Result<(), SchemaError> {
        if !json.is_object() {
            return Err(SchemaError {
                path: String::new(),
                problem: Problem::Expected {
                    expected: "an object".to_string(),
                    found: found(&json_value(json)),
                },
            });
        }
        self.check_record(json)
    }

    /// Check every declared field of a JSON object, as [`Schema::check_json`]
    /// does, but report the first bad value of each field rather than of the
    /// whole object; paths start with `prefix` (`input.qty`). Empty when it fits.
    pub fn check_json_fields(&self, json: &serde_json::Value, prefix: &str) -> Vec<SchemaError> {
        let Some(object) = json.as_object() else {
            return vec![SchemaError {
                path: prefix.to_string(),
                problem: Problem::Expected {
                    expected: "an object".to_string(),
                    found: found(&json_value(json)),
                },
            }];
        };
        let mut path = String::new();
        self.root
            .fields
            .iter()
            .filter_map(|field| {
                path.clear();
                path.push_str(prefix);
                check_field(field, object.get(&field.name).map(json_value), &mut path).err()
            })
            .collect()
    }

    /// Check a JSON object ([`Schema::check_json`]) and turn it into a
    /// schema-typed [`Row`]: top-level values converted to their declared
    /// types (dates parsed, integral floats of `int` fields made ints).
    pub fn row(&self, json: &serde_json::Value) -> Result<Row, SchemaError> {
        self.check_json(json)?;
        let values = self
            .root
            .fields
            .iter()
            .map(|field| match json.get(&field.name) {
                None | Some(serde_json::Value::Null) => None,
                Some(v) => Some(convert(&field.ty, json_value(v))),
            })
            .collect();
        Ok(Row {
            names: self.field_names().into(),
            values,
        })
    }
}

/// The value of a checked field as its declared type.
fn convert(ty: &Type, v: Value<'_>) -> OwnedValue {
    match (ty, &v) {
        (Type::Int | Type::UInt, Value::Float(x)) => {
            ops::float_to_int(*x).map_or_else(|| v.clone().into_owned(), Value::Int)
        }
        _ => ops::coerce(v, ty).into_owned(),
    }
}

/// Check the declared fields of an object, read by `get(slot, name)`.
fn check_fields<'v>(
    obj: &ObjectType,
    get: impl Fn(usize, &str) -> Option<Value<'v>>,
    path: &mut String,
) -> Result<(), SchemaError> {
    for (slot, field) in obj.fields.iter().enumerate() {
        check_field(field, get(slot, &field.name), path)?;
    }
    Ok(())
}

/// Check one declared field's value (`None`: missing), at `path` + its name.
fn check_field(
    field: &FieldType,
    value: Option<Value<'_>>,
    path: &mut String,
) -> Result<(), SchemaError> {
    let len = path.len();
    if len > 0 {
        path.push('.');
    }
    path.push_str(&field.name);
    match value {
        None | Some(Value::Null) if field.optional => {}
        None => return Err(error(path, Problem::Missing)),
        Some(Value::Null) => return Err(error(path, Problem::Null)),
        Some(v) => check_value(&field.ty, &v, path)?,
    }
    path.truncate(len);
    Ok(())
}

fn error(path: &str, problem: Problem) -> SchemaError {
    SchemaError {
        path: path.to_string(),
        problem,
    }
}

/// A value's type and, for scalars, the value: `string "lots"`, `a list`.
fn found(v: &Value<'_>) -> String {
    match v {
        Value::List(_) | Value::OwnedList(_) => "a list".to_string(),
        Value::Object(_) | Value::OwnedObject(_) => "an object".to_string(),
        Value::Null => "null".to_string(),
        v => format!("{} {v}", v.type_name()),
    }
}

/// Does a present value fit its declared type, all the way down?
fn check_value(ty: &Type, v: &Value<'_>, path: &mut String) -> Result<(), SchemaError> {
    let fits = match (ty, v) {
        (Type::Any, _) => true,
        (Type::List(element), Value::List(_) | Value::OwnedList(_)) => {
            for i in 0..v.list_len().unwrap_or(0) {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                let item = v.list_get(i).unwrap_or(Value::Null);
                match item {
                    Value::Null if **element != Type::Any => {
                        return Err(error(
                            path,
                            Problem::Expected {
                                expected: element.to_string(),
                                found: "null".to_string(),
                            },
                        ));
                    }
                    item => check_value(element, &item, path)?,
                }
                path.truncate(len);
            }
            true
        }
        (Type::Object(obj), Value::Object(_) | Value::OwnedObject(_)) => {
            check_fields(obj, |_, name| field_of(v, name), path)?;
            true
        }
        (Type::Int, Value::Int(_)) => true,
        (Type::UInt, Value::Int(i)) => {
            if *i < 0 {
                return Err(error(path, Problem::Negative));
            }
            true
        }
        (Type::Int | Type::UInt, Value::Float(x)) => match ops::float_to_int(*x) {
            Some(i) if i < 0 && *ty == Type::UInt => return Err(error(path, Problem::Negative)),
            Some(_) => true,
            None => false,
        },
        (Type::Float | Type::Number, Value::Int(_) | Value::Float(_)) => true,
        (Type::String, Value::Str(_)) | (Type::Bool, Value::Bool(_)) => true,
        (Type::Enum(variants), Value::Str(s)) => {
            if !variants.iter().any(|x| x == s) {
                return Err(error(
                    path,
                    Problem::UnknownSymbol {
                        symbol: s.to_string(),
                        expected: ty.to_string(),
                    },
                ));
            }
            true
        }
        (Type::Date, Value::Date(_)) | (Type::DateTime, Value::DateTime(_)) => true,
        (Type::Duration, Value::Duration(_)) => true,
        (Type::Date, Value::Str(s)) => lexical::date(s).is_some(),
        (Type::DateTime, Value::Str(s)) => lexical::datetime(s).is_some(),
        (Type::Duration, Value::Str(s)) => lexical::duration(s).is_some(),
        _ => false,
    };
    if fits {
        Ok(())
    } else {
        Err(error(
            path,
            Problem::Expected {
                expected: ty.to_string(),
                found: found(v),
            },
        ))
    }
}

/// A field of an object value, by name.
fn field_of<'v>(v: &'v Value<'_>, name: &str) -> Option<Value<'v>> {
    match v {
        Value::Object(o) => o.field(FieldRef { name, slot: None }),
        Value::OwnedObject(o) => o.get(name).map(json_value),
        _ => None,
    }
}
