//! `POST /onvif/discover` `{site_id, interfaces, username, password, timeout_ms}` (admins of the site's
//! region; audited with it): probes the site's network for ONVIF cameras (WS-Discovery from the interfaces given, the default route's when none) and
//! describes each with the credentials given: make, model and media profiles with their sizes and RTSP
//! URIs. Nothing is added: the admin picks what to add (`POST /cameras` with the profiles' URIs). Answers
//! that point elsewhere than their sender are listed in `rejected` and never called.

use super::access::{noted, AuditNote};
use super::error::{ApiError, ApiResult, Json};
use super::sites::visible_site;
use super::AppState;
use crate::auth::Principal;
use crate::onvif::device::{self, Profile};
use crate::onvif::discovery;
use crate::onvif::soap::Credentials;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use serde::{Deserialize, Serialize};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscoverBody {
    /// The site whose network is probed (what the cameras found are added under).
    site_id: i64,
    /// IPv4 addresses of this server's interfaces to probe from (default: the default route's).
    interfaces: Option<Vec<String>>,
    username: Option<String>,
    /// Used for the devices found only; never stored.
    password: Option<String>,
    /// How long answers are waited for (500-10000 ms, default 3000).
    timeout_ms: Option<u64>,
}

#[derive(Serialize)]
pub struct Device {
    /// The device service's URL.
    address: String,
    name: String,
    manufacturer: String,
    model: String,
    firmware: String,
    profiles: Vec<Profile>,
    /// Whether it has a PTZ service.
    ptz: bool,
    /// Why it could not be described (wrong credentials, not ONVIF), if so.
    error: Option<String>,
}

#[derive(Serialize)]
pub struct Discovered {
    devices: Vec<Device>,
    rejected: Vec<discovery::Rejected>,
}

/// The address of the interface the default route leaves by.
fn default_interface() -> Option<Ipv4Addr> {
    let s = std::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).ok()?;
    s.connect(SocketAddr::from((discovery::GROUP, discovery::PORT)))
        .ok()?;
    match s.local_addr().ok()?.ip() {
        std::net::IpAddr::V4(ip) if !ip.is_unspecified() => Some(ip),
        _ => None,
    }
}

fn interfaces(given: Option<&Vec<String>>) -> ApiResult<Vec<Ipv4Addr>> {
    let list = match given {
        Some(l) if !l.is_empty() => l,
        _ => {
            return default_interface().map(|ip| vec![ip]).ok_or_else(|| {
                ApiError::unavailable("this server has no network interface to probe from")
            })
        }
    };
    if list.len() > 16 {
        return Err(ApiError::invalid("at most 16 interfaces"));
    }
    list.iter()
        .map(|s| {
            s.parse::<Ipv4Addr>()
                .map_err(|_| ApiError::invalid(format!("interface {s:?} is not an IPv4 address")))
        })
        .collect()
}

pub async fn discover(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Json(b): Json<DiscoverBody>,
) -> ApiResult<Response> {
    // A site out of the caller's regions reads as missing, as everywhere; a database failure stays one.
    let site = visible_site(&s, &p, b.site_id).await.map_err(|e| {
        if e.status == StatusCode::NOT_FOUND {
            ApiError::invalid(format!("site_id {} does not exist", b.site_id))
        } else {
            e
        }
    })?;
    let ifaces = interfaces(b.interfaces.as_ref())?;
    let wait = match b.timeout_ms {
        None => 3000,
        Some(ms) if (500..=10_000).contains(&ms) => ms,
        Some(_) => return Err(ApiError::invalid("timeout_ms must be from 500 to 10000")),
    };
    let auth = b
        .username
        .filter(|u| !u.is_empty())
        .map(|username| Credentials {
            username,
            password: b.password.unwrap_or_default(),
        });
    let (found, rejected) = discovery::discover(&ifaces, Duration::from_millis(wait))
        .await
        .map_err(|e| ApiError::unavailable(format!("probing: {e}")))?;
    let devices = describe_all(&found, auth.as_ref()).await?;
    let note = AuditNote {
        target: Some(format!("/sites/{}", site.id)),
        region_code: Some(site.region_code),
        detail: Some(format!(
            "{} found, {} set aside, from {}",
            devices.len(),
            rejected.len(),
            ifaces
                .iter()
                .map(Ipv4Addr::to_string)
                .collect::<Vec<_>>()
                .join(" ")
        )),
        ..Default::default()
    };
    Ok(noted(Json(Discovered { devices, rejected }), note))
}

/// Each answering device as the list shows it: its description over its first address, or the error
/// that kept it from one.
async fn describe_all(
    found: &[discovery::Found],
    auth: Option<&Credentials>,
) -> ApiResult<Vec<Device>> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(ApiError::internal)?;
    let described = futures::future::join_all(found.iter().map(|f| {
        let http = &http;
        async move {
            let address = f.xaddrs[0].to_string();
            let d = device::describe(http, &address, auth).await;
            (f, address, d)
        }
    }))
    .await;
    let devices: Vec<Device> = described
        .into_iter()
        .map(|(f, address, d)| match d {
            Ok(d) => Device {
                name: format!("{} {} ({})", d.manufacturer, d.model, f.from),
                address,
                manufacturer: d.manufacturer,
                model: d.model,
                firmware: d.firmware,
                ptz: d.ptz_xaddr.is_some(),
                profiles: d.profiles,
                error: None,
            },
            Err(e) => Device {
                name: f.from.to_string(),
                address,
                manufacturer: String::new(),
                model: String::new(),
                firmware: String::new(),
                profiles: Vec::new(),
                ptz: false,
                error: Some(e.to_string()),
            },
        })
        .collect();
    Ok(devices)
}
