//! Validating the `services:` section and `http:` actions: known services, methods,
//! header names, status codes, breaker and bulkhead numbers; service configuration
//! reads `env` and nothing else, steps never read it.

use std::time::Duration;

use serde_saphyr::Spanned;

use super::{Scope, Validator, list_names};
use crate::diag::did_you_mean;
use crate::saga::file::{BreakerFile, BulkheadFile, HttpFile, SagaFile, ServiceFile, Template};
use crate::saga::model::{
    Action, BreakerConfig, BulkheadConfig, HttpAction, Method, Service, ValueExpr,
};

/// The header every request carries, set by the engine.
pub(crate) const IDEMPOTENCY_HEADER: &str = "idempotency-key";

impl Validator<'_> {
    /// Every service of the file (the names are known to steps even when one is invalid).
    pub(super) fn services(&mut self, file: &SagaFile) -> Vec<Service> {
        let Some(services) = &file.services else {
            return Vec::new();
        };
        self.services = services.value.keys().cloned().collect();
        let mut out = Vec::new();
        for (name, s) in &services.value {
            let path = format!("services.{name}");
            if !super::is_ident(name) {
                self.error(
                    "S024",
                    &s.referenced,
                    &path,
                    format!("service name `{name}` must be letters, digits and `_`"),
                );
            }
            if let Some(s) = self.service(name, &s.value, &path) {
                out.push(s);
            }
        }
        out
    }

    fn service(&mut self, name: &str, s: &ServiceFile, path: &str) -> Option<Service> {
        self.env_reads.clear();
        let scope = Scope::service();
        let base_url = self.template(&s.base_url, &format!("{path}.base_url"), scope);
        let timeout = s
            .timeout
            .as_ref()
            .and_then(|t| self.duration(t, &format!("{path}.timeout"), false));
        let mut headers = Vec::new();
        let mut ok = s.timeout.is_none() || timeout.is_some();
        for (h, v) in s.headers.iter().flat_map(|m| &m.value) {
            let hpath = format!("{path}.headers.{h}");
            let lower = h.to_ascii_lowercase();
            if reqwest::header::HeaderName::from_bytes(lower.as_bytes()).is_err() {
                self.error(
                    "S024",
                    &v.referenced,
                    &hpath,
                    format!("`{h}` is not a header name"),
                );
                ok = false;
            } else if lower == IDEMPOTENCY_HEADER {
                self.error_help(
                    "S024",
                    &v.referenced,
                    &hpath,
                    "`Idempotency-Key` is set by rulesaga on every request".into(),
                    Some("it is `{saga_id}/{step}` (`.../compensate` for compensations)".into()),
                );
                ok = false;
            }
            match self.template(v, &hpath, scope) {
                Some(e) => headers.push((lower, e)),
                None => ok = false,
            }
        }
        let circuit_breaker = match &s.circuit_breaker {
            Some(b) => {
                let c = self.breaker(b, &format!("{path}.circuit_breaker"));
                ok &= c.is_some();
                c
            }
            None => None,
        };
        let bulkhead = match &s.bulkhead {
            Some(b) => {
                let c = self.bulkhead(b, &format!("{path}.bulkhead"));
                ok &= c.is_some();
                c
            }
            None => None,
        };
        let mut env = std::mem::take(&mut self.env_reads);
        env.sort();
        let base_url = base_url?;
        ok.then(|| Service {
            name: name.to_string(),
            base_url,
            timeout,
            headers,
            follow_redirects: s.follow_redirects.as_ref().is_some_and(|f| f.value),
            circuit_breaker,
            bulkhead,
            env,
        })
    }

    fn breaker(&mut self, b: &Spanned<BreakerFile>, path: &str) -> Option<BreakerConfig> {
        let f = &b.value;
        let mut c = BreakerConfig::default();
        let mut ok = true;
        let mut count = |v: &mut Self, n: &Option<Spanned<u32>>, key: &str, out: &mut u32| {
            if let Some(n) = n {
                if n.value == 0 || n.value > 100_000 {
                    v.error(
                        "S024",
                        &n.referenced,
                        &format!("{path}.{key}"),
                        format!("`{key}` must be between 1 and 100000"),
                    );
                    ok = false;
                } else {
                    *out = n.value;
                }
            }
        };
        count(self, &f.window, "window", &mut c.window);
        // without `min_calls`, the failure rate counts once the window is full
        c.min_calls = c.window;
        count(self, &f.min_calls, "min_calls", &mut c.min_calls);
        count(
            self,
            &f.half_open_calls,
            "half_open_calls",
            &mut c.half_open_calls,
        );
        if let Some(m) = &f.min_calls
            && m.value > c.window
        {
            self.error_help(
                "S024",
                &m.referenced,
                &format!("{path}.min_calls"),
                format!(
                    "`min_calls` ({}) is larger than the window ({})",
                    m.value, c.window
                ),
                Some("the window holds the last `window` calls: `min_calls` cannot be more".into()),
            );
            ok = false;
        }
        if let Some(r) = &f.failure_rate {
            if r.value.is_finite() && r.value > 0.0 && r.value <= 1.0 {
                c.failure_rate = r.value;
            } else {
                self.error(
                    "S024",
                    &r.referenced,
                    &format!("{path}.failure_rate"),
                    "`failure_rate` is a fraction: more than 0, at most 1".into(),
                );
                ok = false;
            }
        }
        if let Some(d) = &f.open_for {
            match self.duration(d, &format!("{path}.open_for"), false) {
                Some(d) => c.open_for = d,
                None => ok = false,
            }
        }
        ok.then_some(c)
    }

    fn bulkhead(&mut self, b: &Spanned<BulkheadFile>, path: &str) -> Option<BulkheadConfig> {
        let f = &b.value;
        let m = &f.max_concurrent;
        let mut ok = true;
        if m.value == 0 || m.value > 100_000 {
            self.error(
                "S024",
                &m.referenced,
                &format!("{path}.max_concurrent"),
                "`max_concurrent` must be between 1 and 100000".into(),
            );
            ok = false;
        }
        let max_wait = match &f.max_wait {
            Some(d) => {
                let w = self.duration(d, &format!("{path}.max_wait"), true);
                ok &= w.is_some();
                w.unwrap_or_default()
            }
            None => Duration::ZERO,
        };
        ok.then_some(BulkheadConfig {
            max_concurrent: m.value,
            max_wait,
        })
    }

    /// An `http:` action.
    pub(super) fn http(
        &mut self,
        h: &Spanned<HttpFile>,
        path: &str,
        scope: Scope,
    ) -> Option<Action> {
        let f = &h.value;
        let mut ok = true;
        let service = &f.service;
        if !self.services.contains(&service.value) {
            let help = did_you_mean(&service.value, self.services.iter().map(String::as_str))
                .or_else(|| {
                    Some(if self.services.is_empty() {
                        "declare it in a `services:` section".to_string()
                    } else {
                        format!("the services are {}", list_names(&self.services))
                    })
                });
            self.error_help(
                "S023",
                &service.referenced,
                &format!("{path}.service"),
                format!("unknown service `{}`", service.value),
                help,
            );
            ok = false;
        }
        let method = Method::parse(&f.method.value);
        if method.is_none() {
            let upper = f.method.value.to_ascii_uppercase();
            let help = if Method::parse(&upper).is_some() {
                Some(format!("write `{upper}`"))
            } else {
                Some(format!("methods are {}", Method::NAMES.join(", ")))
            };
            self.error_help(
                "S024",
                &f.method.referenced,
                &format!("{path}.method"),
                format!("unknown method `{}`", f.method.value),
                help,
            );
        }
        let req_path = self.template(&f.path, &format!("{path}.path"), scope);
        if let Some(ValueExpr::Const(c)) = &req_path
            && !c.as_str().is_some_and(|p| p.starts_with('/'))
        {
            self.error_help(
                "S024",
                &f.path.referenced,
                &format!("{path}.path"),
                "the path must be a string starting with `/`".into(),
                Some("a literal path is written as a rules string: '\"/charges\"'".into()),
            );
            ok = false;
        }
        let query = match &f.query {
            Some(q) if !matches!(q.value, Template::Map(_)) => {
                self.error(
                    "S024",
                    &q.referenced,
                    &format!("{path}.query"),
                    "`query` must be a map of parameter names to values".into(),
                );
                ok = false;
                None
            }
            Some(q) => {
                let v = self.template(q, &format!("{path}.query"), scope);
                ok &= v.is_some();
                v
            }
            None => None,
        };
        let body = match &f.body {
            Some(b) => {
                let v = self.template(b, &format!("{path}.body"), scope);
                ok &= v.is_some();
                v
            }
            None => None,
        };
        let mut success = Vec::new();
        for (i, code) in f.success.iter().flat_map(|s| &s.value).enumerate() {
            if (100..=599).contains(&code.value) {
                success.push(code.value);
            } else {
                self.error(
                    "S024",
                    &code.referenced,
                    &format!("{path}.success[{i}]"),
                    format!("`{}` is not an HTTP status (100 to 599)", code.value),
                );
                ok = false;
            }
        }
        let action = HttpAction {
            service: service.value.clone(),
            method: method?,
            path: req_path?,
            query,
            body,
            success,
        };
        ok.then(|| Action::Http(Box::new(action)))
    }
}
