//! Lints: rules that check but probably do not say what their author meant.
//!
//! They run on the syntax tree of a file that parsed and checked cleanly, with
//! the merged schema and the rule names for name resolution (the same rule as the
//! checker: parameter, quantifier variable, symbol, rule, field). All are warnings:
//!
//! | code | finds |
//! |---|---|
//! | W001 | a comparison that is always true or always false (`1 > 2`, `x between 10 and 5`) |
//! | W002 | a contradiction in one `and` over the same field (`total > 100 and total < 50`) |
//! | W003 | a rule no other rule and no test file uses (only with test files: [`unused_rules`]) |
//! | W004 | a comparison that reads an optional field without a null test: it is false when the field is missing |
//! | W005 | a bare word on the right of `contains`, `starts_with` or `ends_with` that no schema declares: it is a field, not a string |

use std::collections::{HashMap, HashSet};

use super::api::RuleSet;
use super::ast::{BinaryOp, Expr, ExprKind, Literal, PathSegment, RuleFile, UnaryOp};
use super::print_expr;
use super::schema::{Schema, Type};
use crate::diag::{Diagnostic, Diagnostics};

/// A constant operand.
#[derive(Clone, Debug, PartialEq)]
enum Const {
    Num(f64),
    Str(String),
    Bool(bool),
}

/// Names that are not fields inside one rule body.
struct Scope<'a> {
    rules: &'a HashSet<&'a str>,
    params: HashSet<&'a str>,
    locals: Vec<String>,
    schema: Option<&'a Schema>,
}

impl Scope<'_> {
    fn is_field_word(&self, name: &str) -> bool {
        !self.params.contains(name)
            && !self.locals.iter().any(|l| l == name)
            && !self.rules.contains(name)
    }

    /// The field path an operand reads, if it is a plain field.
    fn field(&self, expr: &Expr) -> Option<String> {
        let (head, rest) = match &expr.kind {
            ExprKind::Name { head, rest } if self.is_field_word(&head.name) => (head, rest),
            ExprKind::Field { head, rest } => (head, rest),
            _ => return None,
        };
        let mut path = head.name.clone();
        for segment in rest {
            match segment {
                PathSegment::Field(f) => {
                    path.push('.');
                    path.push_str(&f.name);
                }
                PathSegment::Index(i) => path.push_str(&format!("[{i}]")),
            }
        }
        Some(path)
    }

    /// Walk a field path through the schema: whether any step is declared
    /// optional (`name?:`), and the declared type at the end (`None` once the path
    /// leaves what the schema describes). `None` for an operand that is not a field.
    fn declared(&self, expr: &Expr) -> Option<(bool, Option<&Type>)> {
        let schema = self.schema?;
        let (head, rest) = match &expr.kind {
            ExprKind::Name { head, rest } if self.is_field_word(&head.name) => (head, rest),
            ExprKind::Field { head, rest } => (head, rest),
            _ => return None,
        };
        let (_, field) = schema.root.get(&head.name)?;
        let mut optional = field.optional;
        let mut ty = Some(&field.ty);
        for segment in rest {
            ty = match (segment, ty) {
                (PathSegment::Field(f), Some(Type::Object(obj))) => {
                    obj.get(&f.name).map(|(_, field)| {
                        optional |= field.optional;
                        &field.ty
                    })
                }
                (PathSegment::Index(_), Some(Type::List(element))) => Some(&**element),
                _ => None,
            };
        }
        Some((optional, ty))
    }

    /// Is this operand a field the schema declares `uint` (never negative)?
    fn is_unsigned(&self, expr: &Expr) -> bool {
        self.declared(expr)
            .is_some_and(|(_, ty)| ty == Some(&Type::UInt))
    }

    /// Is this field path optional in the schema (any step declared `name?:`)? An
    /// index may always miss, but that is not the schema's doing.
    fn is_optional(&self, expr: &Expr) -> bool {
        self.declared(expr).is_some_and(|(optional, _)| optional)
    }
}

/// A literal number, string or bool (a symbol on the right of `==`/`!=` counts as a string).
fn constant(expr: &Expr, scope: &Scope<'_>, symbol_position: bool) -> Option<Const> {
    match &expr.kind {
        ExprKind::Literal { value } => match value {
            // only ints that a float holds exactly
            Literal::Int(n) if n.unsigned_abs() <= 1 << 53 => Some(Const::Num(*n as f64)),
            Literal::Float(f) => Some(Const::Num(*f)),
            Literal::String(s) => Some(Const::Str(s.clone())),
            Literal::Bool(b) => Some(Const::Bool(*b)),
            _ => None,
        },
        ExprKind::Unary {
            op: UnaryOp::Neg,
            operand,
        } => match constant(operand, scope, false)? {
            Const::Num(n) => Some(Const::Num(-n)),
            _ => None,
        },
        ExprKind::Name { head, rest }
            if symbol_position
                && rest.is_empty()
                && !scope.params.contains(head.name.as_str())
                && !scope.locals.contains(&head.name) =>
        {
            Some(Const::Str(head.name.clone()))
        }
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
    use std::cmp::Ordering::*;
    Some(match op {
        BinaryOp::Eq => ord == Equal,
        BinaryOp::Ne => ord != Equal,
        BinaryOp::Lt => ord == Less,
        BinaryOp::Le => ord != Greater,
        BinaryOp::Gt => ord == Greater,
        BinaryOp::Ge => ord != Less,
        _ => return None,
    })
}

/// What one clause of an `and` says about one field.
enum Fact {
    /// `lo <(=) field <(=) hi`; `None` for no bound; the flag is "inclusive".
    Range(Option<(f64, bool)>, Option<(f64, bool)>),
    Is(String),
    IsNot(String),
}

fn fact(expr: &Expr, scope: &Scope<'_>) -> Option<(String, Fact)> {
    match &expr.kind {
        ExprKind::Binary { op, left, right } if op.is_comparison() => {
            // a bare word right of `==` / `!=` is a symbol, not a field
            let symbol = matches!(op, BinaryOp::Eq | BinaryOp::Ne)
                && matches!(&right.kind, ExprKind::Name { rest, .. } if rest.is_empty());
            let right_field = if symbol { None } else { scope.field(right) };
            let (field, op, value) = match (scope.field(left), right_field) {
                (Some(f), None) => (f, *op, constant(right, scope, true)?),
                (None, Some(f)) => (f, op.flipped(), constant(left, scope, false)?),
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
        ExprKind::Between { value, low, high } => {
            let field = scope.field(value)?;
            match (constant(low, scope, false)?, constant(high, scope, false)?) {
                (Const::Num(lo), Const::Num(hi)) => {
                    Some((field, Fact::Range(Some((lo, true)), Some((hi, true)))))
                }
                _ => None,
            }
        }
        _ => None,
    }
}

/// The clauses of an `and` chain, left to right.
fn conjuncts<'e>(expr: &'e Expr, out: &mut Vec<&'e Expr>) {
    match &expr.kind {
        ExprKind::Binary {
            op: BinaryOp::And,
            left,
            right,
        } => {
            conjuncts(left, out);
            conjuncts(right, out);
        }
        _ => out.push(expr),
    }
}

/// Fields a clause proves present (`x is not null`, `x != null`) — or, with
/// `absent`, proves missing (`x is null`, `x == null`).
fn null_tests(expr: &Expr, scope: &Scope<'_>, absent: bool, out: &mut HashSet<String>) {
    match &expr.kind {
        ExprKind::IsNull { value, negated } if *negated != absent => {
            out.extend(scope.field(value));
        }
        ExprKind::Binary { op, left, right }
            if matches!(op, BinaryOp::Eq | BinaryOp::Ne)
                && matches!(
                    right.kind,
                    ExprKind::Literal {
                        value: Literal::Null
                    }
                )
                && ((*op == BinaryOp::Ne) != absent) =>
        {
            out.extend(scope.field(left));
        }
        ExprKind::Binary {
            op: BinaryOp::And,
            left,
            right,
        } if !absent => {
            null_tests(left, scope, absent, out);
            null_tests(right, scope, absent, out);
        }
        ExprKind::Binary {
            op: BinaryOp::Or,
            left,
            right,
        } if absent => {
            null_tests(left, scope, absent, out);
            null_tests(right, scope, absent, out);
        }
        _ => {}
    }
}

struct Linter<'a> {
    scope: Scope<'a>,
    out: Vec<Diagnostic>,
}

impl Linter<'_> {
    fn walk(&mut self, expr: &Expr, guarded: &HashSet<String>, negated: bool) {
        match &expr.kind {
            ExprKind::Binary {
                op: BinaryOp::And,
                left,
                right,
            } => {
                self.contradictions(expr);
                self.walk(left, guarded, negated);
                let mut more = guarded.clone();
                null_tests(left, &self.scope, false, &mut more);
                self.walk(right, &more, negated);
            }
            ExprKind::Binary {
                op: BinaryOp::Or,
                left,
                right,
            } => {
                self.walk(left, guarded, negated);
                let mut more = guarded.clone();
                null_tests(left, &self.scope, true, &mut more);
                self.walk(right, &more, negated);
            }
            ExprKind::Unary {
                op: UnaryOp::Not,
                operand,
            } => self.walk(operand, guarded, !negated),
            ExprKind::Binary { op, left, right } => {
                let is_null_test = matches!(op, BinaryOp::Eq | BinaryOp::Ne)
                    && (matches!(
                        right.kind,
                        ExprKind::Literal {
                            value: Literal::Null
                        }
                    ) || matches!(
                        left.kind,
                        ExprKind::Literal {
                            value: Literal::Null
                        }
                    ));
                if op.is_comparison() && !is_null_test {
                    self.constant_comparison(expr, *op, left, right);
                }
                let is_test = op.is_comparison()
                    || matches!(
                        op,
                        BinaryOp::In
                            | BinaryOp::NotIn
                            | BinaryOp::Contains
                            | BinaryOp::StartsWith
                            | BinaryOp::EndsWith
                            | BinaryOp::Matches
                    );
                if is_test && !is_null_test {
                    self.optional_reads(expr, &[left, right], guarded, negated);
                }
                if matches!(
                    op,
                    BinaryOp::Contains | BinaryOp::StartsWith | BinaryOp::EndsWith
                ) {
                    self.bare_word_operand(*op, right);
                }
                self.walk(left, guarded, negated);
                self.walk(right, guarded, negated);
            }
            ExprKind::Between { value, low, high } => {
                self.between(expr, value, low, high);
                self.optional_reads(expr, &[value, low, high], guarded, negated);
                for e in [value, low, high] {
                    self.walk(e, guarded, negated);
                }
            }
            ExprKind::Quantifier {
                var,
                list,
                predicate,
                ..
            } => {
                self.walk(list, guarded, negated);
                self.scope.locals.push(var.name.clone());
                self.walk(predicate, guarded, negated);
                self.scope.locals.pop();
            }
            ExprKind::Call { args, .. } => {
                args.iter().for_each(|a| self.walk(a, guarded, negated));
            }
            ExprKind::List { items } => items.iter().for_each(|a| self.walk(a, guarded, negated)),
            ExprKind::Unary { operand, .. } => self.walk(operand, guarded, negated),
            ExprKind::IsNull { value, .. } => self.walk(value, guarded, negated),
            ExprKind::Literal { .. } | ExprKind::Name { .. } | ExprKind::Field { .. } => {}
        }
    }

    fn constant_comparison(&mut self, expr: &Expr, op: BinaryOp, left: &Expr, right: &Expr) {
        self.unsigned_comparison(expr, op, left, right);
        let (Some(a), Some(b)) = (
            constant(left, &self.scope, false),
            constant(right, &self.scope, false),
        ) else {
            return;
        };
        if let Some(result) = compare(op, &a, &b) {
            self.out.push(
                Diagnostic::warning(
                    "W001",
                    expr.span,
                    format!("`{}` is always {result}", print_expr(expr)),
                )
                .with_label("compares two constants")
                .with_help("compare a field, or write `true` / `false` if that is what you mean"),
            );
        }
    }

    /// `tags contains vip`: only `==`, `!=` and `in [...]` read a bare word as a symbol,
    /// so here `vip` is a field. Without a schema to say so, that is worth a warning.
    fn bare_word_operand(&mut self, op: BinaryOp, right: &Expr) {
        let ExprKind::Name { head, rest } = &right.kind else {
            return;
        };
        if !rest.is_empty() || !self.scope.is_field_word(&head.name) {
            return;
        }
        if self
            .scope
            .schema
            .is_some_and(|s| s.root.get(&head.name).is_some())
        {
            return;
        }
        let word = &head.name;
        self.out.push(
            Diagnostic::warning(
                "W005",
                right.span,
                format!(
                    "`{word}` on the right of `{}` is a field, not the string \"{word}\"",
                    op.as_str()
                ),
            )
            .with_label("read as a field")
            .with_help(format!(
                "write \"{word}\" for the string, or `${word}` to say it is a field"
            )),
        );
    }

    /// `days < 0` when the schema says `days: uint`: decided by the type alone.
    fn unsigned_comparison(&mut self, expr: &Expr, op: BinaryOp, left: &Expr, right: &Expr) {
        let (field, op, konst) = if self.scope.is_unsigned(left) {
            (left, op, right)
        } else if self.scope.is_unsigned(right) {
            (right, op.flipped(), left)
        } else {
            return;
        };
        let Some(Const::Num(c)) = constant(konst, &self.scope, false) else {
            return;
        };
        let result = match op {
            BinaryOp::Lt if c <= 0.0 => false,
            BinaryOp::Le | BinaryOp::Eq if c < 0.0 => false,
            BinaryOp::Gt | BinaryOp::Ne if c < 0.0 => true,
            BinaryOp::Ge if c <= 0.0 => true,
            _ => return,
        };
        let name = print_expr(field);
        let when = if result {
            format!(" whenever `{name}` is present")
        } else {
            String::new()
        };
        self.out.push(
            Diagnostic::warning(
                "W001",
                expr.span,
                format!("`{}` is always {result}{when}", print_expr(expr)),
            )
            .with_label(format!("`{name}` is a uint: never negative"))
            .with_help(if result {
                format!("to test that `{name}` is present, write `{name} is not null`")
            } else {
                "check the bound: it cannot be reached".to_string()
            }),
        );
    }

    fn between(&mut self, expr: &Expr, value: &Expr, low: &Expr, high: &Expr) {
        let c = |e| constant(e, &self.scope, false);
        let (Some(Const::Num(lo)), Some(Const::Num(hi))) = (c(low), c(high)) else {
            return;
        };
        if let Some(Const::Num(v)) = c(value) {
            let result = lo <= v && v <= hi;
            self.out.push(
                Diagnostic::warning(
                    "W001",
                    expr.span,
                    format!("`{}` is always {result}", print_expr(expr)),
                )
                .with_label("compares constants")
                .with_help("compare a field, or write `true` / `false` if that is what you mean"),
            );
        } else if lo > hi {
            self.out.push(
                Diagnostic::warning(
                    "W001",
                    expr.span,
                    format!("`{}` is always false", print_expr(expr)),
                )
                .with_label("the lower bound is above the upper bound")
                .with_help(format!(
                    "bounds are inclusive, lower first: `{} between {} and {}`",
                    print_expr(value),
                    print_expr(high),
                    print_expr(low)
                )),
            );
        }
    }

    fn contradictions(&mut self, expr: &Expr) {
        let mut clauses = Vec::new();
        conjuncts(expr, &mut clauses);
        // per field: the tightest bounds so far, the clause that set each, the symbols
        struct State<'e> {
            lo: Option<(f64, bool, &'e Expr)>,
            hi: Option<(f64, bool, &'e Expr)>,
            is: Option<(String, &'e Expr)>,
            is_not: Vec<(String, &'e Expr)>,
        }
        let mut fields: HashMap<String, State<'_>> = HashMap::new();
        let mut reported: HashSet<String> = HashSet::new();
        for clause in clauses {
            let Some((field, fact)) = fact(clause, &self.scope) else {
                continue;
            };
            let st = fields.entry(field.clone()).or_insert(State {
                lo: None,
                hi: None,
                is: None,
                is_not: Vec::new(),
            });
            let mut conflict: Option<&Expr> = None;
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
                            print_expr(earlier),
                            print_expr(clause)
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
        expr: &Expr,
        operands: &[&Expr],
        guarded: &HashSet<String>,
        negated: bool,
    ) {
        let mut reads = Vec::new();
        for operand in operands {
            self.optional_fields(operand, &mut reads);
        }
        if let Some(field) = reads.into_iter().find(|f| !guarded.contains(f)) {
            let text = print_expr(expr);
            let yields = if negated {
                "false (so the `not` around it makes it true)"
            } else {
                "false"
            };
            self.out.push(
                Diagnostic::warning(
                    "W004",
                    expr.span,
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
    fn optional_fields(&self, expr: &Expr, out: &mut Vec<String>) {
        match &expr.kind {
            ExprKind::Name { .. } | ExprKind::Field { .. } if self.scope.is_optional(expr) => {
                out.extend(self.scope.field(expr));
            }
            ExprKind::Binary {
                op: BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div | BinaryOp::Rem,
                left,
                right,
            } => {
                self.optional_fields(left, out);
                self.optional_fields(right, out);
            }
            ExprKind::Unary {
                op: UnaryOp::Neg,
                operand,
            } => self.optional_fields(operand, out),
            ExprKind::Call { args, .. } => args.iter().for_each(|a| self.optional_fields(a, out)),
            _ => {}
        }
    }
}

/// Lint the rules of one file that checked cleanly (W001, W002, W004, W005).
pub(crate) fn lint_file(
    file: &RuleFile,
    schema: Option<&Schema>,
    rule_names: &HashSet<&str>,
) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for rule in &file.rules {
        let mut linter = Linter {
            scope: Scope {
                rules: rule_names,
                params: rule.params.iter().map(|p| p.name.name.as_str()).collect(),
                locals: Vec::new(),
                schema,
            },
            out: Vec::new(),
        };
        linter.walk(&rule.body, &HashSet::new(), false);
        out.extend(linter.out);
    }
    out.sort_by_key(|d| (d.span.start, d.span.end));
    out.dedup();
    out
}

/// Every bare word and call name in an expression (a superset of the rules it uses).
pub(crate) fn collect_names(expr: &Expr, out: &mut HashSet<String>) {
    match &expr.kind {
        ExprKind::Name { head, .. } => {
            out.insert(head.name.clone());
        }
        ExprKind::Call { name, args } => {
            out.insert(name.name.clone());
            args.iter().for_each(|a| collect_names(a, out));
        }
        ExprKind::Literal { .. } | ExprKind::Field { .. } => {}
        ExprKind::List { items } => items.iter().for_each(|a| collect_names(a, out)),
        ExprKind::Quantifier {
            list, predicate, ..
        } => {
            collect_names(list, out);
            collect_names(predicate, out);
        }
        ExprKind::Unary { operand, .. } => collect_names(operand, out),
        ExprKind::Binary { left, right, .. } => {
            collect_names(left, out);
            collect_names(right, out);
        }
        ExprKind::Between { value, low, high } => {
            collect_names(value, out);
            collect_names(low, out);
            collect_names(high, out);
        }
        ExprKind::IsNull { value, .. } => collect_names(value, out),
    }
}

/// W003: rules that no other rule and none of `used` (names from test files) refer to.
/// Only meaningful when the rules come with their tests: `rulesaga check` runs it
/// when test files are among its inputs.
pub fn unused_rules(set: &RuleSet, used: &HashSet<String>) -> Vec<Diagnostics> {
    let mut referenced: HashSet<String> = used.clone();
    for (_, file) in set.files() {
        for rule in &file.rules {
            let mut names = HashSet::new();
            collect_names(&rule.body, &mut names);
            names.remove(&rule.name.name);
            referenced.extend(names);
        }
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

/// Span helper for tests: the text a diagnostic points at.
#[cfg(test)]
fn at(text: &str, span: crate::diag::Span) -> &str {
    text.get(span.range()).unwrap_or("")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::diag::Source;
    use crate::rules::{Env, RuleSet};

    /// (code, text under the span) of every warning of a rule file.
    fn lints(text: &str) -> Vec<(&'static str, String)> {
        let set = RuleSet::compile(vec![Source::new("t.rules", text)], &Env::new())
            .unwrap_or_else(|e| panic!("{e}"));
        set.warnings()
            .iter()
            .flat_map(|d| {
                d.items
                    .iter()
                    .map(|i| (i.code, at(text, i.span).to_string()))
            })
            .collect()
    }

    const SCHEMA: &str =
        "schema { total: number\n tier: a | b | c\n coupon?: string\n days: int }\n";

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
