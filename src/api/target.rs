//! The object a route's path names, and its region: what the access layer checks against the caller's
//! scope before any handler runs.
//!
//! The object is named by the segment before the path's first parameter: `/cameras/{id}...` is a camera,
//! `/sites/{id}...` a site, `/users/{id}` a user, `/tokens/{id}` a token, `/regions/{code}` a region (its
//! own region). A camera's or site's region is its site's; a user's or token's regions are the ones it is
//! bound to (none: global, so only a global admin may touch it). A kind not listed here (yet) is not resolved, and its handler must check the region
//! itself; a new kind of object (cases, exports, ...) gets layer enforcement by adding an arm to
//! [`resolve`]. An id that does not parse or names nothing is left to the handler (400 or 404).

use super::error::ApiError;
use crate::db::{self, Pool};

/// An object named by the path.
#[derive(Debug, Clone)]
pub struct Target {
    pub kind: &'static str,
    pub id: i64,
    /// The regions the object belongs to; the caller's scope must cover them all.
    pub region_codes: Vec<String>,
}

/// The object of the route's path, when it is of a known kind and exists.
pub async fn resolve(
    pool: &Pool,
    template: &str,
    params: &[(String, String)],
) -> Result<Option<Target>, ApiError> {
    let segments: Vec<&str> = template.split('/').collect();
    let Some(pos) = segments.iter().position(|s| s.starts_with('{')) else {
        return Ok(None);
    };
    let name = segments[pos].trim_start_matches('{').trim_end_matches('}');
    let kind = if pos > 0 { segments[pos - 1] } else { "" };
    let Some(raw) = params.iter().find(|(k, _)| k == name).map(|(_, v)| v) else {
        return Ok(None);
    };
    let Ok(id) = raw.parse::<i64>() else {
        return Ok(None);
    };
    let region_codes: Option<Vec<String>> = match kind {
        // A region is its own region; its code is its id.
        "regions" => sqlx::query_as::<_, (String,)>(
            "SELECT code FROM regions WHERE code = ? AND deleted_at IS NULL",
        )
        .bind(raw)
        .fetch_optional(pool)
        .await
        .map_err(ApiError::internal)?
        .map(|(r,)| vec![r]),
        "cameras" => sqlx::query_as::<_, (String,)>(
            "SELECT s.region_code FROM cameras c JOIN sites s ON s.id = c.site_id WHERE c.id = ?",
        )
        .bind(id)
        .fetch_optional(pool)
        .await
        .map_err(ApiError::internal)?
        .map(|(r,)| vec![r]),
        "sites" => sqlx::query_as::<_, (String,)>("SELECT region_code FROM sites WHERE id = ?")
            .bind(id)
            .fetch_optional(pool)
            .await
            .map_err(ApiError::internal)?
            .map(|(r,)| vec![r]),
        "users" => match db::users::get(pool, id).await {
            Ok(u) => Some(u.region_codes),
            Err(db::DbError::NotFound) => None,
            Err(e) => return Err(e.into()),
        },
        "tokens" => match db::tokens::get(pool, id).await {
            Ok(t) => Some(t.region_codes),
            Err(db::DbError::NotFound) => None,
            Err(e) => return Err(e.into()),
        },
        _ => return Ok(None),
    };
    Ok(region_codes.map(|region_codes| Target {
        kind: match kind {
            "cameras" => "camera",
            "sites" => "site",
            "users" => "user",
            "regions" => "region",
            _ => "token",
        },
        id,
        region_codes,
    }))
}
