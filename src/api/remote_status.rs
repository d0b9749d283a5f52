//! Alarms and health of the linked cities (docs/federation.md).
//!
//! At the city: `GET /api/v1/link/alarms` and `GET /api/v1/link/health` with the query of the province's
//! own routes, answered with the city's own alarms and sites (never those of its own links), as a caller
//! of the grant's regions. At the province: `GET /alarms` and `GET /health` add what every linked city
//! answered within `[federation] search_deadline_ms` (`super::fan_out`), each with `link` and the ids the
//! province gives the city's sites and cameras; `GET /health` lists the cities that did not answer in
//! `unreachable`.
//!
//! Invariant: the province keeps only what lies in its caller's regions.

use super::cases::{self, AlarmQuery};
use super::error::{ApiResult, Query};
use super::fan_out::ask_cities;
use super::health::{self, HealthQuery};
use super::link_footage::{link_caller, proved};
use super::AppState;
use crate::auth::Principal;
use crate::federation::remote::remote_id;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// `GET /api/v1/link/alarms` at the city.
pub async fn link_alarms(
    State(s): State<AppState>,
    Query(q): Query<AlarmQuery>,
    headers: HeaderMap,
    uri: Uri,
) -> ApiResult<Response> {
    let (p, _, _, proof) = link_caller(&s, "GET", &headers, &uri).await?;
    let alarms = cases::local_alarms(&s, &p, &q).await?;
    Ok(proved(axum::Json(alarms).into_response(), &proof))
}

/// `GET /api/v1/link/health` at the city.
pub async fn link_health(
    State(s): State<AppState>,
    Query(q): Query<HealthQuery>,
    headers: HeaderMap,
    uri: Uri,
) -> ApiResult<Response> {
    let (p, _, _, proof) = link_caller(&s, "GET", &headers, &uri).await?;
    let h = health::local_health(&s, &p, &q).await?;
    Ok(proved(axum::Json(h).into_response(), &proof))
}

/// Renames a city's id field to the province's id of it (`None` when it cannot be named).
fn rename(v: &mut Value, field: &str, link: i64) {
    let id = v[field].as_i64().and_then(|id| remote_id(link, id));
    v[field] = id.map_or(Value::Null, Value::from);
}

fn query(q: Option<&str>) -> String {
    q.map(|q| format!("?{q}")).unwrap_or_default()
}

/// The linked cities' alarms for this query, within the caller's regions.
pub async fn city_alarms(s: &AppState, p: &Principal, q: Option<&str>) -> Vec<Value> {
    let target = format!("/api/v1/link/alarms{}", query(q));
    let mut out = Vec::new();
    for (link, body) in ask_cities(s, &p.actor(), &target).await.answers {
        for mut a in body.as_array().cloned().unwrap_or_default() {
            if !p
                .scope
                .allows(a["region_code"].as_str().unwrap_or_default())
            {
                continue;
            }
            rename(&mut a, "id", link.id);
            rename(&mut a, "site_id", link.id);
            let cameras: Vec<Value> = a["camera_ids"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| remote_id(link.id, c.as_i64()?).map(Value::from))
                .collect();
            a["camera_ids"] = Value::from(cameras);
            a["link"] = Value::from(link.name.clone());
            out.push(a);
        }
    }
    out
}

/// The linked cities' sites' health for this query, within the caller's regions; and the cities that
/// did not answer in time.
pub async fn city_health(
    s: &AppState,
    p: &Principal,
    q: Option<&str>,
) -> (Vec<Value>, Vec<String>) {
    let target = format!("/api/v1/link/health{}", query(q));
    let got = ask_cities(s, &p.actor(), &target).await;
    let mut sites = Vec::new();
    for (link, body) in got.answers {
        for mut site in body["sites"].as_array().cloned().unwrap_or_default() {
            if !p
                .scope
                .allows(site["region_code"].as_str().unwrap_or_default())
            {
                continue;
            }
            rename(&mut site, "site_id", link.id);
            site["link"] = Value::from(link.name.clone());
            sites.push(site);
        }
    }
    (sites, got.unreachable)
}
