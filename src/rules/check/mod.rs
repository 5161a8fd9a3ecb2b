//! Step two: the AST becomes a checked tree.
//!
//! Names are resolved by the rule in `docs/language.md` (parameter, quantifier
//! variable, symbol, rule, field, in that order, decided by position and by
//! the rule set, never by data). Rule references are inlined with their
//! arguments bound, so the compiler sees constants. Types are inferred from the
//! schema (or `any` without one) and mismatches reported with did-you-mean help.
//! Every diagnostic of the source is collected; nothing stops at the first.

use std::collections::HashMap;
use std::sync::Arc;

use super::ast::{self, Expr, ExprKind, Literal, PathSegment, Quantifier, UnaryOp};
pub(crate) use super::checked::{Node, NodeKind, Step};
use super::functions::{Builtin, Function, Functions};
use super::schema::{ObjectType, Schema, Type};
use crate::diag::{Diagnostic, Source, Span, did_you_mean};
use crate::value::{OwnedValue, Value};

mod binary;

use super::limits::{MAX_NODES, REGEX_SIZE_LIMIT};

/// A rule declaration as the checker sees it.
#[derive(Clone, Debug)]
pub(crate) struct RuleDef {
    pub decl: ast::RuleDecl,
    /// The file the rule is declared in.
    pub source: Arc<Source>,
    /// Parameter defaults, already checked (constants).
    pub defaults: Vec<Option<Node>>,
}

/// Everything names can resolve to, besides fields.
pub(crate) struct Scope<'a> {
    pub schema: Option<&'a Schema>,
    pub functions: &'a Functions,
    pub rules: &'a HashMap<String, RuleDef>,
}

pub(crate) struct Checker<'a> {
    scope: Scope<'a>,
    /// Top-level field names; a field's index is its slot.
    pub fields: Vec<String>,
    pub diags: Vec<Diagnostic>,
    /// Parameter bindings of the rules being expanded (innermost last).
    params: Vec<HashMap<String, Node>>,
    /// Quantifier variables in scope (innermost last). A variable's position
    /// is its slot in the frame, so inlined rules continue the numbering.
    locals: Vec<(String, Type)>,
    /// Variables below this position belong to a caller and are not visible.
    local_floor: usize,
    /// Rules being expanded, to find cycles.
    expanding: Vec<String>,
    /// Inside an inlined rule body: its diagnostics were reported with the rule.
    quiet: usize,
    /// A cycle found inside an inlined body, reported at the outermost reference.
    cycle: Option<String>,
    n_nodes: usize,
    too_big: bool,
}

fn lit_value(lit: &Literal) -> OwnedValue {
    match lit {
        Literal::Null => Value::Null,
        Literal::Bool(b) => Value::Bool(*b),
        Literal::Int(i) => Value::Int(*i),
        Literal::Float(x) => Value::Float(*x),
        Literal::String(s) => Value::Str(s.clone().into()),
        Literal::Date(d) => Value::Date(*d),
        Literal::DateTime(d) => Value::DateTime(*d),
        Literal::Duration(ms) => Value::Duration(
            chrono::TimeDelta::try_milliseconds(*ms).unwrap_or(chrono::TimeDelta::zero()),
        ),
    }
}

pub(crate) fn type_of_value(v: &Value<'_>) -> Type {
    match v {
        Value::Null => Type::Null,
        Value::Bool(_) => Type::Bool,
        Value::Int(_) => Type::Int,
        Value::Float(_) => Type::Float,
        Value::Str(_) => Type::String,
        Value::Date(_) => Type::Date,
        Value::DateTime(_) => Type::DateTime,
        Value::Duration(_) => Type::Duration,
        Value::List(_) | Value::OwnedList(_) => Type::List(Box::new(Type::Any)),
        Value::Object(_) | Value::OwnedObject(_) => Type::Any,
    }
}

fn known(t: &Type) -> bool {
    !matches!(t, Type::Any)
}

impl<'a> Checker<'a> {
    pub fn new(scope: Scope<'a>) -> Checker<'a> {
        let fields = scope.schema.map(Schema::field_names).unwrap_or_default();
        Checker {
            scope,
            fields,
            diags: Vec::new(),
            params: Vec::new(),
            locals: Vec::new(),
            local_floor: 0,
            expanding: Vec::new(),
            quiet: 0,
            cycle: None,
            n_nodes: 0,
            too_big: false,
        }
    }

    fn error(&mut self, d: Diagnostic) {
        if self.quiet == 0 {
            self.diags.push(d);
        }
    }

    fn node(&mut self, kind: NodeKind, ty: Type, span: Span) -> Node {
        self.n_nodes += 1;
        Node { kind, ty, span }
    }

    /// Check the body of a rule on its own, parameters bound to their defaults
    /// (or left unbound when they have none).
    pub fn check_rule(&mut self, def: &RuleDef) -> Node {
        let mut bindings = HashMap::new();
        for (param, default) in def.decl.params.iter().zip(&def.defaults) {
            let node = match default {
                Some(node) => node.clone(),
                None => self.node(NodeKind::Unbound, Type::Any, param.name.span),
            };
            bindings.insert(param.name.name.clone(), node);
        }
        self.expanding.push(def.decl.name.name.clone());
        self.params.push(bindings);
        let body = self.expr(&def.decl.body, Pos::Cond);
        self.params.pop();
        self.expanding.pop();
        body
    }

    /// Check a top-level expression.
    pub fn check_expr(&mut self, expr: &Expr) -> Node {
        self.expr(expr, Pos::Value)
    }

    fn expr(&mut self, expr: &Expr, pos: Pos) -> Node {
        if self.n_nodes > MAX_NODES {
            if !self.too_big {
                self.too_big = true;
                self.diags.push(
                    Diagnostic::error("E109", expr.span, "expression expands to too many nodes")
                        .with_help(format!(
                            "rule references are inlined; the limit is {MAX_NODES} nodes"
                        )),
                );
            }
            return self.node(NodeKind::Const(Value::Null), Type::Any, expr.span);
        }
        let span = expr.span;
        match &expr.kind {
            ExprKind::Literal { value } => {
                let v = lit_value(value);
                let ty = type_of_value(&v);
                self.node(NodeKind::Const(v), ty, span)
            }
            ExprKind::List { items } => {
                let nodes: Vec<Node> = items.iter().map(|e| self.expr(e, Pos::ListItem)).collect();
                let elem = common_type(nodes.iter().map(|n| &n.ty));
                let ty = Type::List(Box::new(elem));
                if nodes.iter().all(|n| matches!(n.kind, NodeKind::Const(_))) {
                    let values: Vec<OwnedValue> = nodes
                        .into_iter()
                        .filter_map(|n| match n.kind {
                            NodeKind::Const(v) => Some(v),
                            _ => None,
                        })
                        .collect();
                    self.node(NodeKind::Const(Value::OwnedList(values.into())), ty, span)
                } else {
                    self.node(NodeKind::List(nodes), ty, span)
                }
            }
            ExprKind::Name { head, rest } => self.name(head, rest, pos, span),
            ExprKind::Field { head, rest } => self.field(head, rest, span),
            ExprKind::Call { name, args } => self.call(name, args, span),
            ExprKind::Quantifier {
                quantifier,
                var,
                list,
                predicate,
            } => {
                let list = self.expr(list, Pos::Value);
                let elem = match &list.ty {
                    Type::List(t) => (**t).clone(),
                    Type::Any => Type::Any,
                    other => {
                        let other = other.clone();
                        self.error(
                            Diagnostic::error(
                                "E106",
                                list.span,
                                format!(
                                    "`{}` needs a list, found {other}",
                                    quant_name(*quantifier)
                                ),
                            )
                            .with_label("not a list"),
                        );
                        Type::Any
                    }
                };
                let index = self.locals.len();
                self.locals.push((var.name.clone(), elem));
                let predicate = self.cond(predicate);
                self.locals.pop();
                self.node(
                    NodeKind::Quant {
                        quantifier: *quantifier,
                        index,
                        list: Box::new(list),
                        predicate: Box::new(predicate),
                    },
                    Type::Bool,
                    span,
                )
            }
            ExprKind::Unary { op, operand } => match op {
                UnaryOp::Not => {
                    let inner = self.cond(operand);
                    self.node(NodeKind::Not(Box::new(inner)), Type::Bool, span)
                }
                UnaryOp::Neg => {
                    let inner = self.expr(operand, Pos::Value);
                    if let NodeKind::Const(v) = &inner.kind
                        && let Ok(Some(neg)) = super::ops::negate(v, "-")
                    {
                        let neg = neg.into_owned();
                        let ty = inner.ty.clone();
                        return self.node(NodeKind::Const(neg), ty, span);
                    }
                    let ty = match &inner.ty {
                        t if t.is_numeric() || matches!(t, Type::Duration | Type::Any) => t.clone(),
                        other => {
                            let other = other.clone();
                            self.error(Diagnostic::error(
                                "E106",
                                inner.span,
                                format!("cannot negate a {other}"),
                            ));
                            Type::Any
                        }
                    };
                    self.node(NodeKind::Neg(Box::new(inner)), ty, span)
                }
            },
            ExprKind::Binary { op, left, right } => self.binary(*op, left, right, span),
            ExprKind::Between { value, low, high } => {
                let value = self.expr(value, Pos::Value);
                let low = self.expr(low, Pos::Value);
                let high = self.expr(high, Pos::Value);
                self.expect_comparable(&value, &low, "between");
                self.expect_comparable(&value, &high, "between");
                self.node(
                    NodeKind::Between {
                        value: Box::new(value),
                        low: Box::new(low),
                        high: Box::new(high),
                    },
                    Type::Bool,
                    span,
                )
            }
            ExprKind::IsNull { value, negated } => {
                let value = self.expr(value, Pos::Value);
                self.node(
                    NodeKind::IsNull {
                        value: Box::new(value),
                        negated: *negated,
                    },
                    Type::Bool,
                    span,
                )
            }
        }
    }

    /// An operand of `and`, `or`, `not` or a quantifier: must be a condition.
    fn cond(&mut self, expr: &Expr) -> Node {
        let node = self.expr(expr, Pos::Cond);
        if !matches!(node.ty, Type::Bool | Type::Any) {
            let ty = node.ty.clone();
            self.error(
                Diagnostic::error(
                    "E106",
                    node.span,
                    format!("expected a condition, found {ty}"),
                )
                .with_label("not true or false")
                .with_help("compare it with something, for example `x == ...` or `x > 0`"),
            );
        }
        node
    }

    fn name(&mut self, head: &ast::Ident, rest: &[PathSegment], pos: Pos, span: Span) -> Node {
        let name = head.name.as_str();
        // 1. quantifier variables, innermost first
        if let Some(index) = self.locals[self.local_floor..]
            .iter()
            .rposition(|(n, _)| n == name)
            .map(|i| i + self.local_floor)
        {
            let ty = self.locals[index].1.clone();
            let (steps, ty) = self.path_steps(ty, rest);
            return self.node(
                NodeKind::Local {
                    index,
                    name: name.to_string(),
                    rest: steps,
                },
                ty,
                span,
            );
        }
        // 2. parameters of the rule being expanded
        if let Some(bound) = self.params.last().and_then(|p| p.get(name)).cloned() {
            if rest.is_empty() {
                return Node { span, ..bound };
            }
            let (steps, ty) = self.path_steps(bound.ty.clone(), rest);
            return self.with_path(bound, steps, ty, span);
        }
        // 3. a bare word where a symbol is expected
        if rest.is_empty() && matches!(pos, Pos::SymbolOk | Pos::ListItem) {
            return self.node(
                NodeKind::Const(Value::Str(name.to_string().into())),
                Type::String,
                span,
            );
        }
        // 4. a rule
        if rest.is_empty() && self.scope.rules.contains_key(name) {
            return self.rule_ref(head, &[], span);
        }
        // 5. a field
        self.field(head, rest, span)
    }

    /// A parameter value followed by a path: evaluate the value, then walk.
    fn with_path(&mut self, base: Node, steps: Vec<Step>, ty: Type, span: Span) -> Node {
        // Parameters are constants; walk the path now.
        if let NodeKind::Const(v) = &base.kind {
            let mut cur = Some(v.clone());
            for step in &steps {
                cur = cur.and_then(|v| walk_owned(&v, step));
            }
            return self.node(NodeKind::Const(cur.unwrap_or(Value::Null)), ty, span);
        }
        base
    }

    fn field(&mut self, head: &ast::Ident, rest: &[PathSegment], span: Span) -> Node {
        let name = head.name.as_str();
        let (slot, ty) = match self.scope.schema {
            Some(schema) => match schema.root.get(name) {
                Some((slot, f)) => (slot, f.ty.clone()),
                None => {
                    let help = schema.root.suggest(name).or_else(|| {
                        did_you_mean(name, self.scope.rules.keys().map(String::as_str))
                    });
                    self.error(
                        Diagnostic::error("E101", head.span, format!("unknown field `{name}`"))
                            .with_label("not in the schema")
                            .with_help_opt(help),
                    );
                    (self.slot_of(name), Type::Any)
                }
            },
            None => (self.slot_of(name), Type::Any),
        };
        let (steps, ty) = self.path_steps(ty, rest);
        self.node(
            NodeKind::Field {
                slot: u32::try_from(slot).unwrap_or(u32::MAX),
                name: name.to_string(),
                rest: steps,
            },
            ty,
            span,
        )
    }

    fn slot_of(&mut self, name: &str) -> usize {
        match self.fields.iter().position(|f| f == name) {
            Some(i) => i,
            None => {
                self.fields.push(name.to_string());
                self.fields.len() - 1
            }
        }
    }

    fn path_steps(&mut self, mut ty: Type, rest: &[PathSegment]) -> (Vec<Step>, Type) {
        let mut steps = Vec::with_capacity(rest.len());
        for seg in rest {
            match seg {
                PathSegment::Field(id) => {
                    ty = match &ty {
                        Type::Any => Type::Any,
                        Type::Object(obj) => field_type(obj, &id.name).unwrap_or_else(|| {
                            let help = obj.suggest(&id.name);
                            self.error(
                                Diagnostic::error(
                                    "E101",
                                    id.span,
                                    format!("unknown field `{}`", id.name),
                                )
                                .with_help_opt(help),
                            );
                            Type::Any
                        }),
                        other => {
                            let other = other.clone();
                            self.error(Diagnostic::error(
                                "E115",
                                id.span,
                                format!("a {other} has no field `{}`", id.name),
                            ));
                            Type::Any
                        }
                    };
                    steps.push(Step::Field(id.name.clone()));
                }
                PathSegment::Index(i) => {
                    ty = match &ty {
                        Type::Any => Type::Any,
                        Type::List(t) => (**t).clone(),
                        other => {
                            let other = other.clone();
                            self.error(Diagnostic::error(
                                "E115",
                                Span::default(),
                                format!("a {other} cannot be indexed"),
                            ));
                            Type::Any
                        }
                    };
                    steps.push(Step::Index(*i as usize));
                }
            }
        }
        (steps, ty)
    }

    fn rule_ref(&mut self, name: &ast::Ident, args: &[Expr], span: Span) -> Node {
        let Some(def) = self.scope.rules.get(&name.name) else {
            return self.node(NodeKind::Const(Value::Null), Type::Any, span);
        };
        let def = def.clone();
        if self.expanding.iter().any(|r| r == &name.name) {
            let start = self
                .expanding
                .iter()
                .position(|r| r == &name.name)
                .unwrap_or(0);
            // the same cycle reads the same from whichever rule it is found
            let mut members: Vec<&str> =
                self.expanding[start..].iter().map(String::as_str).collect();
            let first = members
                .iter()
                .enumerate()
                .min_by_key(|(_, m)| **m)
                .map_or(0, |(i, _)| i);
            members.rotate_left(first);
            let cycle = format!("`{}` → `{}`", members.join("` → `"), members[0]);
            if self.quiet == 0 {
                self.diags.push(cycle_error(name, &cycle));
            } else {
                self.cycle.get_or_insert(cycle);
            }
            return self.node(NodeKind::Const(Value::Bool(false)), Type::Bool, span);
        }
        let params = &def.decl.params;
        if args.len() > params.len() {
            self.error(
                Diagnostic::error(
                    "E103",
                    span,
                    format!(
                        "rule `{}` takes {} argument{}, but {} were given",
                        name.name,
                        params.len(),
                        plural(params.len()),
                        args.len()
                    ),
                )
                .with_help(signature(&def.decl)),
            );
        }
        let mut bindings = HashMap::new();
        let mut shown = Vec::new();
        for (i, param) in params.iter().enumerate() {
            let node = if let Some(arg) = args.get(i) {
                let node = self.expr(arg, Pos::Value);
                if let Some(Some(default)) = def.defaults.get(i)
                    && !node.ty.comparable_with(&default.ty)
                {
                    let (got, want) = (node.ty.clone(), default.ty.clone());
                    self.error(Diagnostic::error(
                        "E106",
                        node.span,
                        format!(
                            "argument `{}` of rule `{}` expects {want}, found {got}",
                            param.name.name, name.name
                        ),
                    ));
                }
                node
            } else if let Some(Some(default)) = def.defaults.get(i) {
                default.clone()
            } else {
                self.error(
                    Diagnostic::error(
                        "E103",
                        span,
                        format!(
                            "rule `{}` needs a value for `{}`",
                            name.name, param.name.name
                        ),
                    )
                    .with_help(signature(&def.decl)),
                );
                self.node(NodeKind::Unbound, Type::Any, span)
            };
            shown.push((param.name.name.clone(), node.clone()));
            bindings.insert(param.name.name.clone(), node);
        }
        self.expanding.push(name.name.clone());
        self.params.push(bindings);
        // Quantifier variables of the caller are not visible in the rule.
        let saved_floor = std::mem::replace(&mut self.local_floor, self.locals.len());
        self.quiet += 1;
        let body = self.expr(&def.decl.body, Pos::Cond);
        self.quiet -= 1;
        if self.quiet == 0
            && let Some(cycle) = self.cycle.take()
        {
            self.diags.push(cycle_error(name, &cycle));
        }
        self.local_floor = saved_floor;
        self.params.pop();
        self.expanding.pop();
        let ty = body.ty.clone();
        self.node(
            NodeKind::Rule {
                name: name.name.clone(),
                args: shown,
                body: Box::new(body),
                source: def.source.clone(),
            },
            ty,
            span,
        )
    }

    fn call(&mut self, name: &ast::Ident, args: &[Expr], span: Span) -> Node {
        if let Some(func) = self.scope.functions.get(&name.name) {
            let func = func.clone();
            let nodes: Vec<Node> = args.iter().map(|a| self.expr(a, Pos::Value)).collect();
            let sig = &func.params;
            let arity_ok = if func.variadic {
                nodes.len() >= sig.len()
            } else {
                nodes.len() == sig.len()
            };
            if !arity_ok {
                self.error(
                    Diagnostic::error(
                        "E103",
                        span,
                        format!(
                            "function `{}` takes {}{} argument{}, but {} were given",
                            name.name,
                            if func.variadic { "at least " } else { "" },
                            sig.len(),
                            plural(sig.len()),
                            nodes.len()
                        ),
                    )
                    .with_help(func.signature()),
                );
            } else {
                for (i, node) in nodes.iter().enumerate() {
                    let want = sig.get(i).or(sig.last()).cloned().unwrap_or(Type::Any);
                    if !accepts(&want, &node.ty) {
                        let got = node.ty.clone();
                        self.error(
                            Diagnostic::error(
                                "E106",
                                node.span,
                                format!(
                                    "argument {} of `{}` expects {want}, found {got}",
                                    i + 1,
                                    name.name
                                ),
                            )
                            .with_help(func.signature()),
                        );
                    }
                }
            }
            let ty = result_type(&func, &nodes);
            return self.node(NodeKind::Call { func, args: nodes }, ty, span);
        }
        if self.scope.rules.contains_key(&name.name) {
            return self.rule_ref(name, args, span);
        }
        let candidates: Vec<&str> = self
            .scope
            .functions
            .names()
            .chain(self.scope.rules.keys().map(String::as_str))
            .collect();
        let help = did_you_mean(&name.name, candidates.iter().copied());
        self.error(
            Diagnostic::error(
                "E102",
                name.span,
                format!("unknown function or rule `{}`", name.name),
            )
            .with_help_opt(help),
        );
        for a in args {
            self.expr(a, Pos::Value);
        }
        self.node(NodeKind::Const(Value::Null), Type::Any, span)
    }
}

/// Where an expression stands, for the bare-word rule.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pos {
    /// Right of `==` / `!=`: a bare word is a symbol.
    SymbolOk,
    /// An element of a list literal: a bare word is a symbol.
    ListItem,
    /// An operand of `and`/`or`/`not`.
    Cond,
    /// Anywhere else.
    Value,
}

fn cycle_error(name: &ast::Ident, cycle: &str) -> Diagnostic {
    Diagnostic::error(
        "E104",
        name.span,
        format!("rules refer to each other in a cycle: {cycle}"),
    )
    .with_label(format!("`{}` leads back here", name.name))
    .with_help("a rule cannot use itself, directly or through other rules")
}

fn quant_name(q: Quantifier) -> &'static str {
    match q {
        Quantifier::Any => "any",
        Quantifier::All => "all",
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn signature(decl: &ast::RuleDecl) -> String {
    let params: Vec<String> = decl
        .params
        .iter()
        .map(|p| match &p.default {
            Some(d) => format!("{} = {}", p.name.name, super::print::print_expr(d)),
            None => p.name.name.clone(),
        })
        .collect();
    format!("the rule is `{}({})`", decl.name.name, params.join(", "))
}

fn describe(node: &Node) -> String {
    match &node.kind {
        NodeKind::Field { name, .. } => format!("field `{name}`"),
        NodeKind::Local { name, .. } => format!("`{name}`"),
        _ => "the value".to_string(),
    }
}

fn field_type(obj: &ObjectType, name: &str) -> Option<Type> {
    obj.get(name).map(|(_, f)| f.ty.clone())
}

fn walk_owned(v: &OwnedValue, step: &Step) -> Option<OwnedValue> {
    match (v, step) {
        (Value::OwnedObject(o), Step::Field(name)) => {
            o.get(name).map(|j| Value::from_json_owned(j.clone()))
        }
        (Value::OwnedList(l), Step::Index(i)) => l.get(*i).cloned(),
        _ => None,
    }
}

fn common_type<'t>(mut types: impl Iterator<Item = &'t Type>) -> Type {
    let Some(first) = types.next() else {
        return Type::Any;
    };
    let mut acc = first.clone();
    for t in types {
        if &acc == t {
            continue;
        }
        acc = if acc.is_numeric() && t.is_numeric() {
            Type::Number
        } else if acc.is_stringy() && t.is_stringy() {
            Type::String
        } else {
            Type::Any
        };
    }
    acc
}

/// Does a parameter of type `want` accept an argument of type `got`?
fn accepts(want: &Type, got: &Type) -> bool {
    match (want, got) {
        (Type::Any, _) | (_, Type::Any) => true,
        (Type::Number | Type::Float, g) if g.is_numeric() => true,
        (Type::String, g) if g.is_stringy() => true,
        (Type::Int, Type::UInt) => true,
        (Type::List(_), Type::List(_)) => true,
        (w, g) => w == g,
    }
}

fn result_type(func: &Function, args: &[Node]) -> Type {
    match func.builtin {
        // abs, min and max keep the argument type
        Some(Builtin::Abs | Builtin::Min | Builtin::Max) => common_type(args.iter().map(|a| &a.ty)),
        _ => func.ret.clone(),
    }
}

/// Shared constructor for rule definitions: check the parameter defaults.
pub(crate) fn rule_def(
    decl: &ast::RuleDecl,
    source: &Arc<Source>,
    diags: &mut Vec<Diagnostic>,
) -> RuleDef {
    let mut defaults = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for p in &decl.params {
        if seen.contains(&p.name.name.as_str()) {
            diags.push(Diagnostic::error(
                "E111",
                p.name.span,
                format!("parameter `{}` is declared twice", p.name.name),
            ));
        }
        seen.push(&p.name.name);
        defaults.push(p.default.as_ref().map(|d| match const_of(d) {
            Some(v) => {
                let ty = type_of_value(&v);
                Node {
                    kind: NodeKind::Const(v),
                    ty,
                    span: d.span,
                }
            }
            None => {
                diags.push(Diagnostic::error(
                    "E116",
                    d.span,
                    "a parameter default must be a literal",
                ));
                Node {
                    kind: NodeKind::Const(Value::Null),
                    ty: Type::Any,
                    span: d.span,
                }
            }
        }));
    }
    RuleDef {
        decl: decl.clone(),
        source: source.clone(),
        defaults,
    }
}

/// The constant value of a literal, a negated literal, or a list of them.
/// Bare words in a list are symbols.
fn const_of(e: &Expr) -> Option<OwnedValue> {
    match &e.kind {
        ExprKind::Literal { value } => Some(lit_value(value)),
        ExprKind::Unary {
            op: UnaryOp::Neg,
            operand,
        } => super::ops::negate(&const_of(operand)?, "-").ok().flatten(),
        ExprKind::List { items } => {
            let values: Option<Vec<OwnedValue>> = items
                .iter()
                .map(|i| match &i.kind {
                    ExprKind::Name { head, rest } if rest.is_empty() => {
                        Some(Value::Str(head.name.clone().into()))
                    }
                    _ => const_of(i),
                })
                .collect();
            Some(Value::OwnedList(Arc::from(values?)))
        }
        _ => None,
    }
}
