//! `POST /cameras/{id}/ptz` `{action: move|stop|preset, pan, tilt, zoom, duration_ms, preset, preset_op}`:
//! steers a camera that has PTZ (supervisors and admins of its region; audited with it). A move runs
//! until a stop, a newer command, or `duration_ms` (at most `edge::ptz::MAX_MOVE`), whichever comes first.

use super::access::{noted, AuditNote};
use super::cameras::visible_camera;
use super::error::{ApiError, ApiResult, Json, Path};
use super::AppState;
use crate::auth::Principal;
use crate::edge::ptz::{PtzFailure, MAX_MOVE};
use crate::ptz::{PresetOp, Ptz};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use serde::Deserialize;
use std::time::Duration;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PtzBody {
    action: String,
    /// -1.0 (left) ..= 1.0 (right)
    pan: Option<f64>,
    /// -1.0 (down) ..= 1.0 (up)
    tilt: Option<f64>,
    /// -1.0 (wide) ..= 1.0 (tele)
    zoom: Option<f64>,
    /// How long a move runs without a newer command (default and most: 5000).
    duration_ms: Option<u64>,
    /// 1 ..= 255
    preset: Option<u16>,
    /// goto (default) | set | delete
    preset_op: Option<String>,
}

fn axis(name: &str, v: Option<f64>) -> ApiResult<f64> {
    match v {
        None => Ok(0.0),
        Some(v) if v.is_finite() && (-1.0..=1.0).contains(&v) => Ok(v),
        Some(_) => Err(ApiError::invalid(format!(
            "{name} must be between -1 and 1"
        ))),
    }
}

/// The command a body asks for, validated.
fn command(b: &PtzBody) -> ApiResult<Ptz> {
    match b.action.as_str() {
        "move" => {
            let (pan, tilt, zoom) = (
                axis("pan", b.pan)?,
                axis("tilt", b.tilt)?,
                axis("zoom", b.zoom)?,
            );
            if pan == 0.0 && tilt == 0.0 && zoom == 0.0 {
                return Err(ApiError::invalid("a move needs pan, tilt or zoom"));
            }
            Ok(Ptz::Move { pan, tilt, zoom })
        }
        "stop" => Ok(Ptz::Stop),
        "preset" => {
            let number = b
                .preset
                .filter(|n| (1..=255).contains(n))
                .ok_or_else(|| ApiError::invalid("preset must be a number from 1 to 255"))?;
            let op = match b.preset_op.as_deref().unwrap_or("goto") {
                "goto" => PresetOp::Goto,
                "set" => PresetOp::Set,
                "delete" => PresetOp::Delete,
                _ => return Err(ApiError::invalid("preset_op must be goto, set or delete")),
            };
            Ok(Ptz::Preset {
                op,
                number: number as u8,
            })
        }
        _ => Err(ApiError::invalid("action must be move, stop or preset")),
    }
}

pub async fn steer(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
    Json(b): Json<PtzBody>,
) -> ApiResult<Response> {
    let cam = visible_camera(&s, &p, id).await?;
    let cmd = command(&b)?;
    let max = MAX_MOVE.as_millis() as u64;
    let move_for = match b.duration_ms {
        None => max,
        Some(ms) if (100..=max).contains(&ms) => ms,
        Some(_) => {
            return Err(ApiError::invalid(format!(
                "duration_ms must be from 100 to {max}"
            )))
        }
    };
    s.ptz
        .command(&cam, cmd, Duration::from_millis(move_for))
        .await
        .map_err(|e| match e {
            PtzFailure::Unsupported | PtzFailure::NoPtzService => {
                ApiError::bad_request(e.to_string())
            }
            PtzFailure::NoPlatform => ApiError::unavailable(e.to_string()),
            PtzFailure::TooFast => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests",
                e.to_string(),
            ),
            PtzFailure::Device(_) => {
                ApiError::new(StatusCode::BAD_GATEWAY, "device", e.to_string())
            }
        })?;
    let note = AuditNote {
        target: Some(format!("/cameras/{id}/ptz")),
        region_code: Some(cam.region_code.clone()),
        detail: Some(format!("{cmd:?}")),
        ..Default::default()
    };
    let body = serde_json::json!({ "camera_id": id, "action": b.action });
    Ok(noted(axum::Json(body), note))
}
