//! Evaluating the benchmark rule on typed records allocates nothing: a
//! counting global allocator (dhat in testing mode) proves it. This file
//! holds one test, as dhat allows one profiler per process.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rulesaga::{Context, Env, FieldRef, Record, RuleSet, Source, Value};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

fn allocations() -> u64 {
    dhat::HeapStats::get().total_blocks
}

struct Customer {
    tier: &'static str,
    total: i64,
    days: i64,
}

impl Record for Customer {
    fn field(&self, field: FieldRef<'_>) -> Option<Value<'_>> {
        match field.slot {
            Some(0) => Some(Value::str(self.tier)),
            Some(1) => Some(Value::Int(self.total)),
            Some(2) => Some(Value::Int(self.days)),
            _ => None,
        }
    }
}

#[test]
fn typed_evaluation_does_not_allocate() {
    let file = "schema {\n  tier: standard | premium | vip\n  total: int\n  days: int\n}\n\
                rule bench = tier == premium or (total >= 100 and days <= 30)\n\
                rule wide = tier in [premium, vip] and total between 10 and 200 and not (days > 90)\n";
    let _profiler = dhat::Profiler::builder().testing().build();
    let set = RuleSet::compile(vec![Source::new("b.rules", file)], &Env::new()).unwrap();
    let ctx = Context::system();
    let records = [
        Customer {
            tier: "premium",
            total: 5,
            days: 100,
        },
        Customer {
            tier: "standard",
            total: 150,
            days: 10,
        },
        Customer {
            tier: "vip",
            total: 50,
            days: 30,
        },
    ];
    for name in ["bench", "wide"] {
        let rule = set.rule(name).unwrap();
        let before = allocations();
        let mut hits = 0;
        for _ in 0..1000 {
            for r in &records {
                if rule.matches(r, &ctx).unwrap() {
                    hits += 1;
                }
            }
        }
        let after = allocations();
        assert_eq!(
            after - before,
            0,
            "rule `{name}` allocated {} times",
            after - before
        );
        assert!(hits > 0);
    }
}
