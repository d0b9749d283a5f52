//! System health as upper levels assess it (`GET /health`): per site of the caller's regions, the camera
//! online rate now and over the last `hours`, and the recording completeness over the last `hours`; for
//! admins, the disk.
//!
//! Online rate over the period (`online_time_rate`) = online samples / samples of the site's cameras in the
//! hours that meet the window (`cases::uptime`, one sample per camera every `uptime_sample_seconds`); `None`
//! until a sample was taken.
//!
//! Recording completeness of a site = footage indexed for its recorded cameras in the window / the time they
//! should have recorded (the window, or since the camera was added if later). A camera that does not record
//! (`record: false`) counts for the online rate only. Footage still being written counts up to its last
//! fsynced fragment (see `record::index`), so a healthy site reads a little under 100 % for a minute.

use super::error::{ApiError, ApiResult, Json, Query};
use super::AppState;
use crate::auth::{Principal, Role};
use crate::db;
use crate::ingest::StreamState;
use crate::record::{index, retention};
use axum::extract::State;
use axum::Extension;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthQuery {
    hours: Option<u32>,
}

#[derive(Serialize)]
pub struct Disk {
    total_bytes: u64,
    free_bytes: u64,
    recordings_bytes: i64,
}

#[derive(Serialize, Default)]
pub struct SiteHealth {
    site_id: i64,
    name: String,
    kind: String,
    region_code: String,
    cameras: u32,
    online: u32,
    online_rate: Option<f64>,
    uptime_samples: i64,
    online_time_rate: Option<f64>,
    recording_cameras: u32,
    recorded_seconds: f64,
    expected_seconds: f64,
    completeness: Option<f64>,
}

#[derive(Serialize)]
pub struct Health {
    hours: u32,
    disk: Option<Disk>,
    sites: Vec<SiteHealth>,
}

/// The sites of the caller's regions, by id, with nothing counted yet.
async fn visible_sites(s: &AppState, p: &Principal) -> ApiResult<BTreeMap<i64, SiteHealth>> {
    Ok(db::sites::list(&s.pool)
        .await?
        .into_iter()
        .filter(|site| p.scope.allows(&site.region_code))
        .map(|site| {
            let h = SiteHealth {
                site_id: site.id,
                name: site.name,
                kind: site.kind,
                region_code: site.region_code,
                ..SiteHealth::default()
            };
            (h.site_id, h)
        })
        .collect())
}

impl SiteHealth {
    /// The rates from the counts: online now, online over the period (`online` of its uptime samples),
    /// and recording completeness. `None` where there is nothing to divide by.
    fn set_rates(&mut self, online: i64) {
        self.online_rate =
            (self.cameras > 0).then(|| f64::from(self.online) / f64::from(self.cameras));
        self.online_time_rate =
            (self.uptime_samples > 0).then(|| online as f64 / self.uptime_samples as f64);
        self.completeness = (self.expected_seconds > 0.0)
            .then(|| (self.recorded_seconds / self.expected_seconds).min(1.0));
    }
}

/// The data directory's file system and the footage on it (admins only).
async fn disk(s: &AppState) -> ApiResult<Disk> {
    let (total_bytes, free_bytes) = retention::disk_space(&s.cfg.data_dir).unwrap_or((0, 0));
    Ok(Disk {
        total_bytes,
        free_bytes,
        recordings_bytes: index::total_bytes(&s.pool).await?,
    })
}

pub async fn health(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Query(q): Query<HealthQuery>,
    uri: axum::http::Uri,
) -> ApiResult<Json<serde_json::Value>> {
    let own = local_health(&s, &p, &q).await?;
    let mut out = serde_json::to_value(own).map_err(ApiError::internal)?;
    // At a province, the linked cities' sites too, and the cities that did not answer in time.
    let (sites, unreachable) = super::remote_status::city_health(&s, &p, uri.query()).await;
    if let Some(list) = out["sites"].as_array_mut() {
        list.extend(sites);
    }
    out["unreachable"] = serde_json::json!(unreachable);
    Ok(Json(out))
}

/// This server's own sites in the caller's regions.
pub(super) async fn local_health(
    s: &AppState,
    p: &Principal,
    q: &HealthQuery,
) -> ApiResult<Health> {
    let hours = q.hours.unwrap_or(24);
    if !(1..=24 * 90).contains(&hours) {
        return Err(ApiError::invalid("hours must be between 1 and 2160"));
    }
    let now_us = crate::time::now_us();
    let from_us = now_us - i64::from(hours) * 3_600_000_000;
    let mut sites = visible_sites(s, p).await?;
    let recorded = index::recorded_us(&s.pool, from_us, now_us).await?;
    let uptime = crate::cases::uptime::rates(&s.pool, from_us / 1000, now_us / 1000).await?;
    let mut online_samples: BTreeMap<i64, i64> = BTreeMap::new();
    let created = db::cameras::created_at(&s.pool).await?;
    for cam in db::cameras::list(&s.pool).await? {
        let Some(site) = sites.get_mut(&cam.site_id) else {
            continue;
        };
        site.cameras += 1;
        if let Some((samples, online)) = uptime.get(&cam.id) {
            site.uptime_samples += samples;
            *online_samples.entry(cam.site_id).or_default() += online;
        }
        if s.ingest.main_state(cam.id) == StreamState::Online {
            site.online += 1;
        }
        if cam.record {
            site.recording_cameras += 1;
            let since = created
                .get(&cam.id)
                .map_or(from_us, |ms| (ms * 1000).max(from_us));
            site.expected_seconds += (now_us - since).max(0) as f64 / 1e6;
            site.recorded_seconds += *recorded.get(&cam.id).unwrap_or(&0) as f64 / 1e6;
        }
    }
    for site in sites.values_mut() {
        site.set_rates(online_samples.get(&site.site_id).copied().unwrap_or(0));
    }
    let disk = if p.role == Role::Admin {
        Some(disk(s).await?)
    } else {
        None
    };
    Ok(Health {
        hours,
        disk,
        sites: sites.into_values().collect(),
    })
}
