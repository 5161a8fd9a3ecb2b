//! Validating actions: one verb, the keys it takes, known handlers and repositories.

use serde_saphyr::{Location, Spanned};

use super::{Scope, Validator, list_names};
use crate::diag::did_you_mean;
use crate::saga::file::{ActionFile, Template};
use crate::saga::model::{Action, Filter, ValueExpr};

impl Validator<'_> {
    pub(super) fn action(
        &mut self,
        a: &Spanned<ActionFile>,
        path: &str,
        scope: Scope,
    ) -> Option<Action> {
        let f = &a.value;
        let verbs: Vec<(&str, Option<&Spanned<String>>)> = vec![
            ("handler", f.handler.as_ref()),
            ("get", f.get.as_ref()),
            ("insert", f.insert.as_ref()),
            ("update", f.update.as_ref()),
            ("delete", f.delete.as_ref()),
            ("find", f.find.as_ref()),
        ];
        let mut present: Vec<(&str, Option<&Spanned<String>>)> =
            verbs.into_iter().filter(|(_, v)| v.is_some()).collect();
        if f.noop.as_ref().is_some_and(|n| n.value) {
            present.push(("noop", None));
        }
        if f.http.is_some() {
            present.push(("http", None));
        }
        let (verb, target) = match present.as_slice() {
            [one] => *one,
            [] => {
                self.error_help(
                    "S022",
                    &a.referenced,
                    path,
                    "an action needs one of `handler`, `get`, `insert`, `update`, `delete`, `find`, `http`, `noop`".into(),
                    None,
                );
                return None;
            }
            [first, second, ..] => {
                self.error(
                    "S022",
                    &a.referenced,
                    path,
                    format!(
                        "an action does one thing, found `{}` and `{}`",
                        first.0, second.0
                    ),
                );
                return None;
            }
        };
        // Keys that do not belong to the verb.
        let allowed: &[&str] = match verb {
            "handler" => &["args"],
            "get" => &["id"],
            "insert" => &["id", "values"],
            "update" => &["id", "values", "expect"],
            "delete" => &["id", "expect"],
            "find" => &["where", "rule"],
            _ => &[],
        };
        let extras: [(&str, Option<&Location>); 6] = [
            ("args", f.args.as_ref().map(|x| &x.referenced)),
            ("id", f.id.as_ref().map(|x| &x.referenced)),
            ("values", f.values.as_ref().map(|x| &x.referenced)),
            ("expect", f.expect.as_ref().map(|x| &x.referenced)),
            ("where", f.where_.as_ref().map(|x| &x.referenced)),
            ("rule", f.rule.as_ref().map(|x| &x.referenced)),
        ];
        let mut ok = true;
        for (key, loc) in extras {
            if let Some(loc) = loc
                && !allowed.contains(&key)
            {
                self.error(
                    "S022",
                    loc,
                    &format!("{path}.{key}"),
                    format!("`{key}` does not apply to `{verb}`"),
                );
                ok = false;
            }
        }
        let need = |v: &mut Self, key: &str, present: bool| {
            if !present {
                v.error(
                    "S022",
                    &a.referenced,
                    path,
                    format!("`{verb}` needs `{key}`"),
                );
            }
            present
        };
        let target_name = target.map(|t| t.value.clone()).unwrap_or_default();
        if let Some(t) = target {
            if verb == "handler" {
                if !self.catalog.handlers.contains(&t.value) {
                    let help =
                        did_you_mean(&t.value, self.catalog.handlers.iter().map(String::as_str))
                            .or_else(|| {
                                Some(format!(
                                    "registered handlers: {}",
                                    list_names(&self.catalog.handlers)
                                ))
                            });
                    self.error_help(
                        "S011",
                        &t.referenced,
                        &format!("{path}.handler"),
                        format!("unknown handler `{}`", t.value),
                        help,
                    );
                    ok = false;
                }
            } else {
                self.repo(t, &format!("{path}.{verb}"));
            }
        }
        let entity_scope = Scope {
            entity: true,
            ..scope
        };
        let id = match &f.id {
            Some(id) if allowed.contains(&"id") => self.template(id, &format!("{path}.id"), scope),
            _ => None,
        };
        let values_scope = if verb == "update" {
            entity_scope
        } else {
            scope
        };
        let values = match &f.values {
            Some(v) if allowed.contains(&"values") => {
                if !matches!(v.value, Template::Map(_)) {
                    self.error(
                        "S022",
                        &v.referenced,
                        &format!("{path}.values"),
                        "`values` must be a map of field names to values".into(),
                    );
                    None
                } else {
                    self.template(v, &format!("{path}.values"), values_scope)
                }
            }
            _ => None,
        };
        let expect = match &f.expect {
            Some(e) if allowed.contains(&"expect") => {
                self.expr(e, &format!("{path}.expect"), entity_scope)
            }
            _ => None,
        };
        let action = match verb {
            "noop" => Some(Action::Noop),
            "http" => f
                .http
                .as_ref()
                .and_then(|h| self.http(h, &format!("{path}.http"), scope)),
            "handler" => {
                let args = match &f.args {
                    Some(a) => self.template(a, &format!("{path}.args"), scope),
                    None => Some(ValueExpr::Const(serde_json::Value::Null)),
                };
                Some(Action::Handler {
                    name: target_name,
                    args: args?,
                })
            }
            "get" => {
                let has = need(self, "id", f.id.is_some());
                has.then_some(()).and(id).map(|id| Action::Get {
                    repo: target_name,
                    id,
                })
            }
            "insert" => {
                let has_id = need(self, "id", f.id.is_some());
                let has_values = need(self, "values", f.values.is_some());
                match (has_id && has_values, id, values) {
                    (true, Some(id), Some(values)) => Some(Action::Insert {
                        repo: target_name,
                        id,
                        values,
                    }),
                    _ => None,
                }
            }
            "update" => {
                let has_id = need(self, "id", f.id.is_some());
                let has_values = need(self, "values", f.values.is_some());
                match (has_id && has_values, id, values) {
                    (true, Some(id), Some(values)) => Some(Action::Update {
                        repo: target_name,
                        id,
                        values,
                        expect,
                    }),
                    _ => None,
                }
            }
            "delete" => {
                let has = need(self, "id", f.id.is_some());
                has.then_some(()).and(id).map(|id| Action::Delete {
                    repo: target_name,
                    id,
                    expect,
                })
            }
            "find" => {
                let filter = match (&f.where_, &f.rule) {
                    (Some(_), Some(r)) => {
                        self.error(
                            "S022",
                            &r.referenced,
                            &format!("{path}.rule"),
                            "`find` takes `where` or `rule`, not both".into(),
                        );
                        None
                    }
                    (Some(w), None) => {
                        // `where` reads each entity's own fields, and the saga's roots.
                        let where_scope = Scope {
                            entity_fields: true,
                            ..scope
                        };
                        self.expr(w, &format!("{path}.where"), where_scope)
                            .map(Filter::Where)
                    }
                    (None, Some(r)) => self.rule(r, &format!("{path}.rule")).map(Filter::Rule),
                    (None, None) => Some(Filter::All),
                };
                filter.map(|filter| Action::Find {
                    repo: target_name,
                    filter,
                })
            }
            _ => None,
        };
        if ok { action } else { None }
    }
}
