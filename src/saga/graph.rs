//! Drawing a saga: steps (with their service, guard, retry and timeout), the path a
//! skipped step takes, and where each failure leads — the compensations in reverse
//! order, the step itself when it may have acted (a timeout), or `failed` (after the
//! pivot, or when a compensation fails for good). One graph, drawn as Mermaid or
//! Graphviz dot text (the CLI prints it).

use super::model::{Action, RetryPolicy, Saga, Service, Step, Undo, format_duration};

/// The steps a failure at step `idx` undoes, in order (reverse of completion).
pub fn compensation_path(saga: &Saga, idx: usize) -> Vec<&str> {
    if saga.pivot.is_some_and(|p| idx > p) {
        return Vec::new();
    }
    saga.steps[..idx.min(saga.steps.len())]
        .iter()
        .rev()
        .filter(|s| matches!(s.undo, Undo::Compensate(_)))
        .map(|s| s.name.as_str())
        .collect()
}

#[derive(Clone, Copy, PartialEq)]
enum Shape {
    Terminal,
    Step,
    Undo,
}

struct Node {
    id: String,
    lines: Vec<String>,
    shape: Shape,
}

impl Node {
    /// The node's lines, quotes made safe, joined with `sep`.
    fn text(&self, sep: &str) -> String {
        self.lines
            .iter()
            .map(|l| clean(l))
            .collect::<Vec<_>>()
            .join(sep)
    }
}

struct Edge {
    from: String,
    to: String,
    label: Option<&'static str>,
    /// A failure path (drawn dotted).
    failure: bool,
}

struct Graph {
    title: String,
    nodes: Vec<Node>,
    edges: Vec<Edge>,
}

fn edge(from: &str, to: &str, label: Option<&'static str>, failure: bool) -> Edge {
    Edge {
        from: from.to_string(),
        to: to.to_string(),
        label,
        failure,
    }
}

fn retry_line(r: &RetryPolicy) -> Option<String> {
    let attempts = match r.max_attempts {
        Some(1) => return None,
        Some(n) => format!("{n} attempts"),
        None => "until it succeeds".to_string(),
    };
    Some(format!(
        "retry: {attempts}, {}..{}",
        format_duration(r.initial_backoff),
        format_duration(r.max_backoff)
    ))
}

fn service_lines(s: &Service) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(b) = &s.circuit_breaker {
        out.push(format!(
            "breaker: opens at {}% of {} calls, for {}",
            (b.failure_rate * 100.0).round(),
            b.window,
            format_duration(b.open_for)
        ));
    }
    if let Some(b) = &s.bulkhead {
        out.push(format!(
            "bulkhead: {} at once, waits {}",
            b.max_concurrent,
            format_duration(b.max_wait)
        ));
    }
    out
}

fn action_lines(saga: &Saga, a: &Action) -> Vec<String> {
    let mut out = vec![a.summary()];
    if let Action::Http(h) = a
        && let Some(s) = saga.service(&h.service)
    {
        out.extend(service_lines(s));
    }
    out
}

fn step_lines(saga: &Saga, s: &Step) -> Vec<String> {
    let mut lines = vec![s.name.to_string()];
    lines.extend(action_lines(saga, &s.action));
    if let Some(w) = &s.when {
        lines.push(format!("when {}", w.text));
    }
    if let Some(r) = &s.require {
        lines.push(format!("require {}", r.rule.name));
    }
    lines.extend(retry_line(&s.retry));
    if let Some(t) = s.timeout {
        lines.push(format!("timeout {}", format_duration(t)));
    }
    if matches!(s.undo, Undo::Pivot) {
        lines.push("(pivot)".to_string());
    }
    lines
}

/// True when a failed attempt of `s` may still have acted (it timed out): then the
/// step itself is compensated.
fn may_time_out(saga: &Saga, s: &Step) -> bool {
    s.timeout.is_some() || saga.deadline.is_some() || matches!(&s.action, Action::Http(_))
}

fn build(saga: &Saga) -> Graph {
    let n = saga.steps.len();
    let sid = |i: usize| {
        if i < n {
            format!("s{i}")
        } else {
            "done".to_string()
        }
    };
    let mut nodes = vec![Node {
        id: "start".into(),
        lines: vec![saga.name.clone()],
        shape: Shape::Terminal,
    }];
    for (i, s) in saga.steps.iter().enumerate() {
        nodes.push(Node {
            id: sid(i),
            lines: step_lines(saga, s),
            shape: Shape::Step,
        });
        if let Undo::Compensate(a) = &s.undo {
            // the service's breaker and bulkhead are drawn on the step
            let lines = vec![format!("undo {}", s.name), a.summary()];
            nodes.push(Node {
                id: format!("u{i}"),
                lines,
                shape: Shape::Undo,
            });
        }
    }
    for t in ["completed", "compensated", "failed"] {
        let id = if t == "completed" { "done" } else { t };
        nodes.push(Node {
            id: id.into(),
            lines: vec![t.into()],
            shape: Shape::Terminal,
        });
    }
    let mut edges = Vec::new();
    let mut prev = "start".to_string();
    for (i, s) in saga.steps.iter().enumerate() {
        if s.when.is_some() {
            edges.push(edge(&prev, &sid(i), Some("then"), false));
            edges.push(edge(&prev, &sid(i + 1), Some("skip"), false));
        } else {
            edges.push(edge(&prev, &sid(i), None, false));
        }
        prev = sid(i);
    }
    edges.push(edge(&prev, "done", None, false));
    let mut any_failed = false;
    for (i, s) in saga.steps.iter().enumerate() {
        if saga.pivot.is_some_and(|p| i > p) {
            edges.push(edge(&sid(i), "failed", Some("fails"), true));
            any_failed = true;
            continue;
        }
        let first = compensation_path(saga, i)
            .first()
            .and_then(|name| saga.steps.iter().position(|x| x.name == *name));
        let to = first.map_or("compensated".to_string(), |j| format!("u{j}"));
        edges.push(edge(&sid(i), &to, Some("fails"), true));
        if matches!(s.undo, Undo::Compensate(_)) && may_time_out(saga, s) {
            edges.push(edge(&sid(i), &format!("u{i}"), Some("times out"), true));
        }
    }
    let undo: Vec<usize> = (0..n)
        .filter(|&i| matches!(saga.steps[i].undo, Undo::Compensate(_)))
        .collect();
    for w in undo.windows(2).rev() {
        edges.push(edge(
            &format!("u{}", w[1]),
            &format!("u{}", w[0]),
            None,
            false,
        ));
    }
    if let Some(first) = undo.first() {
        edges.push(edge(&format!("u{first}"), "compensated", None, false));
    }
    for &i in undo.iter().rev() {
        edges.push(edge(&format!("u{i}"), "failed", Some("fails"), true));
        any_failed = true;
    }
    if !any_failed {
        nodes.retain(|n| n.id != "failed");
    }
    Graph {
        title: saga.name.clone(),
        nodes,
        edges,
    }
}

fn clean(s: &str) -> String {
    s.replace('"', "'")
}

/// A Mermaid flowchart.
pub fn mermaid(saga: &Saga) -> String {
    let g = build(saga);
    let mut out = String::from("flowchart TD\n");
    for n in &g.nodes {
        let text = n.text("<br/>");
        let node = match n.shape {
            Shape::Terminal => format!("([\"{text}\"])"),
            Shape::Step => format!("[\"{text}\"]"),
            Shape::Undo => format!("[/\"{text}\"/]"),
        };
        out.push_str(&format!("  {}{node}\n", n.id));
    }
    for e in &g.edges {
        let arrow = match (e.failure, e.label) {
            (false, None) => " --> ".to_string(),
            (false, Some(l)) => format!(" -->|{l}| "),
            (true, Some(l)) => format!(" -. {l} .-> "),
            (true, None) => " -.-> ".to_string(),
        };
        out.push_str(&format!("  {}{arrow}{}\n", e.from, e.to));
    }
    out
}

/// A Graphviz digraph.
pub fn dot(saga: &Saga) -> String {
    let g = build(saga);
    let mut out = format!("digraph \"{}\" {{\n  rankdir=TB;\n", clean(&g.title));
    for n in &g.nodes {
        let text = n.text("\\n");
        let shape = match n.shape {
            Shape::Terminal => "shape=oval",
            Shape::Step => "shape=box",
            Shape::Undo => "shape=box style=dashed",
        };
        out.push_str(&format!("  {} [{shape} label=\"{text}\"];\n", n.id));
    }
    for e in &g.edges {
        let attrs = match (e.failure, e.label) {
            (false, None) => String::new(),
            (false, Some(l)) => format!(" [label=\"{l}\"]"),
            (true, Some(l)) => format!(" [style=dotted label=\"{l}\"]"),
            (true, None) => " [style=dotted]".to_string(),
        };
        out.push_str(&format!("  {} -> {}{attrs};\n", e.from, e.to));
    }
    out.push_str("}\n");
    out
}
