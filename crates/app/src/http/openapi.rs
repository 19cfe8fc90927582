//! The OpenAPI 3 document of `/api/v1`, written by hand (no generator in the build). A test
//! checks that every route the router serves under `/api/v1` is documented here.

use axum::Json;
use serde_json::{Value, json};

/// (method, path, summary, auth, success status) of every documented operation.
pub const OPERATIONS: &[(&str, &str, &str, &str, &str)] = &[
    (
        "post",
        "/api/v1/tenants",
        "Create a tenant; returns its admin token and webhook secret once",
        "operator",
        "201",
    ),
    (
        "post",
        "/api/v1/tenants/{t}/admin-token",
        "Issue a new tenant admin token (the old one stops working)",
        "operator",
        "200",
    ),
    (
        "post",
        "/api/v1/tenants/{t}/webhook-secret",
        "Rotate the webhook secret; the previous stays valid for a grace period",
        "operator",
        "200",
    ),
    (
        "get",
        "/api/v1/tenants/{t}/settings",
        "Integration settings (R1–R6)",
        "tenant",
        "200",
    ),
    (
        "put",
        "/api/v1/tenants/{t}/settings",
        "Replace the integration settings; 422 names each invalid field (EN+JA)",
        "tenant",
        "200",
    ),
    (
        "get",
        "/api/v1/tenants/{t}/salesforce/connect",
        "302 to the org's OAuth authorize URL (PKCE + state, R7)",
        "tenant",
        "302",
    ),
    (
        "post",
        "/api/v1/tenants/{t}/salesforce/disconnect",
        "Revoke the grant at Salesforce and delete it locally (R7)",
        "tenant",
        "200",
    ),
    (
        "post",
        "/api/v1/tenants/{t}/sync",
        "Start a sync now (async); 409 when one is running",
        "tenant",
        "202",
    ),
    (
        "get",
        "/api/v1/tenants/{t}/sync-runs",
        "Recent sync runs with their counts (R17)",
        "tenant",
        "200",
    ),
    (
        "get",
        "/api/v1/tenants/{t}/customers",
        "Caller-ID lookup: ?number= in any formatting (R18)",
        "tenant",
        "200",
    ),
    (
        "post",
        "/api/v1/tenants/{t}/customers",
        "Create a customer in the phone system's book",
        "tenant",
        "201",
    ),
    (
        "patch",
        "/api/v1/tenants/{t}/customers/{id}",
        "Edit a customer; synced fields are written back by the next write-back (R11)",
        "tenant",
        "200",
    ),
    (
        "get",
        "/api/v1/tenants/{t}/duplicates",
        "Salesforce records that lost dedupe (R14)",
        "tenant",
        "200",
    ),
    (
        "get",
        "/api/v1/tenants/{t}/failed",
        "Dead-lettered items with their cause in EN+JA and the setting to change (R40)",
        "tenant",
        "200",
    ),
    (
        "post",
        "/api/v1/tenants/{t}/failed/{id}/retry",
        "Retry one failed item (R40)",
        "tenant",
        "200",
    ),
    (
        "get",
        "/api/v1/tenants/{t}/members-without-user",
        "Members whose email matches no Salesforce User (R41)",
        "tenant",
        "200",
    ),
    (
        "get",
        "/api/v1/tenants/{t}/status",
        "Integration status (R40): org/user, runs, API usage, queue, failures",
        "tenant",
        "200",
    ),
    (
        "get",
        "/api/v1/tenants/{t}/api-usage",
        "API usage against the org's allowance and callsync's ceiling (C3)",
        "tenant",
        "200",
    ),
];

fn error_schema() -> Value {
    json!({
        "type": "object",
        "required": ["code", "message"],
        "properties": {
            "code": {"type": "string", "description": "stable machine-readable code"},
            "message": {"type": "string"},
            "message_ja": {"type": "string"},
            "fields": {"type": "array", "items": {"$ref": "#/components/schemas/FieldProblem"}}
        }
    })
}

/// Builds the document.
pub fn spec() -> Value {
    let mut paths = serde_json::Map::new();
    for (method, path, summary, auth, ok) in OPERATIONS {
        let mut params = Vec::new();
        if path.contains("{t}") {
            params.push(json!({"name": "t", "in": "path", "required": true, "schema": {"type": "string"}, "description": "tenant id"}));
        }
        if path.contains("{id}") {
            params.push(json!({"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}}));
        }
        if *path == "/api/v1/tenants/{t}/customers" && *method == "get" {
            params.push(json!({"name": "number", "in": "query", "required": true, "schema": {"type": "string"}, "example": "03-1234-5678"}));
        }
        let mut responses = serde_json::Map::new();
        responses.insert((*ok).to_owned(), json!({"description": "success"}));
        for (code, what) in [
            ("401", "missing or invalid bearer token"),
            (
                "404",
                "no such tenant or resource (also: another tenant's path)",
            ),
            (
                "422",
                "invalid input; each field named in English and Japanese",
            ),
        ] {
            responses.insert(
                code.to_owned(),
                json!({"description": what, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}),
            );
        }
        let security = if *auth == "operator" {
            "operatorKey"
        } else {
            "tenantToken"
        };
        let op = json!({
            "summary": summary,
            "parameters": params,
            "security": [{security: []}],
            "responses": responses,
        });
        let entry = paths.entry((*path).to_owned()).or_insert_with(|| json!({}));
        if let Some(obj) = entry.as_object_mut() {
            obj.insert((*method).to_owned(), op);
        }
    }
    paths.insert(
        "/oauth/callback".to_owned(),
        json!({"get": {
            "summary": "OAuth redirect target: exchanges the code, stores the grant, redirects to the admin page",
            "parameters": [
                {"name": "code", "in": "query", "schema": {"type": "string"}},
                {"name": "state", "in": "query", "required": true, "schema": {"type": "string"}},
                {"name": "error", "in": "query", "schema": {"type": "string"}}
            ],
            "responses": {"303": {"description": "to /admin/{t}?connect=connected|denied|failed:CODE"}, "400": {"description": "unknown or expired state"}}
        }}),
    );
    paths.insert(
        "/webhooks/{tenant}/calls".to_owned(),
        json!({"post": {
            "summary": "Call event webhook (form or JSON), authenticated by the tenant's HMAC signature",
            "responses": {"202": {"description": "stored"}, "200": {"description": "duplicate, already stored"}, "401": {"description": "bad signature"}}
        }}),
    );
    json!({
        "openapi": "3.0.3",
        "info": {"title": "callsync API", "version": "1", "description": "See docs/api.md."},
        "paths": paths,
        "components": {
            "securitySchemes": {
                "operatorKey": {"type": "http", "scheme": "bearer", "description": "security.operator_key"},
                "tenantToken": {"type": "http", "scheme": "bearer", "description": "the tenant's admin token"}
            },
            "schemas": {
                "Error": error_schema(),
                "FieldProblem": {"type": "object", "properties": {
                    "field": {"type": "string"}, "message": {"type": "string"}, "message_ja": {"type": "string"}
                }}
            }
        }
    })
}

pub async fn document() -> Json<Value> {
    Json(spec())
}
