//! The built-in repository verbs: `get`, `insert`, `update`, `delete`, `find`, `noop`.
//!
//! They compute their writes without applying them: the runner commits them with
//! the step's outcome event, in one transaction when the store holds the
//! repositories, so recovery never repeats them. What they read for an `update` (and
//! a `delete` with `expect`) is recorded in the unit of work, so a concurrent change
//! is a conflict instead of a lost update.

use std::sync::Arc;

use serde_json::{Map, Value as Json};

use super::{ActionCall, ActionError, ActionFuture, ActionOutput, Executor};
use crate::repo::{FindError, Read, Repository, UnitOfWork, Write};
use crate::saga::model::{Action, Expr, Filter};
use crate::saga::scope::{EntityScope, Scope, id_string};

/// Runs the repository verbs against a [`Repository`].
#[derive(Clone)]
pub struct Builtin {
    repo: Arc<dyn Repository>,
}

impl Builtin {
    /// Verbs over `repo`.
    pub fn new(repo: Arc<dyn Repository>) -> Builtin {
        Builtin { repo }
    }

    fn run(&self, call: &ActionCall<'_>) -> Result<ActionOutput, ActionError> {
        let scope = call.scope;
        let ctx = call.ctx;
        let eval = |v| scope.eval(v, ctx).map_err(ActionError::permanent);
        let unit = |writes: Vec<Write>, reads: Vec<Read>| UnitOfWork {
            key: call.idempotency_key(),
            writes,
            reads,
        };
        let repo = &*self.repo;
        match call.action {
            Action::Noop => Ok(ActionOutput::result(Json::Null)),
            Action::Handler { name, .. } => Err(ActionError::permanent(format!(
                "handler `{name}` is not a built-in action"
            ))),
            Action::Http(h) => Err(ActionError::permanent(format!(
                "the request to `{}` is not a built-in action",
                h.service
            ))),
            Action::Get { repo: name, id } => {
                let id = id_string(eval(id)?, "id").map_err(ActionError::permanent)?;
                match repo.get(name, &id)? {
                    Some(e) => Ok(ActionOutput::result(Json::Object(e))),
                    None => Err(ActionError::permanent(format!("`{name}/{id}` not found"))),
                }
            }
            Action::Insert {
                repo: name,
                id,
                values,
            } => {
                let id = id_string(eval(id)?, "id").map_err(ActionError::permanent)?;
                let entity = object(eval(values)?)?;
                let write = Write::Insert {
                    repo: name.clone(),
                    id,
                    entity: entity.clone(),
                };
                Ok(ActionOutput {
                    result: Json::Object(entity),
                    writes: unit(vec![write], Vec::new()),
                })
            }
            Action::Update {
                repo: name,
                id,
                values,
                expect,
            } => {
                let id = id_string(eval(id)?, "id").map_err(ActionError::permanent)?;
                let current = repo
                    .get(name, &id)?
                    .ok_or_else(|| ActionError::permanent(format!("`{name}/{id}` not found")))?;
                let with_entity = Scope {
                    entity: Some(&current),
                    ..scope
                };
                check_expect(expect.as_ref(), &with_entity, call, name, &id)?;
                let patch = object(
                    with_entity
                        .eval(values, ctx)
                        .map_err(ActionError::permanent)?,
                )?;
                let mut merged = current.clone();
                for (k, v) in &patch {
                    merged.insert(k.clone(), v.clone());
                }
                let write = Write::Update {
                    repo: name.clone(),
                    id: id.clone(),
                    patch,
                };
                let read = Read {
                    repo: name.clone(),
                    id,
                    entity: Some(current),
                };
                Ok(ActionOutput {
                    result: Json::Object(merged),
                    writes: unit(vec![write], vec![read]),
                })
            }
            Action::Delete {
                repo: name,
                id,
                expect,
            } => {
                let id = id_string(eval(id)?, "id").map_err(ActionError::permanent)?;
                let current = repo.get(name, &id)?;
                if let Some(cur) = &current {
                    let with_entity = Scope {
                        entity: Some(cur),
                        ..scope
                    };
                    check_expect(expect.as_ref(), &with_entity, call, name, &id)?;
                }
                let reads = match expect {
                    Some(_) => vec![Read {
                        repo: name.clone(),
                        id: id.clone(),
                        entity: current.clone(),
                    }],
                    None => Vec::new(),
                };
                let write = Write::Delete {
                    repo: name.clone(),
                    id,
                };
                Ok(ActionOutput {
                    result: current.map_or(Json::Null, Json::Object),
                    writes: unit(vec![write], reads),
                })
            }
            Action::Find { repo: name, filter } => {
                let mut keep = |_id: &str, entity: &Map<String, Json>| -> Result<bool, String> {
                    match filter {
                        Filter::All => Ok(true),
                        Filter::Where(e) => e
                            .matches(
                                &EntityScope {
                                    entity,
                                    outer: scope,
                                },
                                ctx,
                            )
                            .map_err(|err| err.to_string()),
                        Filter::Rule(r) => r
                            .program
                            .matches(entity, ctx)
                            .map_err(|err| err.to_string()),
                    }
                };
                let found = repo.find(name, &mut keep).map_err(|e| match e {
                    FindError::Repo(r) => ActionError::from(r),
                    other => ActionError::permanent(other.to_string()),
                })?;
                let list = found
                    .into_iter()
                    .map(|(id, mut e)| {
                        e.entry("id").or_insert(Json::String(id));
                        Json::Object(e)
                    })
                    .collect();
                Ok(ActionOutput::result(Json::Array(list)))
            }
        }
    }
}

impl Executor for Builtin {
    fn execute<'a>(&'a self, call: &'a ActionCall<'a>) -> ActionFuture<'a> {
        Box::pin(std::future::ready(self.run(call)))
    }
}

/// An `update`'s or `delete`'s `expect` on the entity as read: false is a permanent
/// failure naming the entity.
fn check_expect(
    expect: Option<&Expr>,
    scope: &Scope<'_>,
    call: &ActionCall<'_>,
    repo: &str,
    id: &str,
) -> Result<(), ActionError> {
    let Some(expect) = expect else {
        return Ok(());
    };
    let ok = expect
        .matches(scope, call.ctx)
        .map_err(|e| ActionError::permanent(format!("`{}`: {e}", expect.text)))?;
    if ok {
        Ok(())
    } else {
        Err(ActionError::permanent(format!(
            "expected `{}` for `{repo}/{id}`{}",
            expect.text,
            expect.why_not(scope, call.ctx)
        )))
    }
}

fn object(v: Option<Json>) -> Result<Map<String, Json>, ActionError> {
    match v {
        Some(Json::Object(m)) => Ok(m),
        _ => Err(ActionError::permanent("`values` must compute an object")),
    }
}
