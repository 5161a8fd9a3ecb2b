//! The formatter: a file it formats parses back to the same tree, and
//! formatting the result again changes nothing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rulesaga::Source;
use rulesaga::rules::format::format_rule_file;
use rulesaga::rules::parse_rule_file;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let source = Source::new("f.rules", text);
    let Ok(formatted) = format_rule_file(&source) else {
        return;
    };
    let again_source = Source::new("f.rules", formatted.text.clone());
    let again = format_rule_file(&again_source).expect("formatted text formats again");
    assert_eq!(again.text, formatted.text, "formatting is not idempotent");
    let before = parse_rule_file(&source).expect("a formatted file parsed");
    let after = parse_rule_file(&again_source).expect("formatted text parses");
    assert_eq!(before, after, "formatting changed the tree");
});
