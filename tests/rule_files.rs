//! Rule files through the API: references, parameters, schemas, and the
//! compile errors a rule set must report (all of them, with codes).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rulesaga::rules::{Functions, RuleErrors, Schema, Type};
use rulesaga::{Context, Env, FieldRef, Program, Record, RuleSet, Source, Value};
use serde_json::json;

fn compile(files: &[(&str, &str)]) -> Result<RuleSet, Vec<(String, &'static str, String)>> {
    let sources = files.iter().map(|(n, t)| Source::new(*n, *t)).collect();
    RuleSet::compile(sources, &Env::new()).map_err(|e| match e {
        RuleErrors::Invalid(files) => files
            .iter()
            .flat_map(|f| {
                f.items
                    .iter()
                    .map(|d| (f.source.name.clone(), d.code, d.message.clone()))
                    .collect::<Vec<_>>()
            })
            .collect(),
        RuleErrors::Io { .. } => panic!("unexpected I/O error"),
    })
}

fn codes(errors: &[(String, &'static str, String)]) -> Vec<&'static str> {
    errors.iter().map(|e| e.1).collect()
}

#[test]
fn references_parameters_and_defaults() {
    let set = compile(&[(
        "a.rules",
        "rule high(threshold = 100) = total >= threshold\n\
         rule any_tier(tiers = [premium, vip]) = tier in tiers\n\
         rule both = high and any_tier\n\
         rule custom = high(10) and any_tier([standard])\n",
    )])
    .unwrap();
    let ctx = Context::system();
    let r = json!({"total": 50, "tier": "standard"});
    assert!(!set.rule("high").unwrap().matches(&r, &ctx).unwrap());
    assert!(!set.rule("both").unwrap().matches(&r, &ctx).unwrap());
    assert!(set.rule("custom").unwrap().matches(&r, &ctx).unwrap());
    assert!(
        set.compile_expr("high(40)")
            .unwrap()
            .matches(&r, &ctx)
            .unwrap()
    );
    assert_eq!(set.names(), ["high", "any_tier", "both", "custom"]);
}

#[test]
fn rules_may_refer_across_files() {
    let set = compile(&[
        ("a.rules", "rule big = total > 100\n"),
        ("b.rules", "rule vip_big = big and tier == vip\n"),
    ])
    .unwrap();
    let r = json!({"total": 500, "tier": "vip"});
    assert!(
        set.rule("vip_big")
            .unwrap()
            .matches(&r, &Context::system())
            .unwrap()
    );
}

#[test]
fn every_compile_error_is_reported() {
    let errors = compile(&[(
        "bad.rules",
        "rule a = b\n\
         rule b = a\n\
         rule c = nope_rule(1)\n\
         rule d(x = 1) = total > x\n\
         rule e = d(1, 2)\n\
         rule d = true\n\
         rule self_ref = self_ref or total > 1\n\
         rule len = true\n",
    )])
    .unwrap_err();
    let got = codes(&errors);
    for want in ["E104", "E102", "E103", "E105"] {
        assert!(got.contains(&want), "missing {want} in {errors:?}");
    }
    // the cycle through `a` and `b`, the self reference, each named
    assert!(
        errors.iter().any(|e| e.2.contains("`self_ref`")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.2 == "rule `len` has the name of a function"),
        "{errors:?}"
    );
}

#[test]
fn errors_in_two_files_are_both_reported() {
    let errors = compile(&[
        ("x.rules", "rule a = (\n"),
        ("y.rules", "rule b = nope(1)\n"),
    ])
    .unwrap_err();
    let files: Vec<&str> = errors.iter().map(|e| e.0.as_str()).collect();
    assert!(
        files.contains(&"x.rules") && files.contains(&"y.rules"),
        "{errors:?}"
    );
}

#[test]
fn schemas_merge_across_files_and_conflicts_are_errors() {
    let ok = compile(&[
        ("a.rules", "schema { total: number }\nrule a = total > 1\n"),
        (
            "b.rules",
            "schema { days: int }\nrule b = days < 3 and total > 2\n",
        ),
    ]);
    assert!(ok.is_ok());
    let errors = compile(&[
        ("a.rules", "schema { total: number }\nrule a = total > 1\n"),
        ("b.rules", "schema { total: string }\nrule b = true\n"),
    ])
    .unwrap_err();
    assert_eq!(codes(&errors), ["E112"]);
}

#[test]
fn schema_rows_are_read_by_slot() {
    let set = compile(&[(
        "s.rules",
        "schema {\n  tier: standard | premium\n  total: number\n  since: date\n  note?: string\n}\n\
         rule r = tier == premium and total > 10 and since >= 2024-01-01 and note is null\n",
    )])
    .unwrap();
    let schema: &Schema = set.schema().unwrap();
    let row = schema
        .row(&json!({"tier": "premium", "total": 11.5, "since": "2024-02-01", "extra": 1}))
        .unwrap();
    assert!(
        set.rule("r")
            .unwrap()
            .matches(&row, &Context::system())
            .unwrap()
    );
    // data that does not fit the schema is rejected when the row is built
    let bad = schema.row(&json!({"tier": "gold", "total": 1, "since": "2024-02-01"}));
    assert_eq!(
        bad.unwrap_err().to_string(),
        "tier: `gold` is not one of standard | premium"
    );
    let missing = schema.row(&json!({"tier": "premium", "since": "2024-02-01"}));
    assert_eq!(missing.unwrap_err().to_string(), "`total` is missing");
}

#[test]
fn custom_functions_are_type_checked_like_builtins() {
    let mut fns = Functions::new();
    fns.register("vat", vec![Type::Number], Type::Float, |args| match args {
        [Value::Int(i)] => Ok(Value::Float(*i as f64 * 0.2)),
        [Value::Float(x)] => Ok(Value::Float(x * 0.2)),
        _ => Err("needs a number".to_string()),
    })
    .unwrap();
    assert!(
        fns.register("len", vec![], Type::Int, |_| Ok(Value::Int(0)))
            .is_err()
    );
    let env = Env::new().with_functions(fns);
    let p = Program::compile(Source::new("<e>", "vat(total) > 10"), &env).unwrap();
    assert!(
        p.matches(&json!({"total": 100}), &Context::system())
            .unwrap()
    );
    let err = Program::compile(Source::new("<e>", "vat(\"x\") > 1"), &env).unwrap_err();
    assert_eq!(err.items[0].code, "E106");
    let err = Program::compile(Source::new("<e>", "vat(1, 2) > 1"), &env).unwrap_err();
    assert_eq!(err.items[0].code, "E103");
    let err = Program::compile(Source::new("<e>", "vta(1) > 1"), &env).unwrap_err();
    assert_eq!(err.items[0].help.as_deref(), Some("did you mean `vat`?"));
    // list arguments are checked element by element
    let mut fns = Functions::new();
    let numbers = Type::List(Box::new(Type::Number));
    fns.register("total_of", vec![numbers], Type::Number, |_| {
        Ok(Value::Int(0))
    })
    .unwrap();
    let env = Env::new().with_functions(fns);
    assert!(Program::compile(Source::new("<e>", "total_of([1, 2.5]) > 1"), &env).is_ok());
    let err = Program::compile(Source::new("<e>", "total_of([\"a\"]) > 1"), &env).unwrap_err();
    assert_eq!(err.items[0].code, "E106");
}

/// A rule set keeps the functions it was compiled with: expressions compiled
/// against it later may call them, and its rules are inlined as they were
/// checked (never checked again without the functions, which once turned an
/// unknown function into a silent `null`).
#[test]
fn a_rule_set_keeps_its_functions() {
    let mut fns = Functions::new();
    fns.register("vat", vec![Type::Number], Type::Float, |args| match args {
        [Value::Int(i)] => Ok(Value::Float(*i as f64 * 0.2)),
        _ => Err("needs an int".to_string()),
    })
    .unwrap();
    let sources = vec![Source::new("a.rules", "rule taxed = vat(total) > 10\n")];
    let set = RuleSet::compile(sources, &Env::new().with_functions(fns)).unwrap();
    let ctx = Context::system();
    let p = set.compile_expr("taxed and vat(total) < 30").unwrap();
    assert!(p.matches(&json!({"total": 100}), &ctx).unwrap());
    assert!(!p.matches(&json!({"total": 10}), &ctx).unwrap());
    let p = set.compile_value("vat(total)").unwrap();
    assert_eq!(
        p.evaluate(&json!({"total": 100}), &ctx)
            .unwrap()
            .unwrap()
            .to_json(),
        json!(20.0)
    );
    // a rule used by many is checked once: its error is reported once, in its file
    let errors = compile(&[
        ("a.rules", "rule bad = nope(1) > 2\n"),
        ("b.rules", "rule x = bad\nrule y = bad or x\n"),
    ])
    .unwrap_err();
    assert_eq!(codes(&errors), ["E102"]);
    assert_eq!(errors[0].0, "a.rules");
}

#[test]
fn users_own_structs_are_records() {
    struct Order {
        total: i64,
        country: String,
    }
    impl Record for Order {
        fn field(&self, f: FieldRef<'_>) -> Option<Value<'_>> {
            match f.name {
                "total" => Some(Value::Int(self.total)),
                "country" => Some(Value::str(&self.country)),
                _ => None,
            }
        }
    }
    let p = Program::compile(
        Source::new("<e>", "total > 10 and country in [FR, DE]"),
        &Env::new(),
    )
    .unwrap();
    let o = Order {
        total: 20,
        country: "DE".to_string(),
    };
    assert!(p.matches(&o, &Context::system()).unwrap());
    assert_eq!(p.fields(), ["total", "country"]);
}

#[test]
fn uint_fields_are_never_negative() {
    let set = compile(&[(
        "u.rules",
        "schema {\n  days: uint\n}\nrule a = days < 0\nrule b = days >= 0\nrule c = days < 10\n",
    )])
    .unwrap();
    let warnings: Vec<(&str, String)> = set
        .lint()
        .iter()
        .flat_map(|d| d.items.iter().map(|i| (i.code, i.message.clone())))
        .collect();
    assert_eq!(
        warnings,
        [
            ("W001", "`days < 0` is always false".to_string()),
            (
                "W001",
                "`days >= 0` is always true whenever `days` is present".to_string()
            ),
        ]
    );
    let schema = set.schema().unwrap();
    assert_eq!(
        schema.row(&json!({"days": -1})).unwrap_err().to_string(),
        "days: expected uint, found a negative number"
    );
    assert_eq!(
        schema
            .check_record(&json!({"days": -1}))
            .unwrap_err()
            .to_string(),
        "days: expected uint, found a negative number"
    );
    assert!(schema.check_record(&json!({"days": 3})).is_ok());
    assert_eq!(
        schema.check_record(&json!({})).unwrap_err().to_string(),
        "`days` is missing"
    );
    // arithmetic on a uint is a plain int
    assert!(set.compile_expr("days - 20 < 0").is_ok());
}

/// A value the schema declares `date`, `datetime` or `duration` is that type
/// in every operation, whatever text the data holds it as — nested fields and
/// list elements included (as strings, these datetimes would order wrongly).
#[test]
fn schema_temporal_values_are_temporal_everywhere() {
    let set = compile(&[(
        "t.rules",
        "schema {\n  a: datetime\n  b: datetime\n  person: { dob: date }\n  \
         waits: list<duration>\n  events: list<{ at: datetime }>\n}\n\
         rule ordered = a < b\n\
         rule adult = person.dob + 6575d <= 2024-06-15\n\
         rule slow = any(w in waits, w > 1h)\n\
         rule late = any(e in events, e.at > b)\n",
    )])
    .unwrap();
    let r = json!({
        "a": "2024-01-01T10:00:00+02:00", "b": "2024-01-01T09:00:00Z",
        "person": {"dob": "1990-01-01"}, "waits": ["30m", "2h"],
        "events": [{"at": "2024-01-01T11:30:00+02:00"}]
    });
    let schema = set.schema().unwrap();
    assert!(schema.check_json(&r).is_ok());
    let ctx = Context::system();
    for rule in ["ordered", "adult", "slow"] {
        let p = set.rule(rule).unwrap();
        assert!(p.matches(&r, &ctx).unwrap(), "{rule}");
        assert!(p.explain(&r, &ctx).unwrap().matched, "{rule}");
    }
    // 09:30Z is after 09:00Z
    assert!(set.rule("late").unwrap().matches(&r, &ctx).unwrap());
    // a JSON value that is not an object is named as such
    let err = schema.check_json(&json!([1])).unwrap_err();
    assert_eq!(err.to_string(), "expected an object, found a list");
    let err = schema
        .check_json(
            &json!({"a": "x", "b": "2024-01-01T09:00:00Z", "person": {"dob": "1990-01-01"},
                            "waits": [], "events": []}),
        )
        .unwrap_err();
    assert_eq!(err.path, "a");
    assert_eq!(err.to_string(), "a: expected datetime, found string \"x\"");
}

/// A struct read by position is bound to a program by field name, once: two
/// schema fields in another order than the struct's slots read the right
/// values, and a field the struct lacks is an error, never a read of another.
#[test]
fn structs_read_by_slot_are_bound_by_name() {
    use rulesaga::rules::RecordType;
    struct Loan {
        amount: i64,
        limit: i64,
    }
    impl Record for Loan {
        fn field(&self, f: FieldRef<'_>) -> Option<Value<'_>> {
            match f.slot {
                Some(0) => Some(Value::Int(self.amount)),
                Some(1) => Some(Value::Int(self.limit)),
                _ => None,
            }
        }
    }
    impl RecordType for Loan {
        const FIELDS: &'static [&'static str] = &["amount", "limit"];
    }
    // the schema declares the two fields the other way round
    let set = compile(&[(
        "l.rules",
        "schema { limit: int, amount: int, note?: string }\nrule over = amount > limit\n",
    )])
    .unwrap();
    let over = set.rule("over").unwrap().bind::<Loan>().unwrap();
    let ctx = Context::system();
    let loan = Loan {
        amount: 150,
        limit: 100,
    };
    assert!(over.matches(&loan, &ctx).unwrap());
    assert!(over.explain(&loan, &ctx).unwrap().matched);
    assert_eq!(over.program().fields(), ["amount", "limit"]);
    // a field the struct does not have
    let err = set
        .compile_expr("amount > limit and note == \"x\"")
        .unwrap()
        .bind::<Loan>()
        .err()
        .unwrap();
    assert_eq!(err.field, "note");
    let err = Program::compile(Source::new("<e>", "amont > 1"), &Env::new())
        .unwrap()
        .bind::<Loan>()
        .err()
        .unwrap();
    assert_eq!(err.suggestion.as_deref(), Some("amount"));
}

/// Errors are data: asking for a rule by name says why not, with the suggestion
/// as a field (the CLI, test files and diff render it; callers can act on it).
#[test]
fn rule_lookups_fail_with_typed_errors() {
    use rulesaga::rules::RuleError;
    let set = compile(&[(
        "a.rules",
        "rule high(threshold = 100) = total >= threshold\nrule over(limit) = total > limit\n\
         rule price = total * 1.2\n",
    )])
    .unwrap();
    let err = set.require("hihg").unwrap_err();
    assert_eq!(
        err,
        RuleError::Unknown {
            name: "hihg".into(),
            suggestion: Some("high".into())
        }
    );
    assert_eq!(err.help().as_deref(), Some("did you mean `high`?"));
    let err = set.require("over").unwrap_err();
    assert!(
        matches!(&err, RuleError::NeedsArguments { signature, .. } if signature == "over(limit)")
    );
    assert!(set.require("price").is_ok());
    let err = set.condition("price").unwrap_err();
    assert_eq!(err.to_string(), "rule `price` is a value, not a condition");
    assert!(set.condition("high").is_ok());
}
