//! Rule files compiled together: [`RuleSet`].
//!
//! Files are parsed, their schemas merged into one, every rule declared once
//! (E105), then every rule body checked once through a rule table (`check`),
//! which finds cycles and inlines references from their checked form. A
//! compiled set keeps its checked rules, its schema and its functions, so that
//! expressions compiled against it later see exactly what its rules saw.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::api::{Env, Program};
use super::ast::RuleFile;
use super::check::{self, CheckedRules, RuleDef, RuleTable};
use super::functions::Functions;
use super::parse_rule_file;
use super::schema::Schema;
use crate::diag::{Diagnostic, Diagnostics, Source, Span, closest};

/// Compiled rule files: named rules and one optional schema (merged across files).
#[derive(Clone)]
pub struct RuleSet {
    inner: Arc<RuleSetInner>,
}

struct RuleSetInner {
    schema: Option<Arc<Schema>>,
    functions: Arc<Functions>,
    rules: CheckedRules,
    order: Vec<String>,
    programs: HashMap<String, Program>,
    files: Vec<(Arc<Source>, RuleFile)>,
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

/// A rule asked for by name cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// No rule has that name.
    #[error("unknown rule `{name}`")]
    Unknown {
        /// The name asked for.
        name: String,
        /// The closest rule name, if one is close.
        suggestion: Option<String>,
    },
    /// The rule has a parameter without a default: it needs arguments.
    #[error("rule `{name}` has parameters without defaults; call it in an expression")]
    NeedsArguments {
        /// The rule.
        name: String,
        /// How to call it: `high_value(threshold)`.
        signature: String,
    },
    /// A value rule was asked for as a condition.
    #[error("rule `{name}` is {kind}, not a condition")]
    NotACondition {
        /// The rule.
        name: String,
        /// What it is: `a value (int)`.
        kind: String,
    },
}

impl RuleError {
    /// What to do about it, for a help line.
    pub fn help(&self) -> Option<String> {
        match self {
            RuleError::Unknown { suggestion, .. } => {
                suggestion.as_ref().map(|s| format!("did you mean `{s}`?"))
            }
            RuleError::NeedsArguments { signature, .. } => {
                Some(format!("call it with its arguments: `{signature}`"))
            }
            RuleError::NotACondition { .. } => {
                Some("compare its value with something, or ask for its value".to_string())
            }
        }
    }
}

/// Read a rule or data file as UTF-8 text, naming the byte offset of invalid UTF-8.
pub fn read_text(path: &Path) -> Result<String, RuleErrors> {
    let io = |message: String| RuleErrors::Io {
        path: path.to_path_buf(),
        message,
    };
    let mut bytes =
        crate::diag::read_bytes(path, super::limits::MAX_SOURCE_BYTES as u64).map_err(io)?;
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
        let mut schema: Option<Schema> = env.schema().cloned();
        let functions = env.functions_arc().clone();
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
                if functions.get(name).is_some() {
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
        let table = RuleTable::new(schema.as_deref(), &functions, defs);
        let (rules, body_diags) = table.check_all();
        for (name, diags) in body_diags {
            if let Some(file) = owner.get(&name) {
                per_file[*file].extend(diags);
            }
        }
        let mut all: Vec<Diagnostics> = Vec::new();
        for (source, mut items) in sources.iter().zip(per_file) {
            if !items.is_empty() {
                items.sort_by_key(|d| (d.span.start, d.span.end));
                items.dedup();
                // a cycle is reported where it closes; two references may close it
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
        let mut programs = HashMap::new();
        for name in &order {
            if let Some(rule) = rules.get(name)
                && rule.def.standalone()
            {
                let program = Program::of_rule(rule, schema.as_deref(), &functions, &rules);
                programs.insert(name.clone(), program);
            }
        }
        let files = parsed
            .into_iter()
            .map(|(i, f)| (sources[i].clone(), f))
            .collect();
        Ok(RuleSet {
            inner: Arc::new(RuleSetInner {
                schema,
                functions,
                rules,
                order,
                programs,
                files,
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

    /// Like [`RuleSet::rule`], with an error that says why not (and suggests a name).
    pub fn require(&self, name: &str) -> Result<Program, RuleError> {
        if let Some(p) = self.rule(name) {
            return Ok(p);
        }
        if let Some(rule) = self.inner.rules.get(name) {
            return Err(RuleError::NeedsArguments {
                name: name.to_string(),
                signature: super::print::print_rule_signature(&rule.def.decl),
            });
        }
        Err(RuleError::Unknown {
            name: name.to_string(),
            suggestion: closest(name, self.inner.order.iter().map(String::as_str))
                .map(str::to_string),
        })
    }

    /// Like [`RuleSet::require`], for a rule used as a condition: a value rule
    /// (`rule price = total * 1.2`) is an error.
    pub fn condition(&self, name: &str) -> Result<Program, RuleError> {
        let program = self.require(name)?;
        match program.value_kind() {
            None => Ok(program),
            Some(kind) => Err(RuleError::NotACondition {
                name: name.to_string(),
                kind,
            }),
        }
    }

    /// Rule names, in file order.
    pub fn names(&self) -> Vec<String> {
        self.inner.order.clone()
    }

    /// The merged schema, if any file declares one.
    pub fn schema(&self) -> Option<&Schema> {
        self.inner.schema.as_deref()
    }

    /// The lints of every file (W001, W002, W004, W005), as diagnostics per
    /// file: computed when asked for, not while compiling ([`super::lint`]).
    pub fn lint(&self) -> Vec<Diagnostics> {
        super::lint::lint(self)
    }

    /// The parsed files, in load order.
    pub fn files(&self) -> impl Iterator<Item = (&Arc<Source>, &RuleFile)> {
        self.inner.files.iter().map(|(s, f)| (s, f))
    }

    /// Compile a condition that may use these rules, their schema and their
    /// functions (see [`Program::compile`]).
    pub fn compile_expr(&self, text: &str) -> Result<Program, Diagnostics> {
        Program::compile(
            Source::new("<expr>", text),
            &Env::new().with_rules(self.clone()),
        )
    }

    /// Compile an expression whose value is wanted, with these rules, their
    /// schema and their functions (see [`Program::compile_value`]).
    pub fn compile_value(&self, text: &str) -> Result<Program, Diagnostics> {
        Program::compile_value(
            Source::new("<expr>", text),
            &Env::new().with_rules(self.clone()),
        )
    }

    /// The span of a rule's name, for diagnostics about it.
    pub fn rule_span(&self, name: &str) -> Option<(Arc<Source>, Span)> {
        self.inner
            .rules
            .get(name)
            .map(|r| (r.def.source.clone(), r.def.decl.name.span))
    }

    pub(crate) fn checked_rules(&self) -> &CheckedRules {
        &self.inner.rules
    }

    pub(super) fn functions(&self) -> Arc<Functions> {
        self.inner.functions.clone()
    }

    pub(super) fn schema_arc(&self) -> Option<Arc<Schema>> {
        self.inner.schema.clone()
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
