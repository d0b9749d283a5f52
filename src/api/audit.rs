//! `GET /audit?actor=&action=&from=&to=&limit=`: the audit log, newest first, scoped by region like
//! everything else (a row belongs to the region of what it touched; rows without a region, such as logins
//! of global users, are for global admins only).

use super::error::{ApiError, ApiResult, Json, Query};
use super::AppState;
use crate::audit::{self, Row};
use crate::auth::Principal;
use axum::extract::State;
use axum::Extension;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    actor: Option<String>,
    action: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<i64>,
}

fn time(field: &str, v: &Option<String>) -> ApiResult<Option<i64>> {
    v.as_deref()
        .map(|t| crate::time::parse_ms(field, t).map_err(|e| ApiError::invalid(e.to_string())))
        .transpose()
}

pub async fn list(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Json<Vec<Row>>> {
    let limit = q.limit.unwrap_or(500);
    if !(1..=5000).contains(&limit) {
        return Err(ApiError::invalid("limit must be between 1 and 5000"));
    }
    let filter = audit::Filter {
        actor: q.actor.filter(|a| !a.is_empty()),
        action: q.action.filter(|a| !a.is_empty()),
        from_ms: time("from", &q.from)?,
        to_ms: time("to", &q.to)?,
        limit,
    };
    Ok(Json(audit::query(&s.pool, &filter, &p.scope).await?))
}
