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
    /// A parameter that has no value (checking a rule body standalone).
    Unbound,
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
    Call {
        func: Function,
        args: Vec<Node>,
    },
    Quant {
        quantifier: Quantifier,
        index: usize,
        list: Box<Node>,
        predicate: Box<Node>,
    },
    List(Vec<Node>),
    /// An inlined rule, kept for explanations.
    Rule {
        name: String,
        args: Vec<(String, Node)>,
        body: Box<Node>,
        source: Arc<Source>,
    },
}
