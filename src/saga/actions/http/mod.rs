//! HTTP actions: one request to a service of the saga's `services:` section.
//!
//! When a run starts (or resumes), [`Services::resolve`] reads the environment variables
//! the services' configuration names and evaluates their base URLs and headers into
//! [`Endpoints`]; a missing variable refuses the run before its first event. Each
//! endpoint shares, with every saga of the process that calls the same service at the
//! same base URL, one client, one [`Breaker`] and one [`Bulkhead`].
//!
//! [`Http`] runs an attempt: breaker, then bulkhead, then the request with the step's
//! idempotency key, then the outcome's class (docs/sagas.md, "HTTP services"). Values
//! read from the environment and header values are secrets: every message and result
//! passes through [`Endpoint::redact`] first.

mod breaker;
mod bulkhead;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Map, Value as Json};

use super::{ActionCall, ActionError, ActionFuture, ActionOutput, ErrorClass, Executor};
use crate::rules::Context;
use crate::saga::model::{Action, HttpAction, Method, PathSegment, Service, ValueExpr};

use breaker::Breaker;
pub use breaker::BreakerState;
use bulkhead::Bulkhead;

/// Largest response body read (1 MiB); a larger one fails the attempt.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Longest body excerpt in an error message.
const EXCERPT_CHARS: usize = 200;

/// Reads an environment variable (the process environment by default; tests and
/// embedding applications may give their own).
pub type Vars = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// The process environment.
pub fn process_vars() -> Vars {
    Arc::new(|name| std::env::var(name).ok())
}

/// Why a saga's services cannot be resolved.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ResolveError {
    /// Environment variables the services read are not set.
    #[error("{}", missing_message(.0))]
    Missing(Vec<(String, String)>),
    /// A value is not usable (never says the value: it may be secret).
    #[error("service `{service}`: {why}")]
    Invalid {
        /// The service.
        service: String,
        /// Why.
        why: String,
    },
}

fn missing_message(missing: &[(String, String)]) -> String {
    let list: Vec<String> = missing
        .iter()
        .map(|(var, service)| format!("`{var}` (read by service `{service}`)"))
        .collect();
    let s = if missing.len() == 1 { "" } else { "s" };
    format!(
        "environment variable{s} not set: {}; set {} before the run",
        list.join(", "),
        if missing.len() == 1 { "it" } else { "them" }
    )
}

/// What a service's calls share across the process.
struct Live {
    client: reqwest::Client,
    breaker: Option<Breaker>,
    bulkhead: Option<Bulkhead>,
}

/// The services of every saga of the process: one client, breaker and bulkhead per
/// service name and base URL, made the first time a run resolves it (with that saga's
/// settings).
#[derive(Default)]
pub struct Services {
    live: Mutex<HashMap<(String, String), Arc<Live>>>,
}

/// One service as `rulesaga` sees it now.
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceStatus {
    /// Its name.
    pub name: String,
    /// Its breaker's state (`None`: no breaker).
    pub breaker: Option<BreakerState>,
    /// Calls in flight (`None`: no bulkhead).
    pub in_flight: Option<u32>,
}

impl Services {
    /// No services yet.
    pub fn new() -> Services {
        Services::default()
    }

    /// Every service resolved so far, by name (one row per base URL).
    pub fn status(&self) -> Vec<ServiceStatus> {
        let now = Instant::now();
        let live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<ServiceStatus> = live
            .iter()
            .map(|((name, _), l)| ServiceStatus {
                name: name.clone(),
                breaker: l.breaker.as_ref().map(|b| b.state(now)),
                in_flight: l.bulkhead.as_ref().map(Bulkhead::in_flight),
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    fn live(&self, s: &Service, base_url: &str) -> Result<Arc<Live>, ResolveError> {
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        let key = (s.name.clone(), base_url.to_string());
        if let Some(l) = live.get(&key) {
            return Ok(l.clone());
        }
        let redirects = if s.follow_redirects {
            reqwest::redirect::Policy::limited(10)
        } else {
            reqwest::redirect::Policy::none()
        };
        let client = reqwest::Client::builder()
            .redirect(redirects)
            .build()
            .map_err(|e| ResolveError::Invalid {
                service: s.name.clone(),
                why: format!("cannot make an HTTP client: {}", e.without_url()),
            })?;
        let l = Arc::new(Live {
            client,
            breaker: s.circuit_breaker.clone().map(|c| Breaker::new(&s.name, c)),
            bulkhead: s.bulkhead.clone().map(Bulkhead::new),
        });
        live.insert(key, l.clone());
        Ok(l)
    }

    /// The endpoints of `services`, with the variables `vars` gives: every missing
    /// variable named at once.
    pub fn resolve(&self, services: &[Service], vars: &Vars) -> Result<Endpoints, ResolveError> {
        let mut env = Map::new();
        let mut missing = Vec::new();
        for s in services {
            for name in &s.env {
                match vars(name) {
                    Some(v) => {
                        env.insert(name.clone(), Json::String(v));
                    }
                    None if !missing.iter().any(|(m, _)| m == name) => {
                        missing.push((name.clone(), s.name.clone()));
                    }
                    None => {}
                }
            }
        }
        if !missing.is_empty() {
            return Err(ResolveError::Missing(missing));
        }
        let mut endpoints = Vec::with_capacity(services.len());
        for s in services {
            endpoints.push(self.endpoint(s, &env)?);
        }
        Ok(Endpoints(endpoints))
    }

    fn endpoint(&self, s: &Service, env: &Map<String, Json>) -> Result<Endpoint, ResolveError> {
        let invalid = |why: String| ResolveError::Invalid {
            service: s.name.clone(),
            why,
        };
        let root = Json::Object(Map::from_iter([(
            "env".to_string(),
            Json::Object(
                s.env
                    .iter()
                    .filter_map(|n| Some((n.clone(), env.get(n)?.clone())))
                    .collect(),
            ),
        )]));
        let mut secrets: Vec<String> = s
            .env
            .iter()
            .filter_map(|n| env.get(n)?.as_str().map(str::to_string))
            .collect();
        let ctx = crate::saga::scope::eval_context();
        let string = |what: &str, v: &ValueExpr| -> Result<String, ResolveError> {
            match config_value(v, &root, &ctx) {
                Some(Json::String(s)) => Ok(s),
                Some(Json::Number(n)) => Ok(n.to_string()),
                Some(_) => Err(invalid(format!("`{what}` must compute a string"))),
                None => Err(invalid(format!("`{what}` computes nothing"))),
            }
        };
        let base = string("base_url", &s.base_url)?;
        let parsed = reqwest::Url::parse(&base).map_err(|_| {
            invalid(
                "`base_url` is not an absolute URL (its value is not shown: it may be secret)"
                    .into(),
            )
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(invalid(
                "`base_url` must be an `http` or `https` URL".into(),
            ));
        }
        let mut headers = HeaderMap::new();
        for (name, v) in &s.headers {
            let value = string(&format!("headers.{name}"), v)?;
            let mut hv = HeaderValue::from_str(&value)
                .map_err(|_| invalid(format!("header `{name}` is not a valid header value")))?;
            hv.set_sensitive(true);
            let hn = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| invalid(format!("`{name}` is not a header name")))?;
            headers.insert(hn, hv);
            secrets.push(value);
        }
        secrets.push(base.clone());
        // a service may echo its own address (a `Host` header): that is the base URL too
        if let Some(host) = parsed.host_str() {
            secrets.push(match parsed.port() {
                Some(p) => format!("{host}:{p}"),
                None => host.to_string(),
            });
        }
        secrets.retain(|s| !s.is_empty());
        // longest first, so a secret that contains another is replaced whole
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        let live = self.live(s, &base)?;
        Ok(Endpoint {
            name: s.name.clone(),
            base: base.trim_end_matches('/').to_string(),
            timeout: s.timeout,
            headers,
            secrets,
            live,
        })
    }
}

/// A value of a service's configuration, over `{env: {...}}`.
fn config_value(v: &ValueExpr, root: &Json, ctx: &Context) -> Option<Json> {
    match v {
        ValueExpr::Const(c) => Some(c.clone()),
        ValueExpr::Path(p) => {
            let mut node = root;
            for seg in &p.segments {
                node = match (node, seg) {
                    (Json::Object(m), PathSegment::Field(f)) => m.get(f)?,
                    (Json::Array(a), PathSegment::Index(i)) => a.get(*i)?,
                    _ => return None,
                };
            }
            Some(node.clone())
        }
        // an evaluation error is not shown: it could quote a secret
        ValueExpr::Expr(e) => e.evaluate(root, ctx).ok().flatten(),
        ValueExpr::List(_) | ValueExpr::Map(_) => None,
    }
}

/// The services of one run, resolved.
#[derive(Default)]
pub struct Endpoints(Vec<Endpoint>);

impl Endpoints {
    fn get(&self, name: &str) -> Option<&Endpoint> {
        self.0.iter().find(|e| e.name == name)
    }
}

/// One service of a run: where it is, its headers, and what it shares.
pub(crate) struct Endpoint {
    name: String,
    base: String,
    timeout: Option<Duration>,
    headers: HeaderMap,
    /// Every value read from the environment and every header value.
    secrets: Vec<String>,
    live: Arc<Live>,
}

impl Endpoint {
    /// `text` with every secret replaced by `***`.
    fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), "***");
            }
        }
        out
    }

    /// Every string of `v` redacted.
    fn redact_json(&self, v: &mut Json) {
        match v {
            Json::String(s) if self.secrets.iter().any(|x| s.contains(x.as_str())) => {
                *s = self.redact(s);
            }
            Json::Array(a) => a.iter_mut().for_each(|x| self.redact_json(x)),
            Json::Object(m) => m.values_mut().for_each(|x| self.redact_json(x)),
            _ => {}
        }
    }
}

/// Runs `http:` actions.
#[derive(Clone, Copy, Debug, Default)]
pub struct Http;

impl Executor for Http {
    fn execute<'a>(&'a self, call: &'a ActionCall<'a>) -> ActionFuture<'a> {
        Box::pin(async move {
            let Action::Http(h) = call.action else {
                return Err(ActionError::permanent(format!(
                    "`{}` is not an HTTP action",
                    call.action.summary()
                )));
            };
            let ep = call.endpoints.get(&h.service).ok_or_else(|| {
                ActionError::permanent(format!("service `{}` was not resolved", h.service))
            })?;
            match request(call, h, ep).await {
                Ok(out) => Ok(out),
                Err(mut e) => {
                    e.message = ep.redact(&e.message);
                    Err(e)
                }
            }
        })
    }
}

/// One attempt: breaker, bulkhead, request, outcome.
async fn request(
    call: &ActionCall<'_>,
    h: &HttpAction,
    ep: &Endpoint,
) -> Result<ActionOutput, ActionError> {
    let what = format!("{} {}", h.method.name(), h.service);
    let path = match call.evaluate(&h.path)? {
        Some(Json::String(p)) if p.starts_with('/') => p,
        Some(other) => {
            return Err(ActionError::permanent(format!(
                "permanent: {what}: the path must be a string starting with `/`, found `{other}`"
            )));
        }
        None => {
            return Err(ActionError::permanent(format!(
                "{what}: the path is missing"
            )));
        }
    };
    let what = format!("{what} {path}");
    let url = format!("{}{path}", ep.base);
    let method = match h.method {
        Method::Get => reqwest::Method::GET,
        Method::Post => reqwest::Method::POST,
        Method::Put => reqwest::Method::PUT,
        Method::Patch => reqwest::Method::PATCH,
        Method::Delete => reqwest::Method::DELETE,
    };
    let mut req = ep
        .live
        .client
        .request(method, &url)
        .headers(ep.headers.clone())
        .header("idempotency-key", call.idempotency_key());
    if let Some(q) = &h.query {
        req = req.query(&query_pairs(call.evaluate(q)?));
    }
    if let Some(b) = &h.body {
        req = req.json(&call.evaluate(b)?.unwrap_or(Json::Null));
    }
    if let Some(t) = ep.timeout {
        req = req.timeout(t);
    }
    let open = |wait: Duration| {
        let mut e = ActionError::transient(format!(
            "transient: {what}: circuit open (the service failed too often), not called"
        ));
        e.retry_after = (!wait.is_zero()).then_some(wait);
        e
    };
    // an open breaker fails fast, without waiting for a slot
    if let Some(wait) = ep
        .live
        .breaker
        .as_ref()
        .and_then(|b| b.open_for(Instant::now()))
    {
        return Err(open(wait));
    }
    let _slot = match &ep.live.bulkhead {
        None => None,
        Some(b) => Some(b.enter().await.map_err(|wait| {
            ActionError::transient(format!(
                "transient: {what}: bulkhead full ({} calls in flight, waited {}), not called",
                b.max(),
                crate::saga::model::format_duration(wait)
            ))
        })?),
    };
    // the permit is taken with the slot: a call abandoned while waiting for a slot
    // never reached the service and counts as nothing
    let permit = match &ep.live.breaker {
        None => None,
        Some(b) => Some(b.acquire(Instant::now()).map_err(open)?),
    };
    let outcome = send(req, h, &what, ep).await;
    if let Some(p) = permit {
        let failed = matches!(
            &outcome,
            Err(e) if matches!(e.class, ErrorClass::Transient | ErrorClass::TimedOut)
        );
        p.record(failed, Instant::now());
    }
    outcome
}

async fn send(
    req: reqwest::RequestBuilder,
    h: &HttpAction,
    what: &str,
    ep: &Endpoint,
) -> Result<ActionOutput, ActionError> {
    let resp = req.send().await.map_err(|e| transport(&e, what, ep))?;
    let status = resp.status();
    let mut headers = Map::new();
    for (k, v) in resp.headers() {
        let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
        match headers.get_mut(k.as_str()) {
            Some(Json::String(prev)) => {
                prev.push_str(", ");
                prev.push_str(&v);
            }
            _ => {
                headers.insert(k.as_str().to_string(), Json::String(v));
            }
        }
    }
    let retry_after = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(retry_after);
    let json = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(is_json);
    let bytes = read_body(resp, what, ep).await?;
    let code = status.as_u16();
    let ok = if h.success.is_empty() {
        status.is_success()
    } else {
        h.success.contains(&code)
    };
    let text = || String::from_utf8_lossy(&bytes).into_owned();
    if ok {
        let body = if bytes.is_empty() {
            Json::Null
        } else if json {
            serde_json::from_slice(&bytes).map_err(|e| {
                ActionError::permanent(format!(
                    "permanent: {what} answered {code} with a body that is not JSON: {e}"
                ))
            })?
        } else {
            Json::String(text())
        };
        let mut result = Json::Object(Map::from_iter([
            ("status".to_string(), Json::from(code)),
            ("headers".to_string(), Json::Object(headers)),
            ("body".to_string(), body),
        ]));
        ep.redact_json(&mut result);
        return Ok(ActionOutput::result(result));
    }
    let class = match code {
        408 | 425 | 429 | 500 | 502 | 503 | 504 => ErrorClass::Transient,
        _ => ErrorClass::Permanent,
    };
    let word = if class == ErrorClass::Transient {
        "transient"
    } else {
        "permanent"
    };
    let reason = status
        .canonical_reason()
        .map(|r| format!(" {r}"))
        .unwrap_or_default();
    let excerpt = excerpt(&text());
    let body = if excerpt.is_empty() {
        String::new()
    } else {
        format!(": {excerpt}")
    };
    let mut e = ActionError::new(
        class,
        format!("{word}: {what} answered {code}{reason}{body}"),
    );
    if class == ErrorClass::Transient {
        e.retry_after = retry_after;
    }
    Err(e)
}

/// The response body, at most [`MAX_BODY_BYTES`].
async fn read_body(
    mut resp: reqwest::Response,
    what: &str,
    ep: &Endpoint,
) -> Result<Vec<u8>, ActionError> {
    if resp
        .content_length()
        .is_some_and(|n| n > MAX_BODY_BYTES as u64)
    {
        return Err(too_large(what));
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| transport(&e, what, ep))? {
        if bytes.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(too_large(what));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

fn too_large(what: &str) -> ActionError {
    ActionError::permanent(format!(
        "permanent: {what}: the response body is larger than {MAX_BODY_BYTES} bytes"
    ))
}

/// A transport error: before the request was sent (connecting) it is transient; once
/// sent (a timeout, a reset, a cut body) the service may have acted, so the attempt
/// counts as possibly done. The URL is never said (its base is secret).
fn transport(e: &reqwest::Error, what: &str, ep: &Endpoint) -> ActionError {
    let cause = ep.redact(&causes(e));
    if e.is_timeout() {
        let after = ep
            .timeout
            .map(|t| format!(" within {}", crate::saga::model::format_duration(t)))
            .unwrap_or_default();
        ActionError::new(
            ErrorClass::TimedOut,
            format!(
                "timed out: {what}: no complete answer{after} (the request may have been done)"
            ),
        )
    } else if e.is_connect() {
        ActionError::transient(format!("transient: {what}: cannot connect: {cause}"))
    } else {
        ActionError::new(
            ErrorClass::TimedOut,
            format!(
                "possibly done: {what}: the connection failed after the request was sent: {cause}"
            ),
        )
    }
}

/// The chain of causes of an error, without its URL.
fn causes(e: &reqwest::Error) -> String {
    let mut out = Vec::new();
    let mut cur: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(c) = cur {
        out.push(c.to_string());
        cur = c.source();
    }
    if out.is_empty() {
        out.push("request failed".to_string());
    }
    out.join(": ")
}

/// `Retry-After`: seconds, or an HTTP date.
fn retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs.min(86_400)));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    (at.with_timezone(&chrono::Utc) - chrono::Utc::now())
        .to_std()
        .ok()
}

fn is_json(content_type: &str) -> bool {
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    mime == "application/json" || mime.ends_with("+json")
}

/// A short excerpt of a body for an error message: whitespace folded, cut.
fn excerpt(text: &str) -> String {
    let folded = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match folded.char_indices().nth(EXCERPT_CHARS) {
        Some((i, _)) => format!("{}…", &folded[..i]),
        None => folded,
    }
}

/// Query parameters from a computed map: scalars as text, lists repeated, null left out.
fn query_pairs(v: Option<Json>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Some(Json::Object(m)) = v else {
        return out;
    };
    let text = |v: &Json| match v {
        Json::String(s) => Some(s.clone()),
        Json::Null => None,
        other => Some(other.to_string()),
    };
    for (k, v) in m {
        match v {
            Json::Array(items) => {
                out.extend(items.iter().filter_map(|i| Some((k.clone(), text(i)?))))
            }
            v => out.extend(text(&v).map(|t| (k.clone(), t))),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(retry_after("soon"), None);
    }

    #[test]
    fn json_content_types() {
        assert!(is_json("application/json; charset=utf-8"));
        assert!(is_json("application/problem+json"));
        assert!(!is_json("text/plain"));
    }

    #[test]
    fn excerpts_are_short() {
        let long = "x ".repeat(500);
        assert_eq!(excerpt(&long).chars().count(), EXCERPT_CHARS + 1);
        assert_eq!(excerpt("  a \n b "), "a b");
    }
}
