//! GB/T 28181 devices in the console: `GET /gb/devices` lists those that registered (pending ones,
//! not yet bound, and those of the sites the caller may see); `POST /gb/devices/{id}/bind` binds one to a
//! site and makes each channel of its catalog a camera (`gb28181://DEVICE/CHANNEL`) that records, streams
//! and joins cases as an RTSP camera does.

use super::access::{noted, scoped, AuditNote};
use super::error::{ApiError, ApiResult, Json, Path};
use super::sites::visible_site;
use super::AppState;
use crate::auth::Principal;
use crate::db::{self, cameras::CameraInput, DbError};
use axum::extract::State;
use axum::response::Response;
use axum::Extension;
use serde::{Deserialize, Serialize};

#[derive(Serialize)]
pub struct ListedDevice {
    id: String,
    name: String,
    manufacturer: String,
    model: String,
    firmware: String,
    state: &'static str,
    address: String,
    transport: String,
    last_keepalive: i64,
    site_id: Option<i64>,
    channels: Vec<db::gb::Channel>,
    /// The device's last DeviceStatus answer (while it is registered).
    device_status: Option<crate::gb28181::registry::DeviceStatus>,
}

#[derive(Serialize)]
pub struct Devices {
    devices: Vec<ListedDevice>,
}

pub async fn list(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Json<Devices>> {
    let sites = db::sites::list(&s.pool).await?;
    let mut devices = Vec::new();
    for d in db::gb::devices(&s.pool).await? {
        // Pending devices belong to no region yet: every admin sees them, to bind them.
        if let Some(site) = d.site_id {
            let region = sites
                .iter()
                .find(|x| x.id == site)
                .map(|x| x.region_code.as_str());
            if !region.is_some_and(|r| p.scope.allows(r)) {
                continue;
            }
        }
        let session = s.gb.as_ref().and_then(|g| g.registry.session(&d.id));
        let online = session.is_some();
        let channels = db::gb::channels(&s.pool, &d.id).await?;
        devices.push(ListedDevice {
            state: if online { "online" } else { "offline" },
            channels,
            id: d.id,
            name: d.name,
            manufacturer: d.manufacturer,
            model: d.model,
            firmware: d.firmware,
            address: d.address,
            transport: d.transport,
            last_keepalive: d.keepalive_at,
            site_id: d.site_id,
            device_status: session.and_then(|s| s.status),
        });
    }
    Ok(Json(Devices { devices }))
}

/// One superior platform as the console shows it (never its password).
#[derive(Serialize)]
pub struct ListedUpstream {
    name: String,
    server: String,
    server_id: String,
    local_id: String,
    region_codes: Vec<String>,
    #[serde(flatten)]
    state: crate::gb28181::upstream::LinkState,
}

#[derive(Serialize)]
pub struct Upstreams {
    upstreams: Vec<ListedUpstream>,
}

/// The superior platforms Vigil registers to, to the admins whose scope covers every region a link
/// shares (a link sharing nothing: to global admins).
pub async fn upstreams(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Json<Upstreams>> {
    let links =
        s.gb.as_ref()
            .and_then(|g| g.registry.upstream.get())
            .map(|u| u.links.clone())
            .unwrap_or_default();
    let upstreams = links
        .iter()
        .filter(|l| p.scope.covers(&l.cfg.region_codes))
        .map(|l| ListedUpstream {
            name: l.cfg.name.clone(),
            server: l.cfg.server.to_string(),
            server_id: l.cfg.server_id.clone(),
            local_id: l.cfg.local_id.clone(),
            region_codes: l.cfg.region_codes.clone(),
            state: l.state(),
        })
        .collect();
    Ok(Json(Upstreams { upstreams }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BindBody {
    site_id: i64,
    /// How its channels send media: `udp` (default), `tcp` (the device connects to Vigil) or
    /// `tcp_active` (Vigil connects to the device).
    #[serde(default)]
    media_transport: Option<String>,
    /// Record its channels (default true).
    #[serde(default)]
    record: Option<bool>,
}

#[derive(Serialize)]
pub struct Bound {
    device_id: String,
    site_id: i64,
    camera_ids: Vec<i64>,
}

pub async fn bind(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    Json(b): Json<BindBody>,
) -> ApiResult<Response> {
    let transport = b.media_transport.unwrap_or_else(|| "udp".into());
    if !["udp", "tcp", "tcp_active"].contains(&transport.as_str()) {
        return Err(ApiError::bad_request(
            "media_transport must be udp, tcp (the device connects) or tcp_active (Vigil connects)",
        ));
    }
    let site = visible_site(&s, &p, b.site_id).await?;
    let device = db::gb::device(&s.pool, &id).await?;
    if let Some(old) = device.site_id {
        let old_site = db::sites::get(&s.pool, old).await?;
        scoped(&p, &old_site.region_code)?;
    }
    db::gb::bind(&s.pool, &id, site.id).await?;
    let mut camera_ids = Vec::new();
    for ch in db::gb::channels(&s.pool, &id).await? {
        if let Some(cam) = ch.camera_id {
            camera_ids.push(cam);
            continue;
        }
        let cam = create_camera(&s, &ch, site.id, &transport, b.record.unwrap_or(true)).await?;
        db::gb::set_camera(&s.pool, &id, &ch.channel_id, cam.id).await?;
        super::cameras::apply(&s, &cam);
        camera_ids.push(cam.id);
    }
    tracing::info!(device = id, site = site.id, cameras = camera_ids.len(), actor = %p.actor(), "GB/T 28181 device bound");
    let note = AuditNote {
        target: Some(format!("/gb/devices/{id}")),
        region_code: Some(site.region_code.clone()),
        detail: Some(format!("site {} ({} channels)", site.id, camera_ids.len())),
        ..Default::default()
    };
    Ok(noted(
        Json(Bound {
            device_id: id,
            site_id: site.id,
            camera_ids,
        }),
        note,
    ))
}

/// A camera for a channel: named as the catalog names it (the channel id when that name is taken).
async fn create_camera(
    s: &AppState,
    ch: &db::gb::Channel,
    site_id: i64,
    media_transport: &str,
    record: bool,
) -> ApiResult<db::cameras::Camera> {
    // Where Vigil connects to the device, the URL says so; the camera's transport is TCP either way.
    let (transport, query) = match media_transport {
        "tcp_active" => ("tcp", "?setup=active"),
        other => (other, ""),
    };
    let base = if ch.name.trim().is_empty() {
        ch.channel_id.clone()
    } else {
        ch.name.trim().to_owned()
    };
    for name in [base.clone(), format!("{base} {}", ch.channel_id)] {
        let input = CameraInput {
            site_id,
            nvr_id: None,
            channel: None,
            name,
            main_url: format!("gb28181://{}/{}{query}", ch.device_id, ch.channel_id),
            sub_url: None,
            username: None,
            password: None,
            transport: transport.to_owned(),
            record,
            record_sub: false,
        };
        match db::cameras::insert(&s.pool, &input).await {
            Ok(c) => return Ok(c),
            Err(DbError::Conflict(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::conflict(format!(
        "a camera named {base:?} already exists in the site"
    )))
}
