//! The rules engine against a hand-written closure, on the benchmark rule
//! `tier == premium or (total >= 100 and days <= 30)` over 100,000
//! deterministic records. Criterion reports time per batch of 100,000 and
//! throughput; per-record time = median / 100,000.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::borrow::Cow;
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rulesaga::json::{FieldIndex, SparseRecord};
use rulesaga::rules::{Bound, RecordType};
use rulesaga::{Context, Env, FieldRef, Program, Record, RuleSet, Source, Value};
use serde::Deserialize;

const RULE: &str = "tier == premium or (total >= 100 and days <= 30)";
const N: usize = 100_000;

#[derive(Clone, Copy)]
enum Tier {
    Standard,
    Premium,
    Vip,
}

impl Tier {
    fn as_str(self) -> &'static str {
        match self {
            Tier::Standard => "standard",
            Tier::Premium => "premium",
            Tier::Vip => "vip",
        }
    }
}

struct Customer {
    tier: Tier,
    total: i64,
    days: i64,
}

/// A user's own struct: fields by its own slots, bound to the rule by name.
impl RecordType for Customer {
    const FIELDS: &'static [&'static str] = &["tier", "total", "days"];
}

impl Record for Customer {
    #[inline]
    fn field(&self, field: FieldRef<'_>) -> Option<Value<'_>> {
        match field.slot {
            Some(0) => Some(Value::str(self.tier.as_str())),
            Some(1) => Some(Value::Int(self.total)),
            Some(2) => Some(Value::Int(self.days)),
            _ => None,
        }
    }
}

fn customers() -> Vec<Customer> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        state >> 33
    };
    (0..N)
        .map(|_| Customer {
            tier: [Tier::Standard, Tier::Premium, Tier::Vip][(next() % 3) as usize],
            total: (next() % 301) as i64,
            days: (next() % 121) as i64,
        })
        .collect()
}

/// The baseline for JSON text: serde's derive decoding every field of a
/// 3-field record, then the closure.
#[derive(Deserialize)]
struct Row3<'a> {
    #[serde(borrow)]
    tier: Cow<'a, str>,
    total: i64,
    days: i64,
}

/// The same for a 6-field record (the rule still reads three).
#[derive(Deserialize)]
#[allow(dead_code)]
struct Row6<'a> {
    id: i64,
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(borrow)]
    tier: Cow<'a, str>,
    total: i64,
    #[serde(borrow)]
    country: Cow<'a, str>,
    days: i64,
}

fn derive3(lines: &[String]) -> usize {
    lines
        .iter()
        .filter(|line| {
            serde_json::from_str::<Row3<'_>>(line)
                .is_ok_and(|r| r.tier == "premium" || (r.total >= 100 && r.days <= 30))
        })
        .count()
}

fn derive6(lines: &[String]) -> usize {
    lines
        .iter()
        .filter(|line| {
            serde_json::from_str::<Row6<'_>>(line)
                .is_ok_and(|r| r.tier == "premium" || (r.total >= 100 && r.days <= 30))
        })
        .count()
}

fn typed_rule() -> Bound<Customer> {
    let file = format!(
        "schema {{\n  tier: standard | premium | vip\n  total: int\n  days: int\n}}\nrule bench = {RULE}\n"
    );
    let set = RuleSet::compile(vec![Source::new("bench.rules", file)], &Env::new())
        .expect("rule compiles");
    set.rule("bench")
        .expect("rule exists")
        .bind::<Customer>()
        .expect("the struct has the rule's fields")
}

fn bench(c: &mut Criterion) {
    let data = customers();
    let ctx = Context::system();
    let mut g = c.benchmark_group("rule_100k");
    g.throughput(Throughput::Elements(N as u64));

    let rule = |c: &Customer| matches!(c.tier, Tier::Premium) || (c.total >= 100 && c.days <= 30);
    case(&mut g, "native_closure", || {
        black_box(&data)
            .iter()
            .filter(|c| rule(black_box(c)))
            .count()
    });

    let program = typed_rule();
    case(&mut g, "typed_records", || {
        {
            black_box(&data)
                .iter()
                .filter(|c| program.matches(*c, &ctx).unwrap_or(false))
                .count()
        }
    });
    case(&mut g, "typed_records_dyn", || {
        {
            black_box(&data)
                .iter()
                .filter(|c| program.program().matches(*c, &ctx).unwrap_or(false))
                .count()
        }
    });

    let json: Vec<serde_json::Value> = data
        .iter()
        .map(|c| serde_json::json!({"tier": c.tier.as_str(), "total": c.total, "days": c.days}))
        .collect();
    let untyped = Program::compile(Source::new("<expr>", RULE), &Env::new()).expect("compiles");
    case(&mut g, "serde_json_values", || {
        {
            black_box(&json)
                .iter()
                .filter(|r| untyped.matches(*r, &ctx).unwrap_or(false))
                .count()
        }
    });
    case(&mut g, "serde_json_values_typed", || {
        {
            black_box(&json)
                .iter()
                .filter(|r| untyped.matches_typed(*r, &ctx).unwrap_or(false))
                .count()
        }
    });

    // hand-coded lookups on the same values: the baseline for `serde_json::Value`
    let rule = |v: &serde_json::Value| {
        v.get("tier").and_then(serde_json::Value::as_str) == Some("premium")
            || (v
                .get("total")
                .and_then(serde_json::Value::as_i64)
                .is_some_and(|t| t >= 100)
                && v.get("days")
                    .and_then(serde_json::Value::as_i64)
                    .is_some_and(|d| d <= 30))
    };
    case(&mut g, "serde_json_values_native", || {
        black_box(&json)
            .iter()
            .filter(|v| rule(black_box(v)))
            .count()
    });

    // JSON text, 3 and 6 fields per record: serde's derive + the closure, and the sparse scanner
    let lines3: Vec<String> = json.iter().map(|v| v.to_string()).collect();
    let lines6: Vec<String> = data
        .iter()
        .enumerate()
        .map(|(i, c)| {
            serde_json::json!({"id": i, "name": format!("customer-{i}"), "tier": c.tier.as_str(),
                "total": c.total, "country": "DE", "days": c.days})
            .to_string()
        })
        .collect();
    let index = FieldIndex::new(untyped.fields());
    for (name, lines) in [("3", &lines3), ("6", &lines6)] {
        let derive = if name == "3" { derive3 } else { derive6 };
        case(&mut g, &format!("json_text_{name}_serde_derive"), || {
            derive(black_box(lines))
        });
        case(&mut g, &format!("json_text_{name}_sparse_parse"), || {
            let mut record = SparseRecord::new(&index);
            let mut n = 0;
            for line in black_box(lines) {
                if record.parse(line, &index).is_ok()
                    && untyped.matches_typed(&record, &ctx).unwrap_or(false)
                {
                    n += 1;
                }
            }
            n
        });
    }
    g.finish();
    if std::env::var_os("RULES_BENCH_ONCE").is_some() {
        return;
    }

    c.bench_function("compile_expr", |b| {
        b.iter(|| Program::compile(Source::new("<expr>", black_box(RULE)), &Env::new()))
    });

    // Parsing alone: the fast path (what `parse_expr` takes) and the pest grammar.
    let source = Source::new("<expr>", RULE);
    c.bench_function("parse_expr", |b| {
        b.iter(|| rulesaga::rules::parse_expr(black_box(&source)))
    });
    c.bench_function("parse_expr_pest", |b| {
        b.iter(|| rulesaga::rules::parse_expr_pest(black_box(&source)))
    });
}

/// One case of the `rule_100k` group: measured by criterion, or, when
/// `RULES_BENCH_ONCE` names it, run 10 times through [`measured`] and nothing
/// else, for `valgrind --tool=callgrind --toggle-collect=rules::measured`:
/// instructions per record = the total / 1,000,000, repeatable under load.
fn case<M: criterion::measurement::Measurement>(
    g: &mut criterion::BenchmarkGroup<'_, M>,
    name: &str,
    mut routine: impl FnMut() -> usize,
) {
    match std::env::var("RULES_BENCH_ONCE") {
        Ok(only) if only == name => {
            let n: usize = (0..10).map(|_| measured(&mut routine)).sum();
            println!("{name}: {n} matches in 10 runs of {N} records");
        }
        Ok(_) => {}
        Err(_) => {
            g.bench_function(name, |b| b.iter(&mut routine));
        }
    }
}

#[inline(never)]
fn measured(routine: &mut dyn FnMut() -> usize) -> usize {
    routine()
}

criterion_group!(benches, bench);
criterion_main!(benches);
