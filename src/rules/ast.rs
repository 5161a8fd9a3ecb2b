//! Step one of the rules pipeline: the syntax tree the parser produces.
//!
//! Every node carries a [`Span`]; `PartialEq` ignores spans so tests compare
//! shape only. Every type is `Serialize` so users can snapshot parsed output.
//! Names are not resolved here: a bare word is an [`ExprKind::Name`] and the
//! checker decides whether it is a parameter, a symbol, a rule or a field.

use serde::Serialize;

use crate::diag::Span;

/// An expression with its place in the source.
#[derive(Clone, Debug, Serialize)]
pub struct Expr {
    /// What the expression is.
    #[serde(flatten)]
    pub kind: ExprKind,
    /// Where it is.
    pub span: Span,
}

impl PartialEq for Expr {
    fn eq(&self, other: &Expr) -> bool {
        self.kind == other.kind
    }
}

impl Expr {
    /// A new node.
    pub fn new(kind: ExprKind, span: Span) -> Expr {
        Expr { kind, span }
    }

    /// Give a computed index (`items[i]`) the static steps after it, and the
    /// span of the whole; both parsers build paths through this.
    pub(crate) fn end_index(&mut self, steps: Vec<PathSegment>, span: Span) {
        if let ExprKind::Index { rest, .. } = &mut self.kind {
            *rest = steps;
        }
        self.span = span;
    }

    /// Push this node's direct subexpressions onto `out`: what an iterative walk
    /// of the syntax tree (one that a deep expression cannot overflow) visits next.
    pub fn push_children<'e>(&'e self, out: &mut Vec<&'e Expr>) {
        match &self.kind {
            ExprKind::Literal { .. } | ExprKind::Name { .. } | ExprKind::Field { .. } => {}
            ExprKind::List { items } => out.extend(items),
            ExprKind::Object { entries } => out.extend(entries.iter().map(|e| &e.value)),
            ExprKind::Call { args, .. } => out.extend(args),
            ExprKind::Index { base, index, .. } => out.extend([&**base, &**index]),
            ExprKind::Quantifier {
                list, predicate, ..
            } => out.extend([&**list, &**predicate]),
            ExprKind::Unary { operand, .. } => out.push(operand),
            ExprKind::Binary { left, right, .. } => out.extend([&**left, &**right]),
            ExprKind::Between { value, low, high } => out.extend([&**value, &**low, &**high]),
            ExprKind::IsNull { value, .. } => out.push(value),
            ExprKind::If {
                cond,
                then,
                otherwise,
            } => out.extend([&**cond, &**then, &**otherwise]),
        }
    }
}

/// An identifier with its span.
#[derive(Clone, Debug, Serialize)]
pub struct Ident {
    /// The text of the identifier.
    pub name: String,
    /// Where it is.
    pub span: Span,
}

impl PartialEq for Ident {
    fn eq(&self, other: &Ident) -> bool {
        self.name == other.name
    }
}

/// `key: value` in an object literal.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Entry {
    /// The key (a word, or a string literal for any other text) and its span.
    pub key: Ident,
    /// The value.
    pub value: Expr,
}

/// One step of a path after its first name: `.field` or `[index]`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PathSegment {
    /// `.name`
    Field(Ident),
    /// `[0]` (a non-negative integer literal).
    Index(u32),
}

impl ExprKind {
    /// A path `name.a[0]` (`$name...` when `explicit`).
    pub(crate) fn path(explicit: bool, head: Ident, rest: Vec<PathSegment>) -> ExprKind {
        if explicit {
            ExprKind::Field { head, rest }
        } else {
            ExprKind::Name { head, rest }
        }
    }
}

impl PathSegment {
    /// The static step a computed index stands for when it is a literal: a
    /// non-negative int that fits is `[0]`, a string is `["key"]` (with `span`,
    /// the brackets'). Both parsers build paths this one way.
    pub fn from_literal(index: &Expr, span: Span) -> Option<PathSegment> {
        match &index.kind {
            ExprKind::Literal {
                value: Literal::Int(i),
            } => u32::try_from(*i).ok().map(PathSegment::Index),
            ExprKind::Literal {
                value: Literal::String(s),
            } => Some(PathSegment::Field(Ident {
                name: s.clone(),
                span,
            })),
            _ => None,
        }
    }
}

/// The kinds of expression.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ExprKind {
    /// A literal value.
    Literal {
        /// The value.
        value: Literal,
    },
    /// A list literal `[a, b, c]`.
    List {
        /// The elements.
        items: Vec<Expr>,
    },
    /// An object literal `{name: "x", "content-type": t}`.
    Object {
        /// The keys and their values, in order.
        entries: Vec<Entry>,
    },
    /// A bare word or path: `tier`, `customer.address.country`, `items[0].price`.
    /// The checker resolves the first name (parameter, symbol, rule or field).
    Name {
        /// The first name.
        head: Ident,
        /// The `.field` and `[index]` steps after it.
        rest: Vec<PathSegment>,
    },
    /// A computed index or key: `items[i]`, `headers[name]`, then more static
    /// steps (`items[i].price`). A literal index or key is a step of a path instead.
    Index {
        /// What is indexed.
        base: Box<Expr>,
        /// The index (an int, for a list) or key (a string, for an object).
        index: Box<Expr>,
        /// The `.field` and `[index]` steps after it.
        rest: Vec<PathSegment>,
    },
    /// An explicit field reference `$total` (never a symbol, rule or parameter).
    Field {
        /// The first name.
        head: Ident,
        /// The `.field` and `[index]` steps after it.
        rest: Vec<PathSegment>,
    },
    /// A call `name(args)`: a built-in or custom function, or a rule with arguments.
    Call {
        /// The function or rule name.
        name: Ident,
        /// The arguments.
        args: Vec<Expr>,
    },
    /// `any(x in list, predicate)` / `all(x in list, predicate)`, and the
    /// comprehensions of the same shape: `count(x in xs, p)`, `map(x in xs, e)`, ...
    Quantifier {
        /// `any`, `all`, `count`, ...
        quantifier: Quantifier,
        /// The name bound to each element inside the predicate.
        var: Ident,
        /// The list.
        list: Box<Expr>,
        /// The predicate (for `sum`, `min`, `max` and `map`: the value),
        /// evaluated once per element.
        predicate: Box<Expr>,
    },
    /// `not e`, `-e`.
    Unary {
        /// The operator.
        op: UnaryOp,
        /// The operand.
        operand: Box<Expr>,
    },
    /// `a + b`, `a and b`, `a == b`, `a in b`, `a contains b`, ...
    Binary {
        /// The operator.
        op: BinaryOp,
        /// Left operand.
        left: Box<Expr>,
        /// Right operand.
        right: Box<Expr>,
    },
    /// `a between low and high` (inclusive on both ends).
    Between {
        /// The value tested.
        value: Box<Expr>,
        /// Lower bound.
        low: Box<Expr>,
        /// Upper bound.
        high: Box<Expr>,
    },
    /// `a is null` / `a is not null` (true for missing values as well as null).
    IsNull {
        /// The value tested.
        value: Box<Expr>,
        /// True for `is not null`.
        negated: bool,
    },
    /// `if cond then a else b`: `a` when the condition holds, else `b`.
    If {
        /// The condition.
        cond: Box<Expr>,
        /// The value when it holds.
        then: Box<Expr>,
        /// The value when it does not.
        otherwise: Box<Expr>,
    },
}

/// What `name(x in list, body)` computes over the elements of a list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Quantifier {
    /// True when some element satisfies the predicate.
    Any,
    /// True when every element satisfies the predicate (true for an empty list).
    All,
    /// True when exactly one element satisfies the predicate.
    ExistsOne,
    /// How many elements satisfy the predicate.
    Count,
    /// The elements that satisfy the predicate.
    Filter,
    /// The body's value for each element, as a list.
    Map,
    /// The sum of the body's values.
    Sum,
    /// The smallest of the body's values.
    Min,
    /// The largest of the body's values.
    Max,
}

impl Quantifier {
    /// Every quantifier and comprehension.
    pub const ALL: [Quantifier; 9] = [
        Quantifier::Any,
        Quantifier::All,
        Quantifier::ExistsOne,
        Quantifier::Count,
        Quantifier::Filter,
        Quantifier::Map,
        Quantifier::Sum,
        Quantifier::Min,
        Quantifier::Max,
    ];

    /// The name as written in rules.
    pub fn as_str(self) -> &'static str {
        match self {
            Quantifier::Any => "any",
            Quantifier::All => "all",
            Quantifier::ExistsOne => "exists_one",
            Quantifier::Count => "count",
            Quantifier::Filter => "filter",
            Quantifier::Map => "map",
            Quantifier::Sum => "sum",
            Quantifier::Min => "min",
            Quantifier::Max => "max",
        }
    }

    /// The comprehension a name starts (`count`, ...); `None` for other
    /// names, and for the keywords `any` and `all`.
    pub fn comprehension(name: &str) -> Option<Quantifier> {
        Quantifier::ALL
            .into_iter()
            .skip(2)
            .find(|q| q.as_str() == name)
    }

    /// Is its body a condition (every one but `sum`, `min`, `max`, `map`)?
    pub fn takes_predicate(self) -> bool {
        !matches!(
            self,
            Quantifier::Map | Quantifier::Sum | Quantifier::Min | Quantifier::Max
        )
    }
}

/// Prefix operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UnaryOp {
    /// `not`
    Not,
    /// `-`
    Neg,
}

/// Infix operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BinaryOp {
    /// `or`
    Or,
    /// `and`
    And,
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `in`
    In,
    /// `not in`
    NotIn,
    /// `contains` (substring, or list element)
    Contains,
    /// `starts_with`
    StartsWith,
    /// `ends_with`
    EndsWith,
    /// `matches` (a regular expression literal on the right)
    Matches,
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%`
    Rem,
    /// `??`: the right side when the left is missing or null.
    Coalesce,
}

impl BinaryOp {
    /// The operator as written in rules.
    pub fn as_str(self) -> &'static str {
        match self {
            BinaryOp::Or => "or",
            BinaryOp::And => "and",
            BinaryOp::Eq => "==",
            BinaryOp::Ne => "!=",
            BinaryOp::Lt => "<",
            BinaryOp::Le => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::Ge => ">=",
            BinaryOp::In => "in",
            BinaryOp::NotIn => "not in",
            BinaryOp::Contains => "contains",
            BinaryOp::StartsWith => "starts_with",
            BinaryOp::EndsWith => "ends_with",
            BinaryOp::Matches => "matches",
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Rem => "%",
            BinaryOp::Coalesce => "??",
        }
    }

    /// The operator with its operands swapped: `a < b` is `b > a`.
    pub fn flipped(self) -> BinaryOp {
        match self {
            BinaryOp::Lt => BinaryOp::Gt,
            BinaryOp::Le => BinaryOp::Ge,
            BinaryOp::Gt => BinaryOp::Lt,
            BinaryOp::Ge => BinaryOp::Le,
            other => other,
        }
    }

    /// True for `== != < <= > >=`.
    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BinaryOp::Eq | BinaryOp::Ne | BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge
        )
    }
}

/// Literal values.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum Literal {
    /// `null`
    Null,
    /// `true` / `false`
    Bool(bool),
    /// A 64-bit signed integer.
    Int(i64),
    /// A finite 64-bit float.
    Float(f64),
    /// A string with its escapes resolved.
    String(String),
    /// `2024-01-31`
    Date(chrono::NaiveDate),
    /// An RFC 3339 datetime `2024-01-31T12:00:00Z`.
    DateTime(chrono::DateTime<chrono::FixedOffset>),
    /// A duration such as `30d`, `12h`, `15m`, `10s`, `250ms`, in milliseconds.
    Duration(i64),
}

/// A parsed rule file: an optional schema and named rules, in source order.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RuleFile {
    /// The `schema { ... }` block, if any.
    pub schema: Option<SchemaDecl>,
    /// The rules, in source order.
    pub rules: Vec<RuleDecl>,
}

/// `rule name(param = default, ...) = expr`
#[derive(Clone, Debug, Serialize)]
pub struct RuleDecl {
    /// The rule's name.
    pub name: Ident,
    /// Parameters, in order.
    pub params: Vec<Param>,
    /// The body.
    pub body: Expr,
    /// Doc comment lines (`##`) directly above the rule, without the markers.
    pub doc: Vec<String>,
    /// The whole declaration.
    pub span: Span,
}

impl PartialEq for RuleDecl {
    fn eq(&self, other: &RuleDecl) -> bool {
        self.name == other.name
            && self.params == other.params
            && self.body == other.body
            && self.doc == other.doc
    }
}

/// A rule parameter with an optional default.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Param {
    /// The parameter name.
    pub name: Ident,
    /// The default value (a literal or list expression), if any.
    pub default: Option<Expr>,
}

/// `schema { field: type, ... }`
#[derive(Clone, Debug, Serialize)]
pub struct SchemaDecl {
    /// The declared fields, in order.
    pub fields: Vec<FieldDecl>,
    /// The whole block.
    pub span: Span,
}

impl PartialEq for SchemaDecl {
    fn eq(&self, other: &SchemaDecl) -> bool {
        self.fields == other.fields
    }
}

/// `name: type` or `name?: type` (may be missing or null).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FieldDecl {
    /// The field name.
    pub name: Ident,
    /// True when written `name?:`.
    pub optional: bool,
    /// The declared type.
    pub ty: TypeExpr,
}

/// A type in a schema.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TypeExpr {
    /// `int`, `float`, `number`, `string`, `bool`, `date`, `datetime`, `duration`, `any`.
    Named {
        /// The type name.
        name: Ident,
    },
    /// `standard | premium | vip`
    Enum {
        /// The allowed symbols.
        variants: Vec<Ident>,
    },
    /// `list<T>`
    List {
        /// Element type.
        element: Box<TypeExpr>,
    },
    /// `{ name: type, ... }`
    Object {
        /// The fields.
        fields: Vec<FieldDecl>,
    },
}
