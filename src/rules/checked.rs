//! The checked tree: the one representation every stage after checking reads.
//!
//! `check` builds it from the syntax tree: every name resolved (a field by
//! slot, a quantifier variable by frame index, a symbol as a constant), rule
//! references inlined with their arguments bound, every node typed. `compile`
//! and `flat` turn it into code, `explain` interprets it, `lint` inspects it;
//! none of them looks at the syntax tree or re-resolves a name.

use std::sync::Arc;

use super::ast::{BinaryOp, Quantifier};
use super::functions::Function;
use super::schema::Type;
use crate::diag::{Source, Span};
use crate::value::OwnedValue;

/// A checked expression node.
#[derive(Clone, Debug)]
pub(crate) struct Node {
    pub kind: NodeKind,
    pub ty: Type,
    pub span: Span,
}

/// One step of a path after its head.
#[derive(Clone, Debug)]
pub(crate) enum Step {
    Field(String),
    Index(usize),
}

#[derive(Clone, Debug)]
pub(crate) enum NodeKind {
    Const(OwnedValue),
    /// A top-level field by slot in the program's field table, then a path.
    Field {
        slot: u32,
        name: String,
        rest: Vec<Step>,
    },
    /// A quantifier variable (index into the frame's locals), then a path.
    Local {
        index: usize,
        name: String,
        rest: Vec<Step>,
    },
    /// A rule parameter (its position), then a path: only in the checked body
    /// of a rule, where a reference replaces it by the argument. Evaluated, it
    /// is missing (a rule body checked standalone, without a value for it).
    Param {
        index: usize,
        rest: Vec<Step>,
    },
    /// A path on a computed value (a parameter bound to an expression).
    Path {
        base: Box<Node>,
        rest: Vec<Step>,
    },
    /// A computed index or key: `items[i]`, `headers[name]` (`ops::index`).
    Index {
        base: Box<Node>,
        index: Box<Node>,
    },
    /// A value the schema declares a date, datetime or duration (the node's
    /// type), which data may hold as text: read as that type (`ops::coerce`).
    Coerce(Box<Node>),
    Not(Box<Node>),
    Neg(Box<Node>),
    And(Vec<Node>),
    Or(Vec<Node>),
    Compare {
        op: BinaryOp,
        left: Box<Node>,
        right: Box<Node>,
    },
    Arith {
        op: BinaryOp,
        left: Box<Node>,
        right: Box<Node>,
    },
    /// `in`, `not in`, `contains`, `starts_with`, `ends_with`.
    Member {
        op: BinaryOp,
        left: Box<Node>,
        right: Box<Node>,
    },
    Matches {
        value: Box<Node>,
        regex: regex::Regex,
    },
    Between {
        value: Box<Node>,
        low: Box<Node>,
        high: Box<Node>,
    },
    IsNull {
        value: Box<Node>,
        negated: bool,
    },
    /// `has(path)`: the path leads to a value, null included.
    Has(Box<Node>),
    /// `if cond then a else b`: only the branch taken is evaluated.
    If {
        cond: Box<Node>,
        then: Box<Node>,
        otherwise: Box<Node>,
    },
    /// `a ?? b`: `b` (evaluated only then) when `a` is missing or null.
    Coalesce {
        value: Box<Node>,
        fallback: Box<Node>,
    },
    Call {
        func: Function,
        args: Vec<Node>,
    },
    Quant {
        quantifier: Quantifier,
        /// The variable's name and its index in the frame's locals.
        var: String,
        index: usize,
        list: Box<Node>,
        predicate: Box<Node>,
    },
    List(Vec<Node>),
    /// An object literal with values computed per record (the keys, then the values).
    Object(Vec<String>, Vec<Node>),
    /// An inlined rule, kept for explanations.
    Rule {
        name: String,
        args: Vec<(String, Node)>,
        body: Box<Node>,
        source: Arc<Source>,
    },
}

/// The text of a node in its source, white space collapsed: how errors and
/// explanations name an expression.
pub(crate) fn source_text(source: &Source, span: Span) -> String {
    source.text.get(span.range()).map_or_else(
        || "expression".to_string(),
        |t| t.split_whitespace().collect::<Vec<_>>().join(" "),
    )
}

/// The children of a node ([`Node::children`]).
pub(crate) enum Children<'a> {
    /// Up to three, then `None`s; the index of the next.
    Fixed([Option<&'a Node>; 3], usize),
    /// A list of operands.
    Many(std::slice::Iter<'a, Node>),
}

impl<'a> Iterator for Children<'a> {
    type Item = &'a Node;
    fn next(&mut self) -> Option<&'a Node> {
        match self {
            Children::Fixed(nodes, i) => {
                let next = nodes.get(*i).copied().flatten();
                *i += 1;
                next
            }
            Children::Many(items) => items.next(),
        }
    }
}

impl Node {
    /// What the node is, when it can never be true or false (its type is known
    /// and is not `bool`, or it is arithmetic, which never gives a bool); `None`
    /// when it may be a condition.
    pub fn not_a_condition(&self) -> Option<String> {
        match (&self.kind, &self.ty) {
            (NodeKind::Arith { op, .. }, Type::Any) => {
                Some(format!("the result of `{}`", op.as_str()))
            }
            (NodeKind::Neg(_), Type::Any) => Some("the result of `-`".to_string()),
            (NodeKind::Rule { body, .. }, Type::Any) => body.not_a_condition(),
            // a value that is one of two: either may be what decides
            (
                NodeKind::If {
                    then: a,
                    otherwise: b,
                    ..
                }
                | NodeKind::Coalesce {
                    value: a,
                    fallback: b,
                },
                Type::Any,
            ) => a.not_a_condition().or_else(|| b.not_a_condition()),
            (_, Type::Bool | Type::Any) => None,
            (_, ty) => Some(ty.to_string()),
        }
    }

    /// The direct children, in evaluation order (without allocating).
    pub fn children(&self) -> Children<'_> {
        use NodeKind::*;
        fn fixed(nodes: [Option<&Node>; 3]) -> Children<'_> {
            Children::Fixed(nodes, 0)
        }
        match &self.kind {
            Const(_) | Field { .. } | Local { .. } | Param { .. } => fixed([None, None, None]),
            Path { base: a, .. } | Coerce(a) | Not(a) | Neg(a) | Has(a) | Rule { body: a, .. } => {
                fixed([Some(a), None, None])
            }
            Matches { value: a, .. } | IsNull { value: a, .. } => fixed([Some(a), None, None]),
            And(items) | Or(items) | List(items) | Object(_, items) | Call { args: items, .. } => {
                Children::Many(items.iter())
            }
            Compare { left, right, .. }
            | Arith { left, right, .. }
            | Member { left, right, .. } => fixed([Some(left), Some(right), None]),
            Between { value, low, high } => fixed([Some(value), Some(low), Some(high)]),
            Index { base, index } => fixed([Some(base), Some(index), None]),
            If {
                cond,
                then,
                otherwise,
            } => fixed([Some(cond), Some(then), Some(otherwise)]),
            Coalesce { value, fallback } => fixed([Some(value), Some(fallback), None]),
            Quant {
                list, predicate, ..
            } => fixed([Some(list), Some(predicate), None]),
        }
    }

    /// Is the tree deeper than `limit`? (Stops descending at the limit.)
    pub fn deeper_than(&self, limit: usize) -> bool {
        limit == 0 || self.children().any(|c| c.deeper_than(limit - 1))
    }

    /// Rebuild the node with each direct child replaced by `f(child)`; `None`
    /// as soon as `f` gives up.
    pub fn try_map_children(&self, f: &mut impl FnMut(&Node) -> Option<Node>) -> Option<Node> {
        use NodeKind::*;
        let kind = match &self.kind {
            Const(_) | Field { .. } | Local { .. } | Param { .. } => self.kind.clone(),
            Path { base, rest } => Path {
                base: Box::new(f(base)?),
                rest: rest.clone(),
            },
            Coerce(a) => Coerce(Box::new(f(a)?)),
            Index { base, index } => Index {
                base: Box::new(f(base)?),
                index: Box::new(f(index)?),
            },
            Not(a) => Not(Box::new(f(a)?)),
            Neg(a) => Neg(Box::new(f(a)?)),
            Has(a) => Has(Box::new(f(a)?)),
            If {
                cond,
                then,
                otherwise,
            } => If {
                cond: Box::new(f(cond)?),
                then: Box::new(f(then)?),
                otherwise: Box::new(f(otherwise)?),
            },
            Coalesce { value, fallback } => Coalesce {
                value: Box::new(f(value)?),
                fallback: Box::new(f(fallback)?),
            },
            Matches { value, regex } => Matches {
                value: Box::new(f(value)?),
                regex: regex.clone(),
            },
            IsNull { value, negated } => IsNull {
                value: Box::new(f(value)?),
                negated: *negated,
            },
            Compare { op, left, right } => Compare {
                op: *op,
                left: Box::new(f(left)?),
                right: Box::new(f(right)?),
            },
            Arith { op, left, right } => Arith {
                op: *op,
                left: Box::new(f(left)?),
                right: Box::new(f(right)?),
            },
            Member { op, left, right } => Member {
                op: *op,
                left: Box::new(f(left)?),
                right: Box::new(f(right)?),
            },
            Between { value, low, high } => Between {
                value: Box::new(f(value)?),
                low: Box::new(f(low)?),
                high: Box::new(f(high)?),
            },
            Quant {
                quantifier,
                var,
                index,
                list,
                predicate,
            } => Quant {
                quantifier: *quantifier,
                var: var.clone(),
                index: *index,
                list: Box::new(f(list)?),
                predicate: Box::new(f(predicate)?),
            },
            And(items) => And(items.iter().map(&mut *f).collect::<Option<_>>()?),
            Or(items) => Or(items.iter().map(&mut *f).collect::<Option<_>>()?),
            List(items) => List(items.iter().map(&mut *f).collect::<Option<_>>()?),
            Object(keys, items) => Object(
                keys.clone(),
                items.iter().map(&mut *f).collect::<Option<_>>()?,
            ),
            Call { func, args } => Call {
                func: func.clone(),
                args: args.iter().map(&mut *f).collect::<Option<_>>()?,
            },
            Rule {
                name,
                args,
                body,
                source,
            } => Rule {
                name: name.clone(),
                args: args
                    .iter()
                    .map(|(p, a)| Some((p.clone(), f(a)?)))
                    .collect::<Option<_>>()?,
                body: Box::new(f(body)?),
                source: source.clone(),
            },
        };
        Some(Node {
            kind,
            ty: self.ty.clone(),
            span: self.span,
        })
    }
}
