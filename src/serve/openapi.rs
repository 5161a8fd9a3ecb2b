//! `GET /v1/openapi.json`: an OpenAPI 3.1 document of every route (a test compares
//! it with the routes the router registers, and calls each operation it lists).

use serde_json::{Value as Json, json};

fn path_param(name: &str, what: &str) -> Json {
    json!({"name": name, "in": "path", "required": true, "description": what, "schema": {"type": "string"}})
}

fn query_param(name: &str, ty: &str, what: &str) -> Json {
    json!({"name": name, "in": "query", "required": false, "description": what, "schema": {"type": ty}})
}

fn problem() -> Json {
    json!({"description": "a problem (RFC 9457)", "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}})
}

fn ok(what: &str) -> Json {
    json!({"description": what, "content": {"application/json": {"schema": {"type": "object"}}}})
}

fn body(props: Json) -> Json {
    json!({"required": false, "content": {"application/json": {"schema": {"type": "object", "properties": props}}}})
}

fn action(verb: &str, summary: &str) -> Json {
    json!({
        "summary": summary,
        "operationId": format!("saga_{}", verb.replace('-', "_")),
        "parameters": [path_param("saga", "the saga's id, a unique prefix or suffix of it, or its business key"),
                       query_param("wait", "string", "wait this long for a final status (`5s`)")],
        "requestBody": body(json!({"step": {"type": "string"}, "reason": {"type": "string"}})),
        "responses": {"200": ok("the saga reached a final status"), "202": ok("the saga runs"), "default": problem()},
    })
}

/// The document.
pub fn document() -> Json {
    let saga = path_param(
        "saga",
        "the saga's id, a unique prefix or suffix of it, or its business key",
    );
    json!({
        "openapi": "3.1.0",
        "info": {"title": "rulesaga serve", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Rules decisions and sagas over HTTP. Errors are RFC 9457 problem details."},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Problem": {"type": "object", "required": ["type", "title", "status", "detail"], "properties": {
                "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                "detail": {"type": "string"}, "code": {"type": "string"}, "file": {"type": "string"},
                "line": {"type": "integer"}, "column": {"type": "integer"}, "path": {"type": "string"},
                "errors": {"type": "array"}, "diagnostics": {"type": "array"}}}},
        },
        "security": [{"bearer": []}],
        "paths": {
            "/v1/rules/{rule}:eval": {"post": {
                "summary": "evaluate a rule on one record (`input`) or many (`inputs`)",
                "operationId": "rule_eval",
                "parameters": [path_param("rule", "the rule's name"),
                               query_param("explain", "boolean", "add the explanation trees")],
                "requestBody": body(json!({"input": {"type": "object"}, "inputs": {"type": "array", "items": {"type": "object"}}})),
                "responses": {"200": ok("`{\"result\"}` or `{\"results\", \"errors\"}`"), "default": problem()},
            }},
            "/v1/sagas/{saga}": {
                "post": {
                    "summary": "start the saga named `saga` (idempotent with `Idempotency-Key` or `key`)",
                    "operationId": "saga_start",
                    "parameters": [path_param("saga", "the saga's name"),
                                   query_param("wait", "string", "wait this long for a final status (`5s`)"),
                                   {"name": "Idempotency-Key", "in": "header", "required": false, "schema": {"type": "string"}}],
                    "requestBody": body(json!({"input": {"type": "object"}, "key": {"type": "string"}})),
                    "responses": {"200": ok("the saga reached a final status"), "202": ok("the saga runs"), "default": problem()},
                },
                "get": {
                    "summary": "one saga, as `saga status --output json` prints it",
                    "operationId": "saga_status",
                    "parameters": [saga.clone()],
                    "responses": {"200": ok("the saga"), "default": problem()},
                },
            },
            "/v1/sagas/{saga}/events": {"get": {
                "summary": "the saga's events; with `follow=true` as Server-Sent Events until a final one",
                "operationId": "saga_events",
                "parameters": [saga, query_param("follow", "boolean", "stream new events")],
                "responses": {"200": {"description": "`{\"events\"}`, or an event stream",
                    "content": {"application/json": {"schema": {"type": "object"}}, "text/event-stream": {"schema": {"type": "string"}}}},
                    "default": problem()},
            }},
            "/v1/sagas": {"get": {
                "summary": "sagas from the read model, most recent first",
                "operationId": "saga_list",
                "parameters": [query_param("status", "string", "running, completed, compensating, compensated or failed"),
                               query_param("name", "string", "the saga's name"),
                               query_param("limit", "integer", "at most this many (default 100, at most 1000)")],
                "responses": {"200": ok("`{\"sagas\"}`"), "default": problem()},
            }},
            "/v1/sagas/{saga}:retry": {"post": action("retry", "operator: try the failed step (or compensation) again")},
            "/v1/sagas/{saga}:skip": {"post": action("skip", "operator: declare the failed forward step done")},
            "/v1/sagas/{saga}:mark-compensated": {"post": action("mark-compensated", "operator: declare a failed compensation done by hand")},
            "/healthz": {"get": {"summary": "the process is up", "operationId": "healthz", "security": [],
                                 "responses": {"200": ok("`{\"status\": \"ok\"}`")}}},
            "/readyz": {"get": {"summary": "the store is reachable and the definitions are loaded", "operationId": "readyz",
                                "security": [], "responses": {"200": ok("ready"), "503": problem()}}},
            "/metrics": {"get": {"summary": "Prometheus metrics (text format 0.0.4)", "operationId": "metrics",
                                 "responses": {"200": {"description": "metrics", "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
            "/v1/openapi.json": {"get": {"summary": "this document", "operationId": "openapi",
                                         "responses": {"200": ok("OpenAPI 3.1")}}},
        }
    })
}

/// `GET /v1/openapi.json`
pub(super) async fn get() -> axum::Json<Json> {
    axum::Json(document())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// `(method, path)` of every route the router serves, as written in the document.
    const OPERATIONS: &[(&str, &str)] = &[
        ("post", "/v1/rules/{rule}:eval"),
        ("post", "/v1/sagas/{saga}"),
        ("get", "/v1/sagas/{saga}"),
        ("get", "/v1/sagas/{saga}/events"),
        ("get", "/v1/sagas"),
        ("post", "/v1/sagas/{saga}:retry"),
        ("post", "/v1/sagas/{saga}:skip"),
        ("post", "/v1/sagas/{saga}:mark-compensated"),
        ("get", "/healthz"),
        ("get", "/readyz"),
        ("get", "/metrics"),
        ("get", "/v1/openapi.json"),
    ];

    /// The document lists exactly [`OPERATIONS`], and the router registers a route
    /// for each path (its `{rule}` segment captured whole and split at `:`).
    #[test]
    fn the_document_lists_every_route_of_the_router() {
        let doc = document();
        let mut listed: Vec<(String, String)> = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                listed.push((method.clone(), path.clone()));
            }
        }
        listed.sort();
        let mut expected: Vec<(String, String)> = OPERATIONS
            .iter()
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .collect();
        expected.sort();
        assert_eq!(listed, expected);
        // the router's own route strings, from its source
        let source = include_str!("mod.rs");
        let mut routed: Vec<String> = source
            .split(".route(")
            .skip(1)
            .filter_map(|rest| rest.trim_start().strip_prefix('"')?.split('"').next())
            .map(String::from)
            .collect();
        routed.sort();
        let template = |p: &str| {
            // the router captures a whole segment: `{rule}:eval` → `{rule}`
            p.split('/')
                .map(|seg| match seg.split_once('}') {
                    Some((head, _)) => format!("{head}}}"),
                    None => seg.to_string(),
                })
                .collect::<Vec<_>>()
                .join("/")
                .replace("{saga}", "{target}")
        };
        let mut documented: Vec<String> = OPERATIONS.iter().map(|(_, p)| template(p)).collect();
        documented.sort();
        documented.dedup();
        let normalise = |p: &String| p.replace("{id}", "{target}");
        let mut routed_norm: Vec<String> = routed.iter().map(normalise).collect();
        routed_norm.sort();
        routed_norm.dedup();
        assert_eq!(routed_norm, documented, "routes {routed:?}");
    }
}
