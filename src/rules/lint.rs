//! Lints: rules that check but probably do not say what their author meant.
//!
//! They run on the checked tree of each rule (every name already resolved by
//! the checker, so a lint never decides again what a bare word is), and only
//! when asked for ([`lint`], `rulesaga check`), never while compiling. A rule's
//! references to other rules are not entered: each rule is linted on its own
//! body. All are warnings:
//!
//! | code | finds |
//! |---|---|
//! | W001 | a comparison that is always true or always false (`1 > 2`, `x between 10 and 5`) |
//! | W002 | a contradiction in one `and` over the same field (`total > 100 and total < 50`) |
//! | W003 | a rule no other rule and no test file uses (only with test files: [`unused_rules`]) |
//! | W004 | a comparison that reads an optional field without a null test: it is false when the field is missing |
//! | W005 | a bare word on the right of `contains`, `starts_with` or `ends_with` that no schema declares: it is a field, not a string |
//! | W006 | `x ?? default` where the schema requires `x`: the default never applies |

use std::collections::{HashMap, HashSet};

use super::api::RuleSet;
use super::ast::BinaryOp;
use super::checked::{Node, NodeKind, Step};
use super::schema::{Schema, Type};
use crate::diag::{Diagnostic, Diagnostics, Source, Span};
use crate::value::Value;

/// The warnings of every rule of a compiled rule set, per file (W001, W002,
/// W004, W005; W003 needs the test files: [`unused_rules`]).
pub fn lint(set: &RuleSet) -> Vec<Diagnostics> {
    let mut out = Vec::new();
    for (source, file) in set.files() {
        let mut items = Vec::new();
        for decl in &file.rules {
            let Some(rule) = set.checked_rules().get(&decl.name.name) else {
                continue;
            };
            let mut linter = Linter {
                source,
                schema: set.schema(),
                out: Vec::new(),
            };
            linter.walk(&rule.body, &HashSet::new(), false);
            items.extend(linter.out);
        }
        items.sort_by_key(|d| (d.span.start, d.span.end));
        items.dedup();
        if !items.is_empty() {
            out.push(Diagnostics {
                source: source.clone(),
                items,
            });
        }
    }
    out
}

/// A constant operand.
#[derive(Clone, Debug, PartialEq)]
enum Const {
    Num(f64),
    Str(String),
    Bool(bool),
}

fn constant(node: &Node) -> Option<Const> {
    match &node.kind {
        // only ints that a float holds exactly
        NodeKind::Const(Value::Int(n)) if n.unsigned_abs() <= 1 << 53 => {
            Some(Const::Num(*n as f64))
        }
        NodeKind::Const(Value::Float(f)) => Some(Const::Num(*f)),
        NodeKind::Const(Value::Str(s)) => Some(Const::Str(s.to_string())),
        NodeKind::Const(Value::Bool(b)) => Some(Const::Bool(*b)),
        _ => None,
    }
}

fn compare(op: BinaryOp, a: &Const, b: &Const) -> Option<bool> {
    let ord = match (a, b) {
        (Const::Num(x), Const::Num(y)) => x.partial_cmp(y)?,
        (Const::Str(x), Const::Str(y)) => x.cmp(y),
        (Const::Bool(x), Const::Bool(y)) if matches!(op, BinaryOp::Eq | BinaryOp::Ne) => x.cmp(y),
        _ => return None,
    };
    op.is_comparison()
        .then(|| super::ops::ordering_holds(op, ord))
}

/// The field a node reads, as a path (`customer.address.country`); `None` for
/// anything else (a quantifier variable, a parameter, a computed value).
fn field_path(node: &Node) -> Option<(&str, &[Step])> {
    match &node.kind {
        NodeKind::Field { name, rest, .. } => Some((name, rest)),
        NodeKind::Coerce(inner) => field_path(inner),
        _ => None,
    }
}

fn path_text(node: &Node) -> Option<String> {
    let (name, rest) = field_path(node)?;
    let mut path = name.to_string();
    for step in rest {
        match step {
            Step::Field(f) => {
                path.push('.');
                path.push_str(f);
            }
            Step::Index(i) => path.push_str(&format!("[{i}]")),
        }
    }
    Some(path)
}

/// What one clause of an `and` says about one field.
enum Fact {
    /// `lo <(=) field <(=) hi`; `None` for no bound; the flag is "inclusive".
    Range(Option<(f64, bool)>, Option<(f64, bool)>),
    Is(String),
    IsNot(String),
}

fn fact(node: &Node) -> Option<(String, Fact)> {
    match &node.kind {
        NodeKind::Compare { op, left, right } => {
            let (field, op, value) = match (path_text(left), path_text(right)) {
                (Some(f), None) => (f, *op, constant(right)?),
                (None, Some(f)) => (f, op.flipped(), constant(left)?),
                _ => return None,
            };
            let f = match (op, value) {
                (BinaryOp::Eq, Const::Num(n)) => Fact::Range(Some((n, true)), Some((n, true))),
                (BinaryOp::Lt, Const::Num(n)) => Fact::Range(None, Some((n, false))),
                (BinaryOp::Le, Const::Num(n)) => Fact::Range(None, Some((n, true))),
                (BinaryOp::Gt, Const::Num(n)) => Fact::Range(Some((n, false)), None),
                (BinaryOp::Ge, Const::Num(n)) => Fact::Range(Some((n, true)), None),
                (BinaryOp::Eq, Const::Str(s)) => Fact::Is(s),
                (BinaryOp::Ne, Const::Str(s)) => Fact::IsNot(s),
                _ => return None,
            };
            Some((field, f))
        }
        NodeKind::Between { value, low, high } => {
            let field = path_text(value)?;
            match (constant(low)?, constant(high)?) {
                (Const::Num(lo), Const::Num(hi)) => {
                    Some((field, Fact::Range(Some((lo, true)), Some((hi, true)))))
                }
                _ => None,
            }
        }
        _ => None,
    }
}

/// Fields a clause proves present (`x is not null`) — or, with `absent`,
/// proves missing (`x is null`). (`x == null` is `x is null` once checked.)
fn null_tests(node: &Node, absent: bool, out: &mut HashSet<String>) {
    match &node.kind {
        NodeKind::IsNull { value, negated } if *negated != absent => {
            out.extend(path_text(value));
        }
        NodeKind::And(items) if !absent => items.iter().for_each(|i| null_tests(i, absent, out)),
        NodeKind::Or(items) if absent => items.iter().for_each(|i| null_tests(i, absent, out)),
        _ => {}
    }
}

struct Linter<'a> {
    /// The file of the rule (its nodes' spans point into it).
    source: &'a Source,
    schema: Option<&'a Schema>,
    out: Vec<Diagnostic>,
}

impl Linter<'_> {
    /// The text of a node as written, white space collapsed.
    fn text(&self, span: Span) -> String {
        self.source
            .text
            .get(span.range())
            .unwrap_or("")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Walk a field path through the schema: whether any step is declared
    /// optional (`name?:`), and the declared type at the end (`None` once the path
    /// leaves what the schema describes). `None` for a node that is not a field.
    fn declared(&self, node: &Node) -> Option<(bool, Option<&Type>)> {
        let schema = self.schema?;
        let (name, rest) = field_path(node)?;
        let (_, field) = schema.root.get(name)?;
        let mut optional = field.optional;
        let mut ty = Some(&field.ty);
        for step in rest {
            ty = match (step, ty) {
                (Step::Field(f), Some(Type::Object(obj))) => obj.get(f).map(|(_, field)| {
                    optional |= field.optional;
                    &field.ty
                }),
                (Step::Index(_), Some(Type::List(element))) => Some(&**element),
                _ => None,
            };
        }
        Some((optional, ty))
    }

    fn walk(&mut self, node: &Node, guarded: &HashSet<String>, negated: bool) {
        match &node.kind {
            NodeKind::And(items) => {
                self.contradictions(items);
                let mut more = guarded.clone();
                for item in items {
                    self.walk(item, &more, negated);
                    null_tests(item, false, &mut more);
                }
            }
            NodeKind::Or(items) => {
                let mut more = guarded.clone();
                for item in items {
                    self.walk(item, &more, negated);
                    null_tests(item, true, &mut more);
                }
            }
            NodeKind::Not(inner) => self.walk(inner, guarded, !negated),
            // the branches of `if` know what its condition proved
            NodeKind::If {
                cond,
                then,
                otherwise,
            } => {
                self.walk(cond, guarded, negated);
                let mut present = guarded.clone();
                null_tests(cond, false, &mut present);
                self.walk(then, &present, negated);
                let mut absent = guarded.clone();
                null_tests(cond, true, &mut absent);
                self.walk(otherwise, &absent, negated);
            }
            NodeKind::Coalesce { value, .. } => {
                self.needless_default(node, value);
                self.walk_children(node, guarded, negated);
            }
            NodeKind::Compare { op, left, right } => {
                self.constant_comparison(node, *op, left, right);
                self.unsigned_comparison(node, *op, left, right);
                self.optional_reads(node, &[left, right], guarded, negated);
                self.walk_children(node, guarded, negated);
            }
            NodeKind::Member { op, left, right } => {
                if matches!(
                    op,
                    BinaryOp::Contains | BinaryOp::StartsWith | BinaryOp::EndsWith
                ) {
                    self.bare_word_operand(*op, right);
                }
                self.optional_reads(node, &[left, right], guarded, negated);
                self.walk_children(node, guarded, negated);
            }
            NodeKind::Matches { value, .. } => {
                self.optional_reads(node, &[value], guarded, negated);
                self.walk_children(node, guarded, negated);
            }
            NodeKind::Between { value, low, high } => {
                self.between(node, value, low, high);
                self.optional_reads(node, &[value, low, high], guarded, negated);
                self.walk_children(node, guarded, negated);
            }
            // another rule is linted on its own; what this rule passes it is its own
            NodeKind::Rule { args, .. } => {
                for (_, arg) in args {
                    self.walk(arg, guarded, negated);
                }
            }
            _ => self.walk_children(node, guarded, negated),
        }
    }

    fn walk_children(&mut self, node: &Node, guarded: &HashSet<String>, negated: bool) {
        for child in node.children() {
            self.walk(child, guarded, negated);
        }
    }

    fn constant_comparison(&mut self, node: &Node, op: BinaryOp, left: &Node, right: &Node) {
        let (Some(a), Some(b)) = (constant(left), constant(right)) else {
            return;
        };
        if let Some(result) = compare(op, &a, &b) {
            self.out.push(
                Diagnostic::warning(
                    "W001",
                    node.span,
                    format!("`{}` is always {result}", self.text(node.span)),
                )
                .with_label("compares two constants")
                .with_help("compare a field, or write `true` / `false` if that is what you mean"),
            );
        }
    }

    /// `total ?? 0` when the schema requires `total`: the default never applies.
    fn needless_default(&mut self, node: &Node, value: &Node) {
        let Some((false, Some(_))) = self.declared(value) else {
            return;
        };
        let field = path_text(value).unwrap_or_default();
        self.out.push(
            Diagnostic::warning(
                "W006",
                node.span,
                format!("`{field}` is required by the schema: the default of `??` never applies"),
            )
            .with_label("never missing or null")
            .with_help(format!(
                "write `{field}` alone, or declare it `{field}?:` if it may be missing"
            )),
        );
    }

    /// `tags contains vip`: only `==`, `!=` and lists read a bare word as a symbol,
    /// so here `vip` is a field. Without a schema to say so, that is worth a warning.
    fn bare_word_operand(&mut self, op: BinaryOp, right: &Node) {
        let NodeKind::Field { name, rest, .. } = &right.kind else {
            return;
        };
        let written = self.text(right.span);
        // `$vip` says it is a field
        if !rest.is_empty() || written != *name {
            return;
        }
        if self.schema.is_some_and(|s| s.root.get(name).is_some()) {
            return;
        }
        self.out.push(
            Diagnostic::warning(
                "W005",
                right.span,
                format!(
                    "`{name}` on the right of `{}` is a field, not the string \"{name}\"",
                    op.as_str()
                ),
            )
            .with_label("read as a field")
            .with_help(format!(
                "write \"{name}\" for the string, or `${name}` to say it is a field"
            )),
        );
    }

    /// `days < 0` when the schema says `days: uint`: decided by the type alone.
    fn unsigned_comparison(&mut self, node: &Node, op: BinaryOp, left: &Node, right: &Node) {
        let unsigned = |n: &Node| {
            self.declared(n)
                .is_some_and(|(_, ty)| ty == Some(&Type::UInt))
        };
        let (field, op, konst) = if unsigned(left) {
            (left, op, right)
        } else if unsigned(right) {
            (right, op.flipped(), left)
        } else {
            return;
        };
        let Some(Const::Num(c)) = constant(konst) else {
            return;
        };
        let result = match op {
            BinaryOp::Lt if c <= 0.0 => false,
            BinaryOp::Le | BinaryOp::Eq if c < 0.0 => false,
            BinaryOp::Gt | BinaryOp::Ne if c < 0.0 => true,
            BinaryOp::Ge if c <= 0.0 => true,
            _ => return,
        };
        let name = self.text(field.span);
        let when = if result {
            format!(" whenever `{name}` is present")
        } else {
            String::new()
        };
        self.out.push(
            Diagnostic::warning(
                "W001",
                node.span,
                format!("`{}` is always {result}{when}", self.text(node.span)),
            )
            .with_label(format!("`{name}` is a uint: never negative"))
            .with_help(if result {
                format!("to test that `{name}` is present, write `{name} is not null`")
            } else {
                "check the bound: it cannot be reached".to_string()
            }),
        );
    }

    fn between(&mut self, node: &Node, value: &Node, low: &Node, high: &Node) {
        let (Some(Const::Num(lo)), Some(Const::Num(hi))) = (constant(low), constant(high)) else {
            return;
        };
        if let Some(Const::Num(v)) = constant(value) {
            let result = lo <= v && v <= hi;
            self.out.push(
                Diagnostic::warning(
                    "W001",
                    node.span,
                    format!("`{}` is always {result}", self.text(node.span)),
                )
                .with_label("compares constants")
                .with_help("compare a field, or write `true` / `false` if that is what you mean"),
            );
        } else if lo > hi {
            self.out.push(
                Diagnostic::warning(
                    "W001",
                    node.span,
                    format!("`{}` is always false", self.text(node.span)),
                )
                .with_label("the lower bound is above the upper bound")
                .with_help(format!(
                    "bounds are inclusive, lower first: `{} between {} and {}`",
                    self.text(value.span),
                    self.text(high.span),
                    self.text(low.span)
                )),
            );
        }
    }

    fn contradictions(&mut self, clauses: &[Node]) {
        // per field: the tightest bounds so far, the clause that set each, the symbols
        struct State<'e> {
            lo: Option<(f64, bool, &'e Node)>,
            hi: Option<(f64, bool, &'e Node)>,
            is: Option<(String, &'e Node)>,
            is_not: Vec<(String, &'e Node)>,
        }
        let mut fields: HashMap<String, State<'_>> = HashMap::new();
        let mut reported: HashSet<String> = HashSet::new();
        for clause in clauses {
            let Some((field, fact)) = fact(clause) else {
                continue;
            };
            let st = fields.entry(field.clone()).or_insert(State {
                lo: None,
                hi: None,
                is: None,
                is_not: Vec::new(),
            });
            let mut conflict: Option<&Node> = None;
            match fact {
                Fact::Range(lo, hi) => {
                    if let Some((v, inc)) = lo
                        && st
                            .lo
                            .is_none_or(|(w, winc, _)| v > w || (v == w && winc && !inc))
                    {
                        st.lo = Some((v, inc, clause));
                    }
                    if let Some((v, inc)) = hi
                        && st
                            .hi
                            .is_none_or(|(w, winc, _)| v < w || (v == w && winc && !inc))
                    {
                        st.hi = Some((v, inc, clause));
                    }
                    if let (Some((l, linc, le)), Some((h, hinc, he))) = (st.lo, st.hi)
                        && (l > h || (l == h && !(linc && hinc)))
                    {
                        conflict = Some(if std::ptr::eq(le, clause) { he } else { le });
                    }
                }
                Fact::Is(s) => {
                    if let Some((other, e)) = &st.is
                        && *other != s
                    {
                        conflict = Some(e);
                    } else if let Some((_, e)) = st.is_not.iter().find(|(o, _)| *o == s) {
                        conflict = Some(e);
                    }
                    if st.is.is_none() {
                        st.is = Some((s, clause));
                    }
                }
                Fact::IsNot(s) => {
                    if let Some((other, e)) = &st.is
                        && *other == s
                    {
                        conflict = Some(e);
                    }
                    st.is_not.push((s, clause));
                }
            }
            if let Some(earlier) = conflict
                && reported.insert(field.clone())
            {
                self.out.push(
                    Diagnostic::warning(
                        "W002",
                        earlier.span.to(clause.span),
                        format!(
                            "`{}` and `{}` cannot both be true",
                            self.text(earlier.span),
                            self.text(clause.span)
                        ),
                    )
                    .with_label(format!("contradictory conditions on `{field}`"))
                    .with_help("this `and` is always false: did you mean `or`, or other bounds?"),
                );
            }
        }
    }

    fn optional_reads(
        &mut self,
        node: &Node,
        operands: &[&Node],
        guarded: &HashSet<String>,
        negated: bool,
    ) {
        let mut reads = Vec::new();
        for operand in operands {
            self.optional_fields(operand, &mut reads);
        }
        if let Some(field) = reads.into_iter().find(|f| !guarded.contains(f)) {
            let text = self.text(node.span);
            let yields = if negated {
                "false (so the `not` around it makes it true)"
            } else {
                "false"
            };
            self.out.push(
                Diagnostic::warning(
                    "W004",
                    node.span,
                    format!("`{field}` is optional: when it is missing or null, `{text}` is {yields}"),
                )
                .with_label(format!("reads `{field}`, which may be missing"))
                .with_help(format!(
                    "say what a missing value means: `{field} is not null and ...` or `{field} is null or ...`"
                )),
            );
        }
    }

    /// Optional fields an operand reads (through arithmetic and calls, not through conditions).
    fn optional_fields(&self, node: &Node, out: &mut Vec<String>) {
        match &node.kind {
            NodeKind::Field { .. } | NodeKind::Coerce(_)
                if self.declared(node).is_some_and(|(optional, _)| optional) =>
            {
                out.extend(path_text(node));
            }
            NodeKind::Arith { .. } | NodeKind::Neg(_) | NodeKind::Call { .. } => {
                node.children().for_each(|c| self.optional_fields(c, out))
            }
            _ => {}
        }
    }
}

/// W003: rules that no other rule and none of `used` (names from test files) refer to.
/// Only meaningful when the rules come with their tests: `rulesaga check` runs it
/// when test files are among its inputs.
pub fn unused_rules(set: &RuleSet, used: &HashSet<String>) -> Vec<Diagnostics> {
    let mut referenced: HashSet<String> = used.clone();
    for (name, rule) in set.checked_rules() {
        let mut names = HashSet::new();
        rules_in(&rule.body, &mut names);
        names.remove(name);
        referenced.extend(names);
    }
    let mut out: Vec<Diagnostics> = Vec::new();
    for (source, file) in set.files() {
        let items: Vec<Diagnostic> = file
            .rules
            .iter()
            .filter(|r| !referenced.contains(&r.name.name))
            .map(|r| {
                Diagnostic::warning(
                    "W003",
                    r.name.span,
                    format!("rule `{}` is not used by any rule or test", r.name.name),
                )
                .with_label("unused")
                .with_help(format!(
                    "add a test case that expects `{}`, or remove the rule",
                    r.name.name
                ))
            })
            .collect();
        if !items.is_empty() {
            out.push(Diagnostics {
                source: source.clone(),
                items,
            });
        }
    }
    out
}

/// The rules a checked tree refers to (as resolved, not as bare words).
pub(crate) fn rules_in(node: &Node, out: &mut HashSet<String>) {
    if let NodeKind::Rule { name, .. } = &node.kind {
        out.insert(name.clone());
    }
    for child in node.children() {
        rules_in(child, out);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::rules::{Env, RuleSet};

    /// (code, text under the span) of every warning of a rule file.
    fn lints(text: &str) -> Vec<(&'static str, String)> {
        let set = RuleSet::compile(vec![Source::new("t.rules", text)], &Env::new())
            .unwrap_or_else(|e| panic!("{e}"));
        lint(&set)
            .iter()
            .flat_map(|d| {
                d.items
                    .iter()
                    .map(|i| (i.code, text.get(i.span.range()).unwrap_or("").to_string()))
            })
            .collect()
    }

    const SCHEMA: &str =
        "schema { total: number\n tier: a | b | c\n coupon?: string\n days: int }\n";

    #[test]
    fn defaults_and_choices() {
        let r = |body: &str| lints(&format!("{SCHEMA}rule r = {body}"));
        // a default after a required field never applies
        assert_eq!(r("(total ?? 0) > 1"), [("W006", "(total ?? 0)".into())]);
        assert_eq!(r("(coupon ?? \"\") == \"x\""), []);
        // the branches of `if` know what its condition proved
        assert_eq!(
            r("if coupon is not null then coupon == \"x\" else false"),
            []
        );
        assert_eq!(r("if coupon is null then false else coupon == \"x\""), []);
        assert_eq!(
            r("if days > 1 then coupon == \"x\" else false"),
            [("W004", "coupon == \"x\"".into())]
        );
    }

    #[test]
    fn always_true_or_false() {
        assert_eq!(lints("rule r = 1 > 2"), [("W001", "1 > 2".into())]);
        assert_eq!(
            lints("rule r = x between 10 and 5"),
            [("W001", "x between 10 and 5".into())]
        );
        assert_eq!(lints("rule r = x between 5 and 10"), []);
        assert_eq!(lints("rule r = -1 < 0 or x"), [("W001", "-1 < 0".into())]);
        // parameters are not constants: callers pass other values
        assert_eq!(lints("rule r(lo = 10, hi = 5) = x between lo and hi"), []);
    }

    #[test]
    fn contradictions_in_one_and() {
        let r = |body: &str| lints(&format!("{SCHEMA}rule r = {body}"));
        assert_eq!(
            r("total > 100 and total < 50"),
            [("W002", "total > 100 and total < 50".into())]
        );
        assert_eq!(
            r("tier == a and days > 1 and tier == b"),
            [("W002", "tier == a and days > 1 and tier == b".into())]
        );
        assert_eq!(
            r("tier == a and tier != a"),
            [("W002", "tier == a and tier != a".into())]
        );
        assert_eq!(r("total >= 100 and total <= 100"), []);
        assert_eq!(
            r("total > 100 and 100 > total"),
            [("W002", "total > 100 and 100 > total".into())]
        );
        assert_eq!(
            r("total between 1 and 5 and total > 5"),
            [("W002", "total between 1 and 5 and total > 5".into())]
        );
        assert_eq!(r("total > 100 or total < 50"), []);
        assert_eq!(r("tier == a and tier != b"), []);
    }

    #[test]
    fn optional_fields() {
        let r = |body: &str| lints(&format!("{SCHEMA}rule r = {body}"));
        assert_eq!(r("coupon == \"X\""), [("W004", "coupon == \"X\"".into())]);
        assert_eq!(
            r("not (len(coupon) > 3)"),
            [("W004", "(len(coupon) > 3)".into())]
        );
        assert_eq!(r("coupon is not null and coupon == \"X\""), []);
        assert_eq!(r("coupon is null or coupon starts_with \"A\""), []);
        assert_eq!(r("coupon == null"), []);
        assert_eq!(r("total > 5"), []);
    }

    #[test]
    fn shipped_rules_are_clean() {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/specs/discount.rules"))
                .unwrap();
        assert_eq!(lints(&text), []);
    }
}
