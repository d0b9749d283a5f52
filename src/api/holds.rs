//! Holds: footage exempt from retention. `POST /holds` places one (a case's clips, or a camera's range),
//! `GET /holds` lists the active ones the caller may see, `DELETE /holds/{id}` releases one.
//!
//! Limits: a hold names a case (its clips, as the caller may see them) or a camera and a range of at
//! most [`MAX_RANGE_US`], with a reason; a camera's range may name the case it is for. A hold is
//! released, never deleted (who and when stay in its row and in the audit log), by an admin of its
//! camera's region: investigators place holds, releasing footage to retention is an admin's decision.
//! The automatic holds of bid sessions are kept by rule and cannot be released by hand. Every placement
//! and release is audited under the region of its case or camera.

use super::access::{noted, AuditNote};
use super::cameras::visible_camera;
use super::error::{ApiError, ApiResult, Json, Path, Query};
use super::recordings::parse_time;
use super::AppState;
use crate::auth::Principal;
use crate::record::index;
use crate::time::us_to_rfc3339;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use serde::{Deserialize, Serialize};

/// The longest range one hold of a camera may cover (a bid evaluation may last days, not months).
pub const MAX_RANGE_US: i64 = 31 * 86_400 * 1_000_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HoldBody {
    camera_id: Option<i64>,
    case_no: Option<String>,
    start: Option<String>,
    end: Option<String>,
    reason: Option<String>,
}

#[derive(Serialize, sqlx::FromRow)]
pub struct Hold {
    id: i64,
    camera_id: Option<i64>,
    case_no: Option<String>,
    #[sqlx(rename = "start_us")]
    #[serde(serialize_with = "us")]
    start: i64,
    #[sqlx(rename = "end_us")]
    #[serde(serialize_with = "us")]
    end: i64,
    reason: String,
    created_by: String,
}

fn us<S: serde::Serializer>(v: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&us_to_rfc3339(*v))
}

fn reason(b: &HoldBody) -> ApiResult<String> {
    let r = b.reason.as_deref().map(str::trim).unwrap_or_default();
    if r.is_empty() || r.chars().count() > 500 {
        return Err(ApiError::invalid(
            "reason is required (at most 500 characters)",
        ));
    }
    Ok(r.to_owned())
}

/// `POST /holds {case_no, reason}` or `{camera_id, start, end, reason[, case_no]}`.
pub async fn create(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Json(b): Json<HoldBody>,
) -> ApiResult<Response> {
    match (&b.case_no, b.camera_id) {
        (Some(case_no), None) => hold_case(&s, &p, case_no, &b).await,
        (_, Some(camera_id)) => hold_range(&s, &p, camera_id, &b).await,
        (None, None) => Err(ApiError::invalid(
            "hold {case_no, reason} or {camera_id, start, end, reason}",
        )),
    }
}

async fn hold_case(
    s: &AppState,
    p: &Principal,
    case_no: &str,
    b: &HoldBody,
) -> ApiResult<Response> {
    if b.start.is_some() || b.end.is_some() {
        return Err(ApiError::invalid(
            "a case is held as its clips are: no start or end with a case_no alone",
        ));
    }
    let reason = reason(b)?;
    let case = super::cases::visible_case(s, p, case_no)
        .await
        .map_err(|_| ApiError::invalid(format!("case_no {case_no} does not exist")))?;
    // Filed under the case's region, whether the hold is made or refused.
    let note = AuditNote {
        target: Some(format!("/cases/{}", case.case_no)),
        region_code: Some(case.region_code.clone()),
        ..AuditNote::default()
    };
    Ok(match super::cases::hold_case(s, p, case, &reason).await {
        Ok(held) => noted(held, note),
        Err(e) => noted(e, note),
    })
}

async fn hold_range(
    s: &AppState,
    p: &Principal,
    camera_id: i64,
    b: &HoldBody,
) -> ApiResult<Response> {
    let reason = reason(b)?;
    let time = |field: &str, v: &Option<String>| {
        v.as_deref()
            .ok_or_else(|| ApiError::invalid(format!("{field} is required")))
            .and_then(|t| parse_time(field, t))
    };
    let (start, end) = (time("start", &b.start)?, time("end", &b.end)?);
    if end <= start {
        return Err(ApiError::invalid("end must be after start"));
    }
    if end - start > MAX_RANGE_US {
        return Err(ApiError::invalid(
            "a hold covers at most 31 days; hold a longer stretch as several holds, each with its reason",
        ));
    }
    let cam = visible_camera(s, p, camera_id)
        .await
        .map_err(|_| ApiError::invalid(format!("camera_id {camera_id} does not exist")))?;
    if let Some(case_no) = &b.case_no {
        super::cases::visible_case(s, p, case_no)
            .await
            .map_err(|_| ApiError::invalid(format!("case_no {case_no} does not exist")))?;
    }
    let actor = p.actor();
    let h = index::insert_hold(
        &s.pool,
        camera_id,
        b.case_no.as_deref(),
        start,
        end,
        &reason,
        &actor,
    )
    .await?;
    tracing::info!(camera = camera_id, actor = %actor, hold = h.id, "hold placed");
    let held = Hold {
        id: h.id,
        camera_id: Some(camera_id),
        case_no: h.case_no,
        start,
        end,
        reason: h.reason,
        created_by: h.created_by,
    };
    let note = AuditNote {
        target: Some(format!("/cameras/{camera_id}")),
        region_code: Some(cam.region_code),
        ..AuditNote::default()
    };
    Ok(noted((StatusCode::CREATED, Json(held)), note))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    camera_id: Option<i64>,
    case_no: Option<String>,
}

/// `GET /holds?camera_id=&case_no=`: the active holds of cameras the caller may see (a hold of a camera
/// that is gone has no region: global admins only).
pub async fn list(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Vec<Hold>>> {
    let mut sql = crate::db::sql::SqlBuilder::new(
        "SELECT h.id, h.camera_id, h.case_no, h.start_us, h.end_us, h.reason, h.created_by
         FROM holds h LEFT JOIN cameras c ON c.id = h.camera_id LEFT JOIN sites t ON t.id = c.site_id
         WHERE h.released_at IS NULL",
    );
    if let Some(id) = q.camera_id {
        sql.push(" AND h.camera_id = ").push_bind(id);
    }
    if let Some(no) = q.case_no {
        sql.push(" AND h.case_no = ").push_bind(no);
    }
    if !p.scope.push_filter(&mut sql, "t.region_code") {
        return Ok(Json(Vec::new()));
    }
    sql.push(" ORDER BY h.id DESC LIMIT 1000");
    Ok(Json(
        sql.fetch_all::<Hold>(&s.pool)
            .await
            .map_err(ApiError::internal)?,
    ))
}

/// `DELETE /holds/{id}`: releases a hold (the access layer has checked its camera's region).
pub async fn release(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    let (created_by, released): (String, Option<i64>) =
        sqlx::query_as("SELECT created_by, released_at FROM holds WHERE id = $1")
            .bind(id)
            .fetch_optional(&s.pool)
            .await
            .map_err(ApiError::internal)?
            .ok_or_else(ApiError::not_found)?;
    if released.is_some() {
        return Err(ApiError::not_found());
    }
    if created_by == crate::cases::holds::BID_HOLDER {
        return Err(ApiError::conflict(
            "bid sessions are held by rule (kept for good); this hold cannot be released",
        ));
    }
    sqlx::query(
        "UPDATE holds SET released_at = $1, released_by = $2 WHERE id = $3 AND released_at IS NULL",
    )
    .bind(crate::db::now_ms())
    .bind(p.actor())
    .bind(id)
    .execute(&s.pool)
    .await
    .map_err(ApiError::internal)?;
    tracing::info!(hold = id, actor = %p.actor(), "hold released");
    Ok(StatusCode::NO_CONTENT)
}
