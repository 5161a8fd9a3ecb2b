//! The sparse JSON scanner against serde_json: the same texts are accepted
//! (as one JSON object), and every kept field has the value serde_json reads.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rulesaga::json::{FieldIndex, SparseRecord};
use rulesaga::value::json_value;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let serde = serde_json::from_str::<serde_json::Value>(text);
    let want_ok = matches!(&serde, Ok(v) if v.is_object());
    let mut names: Vec<String> = vec!["a".into(), "b".into(), String::new()];
    if let Ok(serde_json::Value::Object(map)) = &serde {
        for key in map.keys().take(4) {
            if !names.contains(key) {
                names.push(key.clone());
            }
        }
    }
    let index = FieldIndex::new(&names);
    let mut record = SparseRecord::new(&index);
    let got = record.parse(text, &index);
    assert_eq!(
        got.is_ok(),
        want_ok,
        "{text:?}: scanner {got:?}, serde_json {serde:?}"
    );
    if let Ok(serde_json::Value::Object(map)) = &serde {
        for (slot, name) in names.iter().enumerate() {
            let want = map.get(name).map(|v| json_value(v).to_json());
            let have = record.get(slot).map(|v| v.to_json());
            assert_eq!(have, want, "field `{name}` of {text:?}");
        }
    }
});
