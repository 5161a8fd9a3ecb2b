//! One representative diagnostic for every error code in docs/errors.md,
//! rendered as a user sees it (carets included), in one reviewed snapshot.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

use rulesaga::{Env, Program, Source};

/// (code, rule file text; `---` separates files checked together). Each must produce the code.
const CASES: &[(&str, &str)] = &[
    ("E001", "rule a = total >\n"),
    ("E002", "rule a = total > 99999999999999999999\n"),
    ("E003", "rule a = total > 1e400\n"),
    ("E004", "rule a = name == \"a\\qb\"\n"),
    ("E005", "rule a = day == 2024-02-30\n"),
    ("E006", "rule a = wait > 9999999999999999d\n"),
    (
        "E008",
        "rule a = ((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((x))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))\n",
    ),
    ("E009", "rule a = 1 < x < 3\n"),
    ("E101", "schema { total: number }\nrule a = totl > 5\n"),
    ("E102", "rule a = nope(1)\n"),
    (
        "E103",
        "rule high(t = 100) = total >= t\nrule a = high(1, 2)\n",
    ),
    ("E104", "rule a = b\nrule b = a\n"),
    ("E105", "rule a = true\nrule a = false\n"),
    (
        "E106",
        "schema { tier: standard | vip }\nrule a = tier + 1 > 2\n",
    ),
    (
        "E107",
        "schema { tier: standard | premium }\nrule a = tier == premum\n",
    ),
    ("E108", "rule a = sku matches \"([\"\n"),
    (
        "E109",
        "rule r0 = x > 1 or x < 0\nrule r1 = r0 and r0\nrule r2 = r1 and r1\nrule r3 = r2 and r2\nrule r4 = r3 and r3\nrule r5 = r4 and r4\nrule r6 = r5 and r5\nrule r7 = r6 and r6\nrule r8 = r7 and r7\nrule r9 = r8 and r8\nrule r10 = r9 and r9\nrule r11 = r10 and r10\n",
    ),
    ("E111", "schema { a: int, a: int }\nrule r = a > 1\n"),
    (
        "E112",
        "schema { total: number }\nrule a = total > 1\n---\nschema { total: string }\nrule b = true\n",
    ),
    ("E113", "schema { total: money }\nrule a = total > 1\n"),
    (
        "E114",
        "schema { total: number }\nrule a = total == premium\n",
    ),
    (
        "E115",
        "schema { total: number }\nrule a = total.amount > 1\n",
    ),
    ("E116", "rule r(t = [a.b]) = x in t\n"),
    (
        "E117",
        "schema { name: string, other: string }\nrule a = name == other\n",
    ),
];

fn check(name: &str, text: &str) -> (i32, String, Vec<String>) {
    let dir = std::env::temp_dir().join(format!("rulesaga-codes-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut paths = Vec::new();
    for (i, part) in text.split("---\n").enumerate() {
        let path = dir.join(format!("f{i}.rules"));
        std::fs::write(&path, part).unwrap();
        paths.push(path.to_str().unwrap().to_string());
    }
    let out = Command::new(env!("CARGO_BIN_EXE_rulesaga"))
        .arg("check")
        .args(&paths)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let mut stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    for (i, p) in paths.iter().enumerate() {
        stderr = stderr.replace(p, &format!("f{i}.rules"));
    }
    let json = Command::new(env!("CARGO_BIN_EXE_rulesaga"))
        .args(["--error-format", "json", "check"])
        .args(&paths)
        .output()
        .unwrap();
    let codes = String::from_utf8_lossy(&json.stderr)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["code"].as_str().map(String::from))
        .collect();
    (out.status.code().unwrap_or(-1), stderr, codes)
}

#[test]
fn every_error_code_has_a_rendered_example() {
    let mut all = String::new();
    for (code, text) in CASES {
        let (status, stderr, codes) = check(code, text);
        assert_eq!(status, 1, "{code}: {stderr}");
        assert_eq!(
            codes,
            [*code],
            "{code}: one diagnostic with that code expected:\n{stderr}"
        );
        all.push_str(&format!("===== {code}\n{stderr}\n"));
    }
    // E007 (input too large) cannot come from a file (files over the limit are refused when
    // read) or an argument: it is reached through the API.
    let big = format!("x == \"{}\"", "a".repeat(rulesaga::rules::MAX_SOURCE_BYTES));
    let err = Program::compile(Source::new("<big>", big), &Env::new()).unwrap_err();
    assert_eq!(err.items[0].code, "E007");
    all.push_str(&format!("===== E007\n{err}\n"));
    insta::assert_snapshot!("every_error_code", all);
}

#[test]
fn the_table_covers_every_documented_code() {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/errors.md")).unwrap();
    let documented: Vec<&str> = doc
        .lines()
        .filter_map(|l| l.strip_prefix("| E"))
        .filter(|l| !l.contains("(not used)"))
        .map(|l| &l[..3])
        .collect();
    assert!(documented.len() > 20, "{documented:?}");
    for num in documented {
        let code = format!("E{num}");
        assert!(
            code == "E007" || CASES.iter().any(|(c, _)| *c == code),
            "no example for documented code {code}"
        );
    }
}
