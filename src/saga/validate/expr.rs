//! Validating expressions and values: parse, then compile through the rules checker
//! against the schema of what the position may read (`reads.rs`); the checker's reports
//! become saga diagnostics that point into the YAML (`offsets.rs`).

use std::sync::Arc;

use serde_saphyr::{Location, Spanned};

use super::offsets::Offsets;
use super::reads::{Read, Scope, entity_fields, read_at, reads};
use super::{MAX_EXPR_BYTES, Validator, list_names, quoted};
use crate::diag::{Diagnostic, Severity, Source, did_you_mean};
use crate::rules::ast::{self, ExprKind, Literal};
use crate::rules::{Program, parse_expr};
use crate::saga::file::Template;
use crate::saga::model::{Compiled, Expr, Path, PathSegment, ValueExpr};

/// An expression that parsed.
struct Parsed {
    source: Arc<Source>,
    tree: ast::Expr,
}

impl Validator<'_> {
    /// Parse one expression; an empty one and syntax errors are reported.
    fn parse(&mut self, text: &str, loc: &Location, path: &str) -> Option<Parsed> {
        if text.trim().is_empty() {
            self.error("S013", loc, path, "empty expression".into());
            return None;
        }
        let (line, col) = self.source.line_col(self.span(loc).start);
        let name = format!("{}:{line}:{col} ({path})", self.source.name);
        let source = Source::new(name, text);
        match parse_expr(&source) {
            Ok(tree) => Some(Parsed { source, tree }),
            Err(diags) => {
                let items = (diags.items.iter())
                    .filter(|d| d.severity == Severity::Error)
                    .map(invalid)
                    .collect();
                self.report(items, loc, path, text);
                None
            }
        }
    }

    /// Compile a parsed expression against the schema of what `scope` may read: a plain
    /// path from a root runs as a path, anything else as a program. A `condition` must
    /// be true or false (E106, said as S013), a value may be anything.
    fn compile(
        &mut self,
        parsed: Parsed,
        loc: &Location,
        path: &str,
        scope: Scope,
        condition: bool,
    ) -> Option<Compiled> {
        let text = parsed.source.text.as_str();
        if text.len() > MAX_EXPR_BYTES {
            let msg = format!("expression is longer than {MAX_EXPR_BYTES} bytes");
            self.error("S017", loc, path, msg);
            return None;
        }
        let found = reads(&parsed.tree);
        if scope.env && !self.env_reads_of(&found, loc, path) {
            return None;
        }
        let extra = if scope.entity_fields {
            entity_fields(&parsed.tree)
        } else {
            Vec::new()
        };
        let env = self
            .catalog
            .env
            .clone()
            .with_schema(self.schema(scope, extra));
        let compiled = if condition {
            Program::compile(parsed.source.clone(), &env)
        } else {
            Program::compile_value(parsed.source.clone(), &env)
        };
        match compiled {
            // A plain path is read directly as a value; a condition always runs the
            // program, which refuses a value that is not true or false.
            Ok(program) => Some(match plain_path(&parsed.tree, text, scope) {
                Some(p) if !condition => Compiled::Path(p),
                _ => Compiled::Program(program),
            }),
            Err(diags) => {
                let items = diags
                    .items
                    .iter()
                    .filter(|d| d.severity == Severity::Error)
                    .map(|d| self.in_saga_terms(d, &found, &parsed.tree, scope))
                    .collect();
                self.report(items, loc, path, text);
                None
            }
        }
    }

    /// Record diagnostics whose spans are in the expression: point them into the file
    /// when the expression's bytes can be found there, else at the whole value.
    fn report(&mut self, items: Vec<Diagnostic>, loc: &Location, path: &str, text: &str) {
        let base = self.span(loc);
        let offsets = Offsets::new(&self.source.text, base.start as usize, text);
        for d in items {
            let span = offsets.as_ref().map_or(base, |o| o.span(d.span));
            self.diags.push(Diagnostic {
                span,
                label: Some(path.to_string()),
                ..d
            });
        }
    }

    /// A rules diagnostic as the saga author should read it: an unknown name (E101) at
    /// a path the expression reads is said in terms of inputs, steps and outputs.
    fn in_saga_terms(
        &self,
        d: &Diagnostic,
        found: &[Read<'_>],
        tree: &ast::Expr,
        scope: Scope,
    ) -> Diagnostic {
        let said = match read_at(found, d.span) {
            Some((read, None)) if d.code == "E101" => {
                Some(("S013", unknown_root(read, tree, scope)))
            }
            Some((read, Some(i))) if d.code == "E101" => self
                .unknown_below(read, i, scope)
                .map(|said| ("S014", said)),
            _ => None,
        };
        match said {
            Some((code, (message, help))) => {
                Diagnostic::error(code, d.span, message).with_help_opt(help)
            }
            None => invalid(d),
        }
    }

    /// `rest[i]` of a read is not there: an input field, a step, or a step's output.
    fn unknown_below(
        &self,
        read: &Read<'_>,
        i: usize,
        scope: Scope,
    ) -> Option<(String, Option<String>)> {
        let field = |k: usize| match read.rest.get(k) {
            Some(ast::PathSegment::Field(id)) => Some(id.name.as_str()),
            _ => None,
        };
        match (read.head.name.as_str(), i) {
            ("input", 0) => {
                let name = field(0)?;
                let declared: Vec<String> = (self.input.as_ref()?.fields.iter())
                    .map(|f| f.name.clone())
                    .collect();
                let help = did_you_mean(name, declared.iter().map(String::as_str))
                    .or_else(|| Some(format!("the input declares {}", list_names(&declared))));
                Some((format!("the input has no field `{name}`"), help))
            }
            ("steps", 0) => {
                let name = field(0)?;
                Some(match self.step_names.get(name).copied() {
                    None => {
                        let help = did_you_mean(name, self.step_names.keys().map(String::as_str));
                        (format!("unknown step `{name}`"), help)
                    }
                    Some(j) if j == scope.step_idx => {
                        let help = scope
                            .result
                            .then(|| "in `outputs`, the action's result is `result`".to_string());
                        (
                            format!("step `{name}` cannot read its own output here"),
                            help,
                        )
                    }
                    Some(j) if j > scope.step_idx => {
                        let msg = format!(
                            "step `{name}` runs later, so its output is not available here"
                        );
                        (msg, None)
                    }
                    Some(_) => return None,
                })
            }
            ("steps", 1) => {
                let (step, out) = (field(0)?, field(1)?);
                let j = *self.step_names.get(step)?;
                let declared = self.step_outputs.get(j)?.as_ref()?;
                let help = did_you_mean(out, declared.iter().map(String::as_str))
                    .or_else(|| Some(format!("its outputs are {}", list_names(declared))));
                Some((format!("step `{step}` has no output `{out}`"), help))
            }
            _ => None,
        }
    }

    /// Record the variables a service's configuration reads (`env.NAME`); a read of
    /// `env` as a whole, or by index, is an error (the variables must be known by name
    /// before a run starts).
    fn env_reads_of(&mut self, found: &[Read<'_>], loc: &Location, path: &str) -> bool {
        let mut ok = true;
        for r in found {
            if r.head.name != "env" {
                continue;
            }
            match r.rest.first() {
                Some(ast::PathSegment::Field(id)) => {
                    if !self.env_reads.contains(&id.name) {
                        self.env_reads.push(id.name.clone());
                    }
                }
                _ => {
                    self.error_help(
                        "S024",
                        loc,
                        path,
                        "`env` is read one variable at a time".into(),
                        Some("write `env.NAME`".into()),
                    );
                    ok = false;
                }
            }
        }
        ok
    }

    /// Compile a condition (`when`, `expect`, `where`).
    pub(super) fn expr(&mut self, s: &Spanned<String>, path: &str, scope: Scope) -> Option<Expr> {
        let parsed = self.parse(&s.value, &s.referenced, path)?;
        Some(Expr {
            text: s.value.clone(),
            compiled: self.compile(parsed, &s.referenced, path, scope, true)?,
        })
    }

    /// Compile a value: a literal, a literal string (`'"pending"'`), a path, an expression,
    /// or a list or map of them.
    pub(super) fn template(
        &mut self,
        t: &Spanned<Template>,
        path: &str,
        scope: Scope,
    ) -> Option<ValueExpr> {
        use serde_json::Value as Json;
        match &t.value {
            Template::Null => Some(ValueExpr::Const(Json::Null)),
            Template::Bool(b) => Some(ValueExpr::Const(Json::Bool(*b))),
            Template::Int(i) => Some(ValueExpr::Const(Json::from(*i))),
            Template::Float(f) => Some(ValueExpr::Const(
                serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
            )),
            Template::Expr(text) => {
                let parsed = self.parse(text, &t.referenced, path)?;
                if let ExprKind::Literal {
                    value: Literal::String(s),
                } = &parsed.tree.kind
                {
                    return Some(ValueExpr::Const(Json::String(s.clone())));
                }
                Some(
                    match self.compile(parsed, &t.referenced, path, scope, false)? {
                        Compiled::Path(p) => ValueExpr::Path(p),
                        program => ValueExpr::Expr(Expr {
                            text: text.clone(),
                            compiled: program,
                        }),
                    },
                )
            }
            Template::List(items) => {
                let mut out = Vec::new();
                let mut ok = true;
                for (i, item) in items.iter().enumerate() {
                    match self.template(item, &format!("{path}[{i}]"), scope) {
                        Some(v) => out.push(v),
                        None => ok = false,
                    }
                }
                ok.then_some(ValueExpr::List(out))
            }
            Template::Map(items) => {
                let mut out = Vec::new();
                let mut ok = true;
                for (k, item) in items {
                    match self.template(item, &format!("{path}.{k}"), scope) {
                        Some(v) => out.push((k.clone(), v)),
                        None => ok = false,
                    }
                }
                ok.then_some(ValueExpr::Map(out))
            }
        }
    }
}

/// A syntax or type error of the rules language, as a saga diagnostic.
fn invalid(d: &Diagnostic) -> Diagnostic {
    Diagnostic::error("S013", d.span, format!("invalid expression: {}", d.message))
        .with_help_opt(d.help.clone())
}

/// The first name of a read is none of the roots this position may read.
fn unknown_root(read: &Read<'_>, tree: &ast::Expr, scope: Scope) -> (String, Option<String>) {
    let name = read.head.name.as_str();
    let next = match read.rest.first() {
        Some(ast::PathSegment::Field(id)) => Some(id.name.as_str()),
        _ => None,
    };
    let help = match (name, next) {
        ("entity", Some(field)) if scope.entity_fields => {
            format!("`where` reads the entity's fields by name: write `{field}`")
        }
        ("entity", None) if scope.entity_fields => {
            "`where` reads the entity's fields by name".to_string()
        }
        ("entity", _) => {
            "only an `update`'s `values` and the `expect` of `update` and `delete` read the current `entity`".to_string()
        }
        ("result", _) => "only `outputs` read the action's `result`".to_string(),
        ("env", _) => "only the `services:` section reads `env`: steps call a service by name and never see the environment".to_string(),
        _ => {
            let roots = scope.roots();
            // A bare word as the whole value is almost always a literal string by mistake.
            let bare = read.rest.is_empty() && read.head.span == tree.span;
            let help = did_you_mean(name, roots.iter().copied()).unwrap_or_else(|| {
                if bare {
                    format!("for the literal string, write '\"{name}\"'")
                } else {
                    format!("expressions here read {}", quoted(&roots))
                }
            });
            return (format!("unknown name `{name}`"), Some(help));
        }
    };
    (format!("`{name}` is not available here"), Some(help))
}

/// The expression as a plain path from a root (`input.order_id`,
/// `steps.reserve.items[0]`), read directly at run time, when it is one. With a step
/// after its first name, a name is always a field, never a symbol or a rule.
fn plain_path(tree: &ast::Expr, text: &str, scope: Scope) -> Option<Path> {
    let (ExprKind::Name { head, rest } | ExprKind::Field { head, rest }) = &tree.kind else {
        return None;
    };
    if rest.is_empty() || !scope.roots().contains(&head.name.as_str()) {
        return None;
    }
    let mut segments = vec![PathSegment::Field(head.name.clone())];
    segments.extend(rest.iter().map(|seg| match seg {
        ast::PathSegment::Field(id) => PathSegment::Field(id.name.clone()),
        ast::PathSegment::Index(i) => PathSegment::Index(*i as usize),
    }));
    Some(Path {
        text: text.get(tree.span.range())?.to_string(),
        segments,
    })
}
