//! Schemas: the declared fields of the records a rule set reads, and their types.
//!
//! A schema turns typos into compile errors, gives enum fields their allowed
//! symbols, and fixes each top-level field's slot (its position), so that
//! records can be read by index instead of by name.

use std::fmt;
use std::sync::Arc;

use super::ast::{FieldDecl, SchemaDecl, TypeExpr};
use crate::diag::{Diagnostic, Span, did_you_mean};

/// A value type.
#[derive(Clone, Debug, PartialEq)]
pub enum Type {
    /// Unknown or any type (fields without a schema).
    Any,
    /// `bool`
    Bool,
    /// `int`
    Int,
    /// `uint`: an int that is never negative (checked when data is read into a `Row`).
    UInt,
    /// `float`
    Float,
    /// `number`: int or float.
    Number,
    /// `string`
    String,
    /// `date`
    Date,
    /// `datetime`
    DateTime,
    /// `duration`
    Duration,
    /// `null` (the type of the `null` literal).
    Null,
    /// One of a fixed set of symbols.
    Enum(Arc<[String]>),
    /// `list<T>`
    List(Box<Type>),
    /// `{ field: T, ... }`
    Object(Arc<ObjectType>),
}

/// The fields of an object type, in declaration order.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ObjectType {
    /// The fields.
    pub fields: Vec<FieldType>,
}

/// One declared field.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldType {
    /// Its name.
    pub name: String,
    /// Its type.
    pub ty: Type,
    /// May be missing or null.
    pub optional: bool,
}

impl ObjectType {
    /// A field and its slot.
    pub fn get(&self, name: &str) -> Option<(usize, &FieldType)> {
        self.fields.iter().enumerate().find(|(_, f)| f.name == name)
    }

    /// Did-you-mean help for an unknown field.
    pub fn suggest(&self, name: &str) -> Option<String> {
        did_you_mean(name, self.fields.iter().map(|f| f.name.as_str()))
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::Any => write!(f, "any"),
            Type::Bool => write!(f, "bool"),
            Type::Int => write!(f, "int"),
            Type::UInt => write!(f, "uint"),
            Type::Float => write!(f, "float"),
            Type::Number => write!(f, "number"),
            Type::String => write!(f, "string"),
            Type::Date => write!(f, "date"),
            Type::DateTime => write!(f, "datetime"),
            Type::Duration => write!(f, "duration"),
            Type::Null => write!(f, "null"),
            Type::Enum(v) => write!(f, "{}", v.join(" | ")),
            Type::List(t) => write!(f, "list<{t}>"),
            Type::Object(o) if o.fields.is_empty() => write!(f, "{{}}"),
            Type::Object(o) => {
                write!(f, "{{ ")?;
                for (i, field) in o.fields.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    let q = if field.optional { "?" } else { "" };
                    write!(f, "{}{q}: {}", field.name, field.ty)?;
                }
                write!(f, " }}")
            }
        }
    }
}

impl Type {
    /// True for int, float and number.
    pub fn is_numeric(&self) -> bool {
        matches!(self, Type::Int | Type::UInt | Type::Float | Type::Number)
    }

    /// True for strings and enums (enums hold symbols, which are strings).
    pub fn is_stringy(&self) -> bool {
        matches!(self, Type::String | Type::Enum(_))
    }

    /// Can values of these two types ever be compared (`==`, `<`, ...)?
    /// `Any` is compatible with everything.
    pub fn comparable_with(&self, other: &Type) -> bool {
        use Type::*;
        match (self, other) {
            (Any, _) | (_, Any) | (Null, _) | (_, Null) => true,
            (a, b) if a.is_numeric() && b.is_numeric() => true,
            (a, b) if a.is_stringy() && b.is_stringy() => true,
            (Date | DateTime, Date | DateTime) => true,
            // date strings compare with dates
            (Date | DateTime, String) | (String, Date | DateTime) => true,
            (Bool, Bool) | (Duration, Duration) => true,
            (List(_), List(_)) | (Object(_), Object(_)) => true,
            _ => false,
        }
    }
}

impl Type {
    /// Do values of this type have an order (`<`, `between`)? Numbers,
    /// strings and symbols, dates, datetimes and durations do; booleans,
    /// lists, objects and null do not. `any` may.
    pub fn is_orderable(&self) -> bool {
        self.is_numeric()
            || self.is_stringy()
            || matches!(
                self,
                Type::Date | Type::DateTime | Type::Duration | Type::Any
            )
    }

    /// Can values of these two types be ordered against each other? The test
    /// `ops::compare` makes on values, made on types.
    pub fn orderable_with(&self, other: &Type) -> bool {
        self.is_orderable() && other.is_orderable() && self.comparable_with(other)
    }
}

/// A schema: the top-level fields of the records rules read.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Schema {
    /// The top-level fields; a field's index is its slot.
    pub root: ObjectType,
}

impl Type {
    /// Parse a type as a schema block writes it (`int`, `premium | vip`,
    /// `list<{amount: number}>`): what saga input schemas declare, so both files
    /// share one type language. The error is a message and its help.
    pub(crate) fn parse(text: &str) -> Result<Type, (String, Option<String>)> {
        let not_a_type = || (format!("`{text}` is not a type"), None);
        // one type, not the end of the wrapping block and more
        let mut depth = 0i32;
        for c in text.chars() {
            depth += match c {
                '{' | '<' => 1,
                '}' | '>' => -1,
                '#' | '\n' => return Err(not_a_type()),
                _ => 0,
            };
            if depth < 0 {
                return Err(not_a_type());
            }
        }
        let source = crate::diag::Source::new("<type>", format!("schema {{ x: {text} }}"));
        let file = super::parse::parse_rule_file(&source).map_err(|d| match d.items.first() {
            Some(first) => (first.message.clone(), first.help.clone()),
            None => not_a_type(),
        })?;
        let Some(decl) = file
            .schema
            .filter(|s| s.fields.len() == 1 && file.rules.is_empty())
        else {
            return Err(not_a_type());
        };
        let mut diags = Vec::new();
        let schema = Schema::from_decl(&decl, &mut diags);
        if let Some(first) = diags.first() {
            return Err((first.message.clone(), first.help.clone()));
        }
        schema
            .root
            .fields
            .into_iter()
            .next()
            .map(|f| f.ty)
            .ok_or_else(not_a_type)
    }
}

impl Schema {
    /// Build from a parsed `schema { ... }` block, reporting unknown type names
    /// and duplicate fields.
    pub fn from_decl(decl: &SchemaDecl, diags: &mut Vec<Diagnostic>) -> Schema {
        Schema {
            root: object_from_decls(&decl.fields, diags),
        }
    }

    /// Merge another file's schema into this one. Fields declared in both must agree.
    pub fn merge(&mut self, other: &Schema, span: Span, diags: &mut Vec<Diagnostic>) {
        for field in &other.root.fields {
            match self.root.get(&field.name) {
                Some((_, mine)) if mine != field => diags.push(
                    Diagnostic::error(
                        "E112",
                        span,
                        format!(
                            "field `{}` is declared with two different types",
                            field.name
                        ),
                    )
                    .with_help(format!(
                        "one file says `{}`, another `{}`",
                        mine.ty, field.ty
                    )),
                ),
                Some(_) => {}
                None => self.root.fields.push(field.clone()),
            }
        }
    }

    /// Field names in slot order.
    pub fn field_names(&self) -> Vec<String> {
        self.root.fields.iter().map(|f| f.name.clone()).collect()
    }
}

fn object_from_decls(fields: &[FieldDecl], diags: &mut Vec<Diagnostic>) -> ObjectType {
    let mut out = ObjectType::default();
    for decl in fields {
        if out.get(&decl.name.name).is_some() {
            diags.push(Diagnostic::error(
                "E111",
                decl.name.span,
                format!("field `{}` is declared twice", decl.name.name),
            ));
            continue;
        }
        out.fields.push(FieldType {
            name: decl.name.name.clone(),
            ty: type_from_expr(&decl.ty, diags),
            optional: decl.optional,
        });
    }
    out
}

/// The type names a schema accepts.
pub(crate) const TYPE_NAMES: [&str; 10] = [
    "int", "uint", "float", "number", "string", "bool", "date", "datetime", "duration", "any",
];

fn type_from_expr(ty: &TypeExpr, diags: &mut Vec<Diagnostic>) -> Type {
    match ty {
        TypeExpr::Named { name } => match name.name.as_str() {
            "int" => Type::Int,
            "uint" => Type::UInt,
            "float" => Type::Float,
            "number" => Type::Number,
            "string" => Type::String,
            "bool" => Type::Bool,
            "date" => Type::Date,
            "datetime" => Type::DateTime,
            "duration" => Type::Duration,
            "any" => Type::Any,
            other => {
                diags.push(
                    Diagnostic::error("E113", name.span, format!("unknown type `{other}`"))
                        .with_help_opt(did_you_mean(other, TYPE_NAMES).or_else(|| {
                            Some(format!(
                                "types are {}, enums `a | b`, `list<T>` and `{{ field: T }}`",
                                TYPE_NAMES.join(", ")
                            ))
                        })),
                );
                Type::Any
            }
        },
        TypeExpr::Enum { variants } => {
            let mut names: Vec<String> = Vec::new();
            for v in variants {
                if names.contains(&v.name) {
                    diags.push(Diagnostic::error(
                        "E111",
                        v.span,
                        format!("enum value `{}` is listed twice", v.name),
                    ));
                } else {
                    names.push(v.name.clone());
                }
            }
            Type::Enum(names.into())
        }
        TypeExpr::List { element } => Type::List(Box::new(type_from_expr(element, diags))),
        TypeExpr::Object { fields } => Type::Object(Arc::new(object_from_decls(fields, diags))),
    }
}
