//! Runtime operations on values: reading fields and paths, comparison,
//! equality, ordering, membership, `between`, arithmetic, `has` and `??`, the
//! null rule for function arguments, the quantifier step budget, and
//! conditions (what `and`, `not` and the condition of `if` read).
//!
//! These functions define the semantics written in `docs/language.md`. Every
//! evaluator (the flat jump list in `flat`, the closures in `compile`, the
//! explaining interpreter in `explain`) calls them and keeps only *how* it
//! evaluates, so they can never disagree about *what* an operator means.

use std::borrow::Cow;
use std::cmp::Ordering;

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveTime, TimeDelta};

use super::ast::{BinaryOp, Quantifier};
use super::checked::Step;
use super::context::EvalError;
use super::functions::{Builtin, Function};
use super::lexical;
use super::schema::Type;
use crate::value::{FieldRef, OwnedValue, Record, Value, cmp_int_float, json_value};

/// Read a top-level field by slot (and name); a float that is not finite is
/// rejected, whichever record type produced it.
#[inline]
pub(crate) fn read_field<'r, R: Record + ?Sized>(
    record: &'r R,
    name: &str,
    slot: u32,
) -> Result<Option<Value<'r>>, EvalError> {
    let v = record.field(FieldRef {
        name,
        slot: Some(slot),
    });
    if let Some(Value::Float(x)) = v
        && !x.is_finite()
    {
        return Err(EvalError::NotFinite(name.to_string()));
    }
    Ok(v)
}

/// Follow one path step: a field of an object, an element of a list.
pub(crate) fn walk<'r>(v: Value<'r>, step: &Step) -> Option<Value<'r>> {
    match (v, step) {
        (Value::Object(o), Step::Field(name)) => o.field(FieldRef { name, slot: None }),
        (Value::OwnedObject(o), Step::Field(name)) => {
            o.get(name).map(|j| Value::from_json_owned(j.clone()))
        }
        (Value::List(l), Step::Index(i)) => l.get(*i),
        (Value::OwnedList(l), Step::Index(i)) => l.get(*i).cloned(),
        _ => None,
    }
}

/// `base[index]` computed (`items[i]`, `headers[name]`): a list by an int
/// (missing past either end, as `items[5]` is), an object by a string key
/// (missing when absent); missing when either is missing or null; an error for
/// an index that cannot index the value (`items["a"]`, `items[1.5]`).
pub(crate) fn index<'r>(
    base: Option<Value<'r>>,
    index: Option<Value<'r>>,
    what: &str,
) -> Result<Option<Value<'r>>, EvalError> {
    let (Some(base), Some(index)) = (present(base), present(index)) else {
        return Ok(None);
    };
    let step = match (&base, &index) {
        (Value::List(_) | Value::OwnedList(_), Value::Int(i)) => match usize::try_from(*i) {
            Ok(i) => Step::Index(i),
            Err(_) => return Ok(None),
        },
        (Value::Object(_) | Value::OwnedObject(_), Value::Str(k)) => Step::Field(k.to_string()),
        _ => {
            let message = format!("cannot index {} by {}", shown(&base), shown(&index));
            return Err(value_error(what, message));
        }
    };
    Ok(walk(base, &step))
}

/// Follow a whole path; missing as soon as a step is.
pub(crate) fn walk_path<'r>(v: Option<Value<'r>>, steps: &[Step]) -> Option<Value<'r>> {
    let mut cur = v;
    for step in steps {
        cur = walk(cur?, step);
    }
    cur
}

/// A value the schema declares `date`, `datetime` or `duration`, read from data
/// that may hold it as text: the text decoded as literals are (`2024-01-31`,
/// RFC 3339, `30d`); other values, and text that does not decode, as they are.
pub(crate) fn coerce<'r>(v: Value<'r>, ty: &Type) -> Value<'r> {
    if let Value::Str(s) = &v {
        let decoded = match ty {
            Type::Date => lexical::date(s).map(Value::Date),
            Type::DateTime => lexical::datetime(s).map(Value::DateTime),
            Type::Duration => lexical::duration(s).map(Value::Duration),
            _ => None,
        };
        if let Some(d) = decoded {
            return d;
        }
    }
    v
}

/// Missing or null both mean "no value" to an operator.
#[inline]
pub(crate) fn present(v: Option<Value<'_>>) -> Option<Value<'_>> {
    match v {
        None | Some(Value::Null) => None,
        v => v,
    }
}

/// A value used as a condition: `true` holds; `false`, missing and null do
/// not; any other value is an error (`what` names the expression), never a
/// silent `false`. With a known type this is a compile error (E106) instead.
#[inline]
pub(crate) fn truth(
    v: &Option<Value<'_>>,
    what: impl FnOnce() -> String,
) -> Result<bool, EvalError> {
    match v {
        Some(Value::Bool(b)) => Ok(*b),
        None | Some(Value::Null) => Ok(false),
        Some(other) => Err(not_a_condition(what(), other)),
    }
}

#[cold]
fn not_a_condition(what: String, v: &Value<'_>) -> EvalError {
    EvalError::NotACondition {
        what,
        found: v.type_name(),
    }
}

/// The arguments a function is called with, by the null rule: a built-in given
/// a missing or null argument yields missing (`None` here: do not call it); a
/// custom function receives `null`; `type(null)` is `"null"`.
pub(crate) fn call_args<'r>(
    func: &Function,
    args: impl IntoIterator<Item = Option<Value<'r>>>,
) -> Option<Vec<Value<'r>>> {
    let mut out = Vec::new();
    for a in args {
        match a {
            Some(Value::Null) if func.builtin == Some(Builtin::TypeOf) => out.push(Value::Null),
            a => match present(a) {
                Some(v) => out.push(v),
                None if func.builtin.is_some() => return None,
                None => out.push(Value::Null),
            },
        }
    }
    Some(out)
}

/// The conversions `int float string date datetime` and `type`: the value
/// as that type, or an error that names it (never a default). `int` takes
/// only whole numbers (`round`, `floor` and `ceil` say how to make one);
/// strings are read as literals are (`"42"`, `"2.5"`, `2024-01-31`, RFC 3339).
pub(crate) fn convert<'r>(to: Builtin, v: &Value<'r>) -> Result<Value<'r>, EvalError> {
    let fail = |name: &str, why: &str| {
        value_error(
            &format!("{name}(..)"),
            format!("cannot convert {} to {name}{why}", shown(v)),
        )
    };
    Ok(match (to, v) {
        (Builtin::TypeOf, v) => Value::str(v.type_name()),
        (Builtin::ToInt, Value::Int(i)) => Value::Int(*i),
        (Builtin::ToInt, Value::Float(x)) => match float_to_int(*x) {
            Some(i) => Value::Int(i),
            None => {
                let why = ": it is not a whole number of 64 bits (round, floor and ceil make one)";
                return Err(fail("int", why));
            }
        },
        (Builtin::ToInt, Value::Str(s)) => match s.parse::<i64>() {
            Ok(i) => Value::Int(i),
            Err(_) => return Err(fail("int", "")),
        },
        (Builtin::ToFloat, Value::Int(i)) => Value::Float(*i as f64),
        (Builtin::ToFloat, Value::Float(x)) => Value::Float(*x),
        // only decimal text: no `inf` or `NaN`
        (Builtin::ToFloat, Value::Str(s))
            if !s.contains(|c: char| c.is_ascii_alphabetic() && c != 'e' && c != 'E') =>
        {
            match s.parse::<f64>() {
                Ok(x) if x.is_finite() => Value::Float(x),
                _ => return Err(fail("float", "")),
            }
        }
        (Builtin::ToString, Value::Str(s)) => Value::Str(s.clone()),
        (
            Builtin::ToString,
            Value::List(_) | Value::OwnedList(_) | Value::Object(_) | Value::OwnedObject(_),
        ) => Value::Str(Cow::Owned(v.to_json().to_string())),
        (Builtin::ToString, v) => Value::Str(Cow::Owned(v.to_string())),
        // a date string or a datetime string, as comparisons read them
        (Builtin::ToDate | Builtin::ToDateTime, Value::Str(s)) => match temporal(s) {
            Some(t) => convert(to, &t)?,
            None if to == Builtin::ToDate => {
                return Err(fail("date", " (write it as YYYY-MM-DD)"));
            }
            None => {
                let why = " (write it in RFC 3339, such as 2024-01-31T12:00:00Z)";
                return Err(fail("datetime", why));
            }
        },
        (Builtin::ToDate, Value::Date(d)) => Value::Date(*d),
        (Builtin::ToDate, Value::DateTime(d)) => Value::Date(d.date_naive()),
        (Builtin::ToDateTime, Value::DateTime(d)) => Value::DateTime(*d),
        (Builtin::ToDateTime, Value::Date(d)) => Value::DateTime(date_to_datetime(*d)),
        (Builtin::ToInt, _) => return Err(fail("int", "")),
        (Builtin::ToFloat, _) => return Err(fail("float", "")),
        (Builtin::ToDate, _) => return Err(fail("date", "")),
        (Builtin::ToDateTime, _) => return Err(fail("datetime", "")),
        _ => return Err(fail("a value", "")),
    })
}

/// The step budget of one evaluation (`Context::max_steps`): every element a
/// quantifier, comprehension or list function visits is a step.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Budget {
    steps: u64,
    max: u64,
}

impl Budget {
    pub fn new(max: u64) -> Budget {
        Budget { steps: 0, max }
    }

    /// Charge the visit of `n` elements; an error once the budget is spent.
    #[inline]
    pub fn charge(&mut self, n: usize) -> Result<(), EvalError> {
        self.steps = self.steps.saturating_add(n as u64);
        if self.steps > self.max {
            return Err(EvalError::CostExceeded(self.max));
        }
        Ok(())
    }
}

/// The element `i` of a list value (null past the end, which cannot happen
/// below its length).
pub(crate) fn element<'r>(list: &Value<'r>, i: usize) -> Value<'r> {
    let el = match list {
        Value::List(items) => items.get(i),
        Value::OwnedList(items) => items.get(i).cloned(),
        _ => None,
    };
    el.unwrap_or(Value::Null)
}

/// A value as error messages name it: its type and its text (`string "a"`).
pub(crate) fn shown(v: &Value<'_>) -> String {
    format!("{} {v}", v.type_name())
}

#[cold]
pub(crate) fn value_error(what: &str, message: String) -> EvalError {
    EvalError::Value {
        what: what.to_string(),
        message,
    }
}

/// What the body of a quantifier or comprehension gave for one element: a
/// predicate's truth, or a value (`sum`, `min`, `max`, `map`).
pub(crate) enum Body<'r> {
    Holds(bool),
    Value(Option<Value<'r>>),
}

/// A quantifier or comprehension computed element by element, the one
/// semantics of `any all exists_one count filter map sum min max` (and of
/// `sum(xs)`, `min(xs)`, `max(xs)`): feed it each element with its body's
/// result until [`Fold::push`] says the result is decided, then [`Fold::finish`].
///
/// `sum` adds numbers or durations (0 for no elements); `min`/`max` keep the
/// smallest/largest by [`compare`] (missing for no elements). Both are missing
/// as soon as a value is missing or null, as arithmetic on a missing value is,
/// and an error for a value they cannot take (never a silent skip). `map`
/// keeps a missing value as null, as a list literal does.
pub(crate) struct Fold<'r> {
    quantifier: Quantifier,
    /// Elements that satisfied the predicate so far.
    hits: usize,
    /// The sum, or the best element, so far.
    acc: Option<Value<'r>>,
    /// A value was missing or null: the sum or extreme is missing.
    missing: bool,
    /// What `filter` and `map` build.
    items: Vec<OwnedValue>,
    index: usize,
}

impl<'r> Fold<'r> {
    pub fn new(quantifier: Quantifier) -> Fold<'r> {
        Fold {
            quantifier,
            hits: 0,
            acc: None,
            missing: false,
            items: Vec::new(),
            index: 0,
        }
    }

    /// Take one element and its body's result; `Ok(false)` once the result is
    /// decided (no further element can change it). `what` names the
    /// expression in errors.
    pub fn push(
        &mut self,
        element: Value<'r>,
        body: Body<'r>,
        what: &str,
    ) -> Result<bool, EvalError> {
        let i = self.index;
        self.index += 1;
        let holds = match body {
            Body::Holds(b) => b,
            Body::Value(v) => return self.push_value(v, i, what),
        };
        if holds {
            self.hits += 1;
        }
        Ok(match self.quantifier {
            Quantifier::Any => !holds,
            Quantifier::All => holds,
            Quantifier::ExistsOne => self.hits < 2,
            Quantifier::Filter => {
                if holds {
                    self.items.push(element.into_owned());
                }
                true
            }
            _ => true,
        })
    }

    fn push_value(
        &mut self,
        v: Option<Value<'r>>,
        i: usize,
        what: &str,
    ) -> Result<bool, EvalError> {
        if self.quantifier == Quantifier::Map {
            self.items.push(v.map_or(Value::Null, Value::into_owned));
            return Ok(true);
        }
        let Some(v) = present(v) else {
            self.missing = true;
            return Ok(false);
        };
        let next = match (self.quantifier, self.acc.take()) {
            (Quantifier::Sum, _)
                if !matches!(v, Value::Int(_) | Value::Float(_) | Value::Duration(_)) =>
            {
                let message = format!("element {i} is {}, not a number", shown(&v));
                return Err(value_error(what, message));
            }
            (_, None) => v,
            (Quantifier::Sum, Some(t)) => match arith(BinaryOp::Add, &t, &v, what)? {
                Some(r) => r,
                None => {
                    let message = format!("cannot add {} to {}", shown(&v), shown(&t));
                    return Err(value_error(what, message));
                }
            },
            (q, Some(best)) => {
                let Some(ord) = compare(&v, &best) else {
                    let message = format!("cannot order {} and {}", shown(&best), shown(&v));
                    return Err(value_error(what, message));
                };
                let want = if q == Quantifier::Min {
                    Ordering::Less
                } else {
                    Ordering::Greater
                };
                if ord == want { v } else { best }
            }
        };
        // a single value must have an order too (`min([true])`)
        if matches!(self.quantifier, Quantifier::Min | Quantifier::Max)
            && compare(&next, &next).is_none()
        {
            let message = format!("cannot order {}", shown(&next));
            return Err(value_error(what, message));
        }
        self.acc = Some(next);
        Ok(true)
    }

    /// Does it compute a value rather than a condition?
    pub fn is_value(quantifier: Quantifier) -> bool {
        !matches!(
            quantifier,
            Quantifier::Any | Quantifier::All | Quantifier::ExistsOne
        )
    }

    /// The result.
    pub fn finish(self) -> Option<Value<'r>> {
        let count = || Value::Int(i64::try_from(self.hits).unwrap_or(i64::MAX));
        match self.quantifier {
            Quantifier::Any => Some(Value::Bool(self.hits > 0)),
            Quantifier::All => Some(Value::Bool(self.hits == self.index)),
            Quantifier::ExistsOne => Some(Value::Bool(self.hits == 1)),
            Quantifier::Count => Some(count()),
            Quantifier::Filter | Quantifier::Map => Some(Value::OwnedList(self.items.into())),
            _ if self.missing => None,
            Quantifier::Sum => Some(self.acc.unwrap_or(Value::Int(0))),
            Quantifier::Min | Quantifier::Max => self.acc,
        }
    }
}

/// A quantifier or comprehension over a missing, null or non-list value: the
/// conditions (`any`, `all`, `exists_one`) are false, the others missing.
pub(crate) fn over_nothing(quantifier: Quantifier) -> Option<OwnedValue> {
    (!Fold::is_value(quantifier)).then_some(Value::Bool(false))
}

/// `sum(xs)`, `min(xs)`, `max(xs)`: the comprehension over the list's own
/// elements, each charged to the budget.
pub(crate) fn fold_list<'r>(
    quantifier: Quantifier,
    list: &Value<'r>,
    budget: &mut Budget,
    what: &str,
) -> Result<Option<Value<'r>>, EvalError> {
    let Some(n) = list.list_len() else {
        return Ok(None);
    };
    budget.charge(n)?;
    let mut fold = Fold::new(quantifier);
    for i in 0..n {
        let el = element(list, i);
        if !fold.push(el.clone(), Body::Value(Some(el)), what)? {
            break;
        }
    }
    Ok(fold.finish())
}

/// The elements of a list without repeats (by [`equals`]), first ones kept, in
/// order; each comparison is a step of the budget.
pub(crate) fn distinct<'r>(
    list: &Value<'r>,
    budget: &mut Budget,
) -> Result<Option<Value<'r>>, EvalError> {
    let Some(n) = list.list_len() else {
        return Ok(None);
    };
    let mut out: Vec<OwnedValue> = Vec::new();
    for i in 0..n {
        budget.charge(out.len().max(1))?;
        let v = element(list, i);
        if !out.iter().any(|o| equals(o, &v)) {
            out.push(v.into_owned());
        }
    }
    Ok(Some(Value::OwnedList(out.into())))
}

/// `xs + ys`: the elements of both, in order.
fn concat<'r>(a: &Value<'r>, b: &Value<'r>) -> Option<Value<'r>> {
    let (n, m) = (a.list_len()?, b.list_len()?);
    let items: Vec<OwnedValue> = (0..n)
        .map(|i| element(a, i))
        .chain((0..m).map(|i| element(b, i)))
        .map(Value::into_owned)
        .collect();
    Some(Value::OwnedList(items.into()))
}

/// The keys of an object value, sorted (`None` when it is not one).
fn sorted_entries(v: &Value<'_>) -> Option<Vec<(String, serde_json::Value)>> {
    let map = object_map(v)?;
    let mut entries: Vec<(String, serde_json::Value)> =
        map.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    Some(entries)
}

/// An object from keys and values (`{k: v}`), kept as JSON (a date or a
/// duration as its text); a missing value is null.
pub(crate) fn object_of<'v>(
    entries: impl Iterator<Item = (String, Option<Value<'v>>)>,
) -> OwnedValue {
    let map: serde_json::Map<String, serde_json::Value> = entries
        .map(|(k, v)| (k, v.map_or(serde_json::Value::Null, |v| v.to_json())))
        .collect();
    Value::OwnedObject(std::sync::Arc::new(map))
}

/// `keys(m)`: the keys of an object, sorted by code point.
pub(crate) fn keys(v: &Value<'_>) -> Option<OwnedValue> {
    let entries = sorted_entries(v)?;
    let keys: Vec<OwnedValue> = entries
        .into_iter()
        .map(|(k, _)| Value::Str(Cow::Owned(k)))
        .collect();
    Some(Value::OwnedList(keys.into()))
}

/// `values(m)`: the values of an object, in the order of its sorted keys.
pub(crate) fn values(v: &Value<'_>) -> Option<OwnedValue> {
    let entries = sorted_entries(v)?;
    let values: Vec<OwnedValue> = entries
        .into_iter()
        .map(|(_, v)| Value::from_json_owned(v))
        .collect();
    Some(Value::OwnedList(values.into()))
}

/// The number of keys of an object value (`len(m)`).
pub(crate) fn object_len(v: &Value<'_>) -> Option<usize> {
    match v {
        Value::OwnedObject(map) => Some(map.len()),
        Value::Object(_) => object_map(v).map(|m| m.len()),
        _ => None,
    }
}

fn date_to_datetime(d: NaiveDate) -> DateTime<FixedOffset> {
    d.and_time(NaiveTime::MIN).and_utc().fixed_offset()
}

/// Order two values, or `None` when they have no order: different types,
/// booleans, lists, objects, a date string that does not parse. (The checker's
/// [`Type::orderable_with`] is the same test on types.)
pub(crate) fn compare(a: &Value<'_>, b: &Value<'_>) -> Option<Ordering> {
    use Value::*;
    match (a, b) {
        (Int(x), Int(y)) => Some(x.cmp(y)),
        (Float(x), Float(y)) => x.partial_cmp(y),
        (Int(x), Float(y)) => cmp_int_float(*x, *y),
        (Float(x), Int(y)) => cmp_int_float(*y, *x).map(Ordering::reverse),
        (Str(x), Str(y)) => Some(x.as_ref().cmp(y.as_ref())),
        (Date(x), Date(y)) => Some(x.cmp(y)),
        (DateTime(x), DateTime(y)) => Some(x.cmp(y)),
        (Date(x), DateTime(y)) => Some(date_to_datetime(*x).cmp(y)),
        (DateTime(x), Date(y)) => Some(x.cmp(&date_to_datetime(*y))),
        (Duration(x), Duration(y)) => Some(x.cmp(y)),
        (Date(_) | DateTime(_), Str(s)) => compare(a, &temporal_from_str(a, s)?),
        (Str(s), Date(_) | DateTime(_)) => compare(&temporal_from_str(b, s)?, b),
        _ => None,
    }
}

/// A date (`YYYY-MM-DD`) or RFC 3339 datetime string as that value.
fn temporal(s: &str) -> Option<OwnedValue> {
    lexical::date(s)
        .map(Value::Date)
        .or_else(|| lexical::datetime(s).map(Value::DateTime))
}

/// An integral float as an int when it fits in 64 bits (`9.22e18` does,
/// `-9223372036854775808.0` does, `9223372036854775808.0` does not).
pub(crate) fn float_to_int(x: f64) -> Option<i64> {
    // 2^63 is exact as a float
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    (x.fract() == 0.0 && (-TWO_63..TWO_63).contains(&x)).then_some(x as i64)
}

/// Parse a string as the same temporal kind as `like` (a date string may also
/// compare with a datetime, and the other way round).
fn temporal_from_str(like: &Value<'_>, s: &str) -> Option<OwnedValue> {
    match like {
        Value::Date(_) => lexical::date(s)
            .map(Value::Date)
            .or_else(|| lexical::datetime(s).map(Value::DateTime)),
        _ => lexical::datetime(s)
            .map(Value::DateTime)
            .or_else(|| lexical::date(s).map(Value::Date)),
    }
}

/// Equality: numbers mathematically, strings exactly, dates against date strings,
/// lists element by element and objects key by key (by this same equality, so
/// `{"k": 1} == {"k": 1.0}`); values of different types are not equal.
pub(crate) fn equals(a: &Value<'_>, b: &Value<'_>) -> bool {
    use Value::*;
    match (a, b) {
        (Null, Null) => true,
        (Bool(x), Bool(y)) => x == y,
        (Str(x), Str(y)) => x == y,
        (List(_) | OwnedList(_), List(_) | OwnedList(_)) => {
            let (Some(n), Some(m)) = (a.list_len(), b.list_len()) else {
                return false;
            };
            n == m
                && (0..n).all(|i| match (a.list_get(i), b.list_get(i)) {
                    (Some(x), Some(y)) => equals(&x, &y),
                    _ => false,
                })
        }
        (Object(_) | OwnedObject(_), Object(_) | OwnedObject(_)) => {
            let (Some(x), Some(y)) = (object_map(a), object_map(b)) else {
                return false;
            };
            x.len() == y.len()
                && x.iter().all(|(k, v)| {
                    y.get(k)
                        .is_some_and(|w| equals(&json_value(v), &json_value(w)))
                })
        }
        _ => compare(a, b) == Some(Ordering::Equal),
    }
}

/// The keys and values of an object value (`None` for a record that cannot list them).
fn object_map<'v>(v: &'v Value<'_>) -> Option<Cow<'v, serde_json::Map<String, serde_json::Value>>> {
    match v {
        Value::OwnedObject(map) => Some(Cow::Borrowed(&**map)),
        Value::Object(record) => match record.to_json()? {
            serde_json::Value::Object(map) => Some(Cow::Owned(map)),
            _ => None,
        },
        _ => None,
    }
}

/// A comparison operator applied to present, non-null values. Two-valued:
/// incomparable values make `==` and the orderings false and `!=` true.
pub(crate) fn compare_op(op: BinaryOp, a: &Value<'_>, b: &Value<'_>) -> bool {
    match op {
        BinaryOp::Eq => equals(a, b),
        BinaryOp::Ne => !equals(a, b),
        _ => match compare(a, b) {
            Some(ord) => ordering_holds(op, ord),
            None => false,
        },
    }
}

/// Does `ord` satisfy the ordering operator `op`?
#[inline]
pub(crate) fn ordering_holds(op: BinaryOp, ord: Ordering) -> bool {
    match op {
        BinaryOp::Eq => ord == Ordering::Equal,
        BinaryOp::Ne => ord != Ordering::Equal,
        BinaryOp::Lt => ord == Ordering::Less,
        BinaryOp::Le => ord != Ordering::Greater,
        BinaryOp::Gt => ord == Ordering::Greater,
        BinaryOp::Ge => ord != Ordering::Less,
        _ => false,
    }
}

/// A membership or string test (`in`, `not in`, `contains`, `starts_with`,
/// `ends_with`) on present, non-null values.
pub(crate) fn member_op(op: BinaryOp, a: &Value<'_>, b: &Value<'_>) -> bool {
    match op {
        BinaryOp::In => list_contains(b, a).unwrap_or(false),
        BinaryOp::NotIn => list_contains(b, a).is_some_and(|x| !x),
        BinaryOp::Contains => contains(a, b),
        BinaryOp::StartsWith => {
            matches!((a, b), (Value::Str(x), Value::Str(y)) if x.starts_with(y.as_ref()))
        }
        BinaryOp::EndsWith => {
            matches!((a, b), (Value::Str(x), Value::Str(y)) if x.ends_with(y.as_ref()))
        }
        _ => false,
    }
}

/// `x between lo and hi`, inclusive, on present, non-null values.
pub(crate) fn between(x: &Value<'_>, lo: &Value<'_>, hi: &Value<'_>) -> bool {
    compare(x, lo).is_some_and(|o| o.is_ge()) && compare(x, hi).is_some_and(|o| o.is_le())
}

/// Is `needle` an element of the list `haystack` (by [`equals`])?
pub(crate) fn list_contains(haystack: &Value<'_>, needle: &Value<'_>) -> Option<bool> {
    let n = haystack.list_len()?;
    Some((0..n).any(|i| haystack.list_get(i).is_some_and(|x| equals(&x, needle))))
}

/// `a contains b`: substring for strings, membership for lists.
pub(crate) fn contains(a: &Value<'_>, b: &Value<'_>) -> bool {
    match (a, b) {
        (Value::Str(x), Value::Str(y)) => x.contains(y.as_ref()),
        _ => list_contains(a, b).unwrap_or(false),
    }
}

/// `has(path)`: the path leads to a value, a null one included (`x is not
/// null` is the test for a value that is not null).
#[inline]
pub(crate) fn has(v: &Option<Value<'_>>) -> bool {
    v.is_some()
}

/// `a ?? b`: `a` when it is present and not null, else `b`, which is only
/// evaluated then (so an error in it matters only when the default is used).
#[inline]
pub(crate) fn coalesce<'r, E>(
    a: Option<Value<'r>>,
    b: impl FnOnce() -> Result<Option<Value<'r>>, E>,
) -> Result<Option<Value<'r>>, E> {
    match present(a) {
        Some(v) => Ok(Some(v)),
        None => b(),
    }
}

/// Null or missing: the value `is null` tests for.
#[inline]
pub(crate) fn is_nullish(v: &Option<Value<'_>>) -> bool {
    matches!(v, None | Some(Value::Null))
}

/// A non-finite float result is an error, never a value.
fn finite<'a>(x: f64, what: &str) -> Result<Option<Value<'a>>, EvalError> {
    if x.is_finite() {
        Ok(Some(Value::Float(x)))
    } else {
        Err(EvalError::NotFinite(what.to_string()))
    }
}

fn as_f64(v: &Value<'_>) -> Option<f64> {
    match v {
        Value::Int(i) => Some(*i as f64),
        Value::Float(x) => Some(*x),
        _ => None,
    }
}

/// Arithmetic. `Ok(None)` means "no value" (a type mismatch without a schema),
/// which makes the surrounding comparison false. `what` names the expression
/// for error messages.
pub(crate) fn arith<'a>(
    op: BinaryOp,
    a: &Value<'a>,
    b: &Value<'a>,
    what: &str,
) -> Result<Option<Value<'a>>, EvalError> {
    use Value::*;
    let overflow = || EvalError::Overflow(what.to_string());
    // a date or datetime string next to a date, a datetime or a duration is
    // read as one, as comparisons read it
    let additive = matches!(op, BinaryOp::Add | BinaryOp::Sub);
    match (a, b) {
        (Str(s), Duration(_) | Date(_) | DateTime(_)) if additive => {
            return match temporal(s) {
                Some(t) => arith(op, &t, b, what),
                None => Ok(None),
            };
        }
        (Duration(_) | Date(_) | DateTime(_), Str(s)) if additive => {
            return match temporal(s) {
                Some(t) => arith(op, a, &t, what),
                None => Ok(None),
            };
        }
        _ => {}
    }
    match (op, a, b) {
        (_, Int(x), Int(y)) => {
            let (x, y) = (*x, *y);
            let r = match op {
                BinaryOp::Add => x.checked_add(y).ok_or_else(overflow)?,
                BinaryOp::Sub => x.checked_sub(y).ok_or_else(overflow)?,
                BinaryOp::Mul => x.checked_mul(y).ok_or_else(overflow)?,
                BinaryOp::Div => {
                    if y == 0 {
                        return Err(EvalError::DivisionByZero(what.to_string()));
                    }
                    match x.checked_rem(y) {
                        Some(0) => x.checked_div(y).ok_or_else(overflow)?,
                        Some(_) => return finite(x as f64 / y as f64, what),
                        None => return Err(overflow()),
                    }
                }
                BinaryOp::Rem => {
                    if y == 0 {
                        return Err(EvalError::DivisionByZero(what.to_string()));
                    }
                    // `i64::MIN % -1` is 0, though the division overflows
                    x.checked_rem(y).unwrap_or(0)
                }
                _ => return Ok(None),
            };
            Ok(Some(Int(r)))
        }
        (_, Int(_) | Float(_), Int(_) | Float(_)) => {
            let (x, y) = (as_f64(a).unwrap_or(0.0), as_f64(b).unwrap_or(0.0));
            let r = match op {
                BinaryOp::Add => x + y,
                BinaryOp::Sub => x - y,
                BinaryOp::Mul => x * y,
                BinaryOp::Div | BinaryOp::Rem if y == 0.0 => {
                    return Err(EvalError::DivisionByZero(what.to_string()));
                }
                BinaryOp::Div => x / y,
                BinaryOp::Rem => x % y,
                _ => return Ok(None),
            };
            finite(r, what)
        }
        (BinaryOp::Add, List(_) | OwnedList(_), List(_) | OwnedList(_)) => Ok(concat(a, b)),
        (BinaryOp::Add, Str(x), Str(y)) => {
            let mut s = String::with_capacity(x.len() + y.len());
            s.push_str(x);
            s.push_str(y);
            Ok(Some(Str(Cow::Owned(s))))
        }
        (BinaryOp::Add | BinaryOp::Sub, Date(d), Duration(t)) => {
            let t = if op == BinaryOp::Sub { -*t } else { *t };
            if t.num_milliseconds() % 86_400_000 == 0 {
                let r = d
                    .checked_add_signed(TimeDelta::days(t.num_days()))
                    .ok_or_else(overflow)?;
                Ok(Some(Date(r)))
            } else {
                let r = date_to_datetime(*d)
                    .checked_add_signed(t)
                    .ok_or_else(overflow)?;
                Ok(Some(DateTime(r)))
            }
        }
        (BinaryOp::Add | BinaryOp::Sub, DateTime(d), Duration(t)) => {
            let t = if op == BinaryOp::Sub { -*t } else { *t };
            Ok(Some(DateTime(
                d.checked_add_signed(t).ok_or_else(overflow)?,
            )))
        }
        (BinaryOp::Add, Duration(t), Date(_) | DateTime(_)) => arith(op, b, &Duration(*t), what),
        (BinaryOp::Sub, DateTime(x), DateTime(y)) => {
            Ok(Some(Duration(x.signed_duration_since(*y))))
        }
        (BinaryOp::Sub, Date(x), Date(y)) => Ok(Some(Duration(x.signed_duration_since(*y)))),
        (BinaryOp::Sub, DateTime(x), Date(y)) => Ok(Some(Duration(
            x.signed_duration_since(date_to_datetime(*y)),
        ))),
        (BinaryOp::Sub, Date(x), DateTime(y)) => Ok(Some(Duration(
            date_to_datetime(*x).signed_duration_since(*y),
        ))),
        (BinaryOp::Add | BinaryOp::Sub, Duration(x), Duration(y)) => {
            let r = if op == BinaryOp::Add {
                x.checked_add(y)
            } else {
                x.checked_sub(y)
            };
            Ok(Some(Duration(r.ok_or_else(overflow)?)))
        }
        (BinaryOp::Mul, Duration(t), Int(n)) | (BinaryOp::Mul, Int(n), Duration(t)) => {
            let ms = t.num_milliseconds().checked_mul(*n).ok_or_else(overflow)?;
            Ok(Some(Duration(
                TimeDelta::try_milliseconds(ms).ok_or_else(overflow)?,
            )))
        }
        _ => Ok(None),
    }
}

/// Unary minus.
pub(crate) fn negate<'a>(v: &Value<'a>, what: &str) -> Result<Option<Value<'a>>, EvalError> {
    match v {
        Value::Int(i) => Ok(Some(Value::Int(
            i.checked_neg()
                .ok_or_else(|| EvalError::Overflow(what.to_string()))?,
        ))),
        Value::Float(x) => Ok(Some(Value::Float(-x))),
        Value::Duration(d) => Ok(Some(Value::Duration(-*d))),
        _ => Ok(None),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn int_division_is_exact_or_float() {
        let r = arith(BinaryOp::Div, &Value::Int(7), &Value::Int(2), "x").unwrap();
        assert!(matches!(r, Some(Value::Float(f)) if f == 3.5));
        let r = arith(BinaryOp::Div, &Value::Int(6), &Value::Int(3), "x").unwrap();
        assert!(matches!(r, Some(Value::Int(2))));
        assert!(arith(BinaryOp::Div, &Value::Int(i64::MIN), &Value::Int(-1), "x").is_err());
        assert!(arith(BinaryOp::Rem, &Value::Int(1), &Value::Int(0), "x").is_err());
    }

    #[test]
    fn dates_compare_with_strings() {
        let d = Value::Date(lexical::date("2024-01-31").unwrap());
        assert_eq!(compare(&d, &Value::str("2024-02-01")), Some(Ordering::Less));
        assert_eq!(compare(&d, &Value::str("nope")), None);
        assert_eq!(
            compare(&d, &Value::str("2024-01-31T00:00:00Z")),
            Some(Ordering::Equal)
        );
    }
}
