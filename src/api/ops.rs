//! Operations: `/healthz`, `/api/v1/openapi.json` (made from the access
//! table, so it lists exactly the routes that exist, with their roles), and the JSON 404.

use super::error::{ApiError, Json};
use super::AppState;
use axum::extract::State;
use axum::response::IntoResponse;
use serde_json::{json, Map, Value};

pub async fn healthz(State(s): State<AppState>) -> impl IntoResponse {
    match sqlx::query("SELECT 1").execute(&s.pool).await {
        Ok(_) => (
            axum::http::StatusCode::OK,
            axum::Json(json!({"status": "ok"})),
        ),
        Err(e) => {
            tracing::error!(error = %e, "health check: database unavailable");
            (
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(json!({"status": "database unavailable"})),
            )
        }
    }
}

pub async fn not_found() -> ApiError {
    ApiError::not_found()
}

pub async fn openapi() -> Json<Value> {
    let mut paths: Map<String, Value> = Map::new();
    paths.insert(
        "/api/v1/session".into(),
        json!({"post": {"summary": "Log in: {username, password} -> session cookie + {csrf_token}", "security": []}}),
    );
    for rule in super::routes().rules {
        let entry = paths
            .entry(format!("/api/v1{}", rule.path))
            .or_insert_with(|| json!({}));
        let roles: Vec<&str> = rule.roles.iter().map(|r| r.as_str()).collect();
        let params: Vec<Value> = rule
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        if let Value::Object(m) = entry {
            m.insert(
                rule.method.as_str().to_lowercase(),
                json!({"x-roles": roles, "x-audit": rule.audit, "parameters": params, "responses": {"default": {"$ref": "#/components/responses/Error"}}}),
            );
        }
    }
    Json(json!({
        "openapi": "3.1.0",
        "info": {"title": "Vigil", "version": env!("CARGO_PKG_VERSION")},
        "paths": paths,
        "components": {
            "securitySchemes": {
                "cookie": {"type": "apiKey", "in": "cookie", "name": super::access::SESSION_COOKIE},
                "bearer": {"type": "http", "scheme": "bearer"}
            },
            "responses": {"Error": {"description": "{\"error\": {\"code\", \"message\"}}"}}
        },
        "security": [{"cookie": []}, {"bearer": []}]
    }))
}
