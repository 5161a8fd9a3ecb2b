//! A hand-written fast path for parsing expressions: a byte cursor and a
//! precedence-climbing parser that builds exactly the [`Expr`] the pest path
//! (`grammar/spec.pest` + `parse.rs`) builds for the same valid text — same
//! nodes, same byte spans, same literal decoding.
//!
//! It never reports errors: on anything it does not handle, or anything
//! invalid, it gives up (`None`) and the caller runs the pest path, which
//! stays the specification of the language and the source of every
//! diagnostic. The caller runs the size check and the nesting pre-scan first,
//! so bracket nesting is at most [`MAX_DEPTH`] here; the parser also counts
//! its own bracket nesting and gives up past that, so it never recurses
//! without bound, and it gives up on trees deeper than the pest path accepts.
//!
//! The functions follow the grammar's rules one to one (`expr`, `if_expr`,
//! `negation`, `comparison`, `coalesce`, `sum`, `unary`, `primary`), each a
//! loop over its repetition, so only brackets and `if` recurse.

use super::ast::{
    BinaryOp, Entry, Expr, ExprKind, Ident, Literal, Param, PathSegment, Quantifier, RuleDecl,
    UnaryOp,
};
use super::lexical::{
    self, Numeric, is_ident_char, is_ident_start, is_keyword, numeric_end, numeric_kind,
    string_end, string_starts,
};
use super::limits::{MAX_DEPTH, MAX_TREE_DEPTH};
use crate::diag::Span;

/// Parse `text` as one whole expression, or `None` to let pest decide.
pub(super) fn parse_expr(text: &str) -> Option<Expr> {
    let mut parser = Parser {
        text,
        bytes: text.as_bytes(),
        pos: 0,
        nest: 0,
    };
    let node = parser.expr()?;
    parser.skip();
    (parser.pos == text.len()).then_some(node.expr)
}

/// Parse the `rule` declaration in `text[start..end]` (a piece of a rule file
/// as cut by the driver), or `None` to let pest decide. Spans are offsets into
/// `text`; the doc comment is left for the caller.
pub(super) fn parse_rule(text: &str, start: usize, end: usize) -> Option<RuleDecl> {
    let piece = text.get(..end)?;
    let mut p = Parser {
        text: piece,
        bytes: piece.as_bytes(),
        pos: start,
        nest: 0,
    };
    p.skip();
    let rule_start = p.pos;
    if p.peek_word() != "rule" {
        return None;
    }
    p.pos += 4;
    p.skip();
    let name = p.ident()?;
    p.skip();
    let mut params = Vec::new();
    if p.peek() == Some(b'(') {
        p.pos += 1;
        p.skip();
        if p.peek() == Some(b')') {
            p.pos += 1;
        } else {
            loop {
                p.skip();
                let name = p.ident()?;
                p.skip();
                let default = if p.peek() == Some(b'=') {
                    p.pos += 1;
                    let expr = p.expr()?.expr;
                    // Anything else is an error for pest to report.
                    if !matches!(
                        expr.kind,
                        ExprKind::Literal { .. } | ExprKind::List { .. } | ExprKind::Object { .. }
                    ) {
                        return None;
                    }
                    Some(expr)
                } else {
                    None
                };
                params.push(Param { name, default });
                p.skip();
                match p.peek() {
                    Some(b',') => {
                        p.pos += 1;
                        p.skip();
                        if p.peek() == Some(b')') {
                            p.pos += 1;
                            break;
                        }
                    }
                    Some(b')') => {
                        p.pos += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        p.skip();
    }
    if p.peek() != Some(b'=') {
        return None;
    }
    p.pos += 1;
    let body = p.expr()?.expr;
    p.skip();
    if p.pos != piece.len() {
        return None;
    }
    let span = Span {
        start: Span::new(rule_start, rule_start).start,
        end: body.span.end,
    };
    Some(RuleDecl {
        name,
        params,
        body,
        doc: Vec::new(),
        span,
    })
}

/// A built expression with the depth of its tree (as counted by the pest path).
struct Node {
    expr: Expr,
    depth: usize,
}

/// A computed index with the static steps after it, spanning `span`.
fn with_rest(mut node: Node, steps: Vec<PathSegment>, span: Span) -> Node {
    node.expr.end_index(steps, span);
    node
}

/// A node one level above `child_depth`, or `None` past the tree depth limit.
fn node(kind: ExprKind, span: Span, child_depth: usize) -> Option<Node> {
    let depth = child_depth + 1;
    (depth <= MAX_TREE_DEPTH).then(|| Node {
        expr: Expr::new(kind, span),
        depth,
    })
}

/// `left op right`.
fn binary(left: Node, op: BinaryOp, right: Node) -> Option<Node> {
    let span = left.expr.span.to(right.expr.span);
    let depth = left.depth.max(right.depth);
    node(
        ExprKind::Binary {
            op,
            left: Box::new(left.expr),
            right: Box::new(right.expr),
        },
        span,
        depth,
    )
}

/// The cursor over the text.
struct Parser<'t> {
    text: &'t str,
    bytes: &'t [u8],
    pos: usize,
    /// Open brackets (parentheses, lists, calls, quantifiers) and `if`s around `pos`.
    nest: usize,
}

impl<'t> Parser<'t> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn byte_at(&self, i: usize) -> Option<u8> {
        self.bytes.get(i).copied()
    }

    /// Skip spaces, tabs, new lines and `#` comments (the grammar's `WHITESPACE`).
    fn skip(&mut self) {
        while let Some(b) = self.peek() {
            match b {
                b' ' | b'\t' | b'\r' | b'\n' => self.pos += 1,
                b'#' => {
                    while self.peek().is_some_and(|c| c != b'\n') {
                        self.pos += 1;
                    }
                }
                _ => break,
            }
        }
    }

    /// End of the run of identifier characters starting at `start`.
    fn word_end(&self, start: usize) -> usize {
        let mut end = start;
        while self.byte_at(end).is_some_and(is_ident_char) {
            end += 1;
        }
        end
    }

    /// The word (identifier or keyword) at the cursor, or `""`.
    fn peek_word(&self) -> &'t str {
        if !self.peek().is_some_and(is_ident_start) {
            return "";
        }
        let end = self.word_end(self.pos);
        self.text.get(self.pos..end).unwrap_or("")
    }

    /// Consume `byte` after trivia, or give up.
    fn expect(&mut self, byte: u8) -> Option<()> {
        self.skip();
        if self.peek() == Some(byte) {
            self.pos += 1;
            Some(())
        } else {
            None
        }
    }

    /// One more open bracket, or give up past the nesting limit.
    fn open(&mut self) -> Option<()> {
        self.nest += 1;
        (self.nest <= MAX_DEPTH).then_some(())
    }

    fn close(&mut self) {
        self.nest = self.nest.saturating_sub(1);
    }

    // ----- expressions ---------------------------------------------------

    /// `if_expr | negation ((or | and) negation)*`, `and` binding tighter, left-associative.
    fn expr(&mut self) -> Option<Node> {
        self.skip();
        if self.peek_word() == "if" {
            return self.if_expr();
        }
        let mut loose: Option<Node> = None;
        let mut tight = self.negation()?;
        loop {
            self.skip();
            let op = match self.peek_word() {
                "or" => BinaryOp::Or,
                "and" => BinaryOp::And,
                _ => break,
            };
            self.pos += op.as_str().len();
            let right = self.negation()?;
            if op == BinaryOp::And {
                tight = binary(tight, op, right)?;
            } else {
                let left = match loose.take() {
                    Some(left) => binary(left, BinaryOp::Or, tight)?,
                    None => tight,
                };
                loose = Some(left);
                tight = right;
            }
        }
        match loose {
            Some(left) => binary(left, BinaryOp::Or, tight),
            None => Some(tight),
        }
    }

    /// `if cond then a else b`, at its `if`.
    fn if_expr(&mut self) -> Option<Node> {
        let start = self.pos;
        self.pos += 2;
        self.open()?;
        let cond = self.expr()?;
        self.skip();
        if self.peek_word() != "then" {
            return None;
        }
        self.pos += 4;
        let then = self.expr()?;
        self.skip();
        if self.peek_word() != "else" {
            return None;
        }
        self.pos += 4;
        let otherwise = self.expr()?;
        self.close();
        let span = Span::new(start, start).to(otherwise.expr.span);
        let depth = cond.depth.max(then.depth).max(otherwise.depth);
        node(
            ExprKind::If {
                cond: Box::new(cond.expr),
                then: Box::new(then.expr),
                otherwise: Box::new(otherwise.expr),
            },
            span,
            depth,
        )
    }

    /// `not* comparison`.
    fn negation(&mut self) -> Option<Node> {
        let mut nots: Vec<Span> = Vec::new();
        loop {
            self.skip();
            if self.peek_word() != "not" {
                break;
            }
            nots.push(Span::new(self.pos, self.pos + 3));
            self.pos += 3;
        }
        let mut acc = self.comparison()?;
        for not_span in nots.into_iter().rev() {
            let span = not_span.to(acc.expr.span);
            acc = node(
                ExprKind::Unary {
                    op: UnaryOp::Not,
                    operand: Box::new(acc.expr),
                },
                span,
                acc.depth,
            )?;
        }
        Some(acc)
    }

    /// `coalesce` with at most one comparison after it (a second one is an
    /// error the caller gives up on, as it cannot continue with an operator).
    fn comparison(&mut self) -> Option<Node> {
        let value = self.coalesce()?;
        self.skip();
        let next = self.byte_at(self.pos + 1);
        let (op, len) = match self.peek() {
            Some(b'=') if next == Some(b'=') => (BinaryOp::Eq, 2),
            Some(b'!') if next == Some(b'=') => (BinaryOp::Ne, 2),
            Some(b'<') if next == Some(b'=') => (BinaryOp::Le, 2),
            Some(b'<') => (BinaryOp::Lt, 1),
            Some(b'>') if next == Some(b'=') => (BinaryOp::Ge, 2),
            Some(b'>') => (BinaryOp::Gt, 1),
            Some(b) if b.is_ascii_alphabetic() => match self.peek_word() {
                "in" => (BinaryOp::In, 2),
                "contains" => (BinaryOp::Contains, 8),
                "starts_with" => (BinaryOp::StartsWith, 11),
                "ends_with" => (BinaryOp::EndsWith, 9),
                "matches" => (BinaryOp::Matches, 7),
                "not" => {
                    self.pos += 3;
                    self.skip();
                    if self.peek_word() != "in" {
                        return None;
                    }
                    (BinaryOp::NotIn, 2)
                }
                "between" => {
                    self.pos += 7;
                    return self.between(value);
                }
                "is" => {
                    let is_start = self.pos;
                    self.pos += 2;
                    return self.is_null(value, is_start);
                }
                _ => return Some(value),
            },
            _ => return Some(value),
        };
        self.pos += len;
        let right = self.coalesce()?;
        binary(value, op, right)
    }

    /// The rest of `value between low and high`, after `between`.
    fn between(&mut self, value: Node) -> Option<Node> {
        let low = self.coalesce()?;
        self.skip();
        if self.peek_word() != "and" {
            return None;
        }
        self.pos += 3;
        let high = self.coalesce()?;
        let depth = value.depth.max(low.depth).max(high.depth);
        let span = value.expr.span.to(high.expr.span);
        node(
            ExprKind::Between {
                value: Box::new(value.expr),
                low: Box::new(low.expr),
                high: Box::new(high.expr),
            },
            span,
            depth,
        )
    }

    /// The rest of `value is [not] null`, after `is`.
    fn is_null(&mut self, value: Node, is_start: usize) -> Option<Node> {
        self.skip();
        let negated = self.peek_word() == "not";
        if negated {
            self.pos += 3;
            self.skip();
        }
        if self.peek_word() != "null" {
            return None;
        }
        self.pos += 4;
        let span = value.expr.span.to(Span::new(is_start, self.pos));
        node(
            ExprKind::IsNull {
                value: Box::new(value.expr),
                negated,
            },
            span,
            value.depth,
        )
    }

    /// `sum (?? sum)*`, left-associative.
    fn coalesce(&mut self) -> Option<Node> {
        let mut acc = self.sum()?;
        loop {
            self.skip();
            if self.peek() != Some(b'?') || self.byte_at(self.pos + 1) != Some(b'?') {
                return Some(acc);
            }
            self.pos += 2;
            let right = self.sum()?;
            acc = binary(acc, BinaryOp::Coalesce, right)?;
        }
    }

    /// `unary ((+ | - | * | / | %) unary)*`, `* / %` binding tighter, left-associative.
    fn sum(&mut self) -> Option<Node> {
        let mut loose: Option<(Node, BinaryOp)> = None;
        let mut tight = self.unary()?;
        loop {
            self.skip();
            let op = match self.peek() {
                Some(b'+') => BinaryOp::Add,
                Some(b'-') => BinaryOp::Sub,
                Some(b'*') => BinaryOp::Mul,
                Some(b'/') => BinaryOp::Div,
                Some(b'%') => BinaryOp::Rem,
                _ => break,
            };
            self.pos += 1;
            let right = self.unary()?;
            if matches!(op, BinaryOp::Mul | BinaryOp::Div | BinaryOp::Rem) {
                tight = binary(tight, op, right)?;
            } else {
                let left = match loose.take() {
                    Some((left, loose_op)) => binary(left, loose_op, tight)?,
                    None => tight,
                };
                loose = Some((left, op));
                tight = right;
            }
        }
        match loose {
            Some((left, loose_op)) => binary(left, loose_op, tight),
            None => Some(tight),
        }
    }

    /// `-* primary`; the innermost `-` right before a number (not a date) is
    /// folded into the literal, its span starting at the `-`.
    fn unary(&mut self) -> Option<Node> {
        let mut negs: Vec<Span> = Vec::new();
        loop {
            self.skip();
            if self.peek() != Some(b'-') {
                break;
            }
            negs.push(Span::new(self.pos, self.pos + 1));
            self.pos += 1;
        }
        let folded = match negs.last() {
            Some(&minus) if self.peek().is_some_and(|b| b.is_ascii_digit()) => {
                let start = self.pos;
                let end = numeric_end(self.bytes, start)?;
                let text = self.text.get(start..end)?;
                match numeric_kind(text) {
                    Numeric::Date | Numeric::DateTime => None,
                    _ => {
                        let value = lexical::number(text, true).ok()?;
                        self.pos = end;
                        negs.pop();
                        Some(node(
                            ExprKind::Literal { value },
                            minus.to(Span::new(start, end)),
                            0,
                        )?)
                    }
                }
            }
            _ => None,
        };
        let mut acc = match folded {
            Some(acc) => acc,
            None => self.primary()?,
        };
        for neg_span in negs.into_iter().rev() {
            let span = neg_span.to(acc.expr.span);
            acc = node(
                ExprKind::Unary {
                    op: UnaryOp::Neg,
                    operand: Box::new(acc.expr),
                },
                span,
                acc.depth,
            )?;
        }
        Some(acc)
    }

    /// A path, call, `$field`, literal, `( expr )`, list or quantifier.
    fn primary(&mut self) -> Option<Node> {
        self.skip();
        let start = self.pos;
        match self.peek()? {
            b'r' if string_starts(self.bytes, start) => {
                let value = self.string()?;
                node(
                    ExprKind::Literal {
                        value: Literal::String(value),
                    },
                    Span::new(start, self.pos),
                    0,
                )
            }
            b if is_ident_start(b) => {
                let word = self.peek_word();
                match word {
                    "true" | "false" | "null" => {
                        self.pos += word.len();
                        let value = match word {
                            "true" => Literal::Bool(true),
                            "false" => Literal::Bool(false),
                            _ => Literal::Null,
                        };
                        node(ExprKind::Literal { value }, Span::new(start, self.pos), 0)
                    }
                    "any" | "all" => {
                        self.pos += 3;
                        let q = if word == "all" {
                            Quantifier::All
                        } else {
                            Quantifier::Any
                        };
                        self.quantifier(start, q)
                    }
                    _ if is_keyword(word) => None,
                    _ => self.path(start, false),
                }
            }
            b'$' => {
                self.pos += 1;
                self.path(start, true)
            }
            b'0'..=b'9' => {
                let end = numeric_end(self.bytes, start)?;
                let text = self.text.get(start..end)?;
                let value = match numeric_kind(text) {
                    Numeric::Date => Literal::Date(lexical::date(text)?),
                    Numeric::DateTime => Literal::DateTime(lexical::datetime(text)?),
                    _ => lexical::number(text, false).ok()?,
                };
                self.pos = end;
                node(ExprKind::Literal { value }, Span::new(start, end), 0)
            }
            b'"' | b'\'' => {
                let value = self.string()?;
                node(
                    ExprKind::Literal {
                        value: Literal::String(value),
                    },
                    Span::new(start, self.pos),
                    0,
                )
            }
            b'(' => {
                self.pos += 1;
                self.open()?;
                let mut inner = self.expr()?;
                self.expect(b')')?;
                self.close();
                inner.expr.span = Span::new(start, self.pos);
                Some(inner)
            }
            b'[' => {
                self.pos += 1;
                let (items, depth) = self.expr_list(b']')?;
                node(ExprKind::List { items }, Span::new(start, self.pos), depth)
            }
            b'{' => {
                self.pos += 1;
                self.object(start)
            }
            _ => None,
        }
    }

    /// The rest of `{key: value, ...}` (a trailing comma allowed), after `{`.
    fn object(&mut self, start: usize) -> Option<Node> {
        self.open()?;
        let mut entries = Vec::new();
        let mut depth = 0;
        loop {
            self.skip();
            if self.peek() == Some(b'}') {
                self.pos += 1;
                break;
            }
            let key_start = self.pos;
            let key = if string_starts(self.bytes, key_start) {
                let name = self.string()?;
                Ident {
                    name,
                    span: Span::new(key_start, self.pos),
                }
            } else {
                self.key()?
            };
            self.expect(b':')?;
            let value = self.expr()?;
            depth = depth.max(value.depth);
            entries.push(Entry {
                key,
                value: value.expr,
            });
            self.skip();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    break;
                }
                _ => return None,
            }
        }
        self.close();
        node(
            ExprKind::Object { entries },
            Span::new(start, self.pos),
            depth,
        )
    }

    /// An identifier (not a keyword) at the cursor.
    fn ident(&mut self) -> Option<Ident> {
        if is_keyword(self.peek_word()) {
            return None;
        }
        self.key()
    }

    /// A key (any word, keywords included: after `.` and `$`) at the cursor.
    fn key(&mut self) -> Option<Ident> {
        let word = self.peek_word();
        if word.is_empty() {
            return None;
        }
        let start = self.pos;
        self.pos += word.len();
        Some(Ident {
            name: word.to_string(),
            span: Span::new(start, self.pos),
        })
    }

    /// `name`, `a.b[0]`, `name(args)` (after optional trivia), or after `$`
    /// (`explicit`) a field reference without a call. `start` is where the
    /// primary starts (the `$` of a field reference).
    fn path(&mut self, start: usize, explicit: bool) -> Option<Node> {
        let head = if explicit { self.key()? } else { self.ident()? };
        let mut rest = Vec::new();
        // the path so far once a computed index came (`rest` then follows it)
        let mut indexed: Option<Node> = None;
        loop {
            let before = Span::new(start, self.pos);
            match self.peek() {
                Some(b'.') => {
                    self.pos += 1;
                    rest.push(PathSegment::Field(self.key()?));
                }
                Some(b'[') => {
                    let open = self.pos;
                    if let Some(step) = self.static_segment()? {
                        rest.push(step);
                        continue;
                    }
                    self.pos = open + 1;
                    self.open()?;
                    let index = self.expr()?;
                    self.expect(b']')?;
                    self.close();
                    if let Some(step) =
                        PathSegment::from_literal(&index.expr, Span::new(open, self.pos))
                    {
                        rest.push(step);
                        continue;
                    }
                    let steps = std::mem::take(&mut rest);
                    let base = match indexed.take() {
                        Some(node) => with_rest(node, steps, before),
                        None => node(ExprKind::path(explicit, head.clone(), steps), before, 0)?,
                    };
                    let depth = base.depth.max(index.depth);
                    let kind = ExprKind::Index {
                        base: Box::new(base.expr),
                        index: Box::new(index.expr),
                        rest: Vec::new(),
                    };
                    indexed = Some(node(kind, Span::new(start, self.pos), depth)?);
                }
                _ => break,
            }
        }
        if let Some(node) = indexed {
            return Some(with_rest(node, rest, Span::new(start, self.pos)));
        }
        if !explicit && rest.is_empty() {
            let after_name = self.pos;
            self.skip();
            // `count(x in ...`: a comprehension (the grammar tries it before a call)
            if let Some(q) = Quantifier::comprehension(&head.name)
                && self.binding_follows()
            {
                return self.quantifier(start, q);
            }
            if self.peek() == Some(b'(') {
                self.pos += 1;
                let (args, depth) = self.expr_list(b')')?;
                return node(
                    ExprKind::Call { name: head, args },
                    Span::new(start, self.pos),
                    depth,
                );
            }
            self.pos = after_name;
        }
        node(
            ExprKind::path(explicit, head, rest),
            Span::new(start, self.pos),
            0,
        )
    }

    /// At `[`: the grammar's atomic `["key"]` or `[0]` (nothing between the
    /// brackets but the literal), consumed: `Some(Some(step))`; `Some(None)`
    /// (cursor unmoved) when it is neither, so a computed index; `None` where
    /// the grammar reports an error (an index beyond 32 bits, a bad escape).
    fn static_segment(&mut self) -> Option<Option<PathSegment>> {
        let open = self.pos;
        if string_starts(self.bytes, open + 1) {
            self.pos = open + 1;
            let name = self.string()?;
            if self.peek() == Some(b']') {
                self.pos += 1;
                let span = Span::new(open, self.pos);
                return Some(Some(PathSegment::Field(Ident { name, span })));
            }
            self.pos = open;
            return Some(None);
        }
        let digits_start = open + 1;
        let mut end = digits_start;
        while self.byte_at(end).is_some_and(|b| b.is_ascii_digit()) {
            end += 1;
        }
        if end == digits_start || self.byte_at(end) != Some(b']') {
            return Some(None);
        }
        let index = self.text.get(digits_start..end)?.parse::<u32>().ok()?;
        self.pos = end + 1;
        Some(Some(PathSegment::Index(index)))
    }

    /// `expr, expr, ...` up to `close` (a trailing comma allowed), after the
    /// opening bracket; the items and their greatest depth.
    fn expr_list(&mut self, close: u8) -> Option<(Vec<Expr>, usize)> {
        self.open()?;
        let mut items = Vec::new();
        let mut depth = 0;
        self.skip();
        if self.peek() == Some(close) {
            self.pos += 1;
            self.close();
            return Some((items, depth));
        }
        loop {
            let item = self.expr()?;
            depth = depth.max(item.depth);
            items.push(item.expr);
            self.skip();
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    self.skip();
                    if self.peek() == Some(close) {
                        self.pos += 1;
                        break;
                    }
                }
                Some(b) if b == close => {
                    self.pos += 1;
                    break;
                }
                _ => return None,
            }
        }
        self.close();
        Some((items, depth))
    }

    /// Does `( name in` follow the cursor? Then a comprehension's name before
    /// it starts a comprehension, and anything else after that is for pest.
    fn binding_follows(&self) -> bool {
        let mut probe = Parser {
            text: self.text,
            bytes: self.bytes,
            pos: self.pos,
            nest: self.nest,
        };
        probe.expect(b'(').is_some() && {
            probe.skip();
            probe.ident().is_some() && {
                probe.skip();
                probe.peek_word() == "in"
            }
        }
    }

    /// The rest of `any(x in list, predicate)`, after its name.
    fn quantifier(&mut self, start: usize, quantifier: Quantifier) -> Option<Node> {
        self.expect(b'(')?;
        self.open()?;
        self.skip();
        let var = self.ident()?;
        self.skip();
        if self.peek_word() != "in" {
            return None;
        }
        self.pos += 2;
        let list = self.expr()?;
        self.expect(b',')?;
        let predicate = self.expr()?;
        self.expect(b')')?;
        self.close();
        let depth = list.depth.max(predicate.depth);
        node(
            ExprKind::Quantifier {
                quantifier,
                var,
                list: Box::new(list.expr),
                predicate: Box::new(predicate.expr),
            },
            Span::new(start, self.pos),
            depth,
        )
    }

    /// A string literal at the cursor (a quote, or `r` and a quote), decoded.
    fn string(&mut self) -> Option<String> {
        let start = self.pos;
        let end = string_end(self.bytes, start, self.bytes.len()).ok()?;
        self.pos = end;
        if self.byte_at(start) == Some(b'r') {
            return Some(self.text.get(start + 2..end - 1)?.to_string());
        }
        let raw = self.text.get(start + 1..end - 1)?;
        if raw.contains('\\') {
            lexical::unescape(raw).ok()
        } else {
            Some(raw.to_string())
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn rules_take_the_fast_path() {
        let text = "schema { a: int }\n  rule a(x, y = -5, z = [1, \"s\"],) = x + y # c\n\n## doc\nrule b = a(1) or any(i in l, i > 2)\n";
        let start = text.find("  rule").unwrap();
        let second = text.find("rule b").unwrap();
        let a = parse_rule(text, start, text.find("## doc").unwrap()).unwrap();
        assert_eq!(a.name.name, "a");
        assert_eq!(a.params.len(), 3);
        assert_eq!(a.span.start as usize, start + 2);
        let b = parse_rule(text, second, text.len()).unwrap();
        assert_eq!(b.span.end as usize, text.len() - 1);
        assert!(parse_rule(text, second, text.len() - 2).is_none());
        assert!(parse_rule("rule a(x = y) = 1", 0, 17).is_none());
    }
}
