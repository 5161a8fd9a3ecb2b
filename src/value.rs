//! The value type every layer shares, and the [`Record`] trait the evaluator reads.
//!
//! [`Value`] borrows from the record it was read from (strings, nested lists and
//! objects), so reading a record allocates nothing. Conversions to and from
//! `serde_json::Value` live here too, because sagas and the CLI speak JSON.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, FixedOffset, NaiveDate, TimeDelta};

/// How the evaluator names a field: by its name, and by its slot when the
/// rule was compiled against a schema (slot = the field's position in the schema).
#[derive(Clone, Copy, Debug)]
pub struct FieldRef<'n> {
    /// The field's name.
    pub name: &'n str,
    /// The field's position in the schema, when compiled with one.
    pub slot: Option<u32>,
}

/// Something rules can be evaluated against: a JSON object, a map, a
/// schema-typed [`Row`], or your own struct.
///
/// Return `None` for a missing field. Records are `Sync` so that compiled
/// programs and the values they hold can be shared across threads. A struct
/// may match on `field.name`, or, faster, on `field.slot` once it says which
/// field each slot is (`rules::RecordType`) and the program is bound to it
/// (`Program::bind`): slots are then the struct's own, checked by name.
pub trait Record: Sync {
    /// The value of a top-level field, or `None` when it is missing.
    fn field(&self, field: FieldRef<'_>) -> Option<Value<'_>>;

    /// The whole record as JSON, for output and for keeping nested data;
    /// `None` when the record cannot list its fields.
    fn to_json(&self) -> Option<serde_json::Value> {
        None
    }
}

/// A list the evaluator can index and iterate.
pub trait List: Sync {
    /// Number of elements.
    fn len(&self) -> usize;
    /// The element at `index`, or `None` past the end.
    fn get(&self, index: usize) -> Option<Value<'_>>;
    /// True when empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A value read from a record or computed by a rule.
///
/// Numbers are `Int` (i64) or `Float` (finite f64) and compare mathematically
/// with each other. Strings compare by code point.
#[derive(Clone)]
pub enum Value<'a> {
    /// JSON `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A 64-bit signed integer.
    Int(i64),
    /// A finite float.
    Float(f64),
    /// A string, borrowed from the record where possible.
    Str(Cow<'a, str>),
    /// A calendar date.
    Date(NaiveDate),
    /// A point in time with its offset.
    DateTime(DateTime<FixedOffset>),
    /// A signed duration.
    Duration(TimeDelta),
    /// A list borrowed from the record.
    List(&'a dyn List),
    /// A nested object borrowed from the record.
    Object(&'a dyn Record),
    /// An owned list (list literals, function results).
    OwnedList(Arc<[OwnedValue]>),
    /// An owned object (saga data, nested values kept past their record).
    OwnedObject(Arc<serde_json::Map<String, serde_json::Value>>),
}

/// A value that owns its data: parameters, constants, saga data.
pub type OwnedValue = Value<'static>;

impl fmt::Debug for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => write!(f, "Null"),
            Value::Bool(b) => write!(f, "Bool({b})"),
            Value::Int(i) => write!(f, "Int({i})"),
            Value::Float(x) => write!(f, "Float({x:?})"),
            Value::Str(s) => write!(f, "Str({s:?})"),
            Value::Date(d) => write!(f, "Date({d})"),
            Value::DateTime(d) => write!(f, "DateTime({})", d.to_rfc3339()),
            Value::Duration(d) => write!(f, "Duration({})", format_duration(*d)),
            Value::List(_) | Value::OwnedList(_) | Value::Object(_) | Value::OwnedObject(_) => {
                write!(f, "{}", self.to_json())
            }
        }
    }
}

impl fmt::Display for Value<'_> {
    /// Rule syntax where there is one: strings quoted, dates bare, durations as `30d`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => write!(f, "null"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{}", format_float(*x)),
            Value::Str(s) => write!(f, "{}", serde_json::Value::String(s.to_string())),
            Value::Date(d) => write!(f, "{d}"),
            Value::DateTime(d) => write!(f, "{}", d.to_rfc3339()),
            Value::Duration(d) => write!(f, "{}", format_duration(*d)),
            Value::List(_) | Value::OwnedList(_) | Value::Object(_) | Value::OwnedObject(_) => {
                write!(f, "{}", self.to_json())
            }
        }
    }
}

/// A float as rules write it: always with a `.` or exponent so it reads back as a float.
pub fn format_float(x: f64) -> String {
    let s = format!("{x:?}");
    if s.contains(['.', 'e', 'E', 'i', 'N']) {
        s
    } else {
        format!("{s}.0")
    }
}

/// A duration in the largest unit that divides it: `30d`, `12h`, `15m`, `10s`, `250ms`.
pub fn format_duration(d: TimeDelta) -> String {
    let ms = d.num_milliseconds();
    const UNITS: [(i64, &str); 5] = [
        (86_400_000, "d"),
        (3_600_000, "h"),
        (60_000, "m"),
        (1_000, "s"),
        (1, "ms"),
    ];
    if ms == 0 {
        return "0s".to_string();
    }
    for (size, unit) in UNITS {
        if ms % size == 0 {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

impl<'a> Value<'a> {
    /// The type name used in messages: `int`, `float`, `string`, ...
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "string",
            Value::Date(_) => "date",
            Value::DateTime(_) => "datetime",
            Value::Duration(_) => "duration",
            Value::List(_) | Value::OwnedList(_) => "list",
            Value::Object(_) | Value::OwnedObject(_) => "object",
        }
    }

    /// A string value borrowed from static text.
    pub fn str(s: &'a str) -> Value<'a> {
        Value::Str(Cow::Borrowed(s))
    }

    /// Copy everything borrowed, for values that must outlive the record.
    pub fn into_owned(self) -> OwnedValue {
        match self {
            Value::Null => Value::Null,
            Value::Bool(b) => Value::Bool(b),
            Value::Int(i) => Value::Int(i),
            Value::Float(x) => Value::Float(x),
            Value::Str(s) => Value::Str(Cow::Owned(s.into_owned())),
            Value::Date(d) => Value::Date(d),
            Value::DateTime(d) => Value::DateTime(d),
            Value::Duration(d) => Value::Duration(d),
            Value::OwnedList(l) => Value::OwnedList(l),
            Value::OwnedObject(o) => Value::OwnedObject(o),
            // Nested borrowed data is kept as JSON, which owns it.
            Value::List(_) | Value::Object(_) => OwnedValue::from_json_owned(self.to_json()),
        }
    }

    /// Number of elements of a list value.
    pub fn list_len(&self) -> Option<usize> {
        match self {
            Value::List(l) => Some(l.len()),
            Value::OwnedList(l) => Some(l.len()),
            _ => None,
        }
    }

    /// Element of a list value.
    pub fn list_get(&self, index: usize) -> Option<Value<'_>> {
        match self {
            Value::List(l) => l.get(index),
            Value::OwnedList(l) => l.get(index).map(Value::reborrow),
            _ => None,
        }
    }

    /// A shorter-lived copy that borrows instead of cloning strings.
    pub fn reborrow(&self) -> Value<'_> {
        match self {
            Value::Str(s) => Value::Str(Cow::Borrowed(s)),
            Value::Null => Value::Null,
            Value::Bool(b) => Value::Bool(*b),
            Value::Int(i) => Value::Int(*i),
            Value::Float(x) => Value::Float(*x),
            Value::Date(d) => Value::Date(*d),
            Value::DateTime(d) => Value::DateTime(*d),
            Value::Duration(d) => Value::Duration(*d),
            Value::List(l) => Value::List(*l),
            Value::Object(o) => Value::Object(*o),
            Value::OwnedList(l) => Value::OwnedList(l.clone()),
            Value::OwnedObject(o) => Value::Object(&**o),
        }
    }

    /// The value as JSON: dates and datetimes as strings, durations as `"30d"`.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Float(x) => serde_json::Number::from_f64(*x).map_or(J::Null, J::Number),
            Value::Str(s) => J::String(s.to_string()),
            Value::Date(d) => J::String(d.to_string()),
            Value::DateTime(d) => J::String(d.to_rfc3339()),
            Value::Duration(d) => J::String(format_duration(*d)),
            Value::List(l) => J::Array(
                (0..l.len())
                    .filter_map(|i| l.get(i))
                    .map(|v| v.to_json())
                    .collect(),
            ),
            Value::OwnedList(l) => J::Array(l.iter().map(Value::to_json).collect()),
            Value::Object(o) => o.to_json().unwrap_or(J::Null),
            Value::OwnedObject(o) => J::Object((**o).clone()),
        }
    }

    /// An owned value from JSON: objects and nested lists stay JSON-backed.
    pub fn from_json_owned(json: serde_json::Value) -> OwnedValue {
        use serde_json::Value as J;
        match json {
            J::Null => Value::Null,
            J::Bool(b) => Value::Bool(b),
            J::Number(n) => number_value(&n),
            J::String(s) => Value::Str(Cow::Owned(s)),
            J::Array(items) => {
                Value::OwnedList(items.into_iter().map(Value::from_json_owned).collect())
            }
            J::Object(map) => Value::OwnedObject(Arc::new(map)),
        }
    }
}

/// A JSON number as a value: integers that fit i64 stay exact; others become floats.
pub fn number_value<'a>(n: &serde_json::Number) -> Value<'a> {
    if let Some(i) = n.as_i64() {
        Value::Int(i)
    } else if let Some(u) = n.as_u64() {
        // Above i64::MAX: the nearest float, which still compares exactly with ints.
        Value::Float(u as f64)
    } else {
        Value::Float(n.as_f64().unwrap_or(f64::NAN))
    }
}

/// Compare an integer with a float exactly (no rounding of the integer).
pub fn cmp_int_float(i: i64, f: f64) -> Option<Ordering> {
    // an integer of at most 53 bits is exactly a float: one comparison, no `trunc`
    if i.unsigned_abs() <= 1 << 53 {
        return (i as f64).partial_cmp(&f);
    }
    if f.is_nan() {
        return None;
    }
    // 2^63 as f64 is exact.
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if f >= TWO_63 {
        return Some(Ordering::Less);
    }
    if f < -TWO_63 {
        return Some(Ordering::Greater);
    }
    let t = f.trunc();
    // |t| < 2^63, so the conversion is exact.
    let ti = t as i64;
    match i.cmp(&ti) {
        Ordering::Equal => {
            let frac = f - t;
            if frac > 0.0 {
                Some(Ordering::Less)
            } else if frac < 0.0 {
                Some(Ordering::Greater)
            } else {
                Some(Ordering::Equal)
            }
        }
        other => Some(other),
    }
}

impl Record for serde_json::Value {
    fn field(&self, field: FieldRef<'_>) -> Option<Value<'_>> {
        match self {
            serde_json::Value::Object(map) => map.field(field),
            _ => None,
        }
    }
    fn to_json(&self) -> Option<serde_json::Value> {
        Some(self.clone())
    }
}

impl Record for serde_json::Map<String, serde_json::Value> {
    fn field(&self, field: FieldRef<'_>) -> Option<Value<'_>> {
        self.get(field.name).map(json_value)
    }
    fn to_json(&self) -> Option<serde_json::Value> {
        Some(serde_json::Value::Object(self.clone()))
    }
}

impl List for Vec<serde_json::Value> {
    fn len(&self) -> usize {
        <[serde_json::Value]>::len(self)
    }
    fn get(&self, index: usize) -> Option<Value<'_>> {
        <[serde_json::Value]>::get(self, index).map(json_value)
    }
}

/// A borrowed view of a JSON value.
pub fn json_value(v: &serde_json::Value) -> Value<'_> {
    use serde_json::Value as J;
    match v {
        J::Null => Value::Null,
        J::Bool(b) => Value::Bool(*b),
        J::Number(n) => number_value(n),
        J::String(s) => Value::Str(Cow::Borrowed(s)),
        J::Array(items) => Value::List(items),
        J::Object(map) => Value::Object(map),
    }
}

impl<'v> Record for HashMap<String, Value<'v>> {
    fn field(&self, field: FieldRef<'_>) -> Option<Value<'_>> {
        self.get(field.name).map(Value::reborrow)
    }
}

impl<'v> Record for BTreeMap<String, Value<'v>> {
    fn field(&self, field: FieldRef<'_>) -> Option<Value<'_>> {
        self.get(field.name).map(Value::reborrow)
    }
}

impl Record for HashMap<String, serde_json::Value> {
    fn field(&self, field: FieldRef<'_>) -> Option<Value<'_>> {
        self.get(field.name).map(json_value)
    }
}

impl Record for BTreeMap<String, serde_json::Value> {
    fn field(&self, field: FieldRef<'_>) -> Option<Value<'_>> {
        self.get(field.name).map(json_value)
    }
}

/// A schema-typed row: values in schema slot order, read by slot with no
/// string lookups. Build one with [`crate::rules::Schema::row`].
#[derive(Clone, Debug)]
pub struct Row {
    pub(crate) names: Arc<[String]>,
    pub(crate) values: Vec<Option<OwnedValue>>,
}

impl Row {
    /// The value in a slot.
    pub fn get(&self, slot: usize) -> Option<&OwnedValue> {
        self.values.get(slot).and_then(Option::as_ref)
    }
}

impl Record for Row {
    fn field(&self, field: FieldRef<'_>) -> Option<Value<'_>> {
        let slot = match field.slot {
            Some(slot) => slot as usize,
            None => self.names.iter().position(|n| n == field.name)?,
        };
        self.values.get(slot)?.as_ref().map(Value::reborrow)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn int_float_compare_exactly() {
        assert_eq!(cmp_int_float(200, 200.0), Some(Ordering::Equal));
        assert_eq!(cmp_int_float(200, 200.5), Some(Ordering::Less));
        assert_eq!(cmp_int_float(-3, -3.5), Some(Ordering::Greater));
        assert_eq!(
            cmp_int_float(i64::MAX, 9_223_372_036_854_775_808.0),
            Some(Ordering::Less)
        );
        // i64::MAX - 1 rounds to 2^63 as a float; exact comparison still sees the difference
        assert_eq!(
            cmp_int_float(i64::MAX - 1, 9_223_372_036_854_775_807.0),
            Some(Ordering::Less)
        );
        assert_eq!(
            cmp_int_float(i64::MIN, -9_223_372_036_854_775_808.0),
            Some(Ordering::Equal)
        );
        assert_eq!(cmp_int_float(1, f64::NAN), None);
        // the one-comparison path for integers of at most 53 bits agrees with the
        // exact path (trunc and fraction) on both sides of its boundary
        let exact = |i: i64, f: f64| -> Option<Ordering> {
            if f.is_nan() {
                return None;
            }
            if f >= 9_223_372_036_854_775_808.0 {
                return Some(Ordering::Less);
            }
            if f < -9_223_372_036_854_775_808.0 {
                return Some(Ordering::Greater);
            }
            let t = f.trunc();
            Some(i.cmp(&(t as i64)).then(0.0.partial_cmp(&(f - t))?))
        };
        let p53 = 1i64 << 53;
        for i in [
            0,
            1,
            -1,
            100,
            p53 - 1,
            p53,
            p53 + 1,
            -p53,
            -p53 - 1,
            i64::MAX,
            i64::MIN,
        ] {
            for f in [
                0.0,
                -0.0,
                0.5,
                99.5,
                100.0,
                100.5,
                -1.0,
                9_007_199_254_740_992.0,
                9_007_199_254_740_994.0,
                -9_007_199_254_740_992.0,
                9.3e18,
                -9.3e18,
                1e300,
                f64::INFINITY,
                f64::NEG_INFINITY,
                f64::NAN,
                f64::MIN_POSITIVE,
            ] {
                assert_eq!(cmp_int_float(i, f), exact(i, f), "{i} vs {f}");
            }
        }
    }

    #[test]
    fn unsigned_json_beyond_i64_is_a_float() {
        let v: serde_json::Value = serde_json::from_str("18446744073709551615").unwrap();
        assert!(matches!(json_value(&v), Value::Float(_)));
        let v: serde_json::Value = serde_json::from_str("200").unwrap();
        assert!(matches!(json_value(&v), Value::Int(200)));
    }

    #[test]
    fn durations_format_in_largest_unit() {
        assert_eq!(format_duration(TimeDelta::days(30)), "30d");
        assert_eq!(format_duration(TimeDelta::hours(36)), "36h");
        assert_eq!(format_duration(TimeDelta::milliseconds(250)), "250ms");
    }
}
