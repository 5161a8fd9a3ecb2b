//! Step two: the AST becomes a checked tree.
//!
//! Names are resolved by the rule in `docs/language.md` (parameter, quantifier
//! variable, symbol, rule, field, in that order, decided by position and by
//! the rule set, never by data). Rule references are inlined with their
//! arguments bound, so the compiler sees constants. Types are inferred from the
//! schema (or `any` without one) and mismatches reported with did-you-mean help.
//! Every diagnostic of the source is collected; nothing stops at the first.

use std::collections::HashMap;

use super::ast::{self, Expr, ExprKind, Literal, PathSegment, Quantifier, UnaryOp};
pub(crate) use super::checked::{Node, NodeKind, Step};
use super::functions::{Builtin, Function, Functions};
use super::schema::{FieldType, ObjectType, Schema, Type};
use crate::diag::{Diagnostic, Span, did_you_mean};
use crate::value::{OwnedValue, Value};

mod binary;
mod rules;

use super::limits::{MAX_NODES, REGEX_SIZE_LIMIT};
pub(crate) use rules::{CheckedRule, CheckedRules, RuleDef, RuleScope, RuleTable, rule_def};

/// Everything names can resolve to, besides fields.
pub(crate) struct Scope<'a> {
    pub schema: Option<&'a Schema>,
    pub functions: &'a Functions,
    pub rules: &'a dyn RuleScope,
}

pub(crate) struct Checker<'a> {
    scope: Scope<'a>,
    /// Top-level field names; a field's index is its slot.
    pub fields: Vec<String>,
    pub diags: Vec<Diagnostic>,
    /// The parameters of the rule whose body is being checked: position and type.
    params: HashMap<String, (usize, Type)>,
    /// Quantifier variables in scope (innermost last). A variable's position
    /// is its slot in the frame; inlined rules continue the numbering.
    locals: Vec<(String, Type)>,
    pub n_nodes: usize,
    too_big: bool,
    /// Set by an operator for the expression on its right: what a bare word
    /// read as a symbol there is compared with.
    symbols: Option<Symbols>,
}

/// What symbols on the right of `==`, `!=` or `in` are compared with.
#[derive(Clone, Debug, Default)]
struct Symbols {
    /// The values of the enum on the left, if it is one (or a list of one).
    variants: std::sync::Arc<[String]>,
    /// The left side is not text: E114 reports a bare word there.
    compared_with_other_type: bool,
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
            params: HashMap::new(),
            locals: Vec::new(),
            n_nodes: 0,
            too_big: false,
            symbols: None,
        }
    }

    fn error(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    fn node(&mut self, kind: NodeKind, ty: Type, span: Span) -> Node {
        self.n_nodes += 1;
        Node { kind, ty, span }
    }

    /// Check a top-level expression that must be a condition (E106 when its
    /// type says it is not true or false).
    pub fn check_condition(&mut self, expr: &Expr) -> Node {
        let node = self.cond(expr);
        self.check_depth(&node);
        node
    }

    /// Check a top-level expression whose value is wanted, of any type.
    pub fn check_value(&mut self, expr: &Expr) -> Node {
        let node = self.expr(expr, Pos::Value);
        self.check_depth(&node);
        node
    }

    fn expr(&mut self, expr: &Expr, pos: Pos) -> Node {
        if self.n_nodes > MAX_NODES {
            self.too_many_nodes(expr.span);
            return self.node(NodeKind::Const(Value::Null), Type::Any, expr.span);
        }
        let span = expr.span;
        // what a bare word read as a symbol is compared with: for this node only
        let symbols = self.symbols.take();
        match &expr.kind {
            ExprKind::Literal { value } => {
                let v = lit_value(value);
                let ty = type_of_value(&v);
                self.node(NodeKind::Const(v), ty, span)
            }
            ExprKind::List { items } => {
                let nodes: Vec<Node> = items
                    .iter()
                    .map(|e| {
                        self.symbols = Some(symbols.clone().unwrap_or_default());
                        self.expr(e, Pos::Symbol)
                    })
                    .collect();
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
            ExprKind::Object { entries } => self.object(entries, span),
            ExprKind::Name { head, rest } => {
                self.symbols = symbols;
                self.name(head, rest, pos, span)
            }
            ExprKind::Field { head, rest } => self.field(head, rest, span),
            ExprKind::Index { base, index, rest } => self.index(base, index, rest, span),
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
                                format!("`{}` needs a list, found {other}", quantifier.as_str()),
                            )
                            .with_label("not a list"),
                        );
                        Type::Any
                    }
                };
                let index = self.locals.len();
                self.locals.push((var.name.clone(), elem.clone()));
                let predicate = if quantifier.takes_predicate() {
                    self.cond(predicate)
                } else {
                    self.expr(predicate, Pos::Value)
                };
                self.locals.pop();
                let ty = self.comprehension_type(*quantifier, &list.ty, &predicate);
                self.node(
                    NodeKind::Quant {
                        quantifier: *quantifier,
                        var: var.name.clone(),
                        index,
                        list: Box::new(list),
                        predicate: Box::new(predicate),
                    },
                    ty,
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
                self.expect_orderable(&value, &low, "between");
                self.expect_orderable(&value, &high, "between");
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
            ExprKind::If {
                cond,
                then,
                otherwise,
            } => {
                let cond = self.cond(cond);
                let then = self.expr(then, Pos::Value);
                let otherwise = self.expr(otherwise, Pos::Value);
                let ty = self.either_type(&then, &otherwise, "the branches of `if`");
                self.node(
                    NodeKind::If {
                        cond: Box::new(cond),
                        then: Box::new(then),
                        otherwise: Box::new(otherwise),
                    },
                    ty,
                    span,
                )
            }
        }
    }

    /// What a quantifier or comprehension gives, from its list and body; E106
    /// when `sum` would add what is not a number, or `min`/`max` order what has no order.
    fn comprehension_type(&mut self, q: Quantifier, list: &Type, body: &Node) -> Type {
        let bad = |what: &str| format!("`{}` needs {what}, found {}", q.as_str(), body.ty);
        match q {
            Quantifier::Any | Quantifier::All | Quantifier::ExistsOne => Type::Bool,
            Quantifier::Count => Type::Int,
            Quantifier::Filter => match list {
                Type::List(_) => list.clone(),
                _ => Type::List(Box::new(Type::Any)),
            },
            Quantifier::Map => Type::List(Box::new(body.ty.clone())),
            Quantifier::Sum => match &body.ty {
                Type::Int | Type::UInt => Type::Int,
                Type::Duration => Type::Duration,
                Type::Any => Type::Any,
                t if t.is_numeric() => Type::Number,
                _ => {
                    let message = bad("numbers to add");
                    self.error(Diagnostic::error("E106", body.span, message));
                    Type::Any
                }
            },
            Quantifier::Min | Quantifier::Max => {
                if !body.ty.is_orderable() {
                    let message = bad("values that have an order");
                    self.error(Diagnostic::error("E106", body.span, message));
                }
                body.ty.clone()
            }
        }
    }

    /// The type of a value that is one of two (the branches of `if`, the sides
    /// of `??`): E106 when their types cannot mix (`int` and `string`).
    pub(super) fn either_type(&mut self, a: &Node, b: &Node, what: &str) -> Type {
        match (&a.ty, &b.ty) {
            (Type::Null, t) | (t, Type::Null) => t.clone(),
            (x, y) if !known(x) || !known(y) => Type::Any,
            (x, y) if x.comparable_with(y) => common_type([x, y].into_iter()),
            (x, y) => {
                let (x, y) = (x.clone(), y.clone());
                self.error(
                    Diagnostic::error(
                        "E106",
                        a.span.to(b.span),
                        format!("{what} have different types: {x} and {y}"),
                    )
                    .with_label(format!("{x} here"))
                    .with_help(
                        "give both the same type, for example write `0` or `\"\"` for the other",
                    ),
                );
                Type::Any
            }
        }
    }

    /// `base[index]` then `rest`: a list by an int, an object by a string key
    /// (E115 otherwise, when the types are known).
    fn index(&mut self, base: &Expr, index: &Expr, rest: &[PathSegment], span: Span) -> Node {
        let base = self.expr(base, Pos::Value);
        let index = self.expr(index, Pos::Value);
        let ty = match (&base.ty, &index.ty) {
            (Type::List(t), Type::Int | Type::UInt | Type::Any) => (**t).clone(),
            (Type::Object(obj), _) if index.ty.is_stringy() || index.ty == Type::Any => {
                match &index.kind {
                    NodeKind::Const(Value::Str(k)) => field_type(obj, k).unwrap_or(Type::Any),
                    _ => Type::Any,
                }
            }
            (Type::Any, _) => Type::Any,
            (b, i) => {
                let (b, i) = (b.clone(), i.clone());
                self.error(
                    Diagnostic::error(
                        "E115",
                        index.span,
                        format!("a {b} cannot be indexed by a {i}"),
                    )
                    .with_help("a list is indexed by an int, an object by a string"),
                );
                Type::Any
            }
        };
        let node = self.node(
            NodeKind::Index {
                base: Box::new(base),
                index: Box::new(index),
            },
            ty.clone(),
            span,
        );
        let node = self.coerce(node);
        if rest.is_empty() {
            return node;
        }
        let (steps, ty) = self.path_steps(ty, rest);
        let path = self.node(
            NodeKind::Path {
                base: Box::new(node),
                rest: steps,
            },
            ty,
            span,
        );
        self.coerce(path)
    }

    /// `{key: value, ...}`: an object type with a field per key (E111 for a
    /// key given twice); a constant when every value is one.
    fn object(&mut self, entries: &[ast::Entry], span: Span) -> Node {
        let mut keys: Vec<String> = Vec::with_capacity(entries.len());
        let mut values = Vec::with_capacity(entries.len());
        let mut fields = Vec::with_capacity(entries.len());
        for entry in entries {
            let value = self.expr(&entry.value, Pos::Value);
            if keys.contains(&entry.key.name) {
                self.error(Diagnostic::error(
                    "E111",
                    entry.key.span,
                    format!("key `{}` is given twice", entry.key.name),
                ));
            }
            fields.push(FieldType {
                name: entry.key.name.clone(),
                ty: value.ty.clone(),
                optional: matches!(value.ty, Type::Null | Type::Any),
            });
            keys.push(entry.key.name.clone());
            values.push(value);
        }
        let ty = Type::Object(std::sync::Arc::new(ObjectType { fields }));
        if values.iter().all(|v| matches!(v.kind, NodeKind::Const(_))) {
            let map =
                super::ops::object_of(keys.into_iter().zip(values.iter().map(|v| match &v.kind {
                    NodeKind::Const(c) => Some(c.reborrow()),
                    _ => None,
                })));
            return self.node(NodeKind::Const(map), ty, span);
        }
        self.node(NodeKind::Object(keys, values), ty, span)
    }

    /// `has(path)`: the path is checked as a field (unknown fields are errors
    /// under a schema), and must be one: a field, `$field`, a variable or a
    /// parameter, with its `.key`, `[i]` and computed `[expr]` steps.
    fn has(&mut self, args: &[Expr], span: Span) -> Node {
        let [arg] = args else {
            self.error(
                Diagnostic::error(
                    "E103",
                    span,
                    format!("`has` takes 1 argument, but {} were given", args.len()),
                )
                .with_help("write `has(a.b)` to test that `a` has the key `b`"),
            );
            for a in args {
                self.expr(a, Pos::Value);
            }
            return self.node(NodeKind::Const(Value::Bool(false)), Type::Bool, span);
        };
        let mut path = self.expr(arg, Pos::Value);
        if let NodeKind::Coerce(inner) = path.kind {
            path = *inner;
        }
        let is_path = matches!(
            (&arg.kind, &path.kind),
            (
                ExprKind::Name { .. } | ExprKind::Field { .. } | ExprKind::Index { .. },
                NodeKind::Field { .. }
                    | NodeKind::Local { .. }
                    | NodeKind::Param { .. }
                    | NodeKind::Path { .. }
                    | NodeKind::Index { .. }
            )
        );
        if !is_path {
            self.error(
                Diagnostic::error("E106", arg.span, "`has` needs a field path")
                    .with_label("not a path")
                    .with_help("write `has(a.b)`; to test a value for null, write `x is not null`"),
            );
        }
        self.node(NodeKind::Has(Box::new(path)), Type::Bool, span)
    }

    /// An operand of `and`, `or`, `not` or a quantifier: must be a condition.
    fn cond(&mut self, expr: &Expr) -> Node {
        let node = self.expr(expr, Pos::Value);
        if let Some(ty) = node.not_a_condition() {
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
        let symbols = self.symbols.take();
        // 1. quantifier variables, innermost first
        if let Some(index) = self.locals.iter().rposition(|(n, _)| n == name) {
            let ty = self.locals[index].1.clone();
            let (steps, ty) = self.path_steps(ty, rest);
            let local = self.node(
                NodeKind::Local {
                    index,
                    name: name.to_string(),
                    rest: steps,
                },
                ty,
                span,
            );
            return self.coerce(local);
        }
        // 2. parameters of the rule being checked
        if let Some((index, ty)) = self.params.get(name).cloned() {
            let (steps, ty) = self.path_steps(ty, rest);
            let has_path = !steps.is_empty();
            let param = self.node(NodeKind::Param { index, rest: steps }, ty, span);
            return if has_path { self.coerce(param) } else { param };
        }
        // 3. a bare word where a symbol is expected
        if rest.is_empty() && pos == Pos::Symbol {
            let symbols = symbols.unwrap_or_default();
            if self.is_schema_field(name)
                && !symbols.compared_with_other_type
                && !symbols.variants.iter().any(|v| v == name)
            {
                self.error(
                    Diagnostic::error(
                        "E117",
                        span,
                        format!("`{name}` is a field of the schema, but here it is the string \"{name}\""),
                    )
                    .with_label("read as a string")
                    .with_help(format!(
                        "write `${name}` to compare with the field, or \"{name}\" for the string"
                    )),
                );
            }
            return self.node(
                NodeKind::Const(Value::Str(name.to_string().into())),
                Type::String,
                span,
            );
        }
        // 4. a rule
        if rest.is_empty() && self.scope.rules.def(name).is_some() {
            return self.rule_ref(head, &[], span);
        }
        // 5. a field
        self.field(head, rest, span)
    }

    /// Does the schema declare a top-level field of this name?
    fn is_schema_field(&self, name: &str) -> bool {
        self.scope
            .schema
            .is_some_and(|s| s.root.get(name).is_some())
    }

    /// A value the schema says is a date, datetime or duration, read from data
    /// that may hold it as text: converted when read (`ops::coerce`).
    fn coerce(&mut self, node: Node) -> Node {
        if matches!(node.ty, Type::Date | Type::DateTime | Type::Duration) {
            let (ty, span) = (node.ty.clone(), node.span);
            self.node(NodeKind::Coerce(Box::new(node)), ty, span)
        } else {
            node
        }
    }

    fn field(&mut self, head: &ast::Ident, rest: &[PathSegment], span: Span) -> Node {
        let name = head.name.as_str();
        let (slot, ty) = match self.scope.schema {
            Some(schema) => match schema.root.get(name) {
                Some((slot, f)) => (slot, f.ty.clone()),
                None => {
                    let help = schema
                        .root
                        .suggest(name)
                        .or_else(|| did_you_mean(name, self.scope.rules.names()));
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
        let field = self.node(
            NodeKind::Field {
                slot: u32::try_from(slot).unwrap_or(u32::MAX),
                name: name.to_string(),
                rest: steps,
            },
            ty,
            span,
        );
        self.coerce(field)
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

    fn call(&mut self, name: &ast::Ident, args: &[Expr], span: Span) -> Node {
        if name.name == "has" {
            return self.has(args, span);
        }
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
                    if !func.accepts(i, nodes.len(), &node.ty) {
                        let want = func.param_text(i);
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
        if self.scope.rules.def(&name.name).is_some() {
            return self.rule_ref(name, args, span);
        }
        // `count(xs)`: a comprehension's name without its variable
        if let Some(q) = Quantifier::comprehension(&name.name) {
            let body = if q.takes_predicate() {
                "predicate"
            } else {
                "value"
            };
            self.error(
                Diagnostic::error(
                    "E103",
                    span,
                    format!("`{}` needs a variable, a list and a {body}", name.name),
                )
                .with_help(format!("write `{}(x in list, {body} of x)`", name.name)),
            );
            for a in args {
                self.expr(a, Pos::Value);
            }
            return self.node(NodeKind::Const(Value::Null), Type::Any, span);
        }
        let candidates: Vec<&str> = self
            .scope
            .functions
            .names()
            .chain(self.scope.rules.names())
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
    /// Right of `==` / `!=`, or an element of a list literal: a bare word is a symbol.
    Symbol,
    /// Anywhere else.
    Value,
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
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

fn result_type(func: &Function, args: &[Node]) -> Type {
    let first = args.first().map(|a| &a.ty);
    match (func.builtin, first) {
        // over a list: its elements' type
        (Some(Builtin::Min | Builtin::Max), Some(Type::List(t))) if args.len() == 1 => {
            (**t).clone()
        }
        (Some(Builtin::Min | Builtin::Max), Some(Type::Any)) if args.len() == 1 => Type::Any,
        // abs, min and max keep the argument type
        (Some(Builtin::Abs | Builtin::Min | Builtin::Max), _) => {
            common_type(args.iter().map(|a| &a.ty))
        }
        (Some(Builtin::Sum), Some(Type::List(t))) => match &**t {
            Type::Int | Type::UInt => Type::Int,
            Type::Duration => Type::Duration,
            Type::Any => Type::Any,
            // an empty list of floats sums to the int 0
            _ => Type::Number,
        },
        (Some(Builtin::Sum), _) => Type::Any,
        (Some(Builtin::Distinct), Some(t @ Type::List(_))) => t.clone(),
        (Some(Builtin::Values), Some(Type::Object(obj))) => {
            Type::List(Box::new(common_type(obj.fields.iter().map(|f| &f.ty))))
        }
        _ => func.ret.clone(),
    }
}
