//! Inputs the fuzz targets (`fuzz/`) found failing, kept as tests so that
//! `cargo test` runs them without the fuzzer. Each names its target.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rulesaga::json::{FieldIndex, SparseRecord};
use rulesaga::value::json_value;

/// target `json`: the scanner and serde_json must read a kept field alike.
fn json_agrees(text: &str, fields: &[&str]) {
    let names: Vec<String> = fields.iter().map(ToString::to_string).collect();
    let index = FieldIndex::new(&names);
    let mut record = SparseRecord::new(&index);
    let serde = serde_json::from_str::<serde_json::Value>(text);
    let scanned = record.parse(text, &index);
    assert_eq!(
        scanned.is_ok(),
        matches!(&serde, Ok(v) if v.is_object()),
        "{text}: {scanned:?} / {serde:?}"
    );
    if let Ok(serde_json::Value::Object(map)) = &serde {
        for (slot, name) in names.iter().enumerate() {
            let want = map.get(name).map(|v| json_value(v).to_json());
            assert_eq!(
                record.get(slot).map(|v| v.to_json()),
                want,
                "`{name}` of {text}"
            );
        }
    }
}

/// A long integer beyond 64 bits becomes the nearest float: serde_json's
/// default float parsing was one unit in the last place off, so a record read
/// by the scanner (`eval`) and by serde_json (`--explain`, nested values, test
/// files) held different numbers. serde_json now parses floats exactly
/// (`float_roundtrip`).
#[test]
fn json_long_numbers_are_the_nearest_float_everywhere() {
    json_agrees(
        r#"{"c2":10784444673709044748467370955844446737090467}"#,
        &["c2"],
    );
    json_agrees(
        r#"{"a":2.2250738585072011e-308,"b":0.30000000000000004441}"#,
        &["a", "b"],
    );
}

/// `-0` is the float -0.0 to serde_json (it keeps the sign); the scanner read
/// the int 0, so `--value` printed `0` in eval and `-0.0` elsewhere.
#[test]
fn json_negative_zero_is_a_float_everywhere() {
    json_agrees(
        r#"{"kkkkc":184467440737095,".0b":-0,"k":"\u81e9"}"#,
        &[".0b", "k", "kkkkc"],
    );
    json_agrees(r#"{"a":-0,"b":0,"c":-0.0,"d":[-0]}"#, &["a", "b", "c", "d"]);
}

/// A number beyond the range of a float in a field the program does not read:
/// the scanner skipped it as valid, serde_json rejects the record, so `eval`
/// evaluated a record that `--explain` and test files could not read.
#[test]
fn json_numbers_out_of_range_are_rejected_kept_or_not() {
    json_agrees(r#"{"awwwwwwwwwwwwwwwwwwwwwwwwww":11442e674}"#, &["a"]);
    json_agrees(r#"{"a":1,"b":[-1e309]}"#, &["a"]);
    json_agrees(&format!(r#"{{"a":1,"b":{}}}"#, "9".repeat(400)), &["a"]);
    json_agrees(r#"{"a":1e-400,"b":1e308}"#, &["a", "b"]);
}

/// Nesting: the scanner's limit on skipped values is serde_json's, so a record
/// one accepts the other accepts (serde_json stops at 128 levels).
#[test]
fn json_nesting_limit_is_serde_jsons() {
    for depth in 120..136 {
        let text = format!(
            r#"{{"a":1,"b":{}{}}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        );
        json_agrees(&text, &["a"]);
        json_agrees(&text, &["b"]);
    }
}
