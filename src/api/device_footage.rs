//! Footage kept on a GB/T 28181 device's own disk, for cameras bound from a device:
//! `GET /cameras/{id}/device-recordings?start=&end=` lists what the device holds (RecordInfo), and
//! `GET /cameras/{id}/device-playback?start=&end=` (WebSocket) plays a range of it (INVITE `s=Playback`),
//! steered by the viewer (pause, play, speed, seek: MANSRTSP). The access layer checks the role and the
//! camera's region and audits both; the socket ends when the caller's rights end, as live views do.

use super::cameras::visible_camera;
use super::error::{ApiError, ApiResult, Json, Path};
use super::recordings::parse_time;
use super::{revoke, AppState};
use crate::auth::Principal;
use crate::gb28181::mansrtsp::Command;
use crate::gb28181::media::MediaTransport;
use crate::gb28181::playback::{PlaybackError, Record, Timing};
use crate::live::replay::{self, Steer};
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Query, State};
use axum::response::Response;
use axum::Extension;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RangeQuery {
    start: String,
    end: String,
}

#[derive(Serialize)]
pub struct DeviceRecord {
    start: String,
    end: String,
    name: String,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Serialize)]
pub struct DeviceRecords {
    records: Vec<DeviceRecord>,
}

/// The camera's device and channel, and the platform; 404 for a camera that is not a device's channel.
async fn device_camera(
    s: &AppState,
    p: &Principal,
    id: i64,
) -> ApiResult<(
    Arc<crate::gb28181::Platform>,
    String,
    String,
    MediaTransport,
)> {
    let cam = visible_camera(s, p, id).await?;
    let url = url::Url::parse(&cam.main_url)
        .ok()
        .filter(|u| u.scheme() == "gb28181");
    let target = url.as_ref().and_then(crate::gb28181::stream::target);
    let (Some(url), Some((device, channel))) = (url.as_ref(), target) else {
        return Err(ApiError::bad_request(
            "this camera is not a GB/T 28181 device's channel; its footage is in /recordings",
        ));
    };
    let gb =
        s.gb.clone()
            .ok_or_else(|| ApiError::unavailable("GB/T 28181 is not enabled on this server"))?;
    let transport = crate::gb28181::stream::media_transport(url, cam.transport == "udp");
    Ok((gb, device, channel, transport))
}

fn range_ms(q: &RangeQuery) -> ApiResult<(i64, i64)> {
    let start = parse_time("start", &q.start)? / 1000;
    let end = parse_time("end", &q.end)? / 1000;
    if end <= start {
        return Err(ApiError::invalid("end must be after start"));
    }
    Ok((start, end))
}

fn api_error(e: PlaybackError) -> ApiError {
    match e {
        PlaybackError::Range => ApiError::invalid(e.to_string()),
        PlaybackError::Busy => ApiError::unavailable(e.to_string()),
        PlaybackError::NotRegistered => ApiError::unavailable(e.to_string()),
        PlaybackError::Timeout(_) | PlaybackError::Refused(_) => {
            ApiError::new(axum::http::StatusCode::BAD_GATEWAY, "device", e.to_string())
        }
    }
}

pub async fn records(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
    Query(q): Query<RangeQuery>,
) -> ApiResult<Json<DeviceRecords>> {
    let (gb, device, channel, _) = device_camera(&s, &p, id).await?;
    let (start, end) = range_ms(&q)?;
    let found: Vec<Record> = gb
        .runner
        .record_info(&device, &channel, start, end)
        .await
        .map_err(api_error)?;
    let records = found
        .into_iter()
        .map(|r| DeviceRecord {
            start: crate::time::ms_to_rfc3339(r.start_ms),
            end: crate::time::ms_to_rfc3339(r.end_ms),
            name: r.name,
            kind: r.kind,
        })
        .collect();
    Ok(Json(DeviceRecords { records }))
}

/// A viewer's steering as the device's MANSRTSP; `None` for values out of the device's range.
fn command(s: Steer) -> Option<Command> {
    use crate::gb28181::mansrtsp::{MAX_SCALE, MIN_SCALE};
    Some(match s {
        Steer::Pause => Command::Pause,
        Steer::Play => Command::Play {
            scale: None,
            from_s: None,
        },
        Steer::Speed { scale } if (MIN_SCALE..=MAX_SCALE).contains(&scale) => Command::Play {
            scale: Some(scale),
            from_s: None,
        },
        Steer::Seek { offset_s } if offset_s.is_finite() && offset_s >= 0.0 => Command::Play {
            scale: None,
            from_s: Some(offset_s),
        },
        _ => return None,
    })
}

pub async fn playback(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
    Query(q): Query<RangeQuery>,
    upgrade: WebSocketUpgrade,
) -> ApiResult<Response> {
    let (gb, device, channel, transport) = device_camera(&s, &p, id).await?;
    let (start, end) = range_ms(&q)?;
    // Invited before the upgrade, so that a device that refuses is an HTTP error the client can read.
    let session = gb
        .runner
        .playback(&device, &channel, transport, (start, end), Timing::Viewer)
        .await
        .map_err(api_error)?;
    tracing::info!(camera = id, device, channel, actor = %p.actor(), "device playback started");
    let live = s.live.clone();
    Ok(upgrade
        .max_message_size(64 * 1024)
        .on_upgrade(move |socket| async move {
            let max = revoke::live_max(&s);
            let watch = s.clone();
            let end = async move {
                let region = || revoke::camera_region(&watch, id);
                revoke::until_revoked(s, p, max, region).await.message()
            };
            let stream = session.stream.clone();
            let ended = session.ended.clone();
            let steer = |cmd| command(cmd).is_some_and(|c| session.steer(c));
            replay::serve(socket, live, stream, steer, ended, end).await;
        }))
}
