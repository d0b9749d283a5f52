//! Operations: `/healthz`, `/metrics` (Prometheus text), `/api/v1/openapi.json` (made from the access
//! table, so it lists exactly the routes that exist, with their roles), and the JSON 404.

use super::error::{ApiError, Json};
use super::AppState;
use crate::auth::{Principal, Scope};
use crate::ingest::StreamState;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Extension;
use serde_json::{json, Map, Value};
use std::fmt::Write;

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

/// Prometheus text. A regional admin sees the streams of their regions' cameras only.
pub async fn metrics(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
) -> Result<impl IntoResponse, ApiError> {
    let mut statuses = s.ingest.all_statuses();
    let mut rec = s.recorders.statuses();
    if p.scope != Scope::All {
        let visible: std::collections::HashSet<i64> = crate::db::cameras::list(&s.pool)
            .await?
            .into_iter()
            .filter(|c| p.scope.allows(&c.region_code))
            .map(|c| c.id)
            .collect();
        statuses.retain(|(k, _)| visible.contains(&k.camera_id));
        rec.retain(|(cam, _)| visible.contains(cam));
    }
    let mut out = String::with_capacity(256 + statuses.len() * 512);
    let _ = writeln!(
        out,
        "# HELP vigil_uptime_seconds Seconds since the server started."
    );
    let _ = writeln!(out, "# TYPE vigil_uptime_seconds gauge");
    let _ = writeln!(
        out,
        "vigil_uptime_seconds {}",
        s.started.elapsed().as_secs()
    );
    let states = [
        StreamState::Connecting,
        StreamState::Online,
        StreamState::Offline,
        StreamState::AuthFailed,
        StreamState::Unsupported,
    ];
    let _ = writeln!(
        out,
        "# HELP vigil_stream_state 1 for the state each camera stream is in."
    );
    let _ = writeln!(out, "# TYPE vigil_stream_state gauge");
    for (k, st) in &statuses {
        for state in states {
            let v = u8::from(st.state == state);
            let _ = writeln!(
                out,
                "vigil_stream_state{{camera=\"{}\",stream=\"{}\",state=\"{}\"}} {v}",
                k.camera_id,
                k.kind.as_str(),
                state.as_str()
            );
        }
    }
    type Series = (
        &'static str,
        &'static str,
        &'static str,
        fn(&crate::ingest::StreamStatus) -> f64,
    );
    let series: [Series; 5] = [
        (
            "vigil_stream_frames_total",
            "counter",
            "Frames received.",
            |s| s.frames as f64,
        ),
        (
            "vigil_stream_bytes_total",
            "counter",
            "Bytes of video received.",
            |s| s.bytes as f64,
        ),
        (
            "vigil_stream_connect_attempts_total",
            "counter",
            "Connection attempts.",
            |s| s.attempts as f64,
        ),
        (
            "vigil_stream_fps",
            "gauge",
            "Frame rate measured over the last two seconds.",
            |s| s.fps.unwrap_or(0.0),
        ),
        (
            "vigil_stream_bitrate_bps",
            "gauge",
            "Bitrate measured over the last two seconds.",
            |s| s.bitrate_bps.unwrap_or(0) as f64,
        ),
    ];
    for (name, kind, help, get) in series {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (k, st) in &statuses {
            let _ = writeln!(
                out,
                "{name}{{camera=\"{}\",stream=\"{}\"}} {}",
                k.camera_id,
                k.kind.as_str(),
                get(st)
            );
        }
    }
    let names: [(&str, &str); 5] = [
        (
            "vigil_record_gops_written_total",
            "GOPs (fragments) written to disk.",
        ),
        (
            "vigil_record_gops_dropped_total",
            "GOPs dropped because the disk writer fell behind.",
        ),
        (
            "vigil_record_frames_skipped_total",
            "Frames the recorder lost because it fell behind the hub.",
        ),
        (
            "vigil_record_bytes_written_total",
            "Bytes of fragments written.",
        ),
        ("vigil_record_errors_total", "Write, fsync or index errors."),
    ];
    for (i, (name, help)) in names.iter().enumerate() {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} counter");
        for (cam, v) in &rec {
            let _ = writeln!(out, "{name}{{camera=\"{cam}\",stream=\"main\"}} {}", v[i]);
        }
    }
    let _ = writeln!(
        out,
        "# HELP vigil_record_disk_alarm 1 while the disk is full or over budget with footage that may not go."
    );
    let _ = writeln!(out, "# TYPE vigil_record_disk_alarm gauge");
    let _ = writeln!(
        out,
        "vigil_record_disk_alarm {}",
        u8::from(s.recorders.disk_full())
    );
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out))
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
