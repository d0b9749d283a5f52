//! The object a route's path names, and its region: what the access layer checks against the caller's
//! scope before any handler runs, and what its audit row is filed under.
//!
//! The object is named by the segment before the path's first parameter: `/cameras/{id}...` is a camera,
//! `/sites/{id}...` a site, `/users/{id}` a user, `/tokens/{id}` a token, `/regions/{code}` a region (its
//! own region), `/cases/{case_no}...` a case, `/exports/{id}...` an export, `/holds/{id}` a hold (its camera's region now; none, so global admins only, once the camera is gone). A camera's or site's region is
//! its site's *now* (a camera moved to another city is that city's from the moment it moved); a case's is
//! the region it was filed under; an export's are its case's and those of the cameras its package holds,
//! now. A user's or token's regions are the ones it is bound
//! to (none: global, so only a global admin may touch it). A kind not listed here is not resolved, and its
//! handler must check the region itself. A key that does not parse or names nothing is left to the handler
//! (400 or 404).

use super::error::ApiError;
use crate::db::{self, Pool};

/// An object named by the path.
#[derive(Debug, Clone)]
pub struct Target {
    pub kind: &'static str,
    /// The key of the object as the path gives it (an id, a case number, a region code).
    pub key: String,
    /// The regions the object belongs to; the caller's scope must cover them all.
    pub region_codes: Vec<String>,
}

/// The one region a query with one parameter finds, if it finds a row.
async fn one<'q, T>(pool: &Pool, sql: &'q str, key: T) -> Result<Option<Vec<String>>, ApiError>
where
    T: 'q + Send + sqlx::Encode<'q, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    Ok(sqlx::query_as::<_, (String,)>(sql)
        .bind(key)
        .fetch_optional(pool)
        .await
        .map_err(ApiError::internal)?
        .map(|(r,)| vec![r]))
}

/// A hold's region: its camera's now; none (only a global admin may touch it) when the camera is gone.
async fn hold_regions(pool: &Pool, id: i64) -> Result<Option<Vec<String>>, ApiError> {
    let row: Option<(Option<String>,)> = sqlx::query_as(
        "SELECT s.region_code FROM holds h LEFT JOIN cameras c ON c.id = h.camera_id
         LEFT JOIN sites s ON s.id = c.site_id WHERE h.id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await
    .map_err(ApiError::internal)?;
    Ok(row.map(|(r,)| r.into_iter().collect()))
}

/// An export's regions: its case's, and those each camera whose footage its package holds is in *now*
/// (cameras deleted since have none), so that a camera moved to another city takes the package's readers
/// with it.
pub(super) async fn export_regions(pool: &Pool, id: &str) -> Result<Option<Vec<String>>, ApiError> {
    let row: Option<(String, String)> =
        sqlx::query_as("SELECT region_code, camera_ids FROM exports WHERE id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await
            .map_err(ApiError::internal)?;
    let Some((region, cameras)) = row else {
        return Ok(None);
    };
    // The package's camera ids, kept as a JSON array (written by the server; a row that does not parse
    // is refused rather than read as naming no camera).
    let ids: Vec<i64> = serde_json::from_str(&cameras).map_err(ApiError::internal)?;
    let mut regions = Vec::new();
    if !ids.is_empty() {
        let mut q = crate::db::sql::SqlBuilder::new(
            "SELECT s.region_code FROM cameras c JOIN sites s ON s.id = c.site_id WHERE c.id IN ",
        );
        q.push_list(ids);
        regions = q
            .fetch_all::<(String,)>(pool)
            .await
            .map_err(ApiError::internal)?
            .into_iter()
            .map(|(r,)| r)
            .collect();
    }
    regions.insert(0, region);
    Ok(Some(regions))
}

/// The regions a user or token is bound to, when it exists.
fn bound(got: Result<Vec<String>, db::DbError>) -> Result<Option<Vec<String>>, ApiError> {
    match got {
        Ok(r) => Ok(Some(r)),
        Err(db::DbError::NotFound) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The kind of the object `kind` / `key` and its regions when it exists (`None` for a kind not known
/// here).
async fn regions_of(
    pool: &Pool,
    kind: &str,
    key: &str,
) -> Result<Option<(&'static str, Option<Vec<String>>)>, ApiError> {
    let by_text = |sql| one(pool, sql, key.to_owned());
    let found = match (kind, key.parse::<i64>().ok()) {
        ("regions", _) => (
            "region",
            by_text("SELECT code FROM regions WHERE code = $1 AND deleted_at IS NULL").await?,
        ),
        ("cases", _) => (
            "case",
            by_text("SELECT region_code FROM cases WHERE case_no = $1").await?,
        ),
        ("exports", _) => ("export", export_regions(pool, key).await?),
        ("cameras", Some(id)) => (
            "camera",
            one(
                pool,
                "SELECT s.region_code FROM cameras c JOIN sites s ON s.id = c.site_id WHERE c.id = $1",
                id,
            )
            .await?,
        ),
        ("holds", Some(id)) => ("hold", hold_regions(pool, id).await?),
        ("sites", Some(id)) => (
            "site",
            one(pool, "SELECT region_code FROM sites WHERE id = $1", id).await?,
        ),
        ("users", Some(id)) => ("user", bound(db::users::get(pool, id).await.map(|u| u.region_codes))?),
        ("tokens", Some(id)) => ("token", bound(db::tokens::get(pool, id).await.map(|t| t.region_codes))?),
        _ => return Ok(None),
    };
    Ok(Some(found))
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
    let Some((kind, Some(region_codes))) = regions_of(pool, kind, raw).await? else {
        return Ok(None);
    };
    Ok(Some(Target {
        kind,
        key: raw.clone(),
        region_codes,
    }))
}
