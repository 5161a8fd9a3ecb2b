//! Step one of the rules pipeline: text → [AST](super::ast).
//!
//! 1. Guard (`prescan.rs`): reject oversized input (E007), then scan nesting iteratively
//!    (brackets and runs of prefix `not` / `-`, outside strings and comments)
//!    so that pest never recurses deeper than [`MAX_DEPTH`] (E008).
//! 2. Pest (`grammar/spec.pest`) turns the text into a tree of pairs; its
//!    errors become friendly E001 messages.
//! 3. The pairs become [`Expr`] nodes with byte spans; literals are decoded and
//!    validated here (E002–E006), chained comparisons rejected (E009).
//!
//! A rule file is cut into its prelude (the optional schema) and one piece per
//! line that starts with the `rule` keyword, and every piece is parsed on its
//! own, so two broken rules give two diagnostics.

use std::sync::Arc;

use pest::Parser;
use pest::error::{ErrorVariant, InputLocation};
use pest::iterators::{Pair, Pairs};

use super::ast::{
    BinaryOp, Entry, Expr, ExprKind, FieldDecl, Ident, Literal, Param, PathSegment, Quantifier,
    RuleDecl, RuleFile, SchemaDecl, TypeExpr, UnaryOp,
};
use super::lexical::{self, Numeric, OutOfRange, numeric_kind};
use super::limits::{MAX_SOURCE_BYTES, MAX_TREE_DEPTH};
use super::prescan::{
    EndMeaning, Scan, ScanMode, check_size, doc_comment, rule_starts, scan_nesting,
};
use super::schema::TYPE_NAMES;
use crate::diag::{Diagnostic, Diagnostics, Source, Span, did_you_mean};

/// The pest parser generated from `grammar/spec.pest`.
mod grammar {
    /// Parser for the rules language.
    #[derive(pest_derive::Parser)]
    #[grammar = "../grammar/spec.pest"]
    pub(super) struct SpecParser;
}

use grammar::{Rule, SpecParser};

/// Parse one expression.
///
/// Valid expressions usually go through a hand-written fast path
/// ([`parse_expr_fast`]); anything it does not handle, and every error, goes
/// through the pest grammar ([`parse_expr_pest`]), which is the specification
/// of the language and the source of every diagnostic. Both build the same
/// tree, spans included.
pub fn parse_expr(source: &Arc<Source>) -> Result<Expr, Diagnostics> {
    match parse_expr_fast(source) {
        Some(expr) => Ok(expr),
        None => parse_expr_pest(source),
    }
}

/// Test hook: the fast path of [`parse_expr`] alone. `None` means it gave up
/// (on an error, or on text it does not handle); otherwise the tree is the
/// one [`parse_expr_pest`] builds, spans included. Runs the same size check
/// and nesting pre-scan first.
#[doc(hidden)]
pub fn parse_expr_fast(source: &Arc<Source>) -> Option<Expr> {
    let text = source.text.as_str();
    if text.len() > MAX_SOURCE_BYTES {
        return None;
    }
    scan_nesting(text, 0, text.len(), ScanMode::Expr).ok()?;
    super::fastparse::parse_expr(text)
}

/// Test hook: [`parse_expr`] through the pest grammar only.
#[doc(hidden)]
pub fn parse_expr_pest(source: &Arc<Source>) -> Result<Expr, Diagnostics> {
    let text = source.text.as_str();
    let fail = |items| Diagnostics {
        source: Arc::clone(source),
        items,
    };
    if let Some(diag) = check_size(text) {
        return Err(fail(vec![diag]));
    }
    let mut builder = Builder::new(text, 0, text.len());
    let expr = builder
        .run(Rule::expr_input, ScanMode::Expr, EndMeaning::Nothing)
        .and_then(|mut pairs| builder.expr_input(&mut pairs));
    match expr {
        Some(expr) if builder.diags.is_empty() => Ok(expr),
        _ => Err(fail(builder.finish())),
    }
}

/// Parse a rule file.
///
/// Each `rule` goes through the fast path of [`parse_expr`] first, and
/// through pest when the fast path gives up; the schema always goes through pest.
pub fn parse_rule_file(source: &Arc<Source>) -> Result<RuleFile, Diagnostics> {
    parse_rule_file_with(source, true)
}

/// Test hook: [`parse_rule_file`] through the pest grammar only.
#[doc(hidden)]
pub fn parse_rule_file_pest(source: &Arc<Source>) -> Result<RuleFile, Diagnostics> {
    parse_rule_file_with(source, false)
}

/// Parse a rule file, trying the fast path on each rule when `fast`.
fn parse_rule_file_with(source: &Arc<Source>, fast: bool) -> Result<RuleFile, Diagnostics> {
    let text = source.text.as_str();
    let fail = |items| Diagnostics {
        source: Arc::clone(source),
        items,
    };
    if let Some(diag) = check_size(text) {
        return Err(fail(vec![diag]));
    }
    let starts = rule_starts(text);
    let prelude_end = starts.first().copied().unwrap_or(text.len());
    let mut diags = Vec::new();

    let mut prelude = Builder::new(text, 0, prelude_end);
    let schema = prelude
        .run(Rule::prelude_input, ScanMode::Schema, EndMeaning::Rule)
        .and_then(|mut pairs| prelude.prelude_input(&mut pairs))
        .flatten();
    diags.extend(prelude.finish());

    let mut rules = Vec::new();
    for (i, &start) in starts.iter().enumerate() {
        let end = starts.get(i + 1).copied().unwrap_or(text.len());
        let fast_decl = if fast && scan_nesting(text, start, end, ScanMode::Expr).is_ok() {
            super::fastparse::parse_rule(text, start, end)
        } else {
            None
        };
        if let Some(mut decl) = fast_decl {
            decl.doc = doc_comment(text, start);
            rules.push(decl);
            continue;
        }
        let mut builder = Builder::new(text, start, end);
        let decl = builder
            .run(Rule::rule_input, ScanMode::Expr, EndMeaning::Nothing)
            .and_then(|mut pairs| builder.rule_input(&mut pairs));
        if let Some(mut decl) = decl {
            decl.doc = doc_comment(text, start);
            rules.push(decl);
        }
        diags.extend(builder.finish());
    }
    if diags.is_empty() {
        Ok(RuleFile { schema, rules })
    } else {
        diags.sort_by_key(|d| (d.span.start, d.span.end));
        Err(fail(diags))
    }
}

/// A built expression with the depth of its tree.
struct Node {
    expr: Expr,
    depth: usize,
}

/// Turns the pest pairs of one piece of text into AST nodes, collecting diagnostics.
struct Builder<'t> {
    /// The whole source text.
    text: &'t str,
    /// Where the piece starts in `text` (pest spans are relative to it).
    base: usize,
    /// Where the piece ends.
    end: usize,
    diags: Vec<Diagnostic>,
    depth_reported: bool,
}

impl<'t> Builder<'t> {
    fn new(text: &'t str, base: usize, end: usize) -> Builder<'t> {
        Builder {
            text,
            base,
            end,
            diags: Vec::new(),
            depth_reported: false,
        }
    }

    fn finish(mut self) -> Vec<Diagnostic> {
        self.diags.sort_by_key(|d| (d.span.start, d.span.end));
        self.diags
    }

    /// Scan and run pest on the piece.
    fn run(
        &mut self,
        rule: Rule,
        mode: ScanMode,
        end_meaning: EndMeaning,
    ) -> Option<Pairs<'t, Rule>> {
        let scan = match scan_nesting(self.text, self.base, self.end, mode) {
            Ok(scan) => scan,
            Err(diag) => {
                self.diags.push(diag);
                return None;
            }
        };
        let piece = self.text.get(self.base..self.end).unwrap_or("");
        match SpecParser::parse(rule, piece) {
            Ok(pairs) => Some(pairs),
            Err(err) => {
                let diag = self.syntax_error(&err, &scan, end_meaning);
                self.diags.push(diag);
                None
            }
        }
    }

    fn span(&self, pair: &Pair<'_, Rule>) -> Span {
        let s = pair.as_span();
        Span::new(self.base + s.start(), self.base + s.end())
    }

    fn error(&mut self, code: &'static str, span: Span, message: impl Into<String>) {
        self.diags.push(Diagnostic::error(code, span, message));
    }

    // ----- syntax errors -------------------------------------------------

    /// Turn a pest error into "expected ..." / "unexpected ..." (E001).
    fn syntax_error(
        &self,
        err: &pest::error::Error<Rule>,
        scan: &Scan,
        end_meaning: EndMeaning,
    ) -> Diagnostic {
        let pos = self.base
            + match err.location {
                InputLocation::Pos(p) => p,
                InputLocation::Span((p, _)) => p,
            };
        let positives: &[Rule] = match &err.variant {
            ErrorVariant::ParsingError { positives, .. } => positives,
            ErrorVariant::CustomError { .. } => &[],
        };
        // After a complete operand, `(` would only continue a call: not worth suggesting.
        let after_operand = positives
            .iter()
            .any(|r| binary_op(*r).is_some() || matches!(r, Rule::kw_between | Rule::kw_is));
        let mut expected: Vec<&'static str> = Vec::new();
        for rule in positives {
            let desc = match rule {
                Rule::EOI if end_meaning == EndMeaning::Rule => Some("`rule`"),
                Rule::lparen if after_operand => None,
                other => describe(*other),
            };
            if let Some(desc) = desc
                && !expected.contains(&desc)
            {
                expected.push(desc);
            }
        }
        if expected.contains(&"an expression") {
            expected.retain(|d| *d != "`not`");
        }
        let at_end = pos >= scan.last_token_end;
        let (span, found) = if at_end {
            (Span::new(scan.last_token_end, scan.last_token_end), None)
        } else {
            let token = token_at(self.text, pos, self.end);
            (Span::new(pos, pos + token.len()), Some(token))
        };
        let message = match (expected.is_empty(), found) {
            (false, Some(found)) => format!(
                "expected {}, found `{}`",
                join_or(&expected),
                shorten(found)
            ),
            (false, None) => format!("expected {}", join_or(&expected)),
            (true, Some(found)) => format!("unexpected `{}`", shorten(found)),
            (true, None) => "unexpected end of input".to_string(),
        };
        Diagnostic::error("E001", span, message).with_help_opt(suggestion(self.text, pos, found))
    }

    // ----- entry points --------------------------------------------------

    fn expr_input(&mut self, pairs: &mut Pairs<'t, Rule>) -> Option<Expr> {
        let pair = first_inner(pairs, Rule::expr_input)?;
        let mut inner = pair.into_inner();
        let expr = inner.next()?;
        self.expr(expr).map(|node| node.expr)
    }

    fn prelude_input(&mut self, pairs: &mut Pairs<'t, Rule>) -> Option<Option<SchemaDecl>> {
        let pair = first_inner(pairs, Rule::prelude_input)?;
        match pair.into_inner().find(|p| p.as_rule() == Rule::schema) {
            Some(schema) => self.schema(schema).map(Some),
            None => Some(None),
        }
    }

    fn rule_input(&mut self, pairs: &mut Pairs<'t, Rule>) -> Option<RuleDecl> {
        let pair = first_inner(pairs, Rule::rule_input)?;
        let decl = pair.into_inner().find(|p| p.as_rule() == Rule::rule_decl)?;
        self.rule_decl(decl)
    }

    // ----- rule files ----------------------------------------------------

    fn rule_decl(&mut self, pair: Pair<'t, Rule>) -> Option<RuleDecl> {
        let span = self.span(&pair);
        let mut name = None;
        let mut params = Vec::new();
        let mut body = None;
        let mut ok = true;
        for part in pair.into_inner() {
            match part.as_rule() {
                Rule::ident if name.is_none() => name = Some(self.ident(&part)),
                Rule::params => {
                    for param in part.into_inner().filter(|p| p.as_rule() == Rule::param) {
                        match self.param(param) {
                            Some(param) => params.push(param),
                            None => ok = false,
                        }
                    }
                }
                Rule::expr => body = self.expr(part).map(|node| node.expr),
                _ => {}
            }
        }
        let (name, body) = (name?, body?);
        let span = Span {
            start: span.start,
            end: body.span.end,
        };
        ok.then_some(RuleDecl {
            name,
            params,
            body,
            doc: Vec::new(),
            span,
        })
    }

    fn param(&mut self, pair: Pair<'t, Rule>) -> Option<Param> {
        let mut name = None;
        let mut default = None;
        for part in pair.into_inner() {
            match part.as_rule() {
                Rule::ident => name = Some(self.ident(&part)),
                Rule::expr => {
                    let expr = self.expr(part)?.expr;
                    let is_constant = matches!(
                        &expr.kind,
                        ExprKind::Literal { .. } | ExprKind::List { .. } | ExprKind::Object { .. }
                    );
                    if !is_constant {
                        self.diags.push(
                            Diagnostic::error(
                                "E001",
                                expr.span,
                                "a parameter default must be a literal, a list or an object",
                            )
                            .with_help("for example `threshold = 100` or `tiers = [premium, vip]`"),
                        );
                        return None;
                    }
                    default = Some(expr);
                }
                _ => {}
            }
        }
        Some(Param {
            name: name?,
            default,
        })
    }

    fn schema(&mut self, pair: Pair<'t, Rule>) -> Option<SchemaDecl> {
        let span = self.span(&pair);
        let list = pair
            .into_inner()
            .find(|p| p.as_rule() == Rule::field_list)?;
        let fields = self.field_list(list)?;
        Some(SchemaDecl { fields, span })
    }

    /// Fields separated by commas or new lines.
    fn field_list(&mut self, pair: Pair<'t, Rule>) -> Option<Vec<FieldDecl>> {
        let mut fields = Vec::new();
        let mut ok = true;
        // End of the previous field when no comma came after it.
        let mut needs_separator: Option<usize> = None;
        for part in pair.into_inner() {
            match part.as_rule() {
                Rule::comma => needs_separator = None,
                Rule::field_decl => {
                    let span = self.span(&part);
                    if let Some(prev_end) = needs_separator {
                        let between = self.text.get(prev_end..span.start as usize).unwrap_or("");
                        if !between.contains('\n') {
                            let at = Span::new(span.start as usize, span.start as usize);
                            self.error("E001", at, "expected `,` or a new line between fields");
                            ok = false;
                        }
                    }
                    needs_separator = Some(self.base + last_token_end(&part));
                    match self.field_decl(part) {
                        Some(field) => fields.push(field),
                        None => ok = false,
                    }
                }
                _ => {}
            }
        }
        ok.then_some(fields)
    }

    fn field_decl(&mut self, pair: Pair<'t, Rule>) -> Option<FieldDecl> {
        let mut name = None;
        let mut optional = false;
        let mut ty = None;
        for part in pair.into_inner() {
            match part.as_rule() {
                Rule::ident => name = Some(self.ident(&part)),
                Rule::optional_mark => optional = true,
                Rule::type_expr => ty = self.type_expr(part),
                _ => {}
            }
        }
        Some(FieldDecl {
            name: name?,
            optional,
            ty: ty?,
        })
    }

    fn type_expr(&mut self, pair: Pair<'t, Rule>) -> Option<TypeExpr> {
        let inner = pair.into_inner().next()?;
        match inner.as_rule() {
            Rule::list_type => {
                let element = inner
                    .into_inner()
                    .find(|p| p.as_rule() == Rule::type_expr)?;
                let element = self.type_expr(element)?;
                Some(TypeExpr::List {
                    element: Box::new(element),
                })
            }
            Rule::object_type => {
                let list = inner
                    .into_inner()
                    .find(|p| p.as_rule() == Rule::field_list)?;
                Some(TypeExpr::Object {
                    fields: self.field_list(list)?,
                })
            }
            _ => {
                let variants: Vec<Ident> = inner
                    .into_inner()
                    .filter(|p| matches!(p.as_rule(), Rule::ident | Rule::kw_any))
                    .map(|p| self.ident(&p))
                    .collect();
                match variants.as_slice() {
                    [name] if TYPE_NAMES.contains(&name.name.as_str()) => {
                        Some(TypeExpr::Named { name: name.clone() })
                    }
                    [name] => {
                        let help = did_you_mean(&name.name, TYPE_NAMES).unwrap_or_else(|| {
                            "for an enum, list its values: `a | b | c`".to_string()
                        });
                        self.diags.push(
                            Diagnostic::error(
                                "E113",
                                name.span,
                                format!("unknown type `{}`", name.name),
                            )
                            .with_help(help),
                        );
                        None
                    }
                    _ => Some(TypeExpr::Enum { variants }),
                }
            }
        }
    }

    // ----- expressions ---------------------------------------------------

    /// A node one level above `depth`, or E008 when the tree gets too deep.
    fn node(&mut self, kind: ExprKind, span: Span, child_depth: usize) -> Option<Node> {
        let depth = child_depth + 1;
        if depth > MAX_TREE_DEPTH {
            if !self.depth_reported {
                self.depth_reported = true;
                self.diags.push(
                    Diagnostic::error(
                        "E008",
                        span,
                        format!("expression nested too deeply (more than {MAX_TREE_DEPTH} levels)"),
                    )
                    .with_help("split it into smaller rules"),
                );
            }
            return None;
        }
        Some(Node {
            expr: Expr::new(kind, span),
            depth,
        })
    }

    fn expr(&mut self, mut pair: Pair<'t, Rule>) -> Option<Node> {
        // Most levels of a typical expression hold a single child: step down
        // through them in a loop, so that each bracket costs a few stack frames.
        while matches!(
            pair.as_rule(),
            Rule::expr
                | Rule::negation
                | Rule::comparison
                | Rule::coalesce
                | Rule::sum
                | Rule::unary
                | Rule::primary
        ) {
            let mut inner = pair.clone().into_inner();
            match (inner.next(), inner.next()) {
                (Some(only), None) => pair = only,
                _ => break,
            }
        }
        match pair.as_rule() {
            Rule::expr | Rule::coalesce | Rule::sum => self.left_assoc(pair),
            Rule::if_expr => self.if_expr(pair),
            Rule::negation => self.negation(pair),
            Rule::comparison => self.comparison(pair),
            Rule::unary => self.unary(pair),
            Rule::primary => {
                let inner = pair.into_inner().next()?;
                self.primary(inner)
            }
            _ => self.primary(pair),
        }
    }

    /// A chain `a op b op c ...` of two precedence levels (`or` / `and`, or
    /// `+ -` / `* / %`), each left-associative: `a or b and c or d` is
    /// `(a or (b and c)) or d`. Nodes are made in the same order as by a
    /// grammar with one rule per level: a tight run is finished before the
    /// loose operator before it is applied.
    fn left_assoc(&mut self, pair: Pair<'t, Rule>) -> Option<Node> {
        let mut inner = pair.into_inner();
        // The loose left operand waiting for the current tight run, and its operator.
        let mut loose: Option<(Option<Node>, BinaryOp)> = None;
        // The current run of tight operators.
        let mut tight = self.expr(inner.next()?);
        while let Some(op_pair) = inner.next() {
            let op = binary_op(op_pair.as_rule())?;
            // Build the right operand even after an error, to report its errors too.
            let right = self.expr(inner.next()?);
            if binds_tight(op) {
                tight = self.binary(tight, op, right);
            } else {
                let left = match loose.take() {
                    Some((left, loose_op)) => self.binary(left, loose_op, tight),
                    None => tight,
                };
                loose = Some((left, op));
                tight = right;
            }
        }
        match loose {
            Some((left, loose_op)) => self.binary(left, loose_op, tight),
            None => tight,
        }
    }

    /// `left op right`, or `None` when an operand failed.
    fn binary(&mut self, left: Option<Node>, op: BinaryOp, right: Option<Node>) -> Option<Node> {
        let (left, right) = (left?, right?);
        let span = left.expr.span.to(right.expr.span);
        let depth = left.depth.max(right.depth);
        self.node(
            ExprKind::Binary {
                op,
                left: Box::new(left.expr),
                right: Box::new(right.expr),
            },
            span,
            depth,
        )
    }

    /// `if cond then a else b`: all three built, so every error is reported.
    fn if_expr(&mut self, pair: Pair<'t, Rule>) -> Option<Node> {
        let start = self.span(&pair).start;
        let mut parts = pair.into_inner().filter(|p| p.as_rule() == Rule::expr);
        let (cond, then, otherwise) = (parts.next()?, parts.next()?, parts.next()?);
        let (cond, then, otherwise) = (self.expr(cond), self.expr(then), self.expr(otherwise));
        let (cond, then, otherwise) = (cond?, then?, otherwise?);
        let span = Span {
            start,
            end: otherwise.expr.span.end,
        };
        let depth = cond.depth.max(then.depth).max(otherwise.depth);
        self.node(
            ExprKind::If {
                cond: Box::new(cond.expr),
                then: Box::new(then.expr),
                otherwise: Box::new(otherwise.expr),
            },
            span,
            depth,
        )
    }

    fn negation(&mut self, pair: Pair<'t, Rule>) -> Option<Node> {
        let mut nots = Vec::new();
        let mut operand = None;
        for part in pair.into_inner() {
            match part.as_rule() {
                Rule::kw_not => nots.push(self.span(&part)),
                _ => operand = Some(part),
            }
        }
        let mut acc = self.expr(operand?)?;
        for not_span in nots.into_iter().rev() {
            let span = not_span.to(acc.expr.span);
            acc = self.node(
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

    fn comparison(&mut self, pair: Pair<'t, Rule>) -> Option<Node> {
        let mut inner = pair.into_inner();
        let left = inner.next()?;
        let tails: Vec<Pair<'t, Rule>> = inner.collect();
        if let Some(second) = tails.get(1) {
            let op_span = second
                .clone()
                .into_inner()
                .next()
                .map_or_else(|| self.span(second), |op| self.span(&op));
            self.diags.push(
                Diagnostic::error("E009", op_span, "comparison operators cannot be chained")
                    .with_help("combine comparisons with `and`, or add parentheses"),
            );
            return None;
        }
        let value = self.expr(left)?;
        let Some(tail) = tails.into_iter().next() else {
            return Some(value);
        };
        // Rules ending in a repetition include trailing whitespace in pest's
        // spans, so node spans are built from their first and last operands.
        let tail_span = self.span(&tail);
        match tail.as_rule() {
            Rule::binary_compare => {
                let mut parts = tail.into_inner();
                let op = binary_op(parts.next()?.as_rule())?;
                let right = self.expr(parts.next()?)?;
                let depth = value.depth.max(right.depth);
                let span = value.expr.span.to(right.expr.span);
                self.node(
                    ExprKind::Binary {
                        op,
                        left: Box::new(value.expr),
                        right: Box::new(right.expr),
                    },
                    span,
                    depth,
                )
            }
            Rule::between_compare => {
                let mut bounds = tail.into_inner().filter(|p| p.as_rule() == Rule::coalesce);
                let low = self.expr(bounds.next()?)?;
                let high = self.expr(bounds.next()?)?;
                let depth = value.depth.max(low.depth).max(high.depth);
                let span = value.expr.span.to(high.expr.span);
                self.node(
                    ExprKind::Between {
                        value: Box::new(value.expr),
                        low: Box::new(low.expr),
                        high: Box::new(high.expr),
                    },
                    span,
                    depth,
                )
            }
            _ => {
                let negated = tail.into_inner().any(|p| p.as_rule() == Rule::kw_not);
                let span = value.expr.span.to(tail_span);
                self.node(
                    ExprKind::IsNull {
                        value: Box::new(value.expr),
                        negated,
                    },
                    span,
                    value.depth,
                )
            }
        }
    }

    /// Prefix `-`: the innermost minus directly before a number is folded into
    /// the literal, so `-7` is the literal -7 and `-9223372036854775808` fits.
    fn unary(&mut self, pair: Pair<'t, Rule>) -> Option<Node> {
        let mut negs = Vec::new();
        let mut operand = None;
        for part in pair.into_inner() {
            match part.as_rule() {
                Rule::op_neg => negs.push(self.span(&part)),
                _ => operand = Some(part),
            }
        }
        let operand = operand?;
        let operand = match operand.as_rule() {
            Rule::primary => operand.into_inner().next()?,
            _ => operand,
        };
        let mut acc = match operand.as_rule() {
            Rule::numeric
                if !negs.is_empty()
                    && !matches!(
                        numeric_kind(operand.as_str()),
                        Numeric::Date | Numeric::DateTime
                    ) =>
            {
                let minus = negs.pop()?;
                let span = minus.to(self.span(&operand));
                let value = self.number(&operand, Some(minus))?;
                self.node(ExprKind::Literal { value }, span, 0)?
            }
            _ => self.expr(operand)?,
        };
        for neg_span in negs.into_iter().rev() {
            let span = neg_span.to(acc.expr.span);
            acc = self.node(
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

    fn primary(&mut self, pair: Pair<'t, Rule>) -> Option<Node> {
        let span = self.span(&pair);
        match pair.as_rule() {
            Rule::paren => {
                let inner = pair.into_inner().find(|p| p.as_rule() == Rule::expr)?;
                let mut node = self.expr(inner)?;
                node.expr.span = span;
                Some(node)
            }
            Rule::list => {
                let (items, depth) = self.expr_list(pair)?;
                self.node(ExprKind::List { items }, span, depth)
            }
            Rule::quantifier => self.quantifier(pair),
            Rule::object => self.object(pair),
            Rule::path | Rule::field_ref => {
                let explicit = pair.as_rule() == Rule::field_ref;
                let mut inner = pair.into_inner();
                let head = self.ident(&inner.next()?);
                let mut rest = Vec::new();
                // the path so far once a computed index came (`rest` then follows it)
                let mut indexed: Option<Node> = None;
                let mut end = head.span.end;
                for segment in inner {
                    let seg_rule = segment.as_rule();
                    if seg_rule == Rule::call {
                        let (args, depth) = self.expr_list(segment)?;
                        return self.node(ExprKind::Call { name: head, args }, span, depth);
                    }
                    let seg_span = self.span(&segment);
                    let before = Span {
                        start: span.start,
                        end,
                    };
                    end = seg_span.end;
                    if seg_rule == Rule::expr_segment {
                        let index = segment.into_inner().find(|p| p.as_rule() == Rule::expr)?;
                        let index = self.expr(index)?;
                        if let Some(step) = PathSegment::from_literal(&index.expr, seg_span) {
                            rest.push(step);
                            continue;
                        }
                        let steps = std::mem::take(&mut rest);
                        let base = match indexed.take() {
                            Some(node) => with_rest(node, steps, before),
                            None => {
                                let kind = ExprKind::path(explicit, head.clone(), steps);
                                self.node(kind, before, 0)?
                            }
                        };
                        let depth = base.depth.max(index.depth);
                        let kind = ExprKind::Index {
                            base: Box::new(base.expr),
                            index: Box::new(index.expr),
                            rest: Vec::new(),
                        };
                        let at = Span {
                            start: span.start,
                            end,
                        };
                        indexed = Some(self.node(kind, at, depth)?);
                        continue;
                    }
                    let step = segment.into_inner().next()?;
                    match seg_rule {
                        Rule::dot_segment => rest.push(PathSegment::Field(self.ident(&step))),
                        Rule::key_segment => {
                            let Some(Literal::String(name)) = self.literal(step) else {
                                return None;
                            };
                            rest.push(PathSegment::Field(Ident {
                                name,
                                span: seg_span,
                            }));
                        }
                        _ => match step.as_str().parse::<u32>() {
                            Ok(index) => rest.push(PathSegment::Index(index)),
                            Err(_) => {
                                self.error(
                                    "E002",
                                    seg_span,
                                    format!("index `{}` is out of range", shorten(step.as_str())),
                                );
                                return None;
                            }
                        },
                    }
                }
                match indexed {
                    Some(node) => Some(with_rest(node, rest, span)),
                    None => self.node(ExprKind::path(explicit, head, rest), span, 0),
                }
            }
            _ => {
                let value = self.literal(pair)?;
                self.node(ExprKind::Literal { value }, span, 0)
            }
        }
    }

    /// The `expr` children of a list or call, all built so every error is reported.
    fn expr_list(&mut self, pair: Pair<'t, Rule>) -> Option<(Vec<Expr>, usize)> {
        let mut items = Vec::new();
        let mut depth = 0;
        let mut ok = true;
        for part in pair.into_inner().filter(|p| p.as_rule() == Rule::expr) {
            match self.expr(part) {
                Some(node) => {
                    depth = depth.max(node.depth);
                    items.push(node.expr);
                }
                None => ok = false,
            }
        }
        ok.then_some((items, depth))
    }

    /// `{key: value, ...}`, every entry built so every error is reported.
    fn object(&mut self, pair: Pair<'t, Rule>) -> Option<Node> {
        let span = self.span(&pair);
        let mut entries = Vec::new();
        let mut depth = 0;
        let mut ok = true;
        for entry in pair.into_inner().filter(|p| p.as_rule() == Rule::entry) {
            let mut parts = entry.into_inner();
            let key_pair = parts.next()?;
            let key_span = self.span(&key_pair);
            let name = match key_pair.as_rule() {
                Rule::key => Some(key_pair.as_str().to_string()),
                _ => match self.literal(key_pair) {
                    Some(Literal::String(s)) => Some(s),
                    _ => None,
                },
            };
            let value = parts
                .find(|p| p.as_rule() == Rule::expr)
                .and_then(|p| self.expr(p));
            match (name, value) {
                (Some(name), Some(value)) => {
                    depth = depth.max(value.depth);
                    entries.push(Entry {
                        key: Ident {
                            name,
                            span: key_span,
                        },
                        value: value.expr,
                    });
                }
                _ => ok = false,
            }
        }
        if !ok {
            return None;
        }
        self.node(ExprKind::Object { entries }, span, depth)
    }

    fn quantifier(&mut self, pair: Pair<'t, Rule>) -> Option<Node> {
        let span = self.span(&pair);
        let mut quantifier = Quantifier::Any;
        let mut var = None;
        let mut exprs = Vec::new();
        for part in pair.into_inner() {
            match part.as_rule() {
                Rule::kw_all => quantifier = Quantifier::All,
                Rule::comprehension_name => {
                    quantifier = Quantifier::comprehension(part.as_str())?;
                }
                Rule::ident => var = Some(self.ident(&part)),
                Rule::expr => exprs.push(part),
                _ => {}
            }
        }
        let mut exprs = exprs.into_iter();
        let list = self.expr(exprs.next()?);
        let predicate = self.expr(exprs.next()?);
        let (list, predicate) = (list?, predicate?);
        let depth = list.depth.max(predicate.depth);
        self.node(
            ExprKind::Quantifier {
                quantifier,
                var: var?,
                list: Box::new(list.expr),
                predicate: Box::new(predicate.expr),
            },
            span,
            depth,
        )
    }

    fn ident(&self, pair: &Pair<'_, Rule>) -> Ident {
        Ident {
            name: pair.as_str().to_string(),
            span: self.span(pair),
        }
    }

    // ----- literals ------------------------------------------------------

    fn literal(&mut self, pair: Pair<'t, Rule>) -> Option<Literal> {
        let span = self.span(&pair);
        let text = pair.as_str();
        match pair.as_rule() {
            Rule::kw_true => Some(Literal::Bool(true)),
            Rule::kw_false => Some(Literal::Bool(false)),
            Rule::kw_null => Some(Literal::Null),
            Rule::numeric => match numeric_kind(text) {
                Numeric::Date => self.date(text, span),
                Numeric::DateTime => self.datetime(text, span),
                _ => self.number(&pair, None),
            },
            Rule::string => {
                let raw = pair.into_inner().next()?;
                let start = self.base + raw.as_span().start();
                self.string(raw.as_str(), start).map(Literal::String)
            }
            Rule::raw_string => {
                let raw = pair.into_inner().next()?;
                Some(Literal::String(raw.as_str().to_string()))
            }
            _ => None,
        }
    }

    fn date(&mut self, text: &str, span: Span) -> Option<Literal> {
        match lexical::date(text) {
            Some(date) => Some(Literal::Date(date)),
            None => {
                self.error("E005", span, format!("invalid date `{text}`"));
                None
            }
        }
    }

    fn datetime(&mut self, text: &str, span: Span) -> Option<Literal> {
        match lexical::datetime(text) {
            Some(datetime) => Some(Literal::DateTime(datetime)),
            None => {
                self.diags.push(
                    Diagnostic::error(
                        "E005",
                        span,
                        format!("invalid datetime `{}`", shorten(text)),
                    )
                    .with_help("write an RFC 3339 datetime such as `2024-01-31T12:00:00Z`"),
                );
                None
            }
        }
    }

    /// An int, float or duration literal, negated when a `minus` comes before it.
    fn number(&mut self, pair: &Pair<'t, Rule>, minus: Option<Span>) -> Option<Literal> {
        let span = minus.map_or_else(|| self.span(pair), |m| m.to(self.span(pair)));
        let text = pair.as_str();
        let sign = if minus.is_some() { "-" } else { "" };
        match lexical::number(text, minus.is_some()) {
            Ok(value) => Some(value),
            Err(OutOfRange::Int) => {
                self.diags.push(
                    Diagnostic::error(
                        "E002",
                        span,
                        format!("integer `{sign}{}` is out of range", shorten(text)),
                    )
                    .with_help(
                        "integers are 64-bit: from -9223372036854775808 to 9223372036854775807",
                    ),
                );
                None
            }
            Err(OutOfRange::Float) => {
                self.error(
                    "E003",
                    span,
                    format!("float `{sign}{}` is out of range", shorten(text)),
                );
                None
            }
            Err(OutOfRange::Duration) => {
                self.error(
                    "E006",
                    span,
                    format!("duration `{sign}{}` is out of range", shorten(text)),
                );
                None
            }
        }
    }

    /// Decode the escapes of a string body starting at byte `start` of the text.
    fn string(&mut self, raw: &str, start: usize) -> Option<String> {
        match lexical::unescape(raw) {
            Ok(s) => Some(s),
            Err(bad) => {
                for b in bad {
                    let span = Span::new(start + b.start, start + b.end);
                    let shown = raw.get(b.start..b.end).unwrap_or("\\");
                    let diag = if b.unicode {
                        Diagnostic::error(
                            "E004",
                            span,
                            format!("invalid unicode escape `{}`", shorten(shown)),
                        )
                        .with_help("write a unicode escape as `\\u{1F600}`")
                    } else if b.end == b.start + 1 {
                        Diagnostic::error("E004", span, "invalid escape `\\`")
                    } else {
                        Diagnostic::error("E004", span, format!("invalid escape `{shown}`"))
                            .with_help(
                                "the escapes are `\\\"` `\\'` `\\\\` `\\n` `\\t` `\\r` `\\u{...}`; in a raw string `r\"...\"` a backslash is just a backslash",
                            )
                    };
                    self.diags.push(diag);
                }
                None
            }
        }
    }
}

/// A computed index with the static steps after it, spanning `span`.
fn with_rest(mut node: Node, steps: Vec<PathSegment>, span: Span) -> Node {
    node.expr.end_index(steps, span);
    node
}

/// End of the last token of `pair` (pest spans of rules ending in a
/// repetition include the whitespace after them).
fn last_token_end(pair: &Pair<'_, Rule>) -> usize {
    pair.clone()
        .into_inner()
        .flatten()
        .filter(|p| p.clone().into_inner().next().is_none())
        .map(|p| p.as_span().end())
        .max()
        .unwrap_or_else(|| pair.as_span().end())
}

/// The first pair of `pairs` if it is `rule`.
fn first_inner<'t>(pairs: &mut Pairs<'t, Rule>, rule: Rule) -> Option<Pair<'t, Rule>> {
    pairs.next().filter(|p| p.as_rule() == rule)
}

/// Whether `op` is the tighter of the two levels of its chain (`and`, `* / %`).
fn binds_tight(op: BinaryOp) -> bool {
    matches!(
        op,
        BinaryOp::And | BinaryOp::Mul | BinaryOp::Div | BinaryOp::Rem
    )
}

/// The binary operator a pest rule stands for.
fn binary_op(rule: Rule) -> Option<BinaryOp> {
    Some(match rule {
        Rule::kw_or => BinaryOp::Or,
        Rule::kw_and => BinaryOp::And,
        Rule::op_eq => BinaryOp::Eq,
        Rule::op_ne => BinaryOp::Ne,
        Rule::op_lt => BinaryOp::Lt,
        Rule::op_le => BinaryOp::Le,
        Rule::op_gt => BinaryOp::Gt,
        Rule::op_ge => BinaryOp::Ge,
        Rule::kw_in => BinaryOp::In,
        Rule::op_not_in => BinaryOp::NotIn,
        Rule::kw_contains => BinaryOp::Contains,
        Rule::kw_starts_with => BinaryOp::StartsWith,
        Rule::kw_ends_with => BinaryOp::EndsWith,
        Rule::kw_matches => BinaryOp::Matches,
        Rule::op_add => BinaryOp::Add,
        Rule::op_sub => BinaryOp::Sub,
        Rule::op_mul => BinaryOp::Mul,
        Rule::op_div => BinaryOp::Div,
        Rule::op_rem => BinaryOp::Rem,
        Rule::op_coalesce => BinaryOp::Coalesce,
        _ => return None,
    })
}

/// How a rule is named in "expected ..." messages; `None` for operators,
/// which only show up after a complete operand (reported as "unexpected").
fn describe(rule: Rule) -> Option<&'static str> {
    Some(match rule {
        Rule::expr
        | Rule::negation
        | Rule::comparison
        | Rule::coalesce
        | Rule::if_expr
        | Rule::kw_if
        | Rule::sum
        | Rule::unary
        | Rule::paren
        | Rule::list
        | Rule::object
        | Rule::quantifier
        | Rule::call
        | Rule::field_ref
        | Rule::path
        | Rule::numeric
        | Rule::string
        | Rule::kw_true
        | Rule::kw_false
        | Rule::primary
        | Rule::expr_input
        | Rule::op_neg
        | Rule::kw_any
        | Rule::kw_all
        | Rule::comprehension_name => "an expression",
        Rule::raw_string => "an expression",
        Rule::ident
        | Rule::key
        | Rule::param
        | Rule::field_decl
        | Rule::field_list
        | Rule::entry => "a name",
        Rule::type_expr | Rule::list_type | Rule::object_type | Rule::named_or_enum_type => {
            "a type"
        }
        Rule::index => "an index",
        Rule::rule_decl | Rule::kw_rule => "`rule`",
        Rule::schema | Rule::kw_schema => "`schema`",
        Rule::params | Rule::lparen => "`(`",
        Rule::rparen => "`)`",
        Rule::lbracket => "`[`",
        Rule::rbracket => "`]`",
        Rule::lbrace => "`{`",
        Rule::rbrace => "`}`",
        Rule::langle => "`<`",
        Rule::rangle => "`>`",
        Rule::comma => "`,`",
        Rule::colon => "`:`",
        Rule::assign => "`=`",
        Rule::kw_in => "`in`",
        Rule::kw_not => "`not`",
        Rule::kw_then => "`then`",
        Rule::kw_else => "`else`",
        Rule::between_and => "`and`",
        Rule::prelude_input => "`schema` or `rule`",
        Rule::rule_input => "`rule`",
        Rule::kw_null => "`null`",
        _ => return None,
    })
}

/// Help for the spellings of other languages: `&&`, `||`, `=`, `!`, `AND`.
/// `found` is the token at the error; a keyword in capitals may also be the
/// word just before it (`NOT a` reads `NOT` as a field, then stops at `a`).
fn suggestion(text: &str, pos: usize, found: Option<&str>) -> Option<String> {
    let keyword_help = |word: &str| {
        let lower = word.to_ascii_lowercase();
        (lower != word && super::lexical::is_keyword(&lower))
            .then(|| format!("keywords are lowercase: write `{lower}`"))
    };
    match found {
        Some("&&" | "&") => return Some("write `and` to require both".to_string()),
        Some("||" | "|") => return Some("write `or` for either".to_string()),
        Some("=") => return Some("write `==` to compare".to_string()),
        Some("!") => return Some("write `not` to negate, or `!=` to compare".to_string()),
        Some("?") => {
            return Some(
                "write `if c then a else b` to choose, or `a ?? b` for a default".to_string(),
            );
        }
        Some(word) => {
            if let Some(help) = keyword_help(word) {
                return Some(help);
            }
        }
        None => {}
    }
    let before = text.get(..pos)?.trim_end();
    let start = before
        .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .map_or(0, |i| i + 1);
    keyword_help(before.get(start..)?)
}

/// `a`, `a or b`, `a, b or c`.
fn join_or(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_string(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// The token starting at `pos`: a word, a quoted string, or an operator.
fn token_at(text: &str, pos: usize, end: usize) -> &str {
    let rest = text.get(pos..end).unwrap_or("");
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let len = match rest.chars().next() {
        None => 0,
        Some(c) if is_word(c) => rest.find(|c: char| !is_word(c)).unwrap_or(rest.len()),
        Some(q @ ('"' | '\'')) => rest
            .get(1..)
            .and_then(|r| r.find([q, '\n']))
            .map_or(rest.len(), |i| i + 2)
            .min(rest.find('\n').unwrap_or(rest.len())),
        Some(c) => {
            let two = rest.get(..2).unwrap_or("");
            if ["==", "!=", "<=", ">=", "&&", "||", "??"].contains(&two) {
                2
            } else {
                c.len_utf8()
            }
        }
    };
    rest.get(..len).unwrap_or("")
}

/// User text shortened for a message.
fn shorten(text: &str) -> String {
    const MAX: usize = 40;
    if text.chars().count() <= MAX {
        text.to_string()
    } else {
        let mut short: String = text.chars().take(MAX).collect();
        short.push('…');
        short
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn rule_lines_are_found() {
        let text = "schema { a: int }\n## doc\nrule a = 1\n  rule b = 2\nrules = 3\n# rule c\n";
        let starts = rule_starts(text);
        assert_eq!(starts.len(), 2);
        assert_eq!(doc_comment(text, starts[0]), vec!["doc".to_string()]);
        assert!(doc_comment(text, starts[1]).is_empty());
    }

    #[test]
    fn tokens_for_messages() {
        assert_eq!(token_at("a == b", 2, 6), "==");
        assert_eq!(token_at("foo bar", 0, 7), "foo");
        assert_eq!(token_at("'abc' x", 0, 7), "'abc'");
        assert_eq!(join_or(&["a", "b", "c"]), "a, b or c");
    }

    #[test]
    fn nesting_scan_ignores_strings_and_comments() {
        let deep = "(".repeat(100);
        let text = format!("\"{deep}\" # {deep}\n");
        assert!(scan_nesting(&text, 0, text.len(), ScanMode::Expr).is_ok());
        assert!(scan_nesting(&deep, 0, deep.len(), ScanMode::Expr).is_err());
    }
}
