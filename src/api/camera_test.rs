//! `POST /cameras/test`: try a camera's stream before saving it. The body is the camera form as it stands
//! (only `main_url` is needed; `username`, `password` and `transport` are used; the other fields of a camera
//! are accepted and ignored). With `camera_id` (the camera being edited), what the form leaves empty comes
//! from that camera, so its stored password can be tested without being typed again. The answer is the state the camera would reach, what it sends, and a snapshot
//! of its first keyframe, so an administrator sees the picture before the camera exists. Nothing is stored.
//! The password goes to the camera only; the answer and the log never hold it. A stored password goes
//! only to the address (scheme, host, port) it was stored for: a test of another address needs it typed.

use super::cameras::TRANSPORTS;
use super::error::{ApiError, ApiResult, Json};
use super::{validate, AppState};
use crate::auth::Principal;
use crate::ingest::StreamSource;
use axum::extract::State;
use axum::Extension;
use base64::Engine as _;
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How long a test waits for a first keyframe (a camera with a 4 s GOP still shows one).
const TIMEOUT: Duration = Duration::from_secs(10);
/// Width of the snapshot the answer carries.
const SNAPSHOT_WIDTH: u32 = 640;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestBody {
    camera_id: Option<i64>,
    main_url: Option<String>,
    username: Option<String>,
    password: Option<String>,
    transport: Option<String>,
    #[serde(default, rename = "name")]
    _name: Option<IgnoredAny>,
    #[serde(default, rename = "site_id")]
    _site_id: Option<IgnoredAny>,
    #[serde(default, rename = "sub_url")]
    _sub_url: Option<IgnoredAny>,
    #[serde(default, rename = "record")]
    _record: Option<IgnoredAny>,
}

#[derive(Serialize)]
pub struct TestResult {
    state: crate::ingest::StreamState,
    codec: Option<String>,
    /// The camera's sound, when it sends one Vigil takes (`aac`, `pcma`, `pcmu`).
    audio: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
    error: Option<String>,
    /// `data:image/jpeg;base64,...` of the first keyframe, when one came and could be decoded.
    snapshot: Option<String>,
    elapsed_ms: u64,
}

pub async fn test(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Json(b): Json<TestBody>,
) -> ApiResult<Json<TestResult>> {
    let stored = match b.camera_id {
        Some(id) => Some(super::cameras::visible_camera(&s, &p, id).await?),
        None => None,
    };
    let source = source(b, stored.as_ref(), &s.secrets)?;
    tracing::info!(actor = %p.actor(), url = %source.url, "camera test");
    let probe = s.ingest.probe(source, TIMEOUT).await;
    let mut error = probe.status.error.clone();
    let snapshot = match &probe.keyframe {
        None => None,
        Some(key) => match snapshot(key.clone()).await? {
            Ok(jpeg) => Some(jpeg),
            Err(e) => {
                error = Some(e);
                None
            }
        },
    };
    let params = probe.keyframe.as_ref().map(|k| k.params.clone());
    Ok(Json(TestResult {
        state: probe.status.state,
        codec: params.as_ref().map(|p| p.codec.clone()),
        audio: probe.status.audio.clone(),
        width: params.as_ref().map(|p| p.width),
        height: params.as_ref().map(|p| p.height),
        error,
        snapshot,
        elapsed_ms: probe.elapsed.as_millis() as u64,
    }))
}

/// The stream to try: the form's fields, what the form leaves empty taken from the stored camera. A
/// stored password is only ever sent to the address it was stored for.
fn source(
    b: TestBody,
    stored: Option<&crate::db::cameras::Camera>,
    secrets: &crate::auth::secrets::Secrets,
) -> ApiResult<StreamSource> {
    let url = b
        .main_url
        .filter(|u| !u.trim().is_empty())
        .or_else(|| stored.map(|c| c.main_url.clone()))
        .ok_or_else(|| ApiError::invalid("main_url is required"))?;
    let (url, url_user, url_pass) = validate::rtsp_url("main_url", &url)?;
    let username = b
        .username
        .filter(|u| !u.is_empty())
        .or(url_user)
        .or_else(|| stored.and_then(|c| c.username.clone()));
    let given = b.password.filter(|p| !p.is_empty()).or(url_pass);
    validate::credentials(username.as_deref(), given.as_deref())?;
    let password = match (given, stored.and_then(|c| Some((c, c.password.as_ref()?)))) {
        (Some(pw), _) => Some(pw),
        (None, Some((c, sealed))) => {
            validate::stored_password_may_go(
                &[Some(c.main_url.as_str()), c.sub_url.as_deref()],
                url.as_str(),
            )?;
            Some(secrets.open(sealed).map_err(ApiError::internal)?)
        }
        (None, None) => None,
    };
    let udp = match b.transport.as_deref() {
        None => stored.is_some_and(|c| c.transport == "udp"),
        Some(t) => validate::one_of("transport", t, TRANSPORTS)? == "udp",
    };
    Ok(StreamSource {
        camera_id: 0,
        url,
        username,
        password,
        udp,
    })
}

/// `data:image/jpeg;base64,...` of a keyframe, or why it could not be made.
async fn snapshot(key: std::sync::Arc<crate::hub::Frame>) -> ApiResult<Result<String, String>> {
    let jpeg = tokio::task::spawn_blocking(move || {
        let codec = crate::media::VideoCodec::from_rfc6381(&key.params.codec)
            .ok_or_else(|| format!("cannot decode codec {}", key.params.codec))?;
        crate::media::keyframe_to_jpeg(
            codec,
            &key.params.extra_data,
            &[&key.data],
            Some(SNAPSHOT_WIDTH),
            85,
        )
        .map_err(|e| format!("snapshot failed: {e}"))
    })
    .await
    .map_err(ApiError::internal)?;
    Ok(jpeg.map(|j| {
        format!(
            "data:image/jpeg;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(j)
        )
    }))
}
