//! Case search across linked cities (docs/federation.md). At the province, the first page of `GET /cases`
//! fans out to every linked city at once (`GET /api/v1/link/cases` with the same query, signed,
//! `super::fan_out`) and merges what comes back within the deadline with its own cases, each city's
//! named on its cases (`link`); a city that does not answer in time, or refuses, is listed in
//! `unreachable`: partial results, never a hang. At the city, the link's call is answered by the same
//! search, as a caller of the grant's regions.
//!
//! Invariants: the province keeps only cases in its caller's regions (the cities' regions are mirrored
//! into its tree); a city's site ids are given as the province names them (negative, see
//! `federation::remote`); later pages (`after`) are the province's own.

use super::error::{ApiResult, Query};
use super::fan_out::ask_cities;
use super::link_footage::{link_caller, proved};
use super::AppState;
use crate::auth::Principal;
use crate::federation::remote;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde_json::Value;

/// `GET /api/v1/link/cases` at the city.
pub async fn city_cases(
    State(s): State<AppState>,
    Query(q): Query<super::cases::CaseQuery>,
    headers: HeaderMap,
    uri: Uri,
) -> ApiResult<Response> {
    let (p, _, _, proof) = link_caller(&s, "GET", &headers, &uri).await?;
    let list = super::cases::list_cases(State(s), Extension(p), Query(q)).await?;
    Ok(proved(list.into_response(), &proof))
}

/// The cases of every linked city for this query, and the cities that gave none in time.
pub async fn fan_out(
    s: &AppState,
    p: &Principal,
    query: Option<&str>,
) -> (Vec<Value>, Vec<String>) {
    let target = format!(
        "/api/v1/link/cases{}",
        query.map(|q| format!("?{q}")).unwrap_or_default()
    );
    let got = ask_cities(s, &p.actor(), &target).await;
    let mut cases = Vec::new();
    for (link, body) in got.answers {
        for mut c in body["cases"].as_array().cloned().unwrap_or_default() {
            let region = c["region_code"].as_str().unwrap_or_default();
            if !p.scope.allows(region) {
                continue;
            }
            let site = c["site_id"]
                .as_i64()
                .and_then(|id| remote::remote_id(link.id, id));
            c["site_id"] = site.map_or(Value::Null, Value::from);
            c["link"] = Value::from(link.name.clone());
            // Its details are at the city: no province route names it.
            c["url"] = Value::Null;
            cases.push(c);
        }
    }
    (cases, got.unreachable)
}
