//! `/metrics`: counters and histograms in the Prometheus text format (version 0.0.4),
//! written here: a few families, each a map from label values to a number.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

/// The bounds of every latency histogram, in seconds.
const BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0,
];

/// The families: name, type, help.
const FAMILIES: &[(&str, &str, &str)] = &[
    (
        "rulesaga_decisions_total",
        "counter",
        "Records evaluated by POST /v1/rules/{rule}:eval, by rule and outcome (true, false, value, error).",
    ),
    (
        "rulesaga_decision_seconds",
        "histogram",
        "Time to evaluate one request of POST /v1/rules/{rule}:eval, by rule.",
    ),
    (
        "rulesaga_sagas_started_total",
        "counter",
        "Sagas started by this server, by saga.",
    ),
    (
        "rulesaga_sagas_finished_total",
        "counter",
        "Runs of this server that ended, by saga and the status they ended in (parked: stopped by a shutdown).",
    ),
    (
        "rulesaga_events_total",
        "counter",
        "Events this server appended, by type (step_completed, step_failed, compensation_completed, ...).",
    ),
    (
        "rulesaga_sagas_in_flight",
        "gauge",
        "Saga runs this server drives now (at most --concurrency).",
    ),
    (
        "rulesaga_breaker_state",
        "gauge",
        "Circuit breaker of each HTTP service: 1 for its current state.",
    ),
    (
        "rulesaga_bulkhead_in_flight",
        "gauge",
        "Calls in flight to each HTTP service.",
    ),
    (
        "rulesaga_http_requests_total",
        "counter",
        "HTTP requests answered, by route and status.",
    ),
    (
        "rulesaga_reloads_total",
        "counter",
        "Reloads of the rule and saga files (SIGHUP), by outcome.",
    ),
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

/// Labels as written: `{rule="discount",outcome="true"}`.
type Labels = String;

#[derive(Default)]
struct Inner {
    counters: BTreeMap<(&'static str, Labels), u64>,
    histograms: BTreeMap<(&'static str, Labels), Histogram>,
}

/// The server's metrics.
#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    if pairs.is_empty() {
        return String::new();
    }
    let inner: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    format!("{{{}}}", inner.join(","))
}

/// A gauge's samples, given when the text is written.
pub struct Gauge<'a> {
    /// The family.
    pub name: &'static str,
    /// Label pairs and values.
    pub samples: Vec<(Vec<(&'a str, &'a str)>, f64)>,
}

impl Metrics {
    /// Add `n` to a counter.
    pub fn add(&self, name: &'static str, pairs: &[(&str, &str)], n: u64) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        *inner.counters.entry((name, labels(pairs))).or_default() += n;
    }

    /// Add one to a counter.
    pub fn inc(&self, name: &'static str, pairs: &[(&str, &str)]) {
        self.add(name, pairs, 1);
    }

    /// Record one observation in a histogram.
    pub fn observe(&self, name: &'static str, pairs: &[(&str, &str)], seconds: f64) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let h = inner.histograms.entry((name, labels(pairs))).or_default();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                h.counts[i] += 1;
            }
        }
        h.sum += seconds;
        h.count += 1;
    }

    /// Everything in the text format, with `gauges` read now.
    pub fn render(&self, gauges: &[Gauge<'_>]) -> String {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::new();
        for (family, ty, help) in FAMILIES {
            let _ = writeln!(out, "# HELP {family} {help}");
            let _ = writeln!(out, "# TYPE {family} {ty}");
            for ((name, l), v) in &inner.counters {
                if name == family {
                    let _ = writeln!(out, "{family}{l} {v}");
                }
            }
            for ((name, l), h) in &inner.histograms {
                if name != family {
                    continue;
                }
                // `le` goes after the other labels
                let open = if l.is_empty() {
                    "{".to_string()
                } else {
                    format!("{},", &l[..l.len() - 1])
                };
                for (bound, n) in BUCKETS.iter().zip(h.counts) {
                    let _ = writeln!(out, "{family}_bucket{open}le=\"{bound}\"}} {n}");
                }
                let _ = writeln!(out, "{family}_bucket{open}le=\"+Inf\"}} {}", h.count);
                let _ = writeln!(out, "{family}_sum{l} {}", h.sum);
                let _ = writeln!(out, "{family}_count{l} {}", h.count);
            }
            for g in gauges.iter().filter(|g| g.name == *family) {
                for (pairs, v) in &g.samples {
                    let _ = writeln!(out, "{family}{} {v}", labels(pairs));
                }
            }
        }
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_text_format() {
        let m = Metrics::default();
        m.inc(
            "rulesaga_decisions_total",
            &[("rule", "dis\"count"), ("outcome", "true")],
        );
        m.observe("rulesaga_decision_seconds", &[("rule", "d")], 0.003);
        let text = m.render(&[Gauge {
            name: "rulesaga_sagas_in_flight",
            samples: vec![(vec![], 2.0)],
        }]);
        assert!(
            text.contains("rulesaga_decisions_total{rule=\"dis\\\"count\",outcome=\"true\"} 1\n")
        );
        assert!(text.contains("rulesaga_decision_seconds_bucket{rule=\"d\",le=\"0.0025\"} 0\n"));
        assert!(text.contains("rulesaga_decision_seconds_bucket{rule=\"d\",le=\"0.005\"} 1\n"));
        assert!(text.contains("rulesaga_decision_seconds_count{rule=\"d\"} 1\n"));
        assert!(text.contains("rulesaga_sagas_in_flight 2\n"));
        assert!(text.contains("# TYPE rulesaga_decision_seconds histogram\n"));
    }
}
