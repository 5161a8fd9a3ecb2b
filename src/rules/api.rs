//! The public face of the rules engine: [`Env`], [`Program`], [`RuleSet`], [`Context`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::ast::RuleFile;
use super::check::{self, Checker, Node, NodeKind, RuleDef, Scope};
use super::compile::{Compiler, Frame, PredFn, ValFn};
use super::explain::{Explainer, Explanation};
use super::flat::Flat;
use super::functions::Functions;
use super::schema::Schema;
use super::{parse_expr, parse_rule_file};
use crate::diag::{Diagnostic, Diagnostics, Severity, Source, Span, did_you_mean};
use crate::value::{OwnedValue, Record};

pub use super::context::{Context, EvalError};

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

    /// Let expressions refer to the rules of a rule set (and use its schema,
    /// unless a schema was given).
    pub fn with_rules(mut self, rules: RuleSet) -> Env {
        if self.schema.is_none() {
            self.schema = rules.inner.schema.clone();
        }
        self.rules = Some(rules);
        self
    }

    /// The schema, if any.
    pub fn schema(&self) -> Option<&Schema> {
        self.schema.as_deref()
    }
}

struct ProgramInner {
    source: Arc<Source>,
    /// The flat form of the condition, when it has one (see `flat.rs`).
    flat: Option<Flat>,
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

fn empty_rules() -> &'static HashMap<String, RuleDef> {
    static EMPTY: std::sync::OnceLock<HashMap<String, RuleDef>> = std::sync::OnceLock::new();
    EMPTY.get_or_init(HashMap::new)
}

impl Program {
    /// Parse, check and compile one expression. Warnings do not fail compilation;
    /// see [`Program::warnings`].
    pub fn compile(source: Arc<Source>, env: &Env) -> Result<Program, Diagnostics> {
        let expr = parse_expr(&source)?;
        let rules = env.rules.as_ref().map_or(empty_rules(), |r| &r.inner.defs);
        let mut checker = Checker::new(Scope {
            schema: env.schema.as_deref(),
            functions: &env.functions,
            rules,
        });
        let root = checker.check_expr(&expr);
        let diags = checker.diags;
        if diags.iter().any(|d| d.severity == Severity::Error) {
            return Err(Diagnostics {
                source,
                items: diags,
            });
        }
        Ok(Program::build(source, root, checker.fields, diags))
    }

    fn build(
        source: Arc<Source>,
        root: Node,
        fields: Vec<String>,
        warnings: Vec<Diagnostic>,
    ) -> Program {
        let mut compiler = Compiler::new(source.clone());
        let pred = compiler.pred(&root);
        let value = compiler.value(&root);
        Program {
            inner: Arc::new(ProgramInner {
                source,
                flat: Flat::build(&root),
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
            steps: 0,
            max_steps: ctx.max_steps,
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
    /// `dyn Record`. Use it in hot loops over your own structs.
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

    /// Evaluate and explain why: a tree that mirrors the rule, with each
    /// clause's result, the values it read and the reason it failed. A separate,
    /// slower path; [`Program::matches`] never pays for it.
    pub fn explain(&self, record: &dyn Record, ctx: &Context) -> Result<Explanation, EvalError> {
        let mut explainer = Explainer::new(record, ctx, self.inner.source.clone());
        explainer.explain(&self.inner.root)
    }
}

/// Compiled rule files: named rules and one optional schema (merged across files).
#[derive(Clone)]
pub struct RuleSet {
    inner: Arc<RuleSetInner>,
}

struct RuleSetInner {
    schema: Option<Arc<Schema>>,
    defs: HashMap<String, RuleDef>,
    order: Vec<String>,
    programs: HashMap<String, Program>,
    files: Vec<(Arc<Source>, RuleFile)>,
    warnings: Vec<Diagnostics>,
}

/// Rule files failed to load: every problem of every file.
#[derive(Debug, thiserror::Error)]
pub enum RuleErrors {
    /// A file could not be read.
    #[error("cannot read `{path}`: {message}")]
    Io {
        /// The path.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// Parse or check errors, per file (warnings included).
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Diagnostics>),
}

/// Read a rule or data file as UTF-8 text, naming the byte offset of invalid UTF-8.
pub fn read_text(path: &Path) -> Result<String, RuleErrors> {
    let io = |message: String| RuleErrors::Io {
        path: path.to_path_buf(),
        message,
    };
    let meta = std::fs::metadata(path).map_err(|e| io(e.to_string()))?;
    if meta.len() > super::limits::MAX_SOURCE_BYTES as u64 {
        return Err(io(format!(
            "the file is {} bytes; the limit is {} bytes",
            meta.len(),
            super::limits::MAX_SOURCE_BYTES
        )));
    }
    let mut bytes = std::fs::read(path).map_err(|e| io(e.to_string()))?;
    // a UTF-8 byte order mark is not part of the text
    if bytes.starts_with(b"\xEF\xBB\xBF") {
        bytes.drain(..3);
    }
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let valid = String::from_utf8_lossy(&e.as_bytes()[..at]).into_owned();
        let (line, col) = Source::new("", valid).line_col(u32::try_from(at).unwrap_or(u32::MAX));
        io(format!(
            "invalid UTF-8 at byte {at} (line {line}, column {col})"
        ))
    })
}

impl RuleSet {
    /// Parse, check and compile rule files given as sources. All errors of all
    /// files are collected.
    pub fn compile(sources: Vec<Arc<Source>>, env: &Env) -> Result<RuleSet, RuleErrors> {
        let mut per_file: Vec<Vec<Diagnostic>> = vec![Vec::new(); sources.len()];
        let mut parsed: Vec<(usize, RuleFile)> = Vec::new();
        for (i, source) in sources.iter().enumerate() {
            match parse_rule_file(source) {
                Ok(file) => parsed.push((i, file)),
                Err(d) => per_file[i].extend(d.items),
            }
        }
        // one schema across files: the environment's, merged with every file's
        let mut schema: Option<Schema> = env.schema.as_deref().cloned();
        for (i, file) in &parsed {
            if let Some(decl) = &file.schema {
                let s = Schema::from_decl(decl, &mut per_file[*i]);
                match &mut schema {
                    Some(existing) => existing.merge(&s, decl.span, &mut per_file[*i]),
                    None => schema = Some(s),
                }
            }
        }
        let mut defs: HashMap<String, RuleDef> = HashMap::new();
        let mut order = Vec::new();
        let mut owner: HashMap<String, usize> = HashMap::new();
        for (i, file) in &parsed {
            for decl in &file.rules {
                let name = &decl.name.name;
                if defs.contains_key(name) {
                    let first = owner.get(name).map_or("", |f| sources[*f].name.as_str());
                    per_file[*i].push(
                        Diagnostic::error(
                            "E105",
                            decl.name.span,
                            format!("rule `{name}` is defined twice"),
                        )
                        .with_help(format!("the first definition is in `{first}`")),
                    );
                    continue;
                }
                if env.functions.get(name).is_some() {
                    per_file[*i].push(Diagnostic::error(
                        "E105",
                        decl.name.span,
                        format!("rule `{name}` has the name of a function"),
                    ));
                    continue;
                }
                let def = check::rule_def(decl, &sources[*i], &mut per_file[*i]);
                owner.insert(name.clone(), *i);
                order.push(name.clone());
                defs.insert(name.clone(), def);
            }
        }
        let schema = schema.map(Arc::new);
        let mut roots: Vec<(String, Node, Vec<String>, bool)> = Vec::new();
        for name in &order {
            let (Some(def), Some(file)) = (defs.get(name), owner.get(name)) else {
                continue;
            };
            let mut checker = Checker::new(Scope {
                schema: schema.as_deref(),
                functions: &env.functions,
                rules: &defs,
            });
            let root = checker.check_rule(def);
            per_file[*file].extend(checker.diags);
            let standalone = def.defaults.iter().all(Option::is_some);
            let root = Node {
                ty: root.ty.clone(),
                span: def.decl.span,
                kind: NodeKind::Rule {
                    name: name.clone(),
                    args: def
                        .decl
                        .params
                        .iter()
                        .zip(&def.defaults)
                        .filter_map(|(p, d)| Some((p.name.name.clone(), d.clone()?)))
                        .collect(),
                    body: Box::new(root),
                    source: def.source.clone(),
                },
            };
            roots.push((name.clone(), root, checker.fields, standalone));
        }
        let mut all: Vec<Diagnostics> = Vec::new();
        for (source, mut items) in sources.iter().zip(per_file) {
            if !items.is_empty() {
                items.sort_by_key(|d| (d.span.start, d.span.end));
                items.dedup();
                // a cycle is found from each of its rules: report it once
                let mut cycles = std::collections::HashSet::new();
                items.retain(|d| d.code != "E104" || cycles.insert(d.message.clone()));
                all.push(Diagnostics {
                    source: source.clone(),
                    items,
                });
            }
        }
        if all.iter().any(Diagnostics::has_errors) {
            return Err(RuleErrors::Invalid(all));
        }
        // lints, on files that checked cleanly
        let rule_names: std::collections::HashSet<&str> =
            order.iter().map(String::as_str).collect();
        for (i, file) in &parsed {
            let found = super::lint::lint_file(file, schema.as_deref(), &rule_names);
            if found.is_empty() {
                continue;
            }
            let source = &sources[*i];
            match all.iter_mut().find(|d| Arc::ptr_eq(&d.source, source)) {
                Some(d) => {
                    d.items.extend(found);
                    d.items.sort_by_key(|d| (d.span.start, d.span.end));
                }
                None => all.push(Diagnostics {
                    source: source.clone(),
                    items: found,
                }),
            }
        }
        let mut programs = HashMap::new();
        for (name, root, fields, standalone) in roots {
            if standalone {
                let source = defs
                    .get(&name)
                    .map(|d| d.source.clone())
                    .unwrap_or_else(|| Source::new("", ""));
                programs.insert(name, Program::build(source, root, fields, Vec::new()));
            }
        }
        let files = parsed
            .into_iter()
            .map(|(i, f)| (sources[i].clone(), f))
            .collect();
        Ok(RuleSet {
            inner: Arc::new(RuleSetInner {
                schema,
                defs,
                order,
                programs,
                files,
                warnings: all,
            }),
        })
    }

    /// Read and compile rule files from disk.
    pub fn load(paths: &[PathBuf], env: &Env) -> Result<RuleSet, RuleErrors> {
        let mut sources = Vec::new();
        for path in paths {
            let text = read_text(path)?;
            sources.push(Source::new(path.display().to_string(), text));
        }
        RuleSet::compile(sources, env)
    }

    /// A rule by name, with its default arguments. `None` for an unknown rule
    /// or one with a parameter that has no default (call it from an
    /// expression instead: `high_value(200)`).
    pub fn rule(&self, name: &str) -> Option<Program> {
        self.inner.programs.get(name).cloned()
    }

    /// Like [`RuleSet::rule`], with a diagnostic that suggests a name.
    pub fn require(&self, name: &str) -> Result<Program, String> {
        if let Some(p) = self.rule(name) {
            return Ok(p);
        }
        if self.inner.defs.contains_key(name) {
            return Err(format!(
                "rule `{name}` has parameters without defaults; call it in an expression"
            ));
        }
        let help = did_you_mean(name, self.inner.order.iter().map(String::as_str))
            .map(|h| format!(" ({h})"))
            .unwrap_or_default();
        Err(format!("unknown rule `{name}`{help}"))
    }

    /// Rule names, in file order.
    pub fn names(&self) -> Vec<String> {
        self.inner.order.clone()
    }

    /// The merged schema, if any file declares one.
    pub fn schema(&self) -> Option<&Schema> {
        self.inner.schema.as_deref()
    }

    /// Warnings of every file (lints), as diagnostics per file.
    pub fn warnings(&self) -> &[Diagnostics] {
        &self.inner.warnings
    }

    /// The parsed files, in load order.
    pub fn files(&self) -> impl Iterator<Item = (&Arc<Source>, &RuleFile)> {
        self.inner.files.iter().map(|(s, f)| (s, f))
    }

    /// Compile an expression that may use these rules and their schema.
    pub fn compile_expr(&self, text: &str) -> Result<Program, Diagnostics> {
        Program::compile(
            Source::new("<expr>", text),
            &Env::new().with_rules(self.clone()),
        )
    }

    /// The span of a rule's name, for diagnostics about it.
    pub fn rule_span(&self, name: &str) -> Option<(Arc<Source>, Span)> {
        self.inner
            .defs
            .get(name)
            .map(|d| (d.source.clone(), d.decl.name.span))
    }
}

impl std::fmt::Debug for RuleSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuleSet")
            .field("rules", &self.inner.order)
            .field("schema", &self.inner.schema.is_some())
            .finish()
    }
}
