//! Errors as RFC 9457 problem details: `type`, `title`, `status`, `detail`, and for
//! rule and saga errors the diagnostic `code` and where (`file`, `line`, `column`,
//! `path`), or per-record and per-field `errors`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value as Json, json};

use crate::diag::Diagnostics;

/// The media type of a problem document.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// One problem: a status, a stable type and title, what happened, and members of
/// its own (`code`, `errors`, ...).
#[derive(Debug)]
pub struct Problem {
    status: StatusCode,
    kind: &'static str,
    title: &'static str,
    detail: String,
    extra: Map<String, Json>,
    retry_after: Option<u64>,
}

impl Problem {
    /// A problem of type `urn:rulesaga:problem:{kind}`.
    pub fn new(
        status: StatusCode,
        kind: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Problem {
        Problem {
            status,
            kind,
            title,
            detail: detail.into(),
            extra: Map::new(),
            retry_after: None,
        }
    }

    /// With a member of its own.
    pub fn with(mut self, key: &str, value: Json) -> Problem {
        self.extra.insert(key.to_string(), value);
        self
    }

    /// With a `Retry-After` header, in seconds.
    pub fn retry_after(mut self, seconds: u64) -> Problem {
        self.retry_after = Some(seconds);
        self
    }

    /// With the first error diagnostic's `code` and place at the top, and every one in
    /// `diagnostics` (as `--error-format json` prints them, with the YAML `path`).
    pub fn with_diagnostics(mut self, all: &[Diagnostics]) -> Problem {
        let items: Vec<Json> = all
            .iter()
            .flat_map(Diagnostics::to_json)
            .map(|mut j| {
                if let Some(obj) = j.as_object_mut() {
                    let path = obj.get("label").cloned().unwrap_or(Json::Null);
                    obj.insert("path".into(), path);
                }
                j
            })
            .collect();
        let first = items
            .iter()
            .find(|j| j["severity"] == "error")
            .or(items.first());
        if let Some(first) = first {
            for key in ["code", "file", "line", "column", "path"] {
                if let Some(v) = first.get(key).filter(|v| !v.is_null()) {
                    self.extra.insert(key.to_string(), v.clone());
                }
            }
        }
        self.extra.insert("diagnostics".into(), Json::Array(items));
        self
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// A 400: the request is not what the route takes.
    pub fn bad_request(detail: impl Into<String>) -> Problem {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "bad-request",
            "the request is not valid",
            detail,
        )
    }

    /// A 404 for a route that does not exist.
    pub fn no_route(path: &str) -> Problem {
        Problem::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "no such route",
            format!("no route `{path}`; see GET /v1/openapi.json"),
        )
    }

    /// A 500: something in the server or its store failed.
    pub fn internal(detail: impl Into<String>) -> Problem {
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the server failed",
            detail,
        )
    }

    /// The problem document.
    pub fn body(&self) -> Json {
        let mut body = json!({
            "type": format!("urn:rulesaga:problem:{}", self.kind),
            "title": self.title,
            "status": self.status.as_u16(),
            "detail": self.detail,
        });
        if let Some(obj) = body.as_object_mut() {
            for (k, v) in &self.extra {
                obj.insert(k.clone(), v.clone());
            }
        }
        body
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = self.body().to_string();
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(s) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        response
    }
}
