//! Validating expressions and values: names, step references, literals, compilation.

use serde_saphyr::{Location, Spanned};

use super::{
    INPUT_REF, KEYWORDS, MAX_EXPR_BYTES, STEP_REF, Scope, Validator, is_path, list_names,
    parse_path, quoted, string_literal,
};
use crate::diag::{Source, Span, did_you_mean};
use crate::rules::Program;
use crate::saga::file::Template;
use crate::saga::model::{Compiled, Expr, ValueExpr};

impl Validator<'_> {
    /// Check `steps.NAME[.OUTPUT]` references in an expression text.
    pub(super) fn step_refs(
        &mut self,
        text: &str,
        loc: &Location,
        path: &str,
        scope: Scope<'_>,
    ) -> bool {
        let mut ok = true;
        if let (Some(fields), Some(re)) = (self.input_fields.clone(), INPUT_REF.as_ref()) {
            let unknown: Vec<String> = re
                .captures_iter(text)
                .filter_map(|c| c.get(1).map(|m| m.as_str().to_string()))
                .filter(|f| !fields.contains(f))
                .collect();
            for field in unknown {
                let help = did_you_mean(&field, fields.iter().map(String::as_str))
                    .or_else(|| Some(format!("the input declares {}", list_names(&fields))));
                self.error_help(
                    "S014",
                    loc,
                    path,
                    format!("the input has no field `{field}`"),
                    help,
                );
                ok = false;
            }
        }
        let Some(re) = STEP_REF.as_ref() else {
            return ok;
        };
        let refs: Vec<(String, Option<String>)> = re
            .captures_iter(text)
            .filter_map(|c| {
                Some((
                    c.get(1)?.as_str().to_string(),
                    c.get(2).map(|m| m.as_str().to_string()),
                ))
            })
            .collect();
        for (name, output) in refs {
            match self.step_names.get(&name).copied() {
                None => {
                    let help = did_you_mean(&name, self.step_names.keys().map(String::as_str));
                    self.error_help("S014", loc, path, format!("unknown step `{name}`"), help);
                    ok = false;
                }
                Some(j) if j > scope.step_idx || (j == scope.step_idx && !scope.own_output) => {
                    let msg = if j == scope.step_idx {
                        format!("step `{name}` cannot read its own output here")
                    } else {
                        format!("step `{name}` runs later, so its output is not available here")
                    };
                    let help = (j == scope.step_idx && scope.roots.contains(&"result"))
                        .then(|| "in `outputs`, the action's result is `result`".to_string());
                    self.error_help("S014", loc, path, msg, help);
                    ok = false;
                }
                Some(j) => {
                    if let (Some(out), Some(Some(declared))) = (&output, self.step_outputs.get(j))
                        && !declared.iter().any(|d| d == out)
                    {
                        let help = did_you_mean(out, declared.iter().map(String::as_str))
                            .or_else(|| Some(format!("its outputs are {}", list_names(declared))));
                        let declared_msg = format!("step `{name}` has no output `{out}`");
                        self.error_help("S014", loc, path, declared_msg, help);
                        ok = false;
                    }
                }
            }
        }
        ok
    }

    /// Compile a condition or value expression.
    pub(super) fn expr(
        &mut self,
        s: &Spanned<String>,
        path: &str,
        scope: Scope<'_>,
    ) -> Option<Expr> {
        let text = s.value.as_str();
        if text.len() > MAX_EXPR_BYTES {
            self.error(
                "S017",
                &s.referenced,
                path,
                format!("expression is longer than {MAX_EXPR_BYTES} bytes"),
            );
            return None;
        }
        if text.trim().is_empty() {
            self.error("S013", &s.referenced, path, "empty expression".into());
            return None;
        }
        // A bare name that is not a root is almost always a literal string by mistake.
        if !scope.roots.is_empty()
            && is_path(text)
            && !self.path_root_ok(text, &s.referenced, path, scope)
        {
            return None;
        }
        // keep going after a bad reference, so a syntax error is reported too
        let refs_ok = self.step_refs(text, &s.referenced, path, scope);
        if is_path(text) && !KEYWORDS.contains(&text) {
            if !refs_ok {
                return None;
            }
            return Some(Expr {
                text: text.to_string(),
                compiled: Compiled::Path(parse_path(text)),
            });
        }
        let (line, col) = self.source.line_col(self.span(&s.referenced).start);
        let name = format!("{}:{line}:{col} ({path})", self.source.name);
        // conditions and values alike; `Program::compile` checks a condition is one (E106)
        match Program::compile_value(Source::new(name, text), &self.catalog.env) {
            Ok(program) if refs_ok => Some(Expr {
                text: text.to_string(),
                compiled: Compiled::Program(program),
            }),
            Ok(_) => None,
            Err(diags) => {
                // point into the expression when the YAML scalar holds it verbatim
                let base = self.span(&s.referenced);
                let yaml = self.source.text.get(base.start as usize..).unwrap_or("");
                let offset = if yaml.starts_with(text) {
                    Some(base.start)
                } else if (yaml.starts_with('\'') || yaml.starts_with('"'))
                    && yaml.get(1..).is_some_and(|rest| rest.starts_with(text))
                {
                    Some(base.start + 1)
                } else {
                    None
                };
                for d in diags
                    .items
                    .iter()
                    .filter(|d| d.severity == crate::diag::Severity::Error)
                {
                    let help = d.help.clone();
                    let diag = self.error(
                        "S013",
                        &s.referenced,
                        path,
                        format!("invalid expression: {}", d.message),
                    );
                    diag.help = help;
                    if let Some(at) = offset {
                        diag.span = Span {
                            start: at + d.span.start,
                            end: at + d.span.end,
                        };
                    }
                }
                None
            }
        }
    }

    pub(super) fn path_root_ok(
        &mut self,
        text: &str,
        loc: &Location,
        path: &str,
        scope: Scope<'_>,
    ) -> bool {
        let root = text.split(['.', '[']).next().unwrap_or("");
        if KEYWORDS.contains(&root) && !text.contains(['.', '[']) || scope.roots.contains(&root) {
            return true;
        }
        let help = did_you_mean(root, scope.roots.iter().copied()).or_else(|| {
            if text.contains(['.', '[']) {
                Some(format!("expressions here read {}", quoted(scope.roots)))
            } else {
                Some(format!("for the literal string, write '\"{text}\"'"))
            }
        });
        self.error_help("S013", loc, path, format!("unknown name `{root}`"), help);
        false
    }

    pub(super) fn template(
        &mut self,
        t: &Spanned<Template>,
        path: &str,
        scope: Scope<'_>,
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
                if let Some(lit) = string_literal(text) {
                    return Some(ValueExpr::Const(Json::String(lit)));
                }
                if is_path(text) && !KEYWORDS.contains(&text.as_str()) {
                    if text.len() > MAX_EXPR_BYTES {
                        self.error(
                            "S017",
                            &t.referenced,
                            path,
                            format!("expression is longer than {MAX_EXPR_BYTES} bytes"),
                        );
                        return None;
                    }
                    let ok_root = self.path_root_ok(text, &t.referenced, path, scope);
                    let ok_refs = self.step_refs(text, &t.referenced, path, scope);
                    return (ok_root && ok_refs).then(|| ValueExpr::Path(parse_path(text)));
                }
                let spanned = Spanned::new(text.clone(), t.referenced, t.defined);
                self.expr(&spanned, path, scope).map(ValueExpr::Expr)
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
