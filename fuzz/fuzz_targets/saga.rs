//! Saga YAML through validation (serde shapes, then the validated model with
//! its compiled expressions): any text gives a saga or diagnostics, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rulesaga::Source;
use rulesaga::saga::{Catalog, load};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let catalog = Catalog {
        handlers: ["charge", "refund", "reserve", "release", "notify"]
            .into_iter()
            .map(String::from)
            .collect(),
        ..Catalog::default()
    };
    let _ = load(Source::new("fuzz.yaml", text), &catalog);
});
