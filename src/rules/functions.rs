//! Built-in functions and the registry for custom ones.
//!
//! Custom functions are registered from Rust with a signature, so the checker
//! type-checks calls to them exactly like calls to built-ins.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, FixedOffset};

use super::ast::Quantifier;
use super::context::EvalError;
use super::ops::{self, Budget};
use super::schema::Type;
use super::strings;
use crate::value::{OwnedValue, Value};

/// The body of a custom function: arguments in, a value or an error message out.
pub type FunctionImpl = dyn Fn(&[Value<'_>]) -> Result<OwnedValue, String> + Send + Sync;

/// The built-in functions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Builtin {
    Len,
    Lower,
    Upper,
    Trim,
    Abs,
    Round,
    Floor,
    Ceil,
    Min,
    Max,
    Now,
    Today,
    Sum,
    Distinct,
    Keys,
    Values,
    Split,
    Join,
    Replace,
    Substring,
    IndexOf,
    TrimStart,
    TrimEnd,
    PadStart,
    PadEnd,
    ToInt,
    ToFloat,
    ToString,
    ToDate,
    ToDateTime,
    TypeOf,
}

/// A function callable from rules.
#[derive(Clone)]
pub struct Function {
    pub(crate) name: String,
    pub(crate) params: Vec<Type>,
    pub(crate) variadic: bool,
    pub(crate) ret: Type,
    pub(crate) builtin: Option<Builtin>,
    pub(crate) imp: Option<Arc<FunctionImpl>>,
}

impl fmt::Debug for Function {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.signature())
    }
}

impl Function {
    /// `name(a, b) -> ret` for help texts.
    pub fn signature(&self) -> String {
        let params: Vec<String> = (0..self.params.len()).map(|i| self.param_text(i)).collect();
        let dots = if self.variadic { ", ..." } else { "" };
        format!(
            "the function is `{}({}{dots}) -> {}`",
            self.name,
            params.join(", "),
            self.ret
        )
    }
}

impl Function {
    /// The type parameter `i` takes, as help texts write it (variadic
    /// functions repeat their last parameter).
    pub(crate) fn param_text(&self, i: usize) -> String {
        match self.builtin {
            Some(Builtin::Len) => "string | list | object".to_string(),
            Some(Builtin::Min | Builtin::Max) if i == 0 => "list | number".to_string(),
            Some(Builtin::Keys | Builtin::Values) => "object".to_string(),
            Some(Builtin::Sum) => "list<number> | list<duration>".to_string(),
            _ => self
                .params
                .get(i)
                .or(self.params.last())
                .map_or_else(|| "any".to_string(), ToString::to_string),
        }
    }

    /// Does parameter `i` of a call with `n_args` arguments accept an argument
    /// of type `got`? The one test of argument types, for built-ins and custom
    /// functions alike.
    pub(crate) fn accepts(&self, i: usize, n_args: usize, got: &Type) -> bool {
        match self.builtin {
            Some(Builtin::Len) => {
                matches!(got, Type::Any | Type::List(_) | Type::Object(_)) || got.is_stringy()
            }
            // `min(xs)` over a list, or `min(a, b, ...)` over numbers
            Some(Builtin::Min | Builtin::Max) if n_args == 1 => {
                matches!(got, Type::List(_)) || accepts(&Type::Number, got)
            }
            Some(Builtin::Min | Builtin::Max) => accepts(&Type::Number, got),
            Some(Builtin::Keys | Builtin::Values) => matches!(got, Type::Any | Type::Object(_)),
            Some(Builtin::Sum) => match got {
                Type::Any => true,
                Type::List(t) => summable(t),
                _ => false,
            },
            _ => self
                .params
                .get(i)
                .or(self.params.last())
                .is_none_or(|want| accepts(want, got)),
        }
    }
}

/// Can values of this type be added up (`sum`)?
pub(crate) fn summable(t: &Type) -> bool {
    t.is_numeric() || matches!(t, Type::Any | Type::Duration)
}

/// Does a parameter of type `want` accept a value of type `got`? Lists by
/// their elements; objects when every field `want` requires is there and fits.
fn accepts(want: &Type, got: &Type) -> bool {
    match (want, got) {
        (Type::Any, _) | (_, Type::Any) => true,
        (Type::Number | Type::Float, g) if g.is_numeric() => true,
        (Type::String, g) if g.is_stringy() => true,
        (Type::Int, Type::UInt) => true,
        (Type::List(w), Type::List(g)) => accepts(w, g),
        (Type::Object(w), Type::Object(g)) => w.fields.iter().all(|wf| match g.get(&wf.name) {
            Some((_, gf)) => accepts(&wf.ty, &gf.ty),
            None => wf.optional,
        }),
        (w, g) => w == g,
    }
}

/// Names that look like calls but are forms of the language, which the
/// checker reads itself (`has(path)` looks at a path, not at a value).
pub(crate) const RESERVED: [&str; 1] = ["has"];

/// The functions rules may call: the built-ins plus any registered from Rust.
#[derive(Clone, Debug)]
pub struct Functions {
    by_name: BTreeMap<String, Function>,
}

impl Default for Functions {
    fn default() -> Functions {
        Functions::new()
    }
}

/// Registering a function failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("function `{0}` already exists")]
pub struct DuplicateFunction(pub String);

impl Functions {
    /// The built-ins: `len lower upper trim abs round floor ceil min max now
    /// today sum distinct keys values split join replace substring index_of
    /// trim_start trim_end pad_start pad_end int float string date datetime
    /// type` (docs/language.md, "Functions").
    pub fn new() -> Functions {
        use Builtin::*;
        let text = || Type::String;
        let num = || Type::Number;
        let list = || Type::List(Box::new(Type::Any));
        let int = || Type::Int;
        let strings = || Type::List(Box::new(Type::String));
        let table: [(&str, Builtin, Vec<Type>, bool, Type); 31] = [
            ("len", Len, vec![Type::Any], false, Type::Int),
            ("lower", Lower, vec![text()], false, text()),
            ("upper", Upper, vec![text()], false, text()),
            ("trim", Trim, vec![text()], false, text()),
            ("abs", Abs, vec![num()], false, num()),
            ("round", Round, vec![num()], false, Type::Int),
            ("floor", Floor, vec![num()], false, Type::Int),
            ("ceil", Ceil, vec![num()], false, Type::Int),
            ("min", Min, vec![num()], true, num()),
            ("max", Max, vec![num()], true, num()),
            ("now", Now, vec![], false, Type::DateTime),
            ("today", Today, vec![], false, Type::Date),
            ("sum", Sum, vec![list()], false, num()),
            ("distinct", Distinct, vec![list()], false, list()),
            (
                "keys",
                Keys,
                vec![Type::Any],
                false,
                Type::List(Box::new(text())),
            ),
            ("values", Values, vec![Type::Any], false, list()),
            ("split", Split, vec![text(), text()], false, strings()),
            ("join", Join, vec![strings(), text()], false, text()),
            (
                "replace",
                Replace,
                vec![text(), text(), text()],
                false,
                text(),
            ),
            (
                "substring",
                Substring,
                vec![text(), int(), int()],
                false,
                text(),
            ),
            ("index_of", IndexOf, vec![text(), text()], false, int()),
            ("trim_start", TrimStart, vec![text()], false, text()),
            ("trim_end", TrimEnd, vec![text()], false, text()),
            (
                "pad_start",
                PadStart,
                vec![text(), int(), text()],
                false,
                text(),
            ),
            (
                "pad_end",
                PadEnd,
                vec![text(), int(), text()],
                false,
                text(),
            ),
            ("int", ToInt, vec![Type::Any], false, int()),
            ("float", ToFloat, vec![Type::Any], false, Type::Float),
            ("string", ToString, vec![Type::Any], false, text()),
            ("date", ToDate, vec![Type::Any], false, Type::Date),
            (
                "datetime",
                ToDateTime,
                vec![Type::Any],
                false,
                Type::DateTime,
            ),
            ("type", TypeOf, vec![Type::Any], false, text()),
        ];
        let by_name = table
            .into_iter()
            .map(|(name, b, params, variadic, ret)| {
                (
                    name.to_string(),
                    Function {
                        name: name.to_string(),
                        params,
                        variadic,
                        ret,
                        builtin: Some(b),
                        imp: None,
                    },
                )
            })
            .collect();
        Functions { by_name }
    }

    /// Register a custom function with its parameter and result types.
    ///
    /// ```
    /// use rulesaga::rules::{Functions, Type};
    /// use rulesaga::Value;
    /// let mut fns = Functions::new();
    /// fns.register("vat", vec![Type::Number], Type::Float, |args| match args {
    ///     [Value::Int(i)] => Ok(Value::Float(*i as f64 * 0.2)),
    ///     [Value::Float(x)] => Ok(Value::Float(x * 0.2)),
    ///     _ => Err("vat needs a number".to_string()),
    /// }).unwrap();
    /// ```
    pub fn register(
        &mut self,
        name: &str,
        params: Vec<Type>,
        ret: Type,
        imp: impl Fn(&[Value<'_>]) -> Result<OwnedValue, String> + Send + Sync + 'static,
    ) -> Result<(), DuplicateFunction> {
        if self.by_name.contains_key(name) || RESERVED.contains(&name) {
            return Err(DuplicateFunction(name.to_string()));
        }
        self.by_name.insert(
            name.to_string(),
            Function {
                name: name.to_string(),
                params,
                variadic: false,
                ret,
                builtin: None,
                imp: Some(Arc::new(imp)),
            },
        );
        Ok(())
    }

    pub(crate) fn get(&self, name: &str) -> Option<&Function> {
        self.by_name.get(name)
    }

    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }
}

/// The int `round`, `floor` or `ceil` gives: an error when it does not fit 64 bits.
fn to_int(x: f64, name: &str) -> Result<Option<Value<'static>>, EvalError> {
    match ops::float_to_int(x) {
        Some(i) => Ok(Some(Value::Int(i))),
        None => Err(EvalError::Overflow(format!("{name}(..)"))),
    }
}

/// Call a function. `Ok(None)` is "no value" (an argument missing, null or of
/// the wrong type without a schema). Functions that visit the elements of a
/// list charge them to the evaluation's step budget (`budget`).
pub(crate) fn call<'r>(
    func: &Function,
    args: &[Value<'r>],
    now: DateTime<FixedOffset>,
    budget: &mut Budget,
) -> Result<Option<Value<'r>>, EvalError> {
    use Builtin::*;
    let Some(builtin) = func.builtin else {
        let Some(imp) = &func.imp else {
            return Ok(None);
        };
        return imp(args).map(Some).map_err(|message| EvalError::Function {
            name: func.name.clone(),
            message,
        });
    };
    let first = args.first();
    Ok(match (builtin, first) {
        (Now, _) => Some(Value::DateTime(now)),
        (Today, _) => Some(Value::Date(now.date_naive())),
        (Len, Some(Value::Str(s))) => Some(Value::Int(
            i64::try_from(s.chars().count()).unwrap_or(i64::MAX),
        )),
        (Len, Some(v)) if ops::object_len(v).or(v.list_len()).is_some() => {
            let n = ops::object_len(v).or(v.list_len()).unwrap_or(0);
            Some(Value::Int(i64::try_from(n).unwrap_or(i64::MAX)))
        }
        (Min, Some(list)) if args.len() == 1 && list.list_len().is_some() => {
            ops::fold_list(Quantifier::Min, list, budget, "min(..)")?
        }
        (Max, Some(list)) if args.len() == 1 && list.list_len().is_some() => {
            ops::fold_list(Quantifier::Max, list, budget, "max(..)")?
        }
        (Sum, Some(list)) if list.list_len().is_some() => {
            ops::fold_list(Quantifier::Sum, list, budget, "sum(..)")?
        }
        (Distinct, Some(list)) if list.list_len().is_some() => ops::distinct(list, budget)?,
        (Keys, Some(v)) if ops::object_len(v).is_some() => ops::keys(v),
        (Values, Some(v)) if ops::object_len(v).is_some() => ops::values(v),
        (Lower, Some(Value::Str(s))) => Some(Value::Str(Cow::Owned(s.to_lowercase()))),
        (Upper, Some(Value::Str(s))) => Some(Value::Str(Cow::Owned(s.to_uppercase()))),
        (Trim | TrimStart | TrimEnd, Some(Value::Str(s))) => {
            Some(Value::Str(strings::trim(s, builtin)))
        }
        (ToInt | ToFloat | ToString | ToDate | ToDateTime | TypeOf, Some(v)) => {
            Some(ops::convert(builtin, v)?)
        }
        (Split | Join | Replace | Substring | IndexOf | PadStart | PadEnd, _) => {
            match strings::call(builtin, &func.name, args)? {
                Some(v) => Some(v),
                None => return Err(wrong_arguments(func, args)),
            }
        }
        (Abs, Some(Value::Int(i))) => Some(Value::Int(
            i.checked_abs()
                .ok_or_else(|| EvalError::Overflow("abs(..)".to_string()))?,
        )),
        (Abs, Some(Value::Float(x))) => Some(Value::Float(x.abs())),
        (Round | Floor | Ceil, Some(Value::Int(i))) => Some(Value::Int(*i)),
        (Round, Some(Value::Float(x))) => to_int(x.round(), "round")?,
        (Floor, Some(Value::Float(x))) => to_int(x.floor(), "floor")?,
        (Ceil, Some(Value::Float(x))) => to_int(x.ceil(), "ceil")?,
        (Min | Max, Some(_)) => {
            let mut best: Option<&Value<'r>> = None;
            for a in args {
                if !matches!(a, Value::Int(_) | Value::Float(_)) {
                    return Err(wrong_arguments(func, args));
                }
                best = match best {
                    None => Some(a),
                    Some(b) => {
                        let ord = ops::compare(a, b);
                        let take = match builtin {
                            Min => ord == Some(std::cmp::Ordering::Less),
                            _ => ord == Some(std::cmp::Ordering::Greater),
                        };
                        Some(if take { a } else { b })
                    }
                };
            }
            best.cloned()
        }
        _ => return Err(wrong_arguments(func, args)),
    })
}

/// A built-in given present values it cannot take (only possible where their
/// types are not known when compiling): an error naming them, never a
/// silent missing value.
#[cold]
fn wrong_arguments(func: &Function, args: &[Value<'_>]) -> EvalError {
    let shown: Vec<String> = args.iter().map(ops::shown).collect();
    let params: Vec<String> = (0..args.len()).map(|i| func.param_text(i)).collect();
    ops::value_error(
        &format!("{}(..)", func.name),
        format!(
            "expects ({}), found ({})",
            params.join(", "),
            shown.join(", ")
        ),
    )
}
