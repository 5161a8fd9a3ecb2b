//! Drawing a saga: steps, their conditions, and the compensation path taken when
//! each step fails (Mermaid or Graphviz dot text; the CLI prints it).

use super::model::{Saga, Undo};

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

fn label(saga: &Saga, idx: usize) -> String {
    let s = &saga.steps[idx];
    let mut l = format!("{}\\n{}", s.name, s.action.summary());
    if let Some(w) = &s.when {
        l.push_str(&format!("\\nwhen {}", w.text));
    }
    if matches!(s.undo, Undo::Pivot) {
        l.push_str("\\n(pivot)");
    }
    l.replace('"', "'")
}

/// A Mermaid flowchart.
pub fn mermaid(saga: &Saga) -> String {
    let mut out = format!(
        "flowchart TD\n  start([\"{}\"])\n",
        saga.name.replace('"', "'")
    );
    for (i, s) in saga.steps.iter().enumerate() {
        out.push_str(&format!(
            "  s{i}[\"{}\"]\n",
            label(saga, i).replace("\\n", "<br/>")
        ));
        if let Undo::Compensate(a) = &s.undo {
            out.push_str(&format!(
                "  u{i}[/\"undo {}<br/>{}\"/]\n",
                s.name,
                a.summary()
            ));
        }
    }
    out.push_str("  done([completed])\n  compensated([compensated])\n");
    let mut prev = "start".to_string();
    for (i, s) in saga.steps.iter().enumerate() {
        let edge = if s.when.is_some() {
            " -->|then| "
        } else {
            " --> "
        };
        out.push_str(&format!("  {prev}{edge}s{i}\n"));
        prev = format!("s{i}");
    }
    out.push_str(&format!("  {prev} --> done\n"));
    for i in 0..saga.steps.len() {
        if saga.pivot.is_some_and(|p| i > p) {
            continue;
        }
        let path = compensation_path(saga, i);
        let first = path
            .first()
            .and_then(|n| saga.steps.iter().position(|s| s.name == *n));
        match first {
            Some(j) => out.push_str(&format!("  s{i} -. fails .-> u{j}\n")),
            None => out.push_str(&format!("  s{i} -. fails .-> compensated\n")),
        }
    }
    let undo: Vec<usize> = (0..saga.steps.len())
        .filter(|&i| matches!(saga.steps[i].undo, Undo::Compensate(_)))
        .collect();
    for w in undo.windows(2).rev() {
        out.push_str(&format!("  u{} --> u{}\n", w[1], w[0]));
    }
    if let Some(first) = undo.first() {
        out.push_str(&format!("  u{first} --> compensated\n"));
    }
    out
}

/// A Graphviz digraph.
pub fn dot(saga: &Saga) -> String {
    let mut out = format!(
        "digraph \"{}\" {{\n  rankdir=TB;\n  start [shape=oval label=\"{}\"];\n",
        saga.name, saga.name
    );
    for (i, s) in saga.steps.iter().enumerate() {
        out.push_str(&format!(
            "  s{i} [shape=box label=\"{}\"];\n",
            label(saga, i)
        ));
        if let Undo::Compensate(a) = &s.undo {
            out.push_str(&format!(
                "  u{i} [shape=box style=dashed label=\"undo {}\\n{}\"];\n",
                s.name,
                a.summary()
            ));
        }
    }
    out.push_str("  done [shape=oval label=\"completed\"];\n  compensated [shape=oval label=\"compensated\"];\n");
    let mut prev = "start".to_string();
    for i in 0..saga.steps.len() {
        out.push_str(&format!("  {prev} -> s{i};\n"));
        prev = format!("s{i}");
    }
    out.push_str(&format!("  {prev} -> done;\n"));
    for i in 0..saga.steps.len() {
        if saga.pivot.is_some_and(|p| i > p) {
            continue;
        }
        let path = compensation_path(saga, i);
        let first = path
            .first()
            .and_then(|n| saga.steps.iter().position(|s| s.name == *n));
        match first {
            Some(j) => out.push_str(&format!("  s{i} -> u{j} [style=dotted label=\"fails\"];\n")),
            None => out.push_str(&format!(
                "  s{i} -> compensated [style=dotted label=\"fails\"];\n"
            )),
        }
    }
    let undo: Vec<usize> = (0..saga.steps.len())
        .filter(|&i| matches!(saga.steps[i].undo, Undo::Compensate(_)))
        .collect();
    for w in undo.windows(2).rev() {
        out.push_str(&format!("  u{} -> u{};\n", w[1], w[0]));
    }
    if let Some(first) = undo.first() {
        out.push_str(&format!("  u{first} -> compensated;\n"));
    }
    out.push_str("}\n");
    out
}
