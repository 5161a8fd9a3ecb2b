//! The public face of the rules engine: [`Env`] and [`Program`] here, [`RuleSet`]
//! in `ruleset.rs`, [`Context`] and [`EvalError`] in `context.rs`.

use std::sync::Arc;

use super::check::{CheckedRule, CheckedRules, Checker, Node, RuleScope, Scope};
use super::compile::{Compiler, Frame, PredFn, ValFn};
use super::explain::{Explainer, Explanation};
use super::flat::Flat;
use super::functions::Functions;
use super::parse_expr;
use super::schema::{Schema, Type};
use crate::diag::{Diagnostic, Diagnostics, Severity, Source};
use crate::value::{OwnedValue, Record};

pub use super::context::{Context, EvalError};
pub use super::ruleset::{RuleError, RuleErrors, RuleSet, read_text};

/// Names, schema, functions and rules an expression is compiled against.
#[derive(Clone)]
pub struct Env {
    schema: Option<Arc<Schema>>,
    functions: Arc<Functions>,
    rules: Option<RuleSet>,
}

impl Default for Env {
    fn default() -> Env {
        // the built-in table is built once and shared
        static BUILTINS: std::sync::OnceLock<Arc<Functions>> = std::sync::OnceLock::new();
        Env {
            schema: None,
            functions: BUILTINS.get_or_init(|| Arc::new(Functions::new())).clone(),
            rules: None,
        }
    }
}

impl Env {
    /// No schema, the built-in functions, no rules.
    pub fn new() -> Env {
        Env::default()
    }

    /// Check field names and types against a schema.
    pub fn with_schema(mut self, schema: Schema) -> Env {
        self.schema = Some(Arc::new(schema));
        self
    }

    /// Use these functions (built-ins plus your own).
    pub fn with_functions(mut self, functions: Functions) -> Env {
        self.functions = Arc::new(functions);
        self
    }

    /// Let expressions refer to the rules of a rule set, and use the functions
    /// it was compiled with and its schema (unless a schema was given).
    /// [`Env::with_functions`] afterwards replaces the functions.
    pub fn with_rules(mut self, rules: RuleSet) -> Env {
        if self.schema.is_none() {
            self.schema = rules.schema_arc();
        }
        self.functions = rules.functions();
        self.rules = Some(rules);
        self
    }

    pub(super) fn functions_arc(&self) -> &Arc<Functions> {
        &self.functions
    }

    /// The schema, if any.
    pub fn schema(&self) -> Option<&Schema> {
        self.schema.as_deref()
    }
}

struct ProgramInner {
    source: Arc<Source>,
    /// The flat form of the condition, when it has one (see `flat.rs`).
    flat: Option<Arc<Flat>>,
    root: Node,
    fields: Vec<String>,
    consts: Vec<OwnedValue>,
    pred: PredFn,
    value: ValFn,
    warnings: Vec<Diagnostic>,
}

/// A compiled expression or rule: `Send + Sync`, cheap to clone, evaluated many times.
///
/// ```
/// use rulesaga::{Context, Env, Program, Source};
/// let rule = Program::compile(
///     Source::new("<expr>", "tier == premium or (total >= 100 and days <= 30)"),
///     &Env::new(),
/// ).unwrap();
/// let bob = serde_json::json!({"tier": "regular", "total": 150, "days": 15});
/// assert!(rule.matches(&bob, &Context::system()).unwrap());
/// ```
#[derive(Clone)]
pub struct Program {
    inner: Arc<ProgramInner>,
}

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Program({:?})", self.inner.source.text)
    }
}

/// What a compiled expression is for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Want {
    /// A condition: its type must be `bool` (or unknown).
    Condition,
    /// A value of any type.
    Value,
}

impl Program {
    /// Parse, check and compile one condition: an expression whose type is
    /// `bool` (or not known before the data is read); anything else is E106.
    /// Warnings do not fail compilation; see [`Program::warnings`].
    pub fn compile(source: Arc<Source>, env: &Env) -> Result<Program, Diagnostics> {
        Program::compile_as(source, env, Want::Condition)
    }

    /// Parse, check and compile an expression whose value is wanted, of any type
    /// (`total * 1.2`, `lower(name)`); [`Program::evaluate`] gives the value.
    pub fn compile_value(source: Arc<Source>, env: &Env) -> Result<Program, Diagnostics> {
        Program::compile_as(source, env, Want::Value)
    }

    fn compile_as(source: Arc<Source>, env: &Env, want: Want) -> Result<Program, Diagnostics> {
        let expr = parse_expr(&source)?;
        let no_rules = CheckedRules::new();
        let rules: &dyn RuleScope = env.rules.as_ref().map_or(&no_rules, |r| r.checked_rules());
        let mut checker = Checker::new(Scope {
            schema: env.schema.as_deref(),
            functions: env.functions_arc(),
            rules,
        });
        let root = match want {
            Want::Condition => checker.check_condition(&expr),
            Want::Value => checker.check_value(&expr),
        };
        let diags = checker.diags;
        if diags.iter().any(|d| d.severity == Severity::Error) {
            return Err(Diagnostics {
                source,
                items: diags,
            });
        }
        Ok(Program::build(source, root, checker.fields, diags))
    }

    /// The program of a rule that needs no arguments: its checked body with
    /// the parameters bound to their defaults.
    pub(super) fn of_rule(
        rule: &CheckedRule,
        schema: Option<&Schema>,
        functions: &Functions,
        rules: &CheckedRules,
    ) -> Program {
        let mut checker = Checker::new(Scope {
            schema,
            functions,
            rules,
        });
        let span = rule.def.decl.span;
        let args = rule
            .def
            .defaults
            .iter()
            .map(|d| {
                d.clone().unwrap_or_else(|| Node {
                    kind: super::checked::NodeKind::Const(crate::value::Value::Null),
                    ty: Type::Any,
                    span,
                })
            })
            .collect();
        let root = checker.instantiate(rule, args, span);
        Program::build(rule.def.source.clone(), root, checker.fields, Vec::new())
    }

    /// The checked tree, for binding.
    pub(super) fn root(&self) -> &Node {
        &self.inner.root
    }

    /// The same program over another tree and field table (a bound program).
    pub(super) fn rebuilt(&self, root: Node, fields: Vec<String>) -> Program {
        Program::build(
            self.inner.source.clone(),
            root,
            fields,
            self.inner.warnings.clone(),
        )
    }

    fn build(
        source: Arc<Source>,
        root: Node,
        fields: Vec<String>,
        warnings: Vec<Diagnostic>,
    ) -> Program {
        let mut compiler = Compiler::new(source.clone());
        // a flat condition is built once, for `matches` and for the closures
        let flat = Flat::build(&root, &source).map(Arc::new);
        let pred: PredFn = match &flat {
            Some(flat) => {
                let flat = Arc::clone(flat);
                Box::new(move |r, _| flat.run(r))
            }
            None => compiler.pred(&root),
        };
        let value = compiler.value(&root);
        Program {
            inner: Arc::new(ProgramInner {
                source,
                flat,
                root,
                fields,
                consts: compiler.consts,
                pred,
                value,
                warnings,
            }),
        }
    }

    fn frame<'r>(&'r self, ctx: &Context) -> Frame<'r> {
        Frame {
            consts: &self.inner.consts,
            now: ctx.now,
            locals: Vec::new(),
            budget: super::ops::Budget::new(ctx.max_steps),
        }
    }

    /// Evaluate as a condition: true only when the result is `true`.
    pub fn matches(&self, record: &dyn Record, ctx: &Context) -> Result<bool, EvalError> {
        if let Some(flat) = &self.inner.flat {
            return flat.run(record).map_err(|e| *e);
        }
        self.matches_on_closures(record, ctx)
    }

    /// Like [`Program::matches`], compiled for one concrete record type: on the
    /// fast path, `R::field` is called directly and inlined instead of through a
    /// `dyn Record`. A record that reads fields by slot must use this
    /// program's slots ([`Program::fields`], as a [`crate::json::SparseRecord`]
    /// built from them does); for your own structs, [`Program::bind`] them.
    #[inline]
    pub fn matches_typed<R: Record>(&self, record: &R, ctx: &Context) -> Result<bool, EvalError> {
        if let Some(flat) = &self.inner.flat {
            return flat.run(record).map_err(|e| *e);
        }
        self.matches_on_closures(record, ctx)
    }

    fn matches_on_closures(&self, record: &dyn Record, ctx: &Context) -> Result<bool, EvalError> {
        let mut frame = self.frame(ctx);
        (self.inner.pred)(record, &mut frame).map_err(|e| *e)
    }

    /// Evaluate to a value (`None` when the result is missing).
    pub fn evaluate(
        &self,
        record: &dyn Record,
        ctx: &Context,
    ) -> Result<Option<OwnedValue>, EvalError> {
        let mut frame = self.frame(ctx);
        let value = (self.inner.value)(record, &mut frame).map_err(|e| *e)?;
        Ok(value.map(|v| v.into_owned()))
    }

    /// The top-level fields the program reads, in slot order. A record's
    /// [`crate::FieldRef::slot`] indexes this list (with a schema: the schema's fields).
    pub fn fields(&self) -> &[String] {
        &self.inner.fields
    }

    /// The source the program was compiled from.
    pub fn source(&self) -> &Arc<Source> {
        &self.inner.source
    }

    /// Warnings found while compiling.
    pub fn warnings(&self) -> &[Diagnostic] {
        &self.inner.warnings
    }

    /// The rules the program uses (as the checker resolved its names).
    pub(crate) fn rules_used(&self) -> std::collections::HashSet<String> {
        let mut out = std::collections::HashSet::new();
        super::lint::rules_in(&self.inner.root, &mut out);
        out
    }

    /// The type of the program's result, as far as it is known before the
    /// data is read (`any` when not).
    pub fn result_type(&self) -> &Type {
        &self.inner.root.ty
    }

    /// What the program is when it is not a condition: `a value (int)`, or
    /// `a value` when its type is not known; `None` for a condition.
    pub fn value_kind(&self) -> Option<String> {
        self.inner.root.not_a_condition()?;
        Some(match &self.inner.root.ty {
            Type::Any => "a value".to_string(),
            ty => format!("a value ({ty})"),
        })
    }

    /// Can the program be used as a condition ([`Program::matches`])? True when
    /// its type is `bool`, or not known before the data is read.
    pub fn is_condition(&self) -> bool {
        self.inner.root.not_a_condition().is_none()
    }

    /// Evaluate and explain why: a tree that mirrors the rule, with each
    /// clause's result, the values it read and the reason it failed. A separate,
    /// slower path; [`Program::matches`] never pays for it.
    pub fn explain(&self, record: &dyn Record, ctx: &Context) -> Result<Explanation, EvalError> {
        let mut explainer = Explainer::new(record, ctx, self.inner.source.clone());
        explainer.explain(&self.inner.root)
    }
}
