//! Edge retrieval in the console: `GET /backfills?camera_id=` lists the gaps Vigil fetches back from the
//! devices that kept recording (state, progress, why a gap stays a gap), of the cameras the caller may see.

use super::cameras::visible_camera;
use super::error::{ApiResult, Json, Query};
use super::AppState;
use crate::auth::Principal;
use crate::edge::store;
use crate::time::us_to_rfc3339;
use axum::extract::State;
use axum::Extension;
use serde::{Deserialize, Serialize};

/// The most rows one answer carries.
const LIMIT: i64 = 500;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    camera_id: Option<i64>,
}

#[derive(Serialize)]
pub struct Listed {
    id: i64,
    camera_id: i64,
    start: String,
    end: String,
    /// Where the footage is fetched from (`gb28181://DEVICE/CHANNEL`).
    source: String,
    /// pending | pulling | retry | done | nothing | failed
    state: String,
    attempts: i64,
    /// Seconds of the gap recorded so far.
    fetched_s: f64,
    gap_s: f64,
    detail: String,
    updated_at: String,
    next_try_at: Option<String>,
}

#[derive(Serialize)]
pub struct Backfills {
    backfills: Vec<Listed>,
}

pub async fn list(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Backfills>> {
    if let Some(id) = q.camera_id {
        visible_camera(&s, &p, id).await?;
    }
    let rows = store::list(&s.pool, &p.scope, q.camera_id, LIMIT).await?;
    let backfills = rows
        .into_iter()
        .map(|b| Listed {
            id: b.id,
            camera_id: b.camera_id,
            start: us_to_rfc3339(b.start_us),
            end: us_to_rfc3339(b.end_us),
            source: b.source,
            next_try_at: (b.state == "retry").then(|| crate::db::ms_to_rfc3339(b.next_try_at)),
            state: b.state,
            attempts: b.attempts,
            fetched_s: b.fetched_us as f64 / 1e6,
            gap_s: (b.end_us - b.start_us) as f64 / 1e6,
            detail: b.detail,
            updated_at: crate::db::ms_to_rfc3339(b.updated_at),
        })
        .collect();
    Ok(Json(Backfills { backfills }))
}
