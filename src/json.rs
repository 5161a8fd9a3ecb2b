//! Fast JSON records: parse only the fields a program reads.
//!
//! Most of the time of evaluating rules over JSON goes into parsing. A
//! [`SparseRecord`] is filled from one JSON object by a serde visitor that
//! keeps only the keys in a [`FieldIndex`] (the program's field table),
//! borrows strings from the input where there are no escapes, and skips
//! everything else with `IgnoredAny`. The record is reused between objects.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::value::{FieldRef, OwnedValue, Record, Value};

/// The top-level field names to keep, by slot (usually [`crate::Program::fields`]).
#[derive(Clone, Debug)]
pub struct FieldIndex {
    names: Vec<String>,
}

impl FieldIndex {
    /// An index over these names; a name's position is its slot.
    pub fn new(names: &[String]) -> FieldIndex {
        FieldIndex {
            names: names.to_vec(),
        }
    }

    fn slot(&self, key: &str) -> Option<usize> {
        self.names.iter().position(|n| n == key)
    }

    /// Number of slots.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// True when no field is kept.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// One JSON object, reduced to the kept fields. Reuse it across objects with
/// [`SparseRecord::parse`].
#[derive(Debug, Default)]
pub struct SparseRecord<'de> {
    values: Vec<Option<Value<'de>>>,
}

impl<'de> SparseRecord<'de> {
    /// An empty record for an index.
    pub fn new(index: &FieldIndex) -> SparseRecord<'de> {
        SparseRecord {
            values: vec![None; index.len()],
        }
    }

    /// Fill from the JSON object in `bytes` (the whole slice must be one value).
    pub fn parse(&mut self, bytes: &'de [u8], index: &FieldIndex) -> Result<(), serde_json::Error> {
        self.values.clear();
        self.values.resize(index.len(), None);
        let mut de = serde_json::Deserializer::from_slice(bytes);
        RecordSeed {
            index,
            out: &mut self.values,
        }
        .deserialize(&mut de)?;
        de.end()
    }

    /// The value in a slot.
    pub fn get(&self, slot: usize) -> Option<&Value<'de>> {
        self.values.get(slot).and_then(Option::as_ref)
    }
}

impl Record for SparseRecord<'_> {
    #[inline]
    fn field(&self, field: FieldRef<'_>) -> Option<Value<'_>> {
        let slot = field.slot? as usize;
        match self.values.get(slot)? {
            Some(Value::Str(Cow::Borrowed(s))) => Some(Value::Str(Cow::Borrowed(s))),
            Some(v) => Some(v.reborrow()),
            None => None,
        }
    }
}

struct RecordSeed<'a, 'de> {
    index: &'a FieldIndex,
    out: &'a mut Vec<Option<Value<'de>>>,
}

impl<'de> DeserializeSeed<'de> for RecordSeed<'_, 'de> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RecordSeed<'_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(slot) = map.next_key_seed(KeySeed { index: self.index })? {
            match slot {
                Some(i) => {
                    let v = map.next_value_seed(ValueSeed)?;
                    if let Some(place) = self.out.get_mut(i) {
                        *place = Some(v);
                    }
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

struct KeySeed<'a> {
    index: &'a FieldIndex,
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Option<usize>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Option<usize>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = Option<usize>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a key")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Option<usize>, E> {
        Ok(self.index.slot(v))
    }
}

struct ValueSeed;

impl<'de> DeserializeSeed<'de> for ValueSeed {
    type Value = Value<'de>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value<'de>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed {
    type Value = Value<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Value<'de>, E> {
        Ok(Value::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value<'de>, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value<'de>, E> {
        Ok(Value::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value<'de>, E> {
        Ok(i64::try_from(v).map_or(Value::Float(v as f64), Value::Int))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value<'de>, E> {
        if v.is_finite() {
            Ok(Value::Float(v))
        } else {
            Err(E::custom("number is not finite"))
        }
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Value<'de>, E> {
        Ok(Value::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value<'de>, E> {
        Ok(Value::Str(Cow::Owned(v.to_string())))
    }
    fn visit_string<E>(self, v: String) -> Result<Value<'de>, E> {
        Ok(Value::Str(Cow::Owned(v)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Value<'de>, A::Error> {
        let json: serde_json::Value =
            serde::Deserialize::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
        Ok(OwnedValue::from_json_owned(json))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Value<'de>, A::Error> {
        let json: serde_json::Value =
            serde::Deserialize::deserialize(de::value::MapAccessDeserializer::new(map))?;
        Ok(OwnedValue::from_json_owned(json))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_indexed_fields_and_borrows_strings() {
        let index = FieldIndex::new(&["tier".to_string(), "total".to_string()]);
        let line = br#"{"name":"Bob","tier":"regular","total":150,"extra":{"a":[1,2]}}"#;
        let mut rec = SparseRecord::new(&index);
        rec.parse(line, &index).unwrap();
        assert!(matches!(
            rec.get(0),
            Some(Value::Str(Cow::Borrowed("regular")))
        ));
        assert!(matches!(rec.get(1), Some(Value::Int(150))));
        assert!(rec.parse(b"[1]", &index).is_err());
        assert!(rec.parse(br#"{"tier": 1} x"#, &index).is_err());
    }
}
