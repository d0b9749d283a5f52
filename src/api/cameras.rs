//! Cameras: create, read, change, delete, status, snapshot, and NVR import. Every change is applied to
//! ingest at once. Passwords are write-only: [`db::cameras::Camera`] never serializes them and URLs are
//! stored without credentials.

use super::access::{noted, scoped, AuditNote};
use super::error::{ApiError, ApiResult, Json, Path, Query};
use super::sites::visible_site;
use super::{validate, AppState};
use crate::auth::secrets::{Sealed, Secrets};
use crate::auth::Principal;
use crate::db::{self, cameras::Camera, cameras::CameraInput};
use crate::hub::{StreamKey, StreamKind};
use crate::ingest::{CameraSpec, StreamSource, StreamState, StreamStatus};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

pub(super) const TRANSPORTS: &[&str] = &["tcp", "udp"];

/// What ingest needs from a stored camera, its password opened. `None` when a stored URL no longer parses
/// (it was validated on the way in, so only a hand-edited database gets there). A password that cannot be
/// opened (another key) is left out with a warning that names the camera only.
pub fn camera_spec(c: &Camera, secrets: &Secrets) -> Option<CameraSpec> {
    let password = c.password.as_ref().and_then(|p| {
        secrets
            .open(p)
            .map_err(|e| tracing::warn!(camera = c.id, error = %e, "camera password unreadable"))
            .ok()
    });
    let source = |u: &str| -> Option<StreamSource> {
        Some(StreamSource {
            camera_id: c.id,
            url: url::Url::parse(u).ok()?,
            username: c.username.clone(),
            password: password.clone(),
            udp: c.transport == "udp",
        })
    };
    Some(CameraSpec {
        id: c.id,
        main: source(&c.main_url)?,
        sub: c.sub_url.as_deref().and_then(source),
    })
}

/// Pulls and records cameras on this node: what a single server does for every camera, and what the
/// cluster asks for the cameras this node holds.
pub struct CameraRunner {
    pub recorders: Arc<crate::record::Recorders>,
    pub ingest: Arc<crate::ingest::Supervisor>,
    pub secrets: Arc<Secrets>,
}

impl CameraRunner {
    /// Starts or re-applies the camera (its rows under `fence` in a cluster).
    pub fn run(&self, c: &Camera, fence: Option<crate::record::index::Fence>) {
        // The recorder subscribes before ingest (re)starts, so it sees the first keyframe.
        self.recorders.apply_leased(c, fence);
        match camera_spec(c, &self.secrets) {
            Some(spec) => self.ingest.apply(&spec),
            None => tracing::warn!(
                camera = c.id,
                "stored camera URL does not parse; not started"
            ),
        }
    }
}

impl crate::cluster::Cameras for CameraRunner {
    fn start(&self, camera: &Camera, fence: crate::record::index::Fence) {
        self.run(camera, Some(fence));
    }

    fn stop(&self, camera_id: i64) {
        self.recorders.remove(camera_id);
        self.ingest.remove(camera_id);
    }

    fn upload_backlog(&self) -> (i64, i64, bool) {
        use std::sync::atomic::Ordering::Relaxed;
        match &self.recorders.shared().tier {
            Some(t) => (
                t.status.backlog.load(Relaxed),
                t.status.backlog_bytes.load(Relaxed),
                t.status.alarm.load(Relaxed),
            ),
            None => (0, 0, false),
        }
    }
}

/// Applies a created or changed camera: at once on a single server; in a cluster by the node that holds
/// it (this one at once, another at its next lease round).
pub(super) fn apply(s: &AppState, c: &Camera) {
    let runner = CameraRunner {
        recorders: s.recorders.clone(),
        ingest: s.ingest.clone(),
        secrets: s.secrets.clone(),
    };
    match &s.cluster {
        None => runner.run(c, None),
        Some(cluster) => match cluster.fence(c.id) {
            Some(fence) => runner.run(c, Some(fence)),
            None => cluster.kick(),
        },
    }
}

/// A camera as lists show it: its registry row with the main stream's state and whether it is being
/// recorded now (a recorder runs and frames arrive), so that a wall or a table needs one call, not one per
/// camera.
#[derive(Serialize)]
pub struct ListedCamera {
    #[serde(flatten)]
    camera: Camera,
    /// `rtsp` or `gb28181` (a channel of a registered device).
    source: &'static str,
    state: StreamState,
    recording: bool,
    /// Whether the camera takes PTZ commands (`POST /cameras/{id}/ptz`).
    ptz: bool,
}

/// A camera a linked city shares, as the province lists it (docs/federation.md): a negative id, the
/// link's name, and the camera's state at the city (`unreachable` while the link is down).
#[derive(Serialize)]
pub struct RemoteCamera {
    id: i64,
    site_id: i64,
    region_code: String,
    name: String,
    /// The link's name: the city the camera belongs to.
    link: String,
    source: &'static str,
    state: String,
    recording: bool,
    ptz: bool,
}

/// A camera of this server or of a linked city.
#[derive(Serialize)]
#[serde(untagged)]
pub enum Listed {
    Local(ListedCamera),
    Remote(RemoteCamera),
}

/// The cameras linked cities share that the caller's regions reach.
fn remote_cameras(s: &AppState, p: &Principal) -> Vec<Listed> {
    use crate::federation::remote::remote_id;
    s.federation
        .cameras()
        .into_iter()
        .filter(|(_, _, _, c)| p.scope.allows(&c.region_code))
        .filter_map(|(link_id, link, up, c)| {
            Some(Listed::Remote(RemoteCamera {
                id: remote_id(link_id, c.id)?,
                site_id: remote_id(link_id, c.site_id)?,
                region_code: c.region_code,
                name: c.name,
                link,
                source: "link",
                state: if up { c.state } else { "unreachable".into() },
                recording: up && c.recording,
                ptz: false,
            }))
        })
        .collect()
}

pub async fn list(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Json<Vec<Listed>>> {
    let cams = db::cameras::list(&s.pool).await?;
    let onvif = db::cameras::onvif_ids(&s.pool).await?;
    let remote = remote_cameras(&s, &p);
    Ok(Json(
        cams.into_iter()
            .filter(|c| p.scope.allows(&c.region_code))
            .map(|camera| {
                let state = s.ingest.main_state(camera.id);
                let recording = state == StreamState::Online && s.recorders.is_recording(camera.id);
                Listed::Local(ListedCamera {
                    ptz: onvif.contains(&camera.id)
                        || crate::edge::ptz::Controller::steerable(&camera),
                    source: if camera.main_url.starts_with("gb28181:") {
                        "gb28181"
                    } else {
                        "rtsp"
                    },
                    camera,
                    state,
                    recording,
                })
            })
            .chain(remote)
            .collect(),
    ))
}

/// The camera, if it exists and is in the caller's scope.
pub async fn visible_camera(s: &AppState, p: &Principal, id: i64) -> ApiResult<Camera> {
    let cam = db::cameras::get(&s.pool, id).await?;
    scoped(p, &cam.region_code)?;
    Ok(cam)
}

pub async fn get_one(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Camera>> {
    Ok(Json(visible_camera(&s, &p, id).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CameraBody {
    name: Option<String>,
    site_id: Option<i64>,
    main_url: Option<String>,
    sub_url: Option<String>,
    username: Option<String>,
    /// Write-only. Absent keeps the stored one; an empty string clears it.
    password: Option<String>,
    transport: Option<String>,
    record: Option<bool>,
    /// Record the sub stream as well (needs `sub_url`).
    record_sub: Option<bool>,
    /// A camera found by ONVIF discovery: where its PTZ commands go (`POST /cameras/{id}/ptz`).
    onvif: Option<OnvifRef>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnvifRef {
    /// The device service's URL, as discovery listed it.
    device_url: String,
    /// The media profile of the camera's main stream.
    profile_token: String,
}

/// PTZ commands carry the camera's credentials (as a WS-Security digest): they go only to the host its
/// stream comes from, as a stored password follows only its camera's address.
fn onvif_on_the_camera(device_url: &str, main_url: &str) -> ApiResult<()> {
    let host = |u: &str| {
        url::Url::parse(u)
            .ok()
            .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
    };
    match (host(device_url), host(main_url)) {
        (Some(a), Some(b)) if a == b => Ok(()),
        _ => Err(ApiError::invalid(
            "onvif.device_url must be on the camera's own host (that of main_url)",
        )),
    }
}

impl OnvifRef {
    fn validated(self) -> ApiResult<(String, String)> {
        let ok_url = url::Url::parse(&self.device_url).ok().filter(|u| {
            matches!(u.scheme(), "http" | "https") && u.host().is_some() && u.password().is_none()
        });
        if ok_url.is_none() || self.device_url.len() > 500 {
            return Err(ApiError::invalid(
                "onvif.device_url must be an http(s) URL without credentials",
            ));
        }
        let token = &self.profile_token;
        if token.is_empty() || token.len() > 64 || token.chars().any(char::is_control) {
            return Err(ApiError::invalid(
                "onvif.profile_token must be 1 to 64 characters",
            ));
        }
        Ok((self.device_url, self.profile_token))
    }
}

/// Applies a body onto a camera's fields (all required fields must be present when creating).
/// A camera's stored password may only follow it to an address it was stored for: new URLs elsewhere
/// need the password given again.
fn stored_password_stays(c: &Camera, main_url: &str, sub_url: Option<&str>) -> ApiResult<()> {
    let stored = [Some(c.main_url.as_str()), c.sub_url.as_deref()];
    for u in [Some(main_url), sub_url].into_iter().flatten() {
        validate::stored_password_may_go(&stored, u)?;
    }
    Ok(())
}

/// `record` (default on) and `record_sub`: asked for without a sub stream, an error; kept from before
/// while the sub stream is removed, off.
fn record_flags(
    record: Option<bool>,
    record_sub: Option<bool>,
    base: Option<&Camera>,
    has_sub: bool,
) -> ApiResult<(bool, bool)> {
    let record = record.or(base.map(|c| c.record)).unwrap_or(true);
    let record_sub = match record_sub {
        Some(true) if !has_sub => {
            return Err(ApiError::invalid(
                "record_sub needs a sub_url: the camera has no sub stream to record",
            ))
        }
        Some(v) => v,
        None => base.is_some_and(|c| c.record_sub) && has_sub,
    };
    Ok((record, record_sub))
}

async fn merge(
    s: &AppState,
    p: &Principal,
    base: Option<&Camera>,
    b: CameraBody,
) -> ApiResult<CameraInput> {
    let required = |field: &str| ApiError::invalid(format!("{field} is required"));
    let name = match (&b.name, base) {
        (Some(n), _) => validate::name("name", n, 100)?,
        (None, Some(c)) => c.name.clone(),
        (None, None) => return Err(required("name")),
    };
    let site_id = match (b.site_id, base) {
        (Some(id), _) => {
            visible_site(s, p, id)
                .await
                .map_err(|_| ApiError::invalid(format!("site_id {id} does not exist")))?;
            id
        }
        (None, Some(c)) => c.site_id,
        (None, None) => return Err(required("site_id")),
    };
    let mut username = base.and_then(|c| c.username.clone());
    // The stored password, kept sealed, and one given now in plaintext (sealed below).
    let mut stored: Option<Sealed> = base.and_then(|c| c.password.clone());
    let mut given: Option<String> = None;
    let main_url = match (&b.main_url, base) {
        (Some(u), _) => {
            let (url, user, pass) = validate::rtsp_url("main_url", u)?;
            username = user.or(username);
            given = pass;
            url.to_string()
        }
        (None, Some(c)) => c.main_url.clone(),
        (None, None) => return Err(required("main_url")),
    };
    let sub_url = match (&b.sub_url, base) {
        (Some(u), _) if u.trim().is_empty() => None,
        (Some(u), _) => Some(validate::rtsp_url("sub_url", u)?.0.to_string()),
        (None, Some(c)) => c.sub_url.clone(),
        (None, None) => None,
    };
    if let Some(u) = b.username {
        username = (!u.is_empty()).then_some(u);
    }
    if let Some(pw) = b.password {
        if pw.is_empty() {
            stored = None; // an empty string clears it
        }
        given = (!pw.is_empty()).then_some(pw);
    }
    if let (Some(c), Some(_), None) = (base, &stored, &given) {
        stored_password_stays(c, &main_url, sub_url.as_deref())?;
    }
    validate::credentials(username.as_deref(), given.as_deref())?;
    let password = match given {
        Some(pw) => Some(s.secrets.seal(&pw).map_err(ApiError::internal)?),
        None => stored,
    };
    let transport = match (&b.transport, base) {
        (Some(t), _) => validate::one_of("transport", t, TRANSPORTS)?,
        (None, Some(c)) => c.transport.clone(),
        (None, None) => "tcp".to_owned(),
    };
    let (record, record_sub) = record_flags(b.record, b.record_sub, base, sub_url.is_some())?;
    Ok(CameraInput {
        site_id,
        nvr_id: base.and_then(|c| c.nvr_id),
        channel: base.and_then(|c| c.channel),
        name,
        main_url,
        sub_url,
        username,
        password,
        transport,
        record,
        record_sub,
    })
}

pub async fn create(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Json(mut b): Json<CameraBody>,
) -> ApiResult<Response> {
    let onvif = b.onvif.take().map(OnvifRef::validated).transpose()?;
    let input = merge(&s, &p, None, b).await?;
    if let Some((url, _)) = &onvif {
        onvif_on_the_camera(url, &input.main_url)?;
    }
    let cam = db::cameras::insert(&s.pool, &input).await?;
    if let Some((url, token)) = &onvif {
        db::cameras::set_onvif(&s.pool, cam.id, url, token).await?;
    }
    tracing::info!(camera = cam.id, actor = %p.actor(), url = %cam.main_url, "camera created");
    apply(&s, &cam);
    let note = AuditNote {
        target: Some(format!("/cameras/{}", cam.id)),
        region_code: Some(cam.region_code.clone()),
        detail: Some(cam.name.clone()),
        ..Default::default()
    };
    Ok(noted((StatusCode::CREATED, Json(cam)), note))
}

pub async fn update(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
    Json(mut b): Json<CameraBody>,
) -> ApiResult<Json<Camera>> {
    let base = visible_camera(&s, &p, id).await?;
    let onvif = b.onvif.take().map(OnvifRef::validated).transpose()?;
    let input = merge(&s, &p, Some(&base), b).await?;
    if let Some((url, _)) = &onvif {
        onvif_on_the_camera(url, &input.main_url)?;
    }
    let cam = db::cameras::update(&s.pool, id, &input).await?;
    if let Some((url, token)) = &onvif {
        db::cameras::set_onvif(&s.pool, cam.id, url, token).await?;
    }
    tracing::info!(camera = cam.id, actor = %p.actor(), "camera changed");
    apply(&s, &cam);
    Ok(Json(cam))
}

pub async fn remove(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    visible_camera(&s, &p, id).await?;
    db::cameras::delete(&s.pool, id).await?;
    s.recorders.remove(id);
    s.ingest.remove(id);
    if let Some(cluster) = &s.cluster {
        // The node that records it stops at its next lease round (its lease goes with the camera).
        cluster.kick();
    }
    tracing::info!(camera = id, actor = %p.actor(), "camera deleted");
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize)]
pub struct CameraStatus {
    #[serde(flatten)]
    main: StreamStatus,
    sub: Option<StreamStatus>,
    /// The node that records the camera (cluster; null on a single server or while no node holds it).
    node: Option<String>,
}

pub async fn status(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
) -> ApiResult<Json<CameraStatus>> {
    let cam = visible_camera(&s, &p, id).await?;
    let main = s
        .ingest
        .status(StreamKey {
            camera_id: id,
            kind: StreamKind::Main,
        })
        .unwrap_or_else(StreamStatus::connecting);
    let sub = cam.sub_url.as_ref().map(|_| {
        s.ingest
            .status(StreamKey {
                camera_id: id,
                kind: StreamKind::Sub,
            })
            .unwrap_or_else(StreamStatus::connecting)
    });
    let node = match &s.cluster {
        Some(_) => crate::cluster::store::holder(&s.pool, id, db::now_ms()).await?,
        None => None,
    };
    Ok(Json(CameraStatus { main, sub, node }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotQuery {
    stream: Option<String>,
    width: Option<u32>,
}

pub async fn snapshot(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
    Query(q): Query<SnapshotQuery>,
) -> ApiResult<Response> {
    visible_camera(&s, &p, id).await?;
    let kind = match q.stream.as_deref() {
        None => StreamKind::Main,
        Some(k) => {
            StreamKind::parse(k).ok_or_else(|| ApiError::invalid("stream must be main or sub"))?
        }
    };
    if q.width.is_some_and(|w| !(16..=7680).contains(&w)) {
        return Err(ApiError::invalid("width must be between 16 and 7680"));
    }
    let gop = s
        .ingest
        .hub()
        .get(StreamKey {
            camera_id: id,
            kind,
        })
        .map(|h| h.current_gop())
        .unwrap_or_default();
    let Some(key) = gop.first().cloned() else {
        return Err(ApiError::unavailable(
            "no picture yet: the camera is not online",
        ));
    };
    let codec = crate::media::VideoCodec::from_rfc6381(&key.params.codec).ok_or_else(|| {
        ApiError::unavailable(format!("cannot decode codec {}", key.params.codec))
    })?;
    let width = q.width;
    let jpeg = tokio::task::spawn_blocking(move || {
        crate::media::keyframe_to_jpeg(codec, &key.params.extra_data, &[&key.data], width, 85)
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(|e| ApiError::unavailable(format!("snapshot failed: {e}")))?;
    tracing::debug!(camera = id, actor = %p.actor(), "snapshot");
    Ok((
        [
            (header::CONTENT_TYPE, "image/jpeg"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        jpeg,
    )
        .into_response())
}

#[derive(Deserialize)]
#[serde(untagged)]
pub enum Channels {
    Count(u32),
    List(Vec<u32>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NvrBody {
    site_id: i64,
    vendor: String,
    host: String,
    port: Option<u16>,
    channels: Channels,
    username: Option<String>,
    password: Option<String>,
    url_template: Option<String>,
    /// Optional template of the channels' sub streams (`generic`); vendors have their own.
    sub_url_template: Option<String>,
    name_prefix: Option<String>,
    transport: Option<String>,
    record: Option<bool>,
}

fn vendor_templates(vendor: &str) -> Option<(&'static str, &'static str)> {
    match vendor {
        "hikvision" => Some((
            "rtsp://{host}:{port}/Streaming/Channels/{channel}01",
            "rtsp://{host}:{port}/Streaming/Channels/{channel}02",
        )),
        "dahua" => Some((
            "rtsp://{host}:{port}/cam/realmonitor?channel={channel}&subtype=0",
            "rtsp://{host}:{port}/cam/realmonitor?channel={channel}&subtype=1",
        )),
        _ => None,
    }
}

fn fill(template: &str, host: &str, port: u16, channel: u32) -> String {
    template
        .replace("{host}", host)
        .replace("{port}", &port.to_string())
        .replace("{channel}", &channel.to_string())
}

/// The channel numbers of an NVR import: a count (1..N) or a list, sorted and without repeats.
fn channel_numbers(c: &Channels) -> ApiResult<Vec<u32>> {
    match c {
        Channels::Count(n) if (1..=256).contains(n) => Ok((1..=*n).collect()),
        Channels::List(list)
            if !list.is_empty()
                && list.len() <= 256
                && list.iter().all(|c| (1..=999).contains(c)) =>
        {
            let mut l = list.clone();
            l.sort_unstable();
            l.dedup();
            Ok(l)
        }
        _ => Err(ApiError::invalid(
            "channels must be a count from 1 to 256 or a list of channel numbers 1..999",
        )),
    }
}

/// The URL templates of an import and the credentials written into them.
struct Templates {
    main: String,
    sub: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

/// The vendor's templates, or the given ones with any credentials taken out of them (templates are
/// stored and shown).
fn templates(vendor: &str, b: &NvrBody) -> ApiResult<Templates> {
    let (mut username, mut password) = (None, None);
    let mut strip = |t: &str| {
        let (t, u, p) = validate::template_credentials(t);
        username = username.take().or(u);
        password = password.take().or(p);
        t
    };
    let given = (
        b.url_template.as_deref().map(&mut strip),
        b.sub_url_template.as_deref().map(&mut strip),
    );
    let (main, sub) = match (vendor_templates(vendor), given) {
        (_, (Some(t), sub)) => (t, sub),
        (Some((m, s)), (None, _)) => (m.to_owned(), Some(s.to_owned())),
        (None, (None, _)) => {
            return Err(ApiError::invalid(
                "url_template is required for a generic NVR",
            ))
        }
    };
    if !main.contains("{channel}") {
        return Err(ApiError::invalid("url_template must contain {channel}"));
    }
    Ok(Templates {
        main,
        sub,
        username,
        password,
    })
}

/// One camera per channel: (channel, name, main URL, sub URL).
fn channel_cameras(
    t: &Templates,
    host: &str,
    port: u16,
    prefix: &str,
    channels: &[u32],
) -> ApiResult<Vec<db::cameras::NvrChannel>> {
    let mut list = Vec::with_capacity(channels.len());
    for ch in channels {
        let (main, _, _) = validate::rtsp_url("url_template", &fill(&t.main, host, port, *ch))?;
        let sub = match &t.sub {
            Some(s) => Some(
                validate::rtsp_url("sub_url_template", &fill(s, host, port, *ch))?
                    .0
                    .to_string(),
            ),
            None => None,
        };
        list.push((
            *ch as i64,
            format!("{prefix} ch{ch:02}"),
            main.to_string(),
            sub,
        ));
    }
    Ok(list)
}

pub async fn import_nvr(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Json(b): Json<NvrBody>,
) -> ApiResult<Response> {
    let site = visible_site(&s, &p, b.site_id)
        .await
        .map_err(|_| ApiError::invalid(format!("site_id {} does not exist", b.site_id)))?;
    let vendor = validate::one_of("vendor", &b.vendor, &["hikvision", "dahua", "generic"])?;
    let host = validate::name("host", &b.host, 253)?;
    if host.contains(['/', '@', ' ', '?', '#']) {
        return Err(ApiError::invalid("host must be a host name or address"));
    }
    let port = b.port.unwrap_or(554);
    if port == 0 {
        return Err(ApiError::invalid("port must be between 1 and 65535"));
    }
    let channels = channel_numbers(&b.channels)?;
    let templates = templates(&vendor, &b)?;
    let transport = validate::one_of(
        "transport",
        b.transport.as_deref().unwrap_or("tcp"),
        TRANSPORTS,
    )?;
    let prefix = match &b.name_prefix {
        Some(n) => validate::name("name_prefix", n, 80)?,
        None => host.clone(),
    };
    let list = channel_cameras(&templates, &host, port, &prefix, &channels)?;
    let username = b.username.filter(|u| !u.is_empty()).or(templates.username);
    let password = b.password.filter(|p| !p.is_empty()).or(templates.password);
    validate::credentials(username.as_deref(), password.as_deref())?;
    let input = db::cameras::NvrInput {
        site_id: b.site_id,
        vendor,
        host,
        port,
        url_template: templates.main,
        username,
        channels: list,
        password: password
            .map(|p| s.secrets.seal(&p).map_err(ApiError::internal))
            .transpose()?,
        transport,
        record: b.record.unwrap_or(true),
    };
    let nvr = db::cameras::insert_nvr(&s.pool, &input).await?;
    for id in &nvr.camera_ids {
        apply(&s, &db::cameras::get(&s.pool, *id).await?);
    }
    tracing::info!(nvr = nvr.id, actor = %p.actor(), channels = nvr.camera_ids.len(), "nvr imported");
    let note = AuditNote {
        target: Some(format!("/nvrs/{}", nvr.id)),
        region_code: Some(site.region_code),
        detail: Some(format!("{} channels at {}", nvr.camera_ids.len(), nvr.host)),
        ..Default::default()
    };
    Ok(noted((StatusCode::CREATED, Json(nvr)), note))
}
