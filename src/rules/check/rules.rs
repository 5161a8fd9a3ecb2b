//! Rules in the checker: every rule body is checked once, on its own, with its
//! parameters as placeholders ([`NodeKind::Param`]); a reference instantiates
//! that checked body with the arguments bound. Nothing is checked twice, so an
//! error in a rule is reported once, in the rule's own file, and an expression
//! that uses the rule sees exactly what the rule's check produced.
//!
//! Rule files are checked through a [`RuleTable`], which checks a rule the
//! first time something refers to it (finding cycles on the way); a compiled
//! rule set hands its finished rules to later expressions ([`CheckedRules`]).

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::{Checker, Node, NodeKind, Scope, Step, lit_value, type_of_value, walk_owned};
use crate::diag::{Diagnostic, Source, Span};
use crate::rules::ast::{self, Expr, ExprKind, UnaryOp};
use crate::rules::functions::Functions;
use crate::rules::limits::{MAX_CHECKED_DEPTH, MAX_NODES, MAX_RULE_NESTING};
use crate::rules::schema::{Schema, Type};
use crate::value::{OwnedValue, Value};

/// A rule declaration as the checker sees it.
#[derive(Clone, Debug)]
pub(crate) struct RuleDef {
    pub decl: ast::RuleDecl,
    /// The file the rule is declared in.
    pub source: Arc<Source>,
    /// Parameter defaults, already checked (constants).
    pub defaults: Vec<Option<Node>>,
}

impl RuleDef {
    /// Can the rule be used without arguments?
    pub fn standalone(&self) -> bool {
        self.defaults.iter().all(Option::is_some)
    }
}

/// A rule after checking: its body with the parameters as placeholders.
#[derive(Debug)]
pub(crate) struct CheckedRule {
    pub def: RuleDef,
    pub body: Node,
    /// Nodes in `body`.
    pub n_nodes: usize,
}

/// What a rule name leads to while checking.
pub(crate) enum Lookup {
    /// The checked rule.
    Found(Arc<CheckedRule>),
    /// The rule is being checked: the reference closes a cycle (the members).
    Cycle(String),
    /// Checking it now would nest rule checks too deeply.
    TooDeep,
}

/// The rules an expression may refer to.
pub(crate) trait RuleScope {
    /// The declaration of a rule.
    fn def(&self, name: &str) -> Option<&RuleDef>;
    /// Every rule name, for suggestions.
    fn names(&self) -> Vec<&str>;
    /// The checked rule (checking it first when needed).
    fn checked(&self, name: &str) -> Option<Lookup>;
}

/// Rules already checked: those of a compiled rule set.
pub(crate) type CheckedRules = HashMap<String, Arc<CheckedRule>>;

impl RuleScope for CheckedRules {
    fn def(&self, name: &str) -> Option<&RuleDef> {
        self.get(name).map(|r| &r.def)
    }
    fn names(&self) -> Vec<&str> {
        self.keys().map(String::as_str).collect()
    }
    fn checked(&self, name: &str) -> Option<Lookup> {
        self.get(name).cloned().map(Lookup::Found)
    }
}

/// The rules of files compiled together, each checked the first time it is needed.
pub(crate) struct RuleTable<'a> {
    schema: Option<&'a Schema>,
    functions: &'a Functions,
    defs: HashMap<String, RuleDef>,
    done: RefCell<CheckedRules>,
    /// The rules being checked, outermost first.
    stack: RefCell<Vec<String>>,
    /// The diagnostics of each rule's body.
    diags: RefCell<HashMap<String, Vec<Diagnostic>>>,
}

impl<'a> RuleTable<'a> {
    pub fn new(
        schema: Option<&'a Schema>,
        functions: &'a Functions,
        defs: HashMap<String, RuleDef>,
    ) -> RuleTable<'a> {
        RuleTable {
            schema,
            functions,
            defs,
            done: RefCell::new(HashMap::new()),
            stack: RefCell::new(Vec::new()),
            diags: RefCell::new(HashMap::new()),
        }
    }

    /// Check every rule (in an order that checks what a rule uses before it),
    /// and hand back the checked rules with the diagnostics of each.
    pub fn check_all(self) -> (CheckedRules, HashMap<String, Vec<Diagnostic>>) {
        for name in dependency_order(&self.defs) {
            self.checked(&name);
        }
        (self.done.into_inner(), self.diags.into_inner())
    }
}

impl RuleScope for RuleTable<'_> {
    fn def(&self, name: &str) -> Option<&RuleDef> {
        self.defs.get(name)
    }

    fn names(&self) -> Vec<&str> {
        self.defs.keys().map(String::as_str).collect()
    }

    fn checked(&self, name: &str) -> Option<Lookup> {
        if let Some(rule) = self.done.borrow().get(name) {
            return Some(Lookup::Found(rule.clone()));
        }
        let def = self.defs.get(name)?;
        {
            let stack = self.stack.borrow();
            if let Some(start) = stack.iter().position(|r| r == name) {
                return Some(Lookup::Cycle(cycle_text(&stack[start..])));
            }
            if stack.len() >= MAX_RULE_NESTING {
                return Some(Lookup::TooDeep);
            }
        }
        self.stack.borrow_mut().push(name.to_string());
        let mut checker = Checker::new(Scope {
            schema: self.schema,
            functions: self.functions,
            rules: self,
        });
        let body = checker.rule_body(def);
        self.stack.borrow_mut().pop();
        let rule = Arc::new(CheckedRule {
            def: def.clone(),
            body,
            n_nodes: checker.n_nodes,
        });
        self.diags
            .borrow_mut()
            .insert(name.to_string(), checker.diags);
        self.done
            .borrow_mut()
            .insert(name.to_string(), rule.clone());
        Some(Lookup::Found(rule))
    }
}

/// A cycle as it reads from whichever of its rules it is found: the members
/// rotated to start at the smallest name.
fn cycle_text(members: &[String]) -> String {
    let mut members: Vec<&str> = members.iter().map(String::as_str).collect();
    let first = members
        .iter()
        .enumerate()
        .min_by_key(|(_, m)| **m)
        .map_or(0, |(i, _)| i);
    members.rotate_left(first);
    format!("`{}` → `{}`", members.join("` → `"), members[0])
}

/// Rule names in an order where, as far as the bare words of their bodies
/// tell, a rule comes after the rules it uses (a post-order of a depth-first
/// walk, written as a loop). Checking in this order keeps on-demand checks of
/// rules inside rules shallow, however long a chain of rules is.
fn dependency_order(defs: &HashMap<String, RuleDef>) -> Vec<String> {
    let mut names: Vec<&String> = defs.keys().collect();
    names.sort();
    let uses: HashMap<&str, Vec<String>> = defs
        .iter()
        .map(|(name, def)| {
            let mut words = HashSet::new();
            collect_names(&def.decl.body, &mut words);
            let mut words: Vec<String> =
                words.into_iter().filter(|w| defs.contains_key(w)).collect();
            words.sort();
            (name.as_str(), words)
        })
        .collect();
    let mut order = Vec::with_capacity(defs.len());
    let mut seen: HashSet<&str> = HashSet::new();
    for root in names {
        if !seen.insert(root) {
            continue;
        }
        // (rule, index of the next word to visit)
        let mut stack: Vec<(&str, usize)> = vec![(root.as_str(), 0)];
        while let Some((rule, next)) = stack.pop() {
            let words = uses.get(rule).map_or(&[][..], Vec::as_slice);
            match words.get(next) {
                Some(word) => {
                    stack.push((rule, next + 1));
                    if seen.insert(word) {
                        stack.push((word, 0));
                    }
                }
                None => order.push(rule.to_string()),
            }
        }
    }
    order
}

/// Every bare word and call name in an expression: a superset of the rules it uses.
fn collect_names(expr: &Expr, out: &mut HashSet<String>) {
    match &expr.kind {
        ExprKind::Name { head, .. } => {
            out.insert(head.name.clone());
        }
        ExprKind::Call { name, args } => {
            out.insert(name.name.clone());
            args.iter().for_each(|a| collect_names(a, out));
        }
        ExprKind::Literal { .. } | ExprKind::Field { .. } => {}
        ExprKind::Index { base, index, .. } => {
            collect_names(base, out);
            collect_names(index, out);
        }
        ExprKind::List { items } => items.iter().for_each(|a| collect_names(a, out)),
        ExprKind::Object { entries } => entries.iter().for_each(|e| collect_names(&e.value, out)),
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
        ExprKind::If {
            cond,
            then,
            otherwise,
        } => {
            collect_names(cond, out);
            collect_names(then, out);
            collect_names(otherwise, out);
        }
    }
}

impl Checker<'_> {
    /// Check a rule's body on its own, its parameters as placeholders typed
    /// by their defaults (`any` without one).
    pub fn rule_body(&mut self, def: &RuleDef) -> Node {
        self.params = def
            .decl
            .params
            .iter()
            .zip(&def.defaults)
            .enumerate()
            .map(|(i, (p, d))| {
                let ty = d.as_ref().map_or(Type::Any, |d| d.ty.clone());
                (p.name.name.clone(), (i, ty))
            })
            .collect();
        let body = self.expr(&def.decl.body, super::Pos::Value);
        self.params.clear();
        self.check_depth(&body);
        body
    }

    /// E109 when a checked tree is deeper than the later phases accept.
    pub(super) fn check_depth(&mut self, node: &Node) {
        if !self.too_big && node.deeper_than(MAX_CHECKED_DEPTH) {
            self.too_big = true;
            self.diags.push(
                Diagnostic::error("E109", node.span, "expression nests too deeply").with_help(
                    format!("rule references are inlined; the limit is {MAX_CHECKED_DEPTH} levels"),
                ),
            );
        }
    }

    /// A reference to a rule, `name` or `name(args)`: the arguments checked
    /// against the parameters, then the rule's checked body with them bound.
    pub(super) fn rule_ref(&mut self, name: &ast::Ident, args: &[Expr], span: Span) -> Node {
        let Some(def) = self.scope.rules.def(&name.name).cloned() else {
            return self.node(NodeKind::Const(Value::Null), Type::Any, span);
        };
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
                        super::plural(params.len()),
                        args.len()
                    ),
                )
                .with_help(signature(&def.decl)),
            );
        }
        let mut bound = Vec::with_capacity(params.len());
        for (i, param) in params.iter().enumerate() {
            let node = if let Some(arg) = args.get(i) {
                let node = self.expr(arg, super::Pos::Value);
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
                self.node(NodeKind::Const(Value::Null), Type::Any, span)
            };
            bound.push(node);
        }
        for extra in args.iter().skip(params.len()) {
            self.expr(extra, super::Pos::Value);
        }
        match self.scope.rules.checked(&name.name) {
            Some(Lookup::Found(rule)) => self.instantiate(&rule, bound, span),
            Some(Lookup::Cycle(cycle)) => {
                self.error(cycle_error(name, &cycle));
                self.node(NodeKind::Const(Value::Bool(false)), Type::Bool, span)
            }
            Some(Lookup::TooDeep) | None => {
                self.too_many_nodes(span);
                self.node(NodeKind::Const(Value::Null), Type::Any, span)
            }
        }
    }

    /// A checked rule with its parameters bound to `args`: a copy of its body
    /// with the placeholders replaced, fields given this checker's slots and
    /// quantifier variables numbered after the ones in scope here.
    pub(crate) fn instantiate(&mut self, rule: &CheckedRule, args: Vec<Node>, span: Span) -> Node {
        if self.n_nodes + rule.n_nodes > MAX_NODES {
            self.too_many_nodes(span);
            return self.node(NodeKind::Const(Value::Null), Type::Any, span);
        }
        let base = self.locals.len();
        let mut budget = MAX_NODES.saturating_sub(self.n_nodes);
        let start = budget;
        let Some(body) = self.substitute(&rule.body, &args, base, &mut budget) else {
            self.too_many_nodes(span);
            return self.node(NodeKind::Const(Value::Null), Type::Any, span);
        };
        self.n_nodes += start - budget;
        let shown = rule
            .def
            .decl
            .params
            .iter()
            .map(|p| p.name.name.clone())
            .zip(args)
            .collect();
        let ty = body.ty.clone();
        self.node(
            NodeKind::Rule {
                name: rule.def.decl.name.name.clone(),
                args: shown,
                body: Box::new(body),
                source: rule.def.source.clone(),
            },
            ty,
            span,
        )
    }

    fn substitute(
        &mut self,
        node: &Node,
        args: &[Node],
        base: usize,
        budget: &mut usize,
    ) -> Option<Node> {
        *budget = budget.checked_sub(1)?;
        let kind = match &node.kind {
            NodeKind::Param { index, rest, .. } => {
                let arg = args.get(*index).cloned().unwrap_or(Node {
                    kind: NodeKind::Const(Value::Null),
                    ty: Type::Any,
                    span: node.span,
                });
                return Some(with_path(arg, rest, &node.ty));
            }
            NodeKind::Field { name, rest, .. } => NodeKind::Field {
                slot: u32::try_from(self.slot_of(name)).unwrap_or(u32::MAX),
                name: name.clone(),
                rest: rest.clone(),
            },
            NodeKind::Local { index, name, rest } => NodeKind::Local {
                index: index + base,
                name: name.clone(),
                rest: rest.clone(),
            },
            NodeKind::Quant {
                quantifier,
                var,
                index,
                list,
                predicate,
            } => NodeKind::Quant {
                quantifier: *quantifier,
                var: var.clone(),
                index: index + base,
                list: Box::new(self.substitute(list, args, base, budget)?),
                predicate: Box::new(self.substitute(predicate, args, base, budget)?),
            },
            _ => return node.try_map_children(&mut |c| self.substitute(c, args, base, budget)),
        };
        Some(Node {
            kind,
            ty: node.ty.clone(),
            span: node.span,
        })
    }

    pub(super) fn too_many_nodes(&mut self, span: Span) {
        if !self.too_big {
            self.too_big = true;
            self.diags.push(
                Diagnostic::error("E109", span, "expression expands to too many nodes").with_help(
                    format!("rule references are inlined; the limit is {MAX_NODES} nodes"),
                ),
            );
        }
    }
}

/// An argument with the path its parameter was followed by (`p.amount`).
fn with_path(arg: Node, rest: &[Step], ty: &Type) -> Node {
    if rest.is_empty() {
        return arg;
    }
    let steps = |r: &[Step]| -> Vec<Step> { r.iter().chain(rest).cloned().collect() };
    let kind = match arg.kind {
        NodeKind::Field {
            slot,
            name,
            rest: r,
        } => NodeKind::Field {
            slot,
            name,
            rest: steps(&r),
        },
        NodeKind::Local {
            index,
            name,
            rest: r,
        } => NodeKind::Local {
            index,
            name,
            rest: steps(&r),
        },
        NodeKind::Path { base, rest: r } => NodeKind::Path {
            base,
            rest: steps(&r),
        },
        NodeKind::Const(v) => {
            let mut cur = Some(v);
            for step in rest {
                cur = cur.and_then(|v| walk_owned(&v, step));
            }
            NodeKind::Const(cur.unwrap_or(Value::Null))
        }
        kind => NodeKind::Path {
            base: Box::new(Node {
                kind,
                ty: arg.ty,
                span: arg.span,
            }),
            rest: rest.to_vec(),
        },
    };
    Node {
        kind,
        ty: ty.clone(),
        span: arg.span,
    }
}

pub(super) fn cycle_error(name: &ast::Ident, cycle: &str) -> Diagnostic {
    Diagnostic::error(
        "E104",
        name.span,
        format!("rules refer to each other in a cycle: {cycle}"),
    )
    .with_label(format!("`{}` leads back here", name.name))
    .with_help("a rule cannot use itself, directly or through other rules")
}

/// `the rule is `high_value(threshold = 100)``, for help texts.
fn signature(decl: &ast::RuleDecl) -> String {
    format!(
        "the rule is `{}`",
        crate::rules::print::print_rule_signature(decl)
    )
}

/// A rule declaration with its parameter defaults checked (E111, E116).
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

/// The constant value of a literal, a negated literal, or a list or object of them.
/// Bare words in a list are symbols.
fn const_of(e: &Expr) -> Option<OwnedValue> {
    match &e.kind {
        ExprKind::Literal { value } => Some(lit_value(value)),
        ExprKind::Unary {
            op: UnaryOp::Neg,
            operand,
        } => crate::rules::ops::negate(&const_of(operand)?, "-")
            .ok()
            .flatten(),
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
        ExprKind::Object { entries } => {
            let values: Option<Vec<(String, Option<OwnedValue>)>> = entries
                .iter()
                .map(|e| Some((e.key.name.clone(), Some(const_of(&e.value)?))))
                .collect();
            Some(crate::rules::ops::object_of(values?.into_iter()))
        }
        _ => None,
    }
}
