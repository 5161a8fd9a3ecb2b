//! Explaining a result: a slow, separate interpreter over the checked tree.
//!
//! The fast path (closures from `compile`) never pays for explanations. This
//! module walks the same checked tree with the same value semantics (`ops`)
//! and records, for every clause, its result, the values it read, and why it
//! could not hold: a missing field, a null, a type mismatch, or what would
//! flip it ("needs days ≤ 30 (is 45)").

use std::fmt;
use std::sync::Arc;

use serde::Serialize;

use super::ast::{BinaryOp, Quantifier};
use super::checked::{Node, NodeKind, source_text};
use super::clause::{self, Binding, bound_path, clause_text};
use super::context::EvalError;
use super::{functions, ops};
use crate::diag::Source;
use crate::value::{OwnedValue, Record, Value};

/// Why a rule decided what it did: a tree that mirrors the rule.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Explanation {
    /// The clause as written (for a rule reference: `name(param = value, ...)`;
    /// for an element of `any`/`all`: `[i] predicate`).
    pub text: String,
    /// What kind of clause it is: how its children decide it.
    pub kind: ClauseKind,
    /// The clause's result as a condition.
    pub matched: bool,
    /// A test or quantifier as rule text that stands alone (fields as `$field`,
    /// a quantifier's variable as the element it stands for): evaluated on the
    /// record by itself, it gives `matched`. `None` where it cannot be written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clause: Option<String>,
    /// The values the clause read (`total = 87.5`, `days = missing`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reads: Vec<Read>,
    /// Why the clause did not hold, or what would flip it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Sub-clauses (operands of `and`/`or`/`not`, a rule's body, the elements
    /// `any`/`all` visited).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<Explanation>,
}

/// The kinds of clause in an [`Explanation`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClauseKind {
    /// `a and b`: true when every child is.
    And,
    /// `a or b`: true when some child is.
    Or,
    /// `not a`: the opposite of its child.
    Not,
    /// A rule reference: its body.
    Rule,
    /// `any(...)`: true when an element (a child) matches.
    Any,
    /// `all(...)`: true when every element does.
    All,
    /// `if c then a else b`: its children are the condition and the branch it chose.
    If,
    /// A test that reads values (a comparison, `in`, `is null`, a field, ...).
    Test,
    /// An operand after the result was decided, whose evaluation failed: it
    /// was not part of the decision.
    NotEvaluated,
}

/// One value a clause read.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Read {
    /// The field path or name as written.
    pub name: String,
    /// Its value as JSON; `None` when missing.
    pub value: Option<serde_json::Value>,
}

impl fmt::Display for Read {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(v) => write!(f, "{} = {v}", self.name),
            None => write!(f, "{} is missing", self.name),
        }
    }
}

/// A clause that decided a result: which one, whether it held, what it read.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Cause {
    /// The clause as written.
    pub text: String,
    /// The clause as standalone rule text ([`Explanation::clause`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clause: Option<String>,
    /// Its truth value on the record.
    pub holds: bool,
    /// The values it read.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reads: Vec<Read>,
    /// The sentence: `needs total ≥ 100 (is 30)`, or, for a clause that held
    /// where the result needed it not to, ``needs `x` to be false (x = 5)``.
    pub message: String,
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl Explanation {
    /// The messages of [`Explanation::causes`]: a short answer to "why (not)?".
    pub fn reasons(&self) -> Vec<String> {
        self.causes().into_iter().map(|c| c.message).collect()
    }

    /// The clauses that decided the result, in order, each with the truth
    /// value it had: through `not` (a clause that held and so failed a `not`
    /// is there, as holding), `and`/`or` (the operands that agree with the
    /// result), rule references, and `any`/`all` (the element that decided,
    /// or the quantifier itself when every element had to be visited).
    pub fn causes(&self) -> Vec<Cause> {
        let mut out = Vec::new();
        self.collect_causes(self.matched, &mut out);
        out
    }

    fn collect_causes(&self, result: bool, out: &mut Vec<Cause>) {
        let decisive = |c: &&Explanation| c.kind != ClauseKind::NotEvaluated;
        let children: Vec<&Explanation> = match (self.kind, self.matched) {
            (ClauseKind::Test | ClauseKind::NotEvaluated, _) => {
                out.push(self.cause(result));
                return;
            }
            // the quantifier itself decided: every element had to be visited
            (ClauseKind::Any, false) | (ClauseKind::All, true) => {
                out.push(self.cause(result));
                return;
            }
            (ClauseKind::And, true) | (ClauseKind::Or, false) => {
                self.children.iter().filter(decisive).collect()
            }
            (ClauseKind::And | ClauseKind::All, false)
            | (ClauseKind::Or | ClauseKind::Any, true) => self
                .children
                .iter()
                .filter(decisive)
                .filter(|c| c.matched == self.matched)
                .collect(),
            (ClauseKind::Not | ClauseKind::Rule | ClauseKind::If, _) => {
                self.children.iter().collect()
            }
        };
        if children.is_empty() {
            out.push(self.cause(result));
        }
        for c in children {
            c.collect_causes(result, out);
        }
    }

    /// This clause as a cause of a `result`.
    fn cause(&self, result: bool) -> Cause {
        let text = without_parens(&self.text);
        let reads: Vec<String> = self.reads.iter().map(ToString::to_string).collect();
        let read = if reads.is_empty() {
            String::new()
        } else {
            format!(" ({})", reads.join("; "))
        };
        let message = match (result, self.matched, &self.reason) {
            (false, false, Some(reason)) => reason.clone(),
            (false, false, None) => format!("needs `{text}`{read}"),
            (false, true, _) => format!("needs `{text}` to be false{read}"),
            (true, true, Some(reason)) => reason.clone(),
            (true, true, None) => format!("`{text}` holds{read}"),
            (true, false, _) => format!("`{text}` does not hold{read}"),
        };
        Cause {
            text: self.text.clone(),
            clause: self.clause.clone(),
            holds: self.matched,
            reads: self.reads.clone(),
            message,
        }
    }

    fn write(&self, f: &mut fmt::Formatter<'_>, depth: usize) -> fmt::Result {
        let mark = if self.matched { "✓" } else { "✗" };
        write!(f, "{:indent$}{mark} {}", "", self.text, indent = depth * 2)?;
        let mut notes: Vec<String> = self.reads.iter().map(ToString::to_string).collect();
        if let Some(r) = &self.reason {
            notes.push(r.clone());
        }
        if !notes.is_empty() {
            write!(f, "    ({})", notes.join("; "))?;
        }
        writeln!(f)?;
        for c in &self.children {
            c.write(f, depth + 1)?;
        }
        Ok(())
    }
}

/// A clause's text without the parentheses around all of it: `(a or b)` is `a or b`.
fn without_parens(text: &str) -> &str {
    let mut t = text.trim();
    while let Some(inner) = t.strip_prefix('(').and_then(|r| r.strip_suffix(')')) {
        // only when the two belong together: `(a) or (b)` keeps them
        let mut depth = 0usize;
        let closes_early = inner.chars().any(|c| {
            match c {
                '(' => depth += 1,
                ')' if depth == 0 => return true,
                ')' => depth -= 1,
                _ => {}
            }
            false
        });
        if closes_early {
            break;
        }
        t = inner.trim();
    }
    t
}

impl fmt::Display for Explanation {
    /// An indented tree with ✓ and ✗, one clause per line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f, 0)
    }
}

pub(crate) struct Explainer<'r> {
    record: &'r dyn Record,
    now: chrono::DateTime<chrono::FixedOffset>,
    locals: Vec<Value<'r>>,
    /// Beside each local: what it stands for, to write clauses standalone.
    bindings: Vec<Option<Binding>>,
    sources: Vec<Arc<Source>>,
    budget: ops::Budget,
}

fn show(v: &Option<Value<'_>>) -> String {
    match v {
        None => "missing".to_string(),
        Some(Value::Str(s)) => s.to_string(),
        Some(v) => v.to_string(),
    }
}

fn op_symbol(op: BinaryOp) -> &'static str {
    match op {
        BinaryOp::Eq => "=",
        BinaryOp::Ne => "≠",
        BinaryOp::Le => "≤",
        BinaryOp::Ge => "≥",
        other => other.as_str(),
    }
}

use ops::present;

impl<'r> Explainer<'r> {
    pub fn new(record: &'r dyn Record, ctx: &super::Context, source: Arc<Source>) -> Explainer<'r> {
        Explainer {
            record,
            now: ctx.now,
            locals: Vec::new(),
            bindings: Vec::new(),
            sources: vec![source],
            budget: ops::Budget::new(ctx.max_steps),
        }
    }

    fn text(&self, node: &Node) -> String {
        self.sources
            .last()
            .map_or_else(String::new, |s| source_text(s, node.span))
    }

    /// The fields and variables a clause reads, with their values.
    fn reads(&mut self, node: &Node, out: &mut Vec<Read>) -> Result<(), EvalError> {
        match &node.kind {
            NodeKind::Field { .. } | NodeKind::Local { .. } => {
                // a quantifier's variable by the element it stands for: `loans[1].defaulted`
                let name = bound_path(node, &self.bindings).unwrap_or_else(|| self.text(node));
                if !out.iter().any(|r| r.name == name) {
                    let v = self.value(node)?;
                    out.push(Read {
                        name,
                        value: v.map(|v| v.to_json()),
                    });
                }
            }
            NodeKind::Not(a) | NodeKind::Neg(a) | NodeKind::Coerce(a) | NodeKind::Has(a) => {
                self.reads(a, out)?
            }
            NodeKind::If {
                cond,
                then,
                otherwise,
            } => {
                self.reads(cond, out)?;
                let branch = if self.explain_bool(cond)? {
                    then
                } else {
                    otherwise
                };
                self.reads(branch, out)?;
            }
            NodeKind::Coalesce { value, fallback } => {
                self.reads(value, out)?;
                if present(self.value(value)?).is_none() {
                    self.reads(fallback, out)?;
                }
            }
            NodeKind::Path { base, .. } | NodeKind::Quant { list: base, .. } => {
                self.reads(base, out)?
            }
            NodeKind::Compare { left, right, .. }
            | NodeKind::Arith { left, right, .. }
            | NodeKind::Index {
                base: left,
                index: right,
            }
            | NodeKind::Member { left, right, .. } => {
                self.reads(left, out)?;
                self.reads(right, out)?;
            }
            NodeKind::Matches { value, .. } | NodeKind::IsNull { value, .. } => {
                self.reads(value, out)?
            }
            NodeKind::Between { value, low, high } => {
                for n in [value, low, high] {
                    self.reads(n, out)?;
                }
            }
            NodeKind::Call { args, .. } => {
                for a in args {
                    self.reads(a, out)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Explain a condition.
    pub fn explain(&mut self, node: &Node) -> Result<Explanation, EvalError> {
        let text = self.text(node);
        let clause = clause_text(node, &self.bindings);
        let leaf = |matched: bool, reads: Vec<Read>, reason: Option<String>| Explanation {
            text: text.clone(),
            kind: ClauseKind::Test,
            matched,
            clause: clause.clone(),
            reads,
            reason,
            children: Vec::new(),
        };
        let inner = |kind: ClauseKind, matched: bool, children: Vec<Explanation>| Explanation {
            text: text.clone(),
            kind,
            matched,
            clause: None,
            reads: Vec::new(),
            reason: None,
            children,
        };
        match &node.kind {
            NodeKind::And(items) | NodeKind::Or(items) => {
                let is_and = matches!(node.kind, NodeKind::And(_));
                let mut children = Vec::new();
                let mut result = is_and;
                let mut decided = false;
                for item in items {
                    match self.explain(item) {
                        Ok(c) => {
                            if !decided && c.matched != is_and {
                                result = !is_and;
                                decided = true;
                            }
                            children.push(c);
                        }
                        // errors after the decision are not reached by evaluation
                        Err(e) if !decided => return Err(e),
                        Err(e) => children.push(Explanation {
                            text: self.text(item),
                            kind: ClauseKind::NotEvaluated,
                            matched: false,
                            clause: None,
                            reads: Vec::new(),
                            reason: Some(format!("not evaluated: {e}")),
                            children: Vec::new(),
                        }),
                    }
                }
                let kind = if is_and {
                    ClauseKind::And
                } else {
                    ClauseKind::Or
                };
                Ok(inner(kind, result, children))
            }
            NodeKind::Not(operand) => {
                let c = self.explain(operand)?;
                Ok(inner(ClauseKind::Not, !c.matched, vec![c]))
            }
            NodeKind::If {
                cond,
                then,
                otherwise,
            } => {
                let c = self.explain(cond)?;
                let branch = self.explain(if c.matched { then } else { otherwise })?;
                Ok(Explanation {
                    clause,
                    ..inner(ClauseKind::If, branch.matched, vec![c, branch])
                })
            }
            NodeKind::Rule {
                name,
                args,
                body,
                source,
            } => {
                let shown: Vec<String> = args
                    .iter()
                    .map(|(p, v)| match &v.kind {
                        NodeKind::Const(c) => format!("{p} = {c}"),
                        _ => p.clone(),
                    })
                    .collect();
                let title = if shown.is_empty() {
                    name.clone()
                } else {
                    format!("{name}({})", shown.join(", "))
                };
                self.sources.push(source.clone());
                let c = self.explain(body);
                self.sources.pop();
                let c = c?;
                Ok(Explanation {
                    text: title,
                    ..inner(ClauseKind::Rule, c.matched, vec![c])
                })
            }
            NodeKind::Compare { op, left, right } => {
                let mut reads = Vec::new();
                self.reads(node, &mut reads)?;
                let (l, r) = (self.value(left)?, self.value(right)?);
                let (matched, reason) = match (present(l.clone()), present(r.clone())) {
                    (Some(a), Some(b)) => {
                        let m = ops::compare_op(*op, &a, &b);
                        let reason = if m {
                            None
                        } else if !op.is_comparison()
                            || (ops::compare(&a, &b).is_none()
                                && !matches!(op, BinaryOp::Eq | BinaryOp::Ne))
                        {
                            Some(format!(
                                "cannot compare {} with {}",
                                a.type_name(),
                                b.type_name()
                            ))
                        } else {
                            Some(format!(
                                "needs {} {} {} (is {})",
                                self.text(left),
                                op_symbol(*op),
                                show(&Some(b)),
                                show(&Some(a))
                            ))
                        };
                        (m, reason)
                    }
                    _ => (false, Some(self.missing_reason(left, &l, right, &r))),
                };
                Ok(leaf(matched, reads, reason))
            }
            NodeKind::Quant {
                quantifier: quantifier @ (Quantifier::Any | Quantifier::All),
                list,
                predicate,
                index,
                ..
            } => {
                let mut reads = Vec::new();
                self.reads(list, &mut reads)?;
                let l = self.value(list)?;
                let Some(n) = l.as_ref().and_then(Value::list_len) else {
                    let why = match &l {
                        None | Some(Value::Null) => {
                            format!("`{}` is {}", self.text(list), show_missing(&l))
                        }
                        Some(v) => {
                            format!("`{}` is a {}, not a list", self.text(list), v.type_name())
                        }
                    };
                    return Ok(leaf(false, reads, Some(why)));
                };
                self.budget.charge(n)?;
                let list_value = l.clone().unwrap_or(Value::Null);
                let list_clause = clause::to_path(list, &self.bindings);
                let mut children = Vec::new();
                let mut result = *quantifier == Quantifier::All;
                for i in 0..n {
                    self.locals.truncate(*index);
                    self.bindings.truncate(*index);
                    let element = ops::element(&list_value, i);
                    // what the variable stands for: the element's path, or its value
                    self.bindings.push(match &list_clause {
                        Some(path) => clause::index_path(path, i),
                        None => Some(Binding::Value(element.clone().into_owned())),
                    });
                    self.locals.push(element);
                    let mut c = self.explain(predicate);
                    self.locals.truncate(*index);
                    self.bindings.truncate(*index);
                    if let Ok(c) = &mut c {
                        c.text = format!("[{i}] {}", c.text);
                    }
                    let c = c?;
                    let decisive = c.matched == (*quantifier == Quantifier::Any);
                    children.push(c);
                    if decisive {
                        result = *quantifier == Quantifier::Any;
                        break;
                    }
                }
                let reason = match (quantifier, result) {
                    (Quantifier::Any, false) => Some(format!("no element of {n} matches")),
                    (Quantifier::All, true) => Some(format!("all {n} elements match")),
                    _ => None,
                };
                let kind = if *quantifier == Quantifier::Any {
                    ClauseKind::Any
                } else {
                    ClauseKind::All
                };
                Ok(Explanation {
                    reads,
                    reason,
                    clause,
                    ..inner(kind, result, children)
                })
            }
            _ => {
                // every other condition: evaluate it as the fast path does
                let mut reads = Vec::new();
                self.reads(node, &mut reads)?;
                let matched = self.cond(node)?;
                let reason = if matched {
                    None
                } else {
                    Some(self.leaf_reason(node, &reads)?)
                };
                Ok(leaf(matched, reads, reason))
            }
        }
    }

    fn missing_reason(
        &self,
        left: &Node,
        l: &Option<Value<'_>>,
        right: &Node,
        r: &Option<Value<'_>>,
    ) -> String {
        let side = if present(l.clone()).is_none() {
            (left, l)
        } else {
            (right, r)
        };
        format!("`{}` is {}", self.text(side.0), show_missing(side.1))
    }

    fn leaf_reason(&mut self, node: &Node, reads: &[Read]) -> Result<String, EvalError> {
        if let Some(r) = reads
            .iter()
            .find(|r| r.value.is_none() || r.value == Some(serde_json::Value::Null))
        {
            return Ok(format!(
                "`{}` is {}",
                r.name,
                if r.value.is_none() { "missing" } else { "null" }
            ));
        }
        Ok(match &node.kind {
            NodeKind::Member { op, left, right } => {
                let l = self.value(left)?;
                format!(
                    "needs {} {} {} (is {})",
                    self.text(left),
                    op.as_str(),
                    self.text(right),
                    show(&l)
                )
            }
            NodeKind::Matches { value, regex } => {
                format!("needs {} to match `{}`", self.text(value), regex.as_str())
            }
            NodeKind::Between { value, low, high } => {
                let v = self.value(value)?;
                let (lo, hi) = (self.value(low)?, self.value(high)?);
                format!(
                    "needs {} between {} and {} (is {})",
                    self.text(value),
                    show(&lo),
                    show(&hi),
                    show(&v)
                )
            }
            NodeKind::IsNull { value, negated } => {
                let v = self.value(value)?;
                let want = if *negated { "not null" } else { "null" };
                format!("needs {} to be {want} (is {})", self.text(value), show(&v))
            }
            _ => {
                let v = self.value(node)?;
                format!("is {}", show(&v))
            }
        })
    }

    fn cond(&mut self, node: &Node) -> Result<bool, EvalError> {
        self.explain_bool(node)
    }

    /// A condition's result, by the fast path's rules.
    fn explain_bool(&mut self, node: &Node) -> Result<bool, EvalError> {
        Ok(match &node.kind {
            NodeKind::And(_)
            | NodeKind::Or(_)
            | NodeKind::Not(_)
            | NodeKind::Rule { .. }
            | NodeKind::Compare { .. }
            | NodeKind::Quant {
                quantifier: Quantifier::Any | Quantifier::All,
                ..
            } => self.explain(node)?.matched,
            NodeKind::Member { op, left, right } => {
                let (Some(a), Some(b)) = (present(self.value(left)?), present(self.value(right)?))
                else {
                    return Ok(false);
                };
                ops::member_op(*op, &a, &b)
            }
            NodeKind::Matches { value, regex } => match self.value(value)? {
                Some(Value::Str(s)) => regex.is_match(&s),
                _ => false,
            },
            NodeKind::Between { value, low, high } => {
                let (Some(x), Some(a), Some(b)) = (
                    present(self.value(value)?),
                    present(self.value(low)?),
                    present(self.value(high)?),
                ) else {
                    return Ok(false);
                };
                ops::between(&x, &a, &b)
            }
            NodeKind::IsNull { value, negated } => ops::is_nullish(&self.value(value)?) != *negated,
            NodeKind::Has(path) => ops::has(&self.value(path)?),
            NodeKind::If { .. } => self.explain(node)?.matched,
            _ => {
                let v = self.value(node)?;
                ops::truth(&v, || self.text(node))?
            }
        })
    }

    /// A comprehension's value, by the fast path's rules (`ops::Fold`).
    fn comprehension(
        &mut self,
        node: &Node,
        quantifier: Quantifier,
        index: usize,
        list: &Node,
        body: &Node,
    ) -> Result<Option<Value<'r>>, EvalError> {
        let Some((l, n)) = self.value(list)?.and_then(|l| l.list_len().map(|n| (l, n))) else {
            return Ok(ops::over_nothing(quantifier));
        };
        self.budget.charge(n)?;
        let what = self.text(node);
        let mut fold = ops::Fold::new(quantifier);
        for i in 0..n {
            self.locals.truncate(index);
            self.bindings.truncate(index);
            let element = ops::element(&l, i);
            self.locals.push(element.clone());
            self.bindings.push(None);
            let result = if quantifier.takes_predicate() {
                self.explain_bool(body).map(ops::Body::Holds)
            } else {
                self.value(body).map(ops::Body::Value)
            };
            self.locals.truncate(index);
            self.bindings.truncate(index);
            if !fold.push(element, result?, &what)? {
                break;
            }
        }
        Ok(fold.finish())
    }

    /// A value, by the fast path's rules.
    fn value(&mut self, node: &Node) -> Result<Option<Value<'r>>, EvalError> {
        Ok(match &node.kind {
            NodeKind::Const(v) => Some(v.clone()),
            NodeKind::Field { slot, name, rest } => {
                ops::walk_path(ops::read_field(self.record, name, *slot)?, rest)
            }
            NodeKind::Local { index, rest, .. } => {
                ops::walk_path(self.locals.get(*index).cloned(), rest)
            }
            NodeKind::Param { .. } => None,
            NodeKind::Path { base, rest } => ops::walk_path(self.value(base)?, rest),
            NodeKind::Coerce(inner) => self.value(inner)?.map(|v| ops::coerce(v, &node.ty)),
            NodeKind::Index { base, index } => {
                let base = self.value(base)?;
                ops::index(base, self.value(index)?, &self.text(node))?
            }
            NodeKind::Neg(inner) => match present(self.value(inner)?) {
                Some(v) => ops::negate(&v, &self.text(node))?,
                None => None,
            },
            NodeKind::Arith { op, left, right } => {
                let (a, b) = (present(self.value(left)?), present(self.value(right)?));
                match (a, b) {
                    (Some(a), Some(b)) => ops::arith(*op, &a, &b, &self.text(node))?,
                    _ => None,
                }
            }
            NodeKind::Call { func, args } => {
                let mut vals = Vec::with_capacity(args.len());
                for a in args {
                    vals.push(self.value(a)?);
                }
                match ops::call_args(func, vals) {
                    Some(vals) => functions::call(func, &vals, self.now, &mut self.budget)?,
                    None => return Ok(None),
                }
            }
            NodeKind::List(items) => {
                let mut vals: Vec<OwnedValue> = Vec::with_capacity(items.len());
                for i in items {
                    vals.push(self.value(i)?.map_or(Value::Null, Value::into_owned));
                }
                Some(Value::OwnedList(vals.into()))
            }
            NodeKind::Rule { body, source, .. } => {
                self.sources.push(source.clone());
                let v = self.value(body);
                self.sources.pop();
                v?
            }
            NodeKind::If {
                cond,
                then,
                otherwise,
            } => {
                if self.explain_bool(cond)? {
                    self.value(then)?
                } else {
                    self.value(otherwise)?
                }
            }
            NodeKind::Coalesce { value, fallback } => {
                let v = self.value(value)?;
                ops::coalesce(v, || self.value(fallback))?
            }
            NodeKind::Object(keys, items) => {
                let mut vals = Vec::with_capacity(items.len());
                for i in items {
                    vals.push(self.value(i)?);
                }
                Some(ops::object_of(keys.iter().cloned().zip(vals)))
            }
            NodeKind::Quant {
                quantifier,
                index,
                list,
                predicate,
                ..
            } if *quantifier != Quantifier::Any && *quantifier != Quantifier::All => {
                self.comprehension(node, *quantifier, *index, list, predicate)?
            }
            _ => Some(Value::Bool(self.explain_bool(node)?)),
        })
    }
}

fn show_missing(v: &Option<Value<'_>>) -> &'static str {
    match v {
        Some(Value::Null) => "null",
        _ => "missing",
    }
}
