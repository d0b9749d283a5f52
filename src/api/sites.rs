//! Regions, sites and positions.

use super::access::{noted, scoped, AuditNote};
use super::error::{ApiError, ApiResult, Json, Path};
use super::{validate, AppState};
use crate::auth::{Principal, Scope};
use crate::db::{self, regions::Region, sites::Site};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use serde::{Deserialize, Serialize};

pub const SITE_KINDS: &[&str] = &["service_hall", "bid_evaluation"];
const LEVELS: &[&str] = &["province", "city", "district"];
const POSITION_KINDS: &[&str] = &["window", "room", "seat"];

pub async fn list_regions(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Json<Vec<Region>>> {
    let all = db::regions::list(&s.pool).await?;
    // A user also sees the regions above their own, so that the tree can be drawn down to them.
    let mut visible = Vec::with_capacity(all.len());
    for r in all {
        if p.scope.allows(&r.code) || is_ancestor_of_scope(&s, &p.scope, &r.code).await? {
            visible.push(r);
        }
    }
    Ok(Json(visible))
}

async fn is_ancestor_of_scope(s: &AppState, scope: &Scope, code: &str) -> ApiResult<bool> {
    let Scope::Regions(set) = scope else {
        return Ok(true);
    };
    for own in set {
        if db::regions::ancestors(&s.pool, own)
            .await?
            .iter()
            .any(|a| a == code)
        {
            return Ok(true);
        }
    }
    Ok(false)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRegion {
    code: String,
    name: String,
    level: String,
    parent_code: Option<String>,
}

pub async fn create_region(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Json(b): Json<NewRegion>,
) -> ApiResult<Response> {
    let region = Region {
        code: validate::region_code("code", &b.code)?,
        name: validate::name("name", &b.name, 100)?,
        level: validate::one_of("level", &b.level, LEVELS)?,
        parent_code: b
            .parent_code
            .as_deref()
            .map(|c| validate::region_code("parent_code", c))
            .transpose()?,
    };
    match &region.parent_code {
        Some(parent) => {
            // A regional admin may add regions below their own; the parent must exist and be theirs.
            db::regions::get(&s.pool, parent)
                .await
                .map_err(|_| ApiError::invalid(format!("parent_code {parent} does not exist")))?;
            scoped(&p, parent)
                .map_err(|_| ApiError::invalid(format!("parent_code {parent} does not exist")))?;
        }
        None if p.scope != Scope::All => {
            return Err(ApiError::forbidden(
                "only a global admin may add a top-level region",
            ))
        }
        None => {}
    }
    db::regions::create_or_revive(&s.pool, &region).await?;
    let note = AuditNote {
        target: Some(format!("/regions/{}", region.code)),
        region_code: Some(region.code.clone()),
        detail: Some(region.name.clone()),
        ..Default::default()
    };
    Ok(noted((StatusCode::CREATED, Json(region)), note))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionPatch {
    name: String,
}

/// `PATCH /regions/{code}`: renames a region. The code, level and parent are what the region is (GB/T
/// 2260); a region with another code is another region. The layer has checked that it is in scope.
pub async fn update_region(
    State(s): State<AppState>,
    Path(code): Path<String>,
    Json(b): Json<RegionPatch>,
) -> ApiResult<Response> {
    let old = db::regions::get(&s.pool, &code).await?;
    let name = validate::name("name", &b.name, 100)?;
    db::regions::rename(&s.pool, &code, &name).await?;
    let note = AuditNote {
        target: Some(format!("/regions/{code}")),
        region_code: Some(code.clone()),
        detail: Some(format!("{} -> {name}", old.name)),
        ..Default::default()
    };
    Ok(noted(Json(Region { name, ..old }), note))
}

/// `DELETE /regions/{code}`: only a region that nothing live refers to (see [`db::regions::delete`]); a
/// regional admin's own region always has them bound to it, so it stays. The region is kept as a deleted
/// row, so what was scoped to it (its audit rows) stays visible to the admins above it.
pub async fn delete_region(
    State(s): State<AppState>,
    Path(code): Path<String>,
) -> ApiResult<Response> {
    let old = db::regions::get(&s.pool, &code).await?;
    db::regions::delete(&s.pool, &code).await?;
    let note = AuditNote {
        target: Some(format!("/regions/{code}")),
        region_code: Some(code),
        detail: Some(old.name),
        ..Default::default()
    };
    Ok(noted(StatusCode::NO_CONTENT, note))
}

/// A site of this server, or one a linked city shares (negative id, with the link's name).
#[derive(Serialize)]
#[serde(untagged)]
pub enum ListedSite {
    Local(Site),
    Remote {
        #[serde(flatten)]
        site: crate::federation::remote::SharedSite,
        link: String,
    },
}

pub async fn list_sites(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Json<Vec<ListedSite>>> {
    let sites = db::sites::list(&s.pool).await?;
    let local = sites
        .into_iter()
        .filter(|site| p.scope.allows(&site.region_code))
        .map(ListedSite::Local);
    let remote = s
        .federation
        .sites()
        .into_iter()
        .filter(|(_, site)| p.scope.allows(&site.region_code))
        .map(|(link, site)| ListedSite::Remote { site, link });
    Ok(Json(local.chain(remote).collect()))
}

/// The site, if it exists and is in the caller's scope.
pub async fn visible_site(s: &AppState, p: &Principal, id: i64) -> ApiResult<Site> {
    let site = db::sites::get(&s.pool, id).await?;
    scoped(p, &site.region_code)?;
    Ok(site)
}

pub async fn get_site(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Site>> {
    Ok(Json(visible_site(&s, &p, id).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSite {
    name: String,
    kind: String,
    region_code: String,
}

async fn check_region(s: &AppState, p: &Principal, code: &str) -> ApiResult<String> {
    let code = validate::region_code("region_code", code)?;
    let missing = || ApiError::invalid(format!("region_code {code} does not exist"));
    db::regions::get(&s.pool, &code)
        .await
        .map_err(|_| missing())?;
    scoped(p, &code).map_err(|_| missing())?;
    Ok(code)
}

pub async fn create_site(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Json(b): Json<NewSite>,
) -> ApiResult<Response> {
    let name = validate::name("name", &b.name, 100)?;
    let kind = validate::one_of("kind", &b.kind, SITE_KINDS)?;
    let region = check_region(&s, &p, &b.region_code).await?;
    let site = db::sites::insert(&s.pool, &name, &kind, &region).await?;
    let note = AuditNote {
        target: Some(format!("/sites/{}", site.id)),
        region_code: Some(site.region_code.clone()),
        detail: Some(site.name.clone()),
        ..Default::default()
    };
    Ok(noted((StatusCode::CREATED, Json(site)), note))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SitePatch {
    name: Option<String>,
    kind: Option<String>,
    region_code: Option<String>,
}

pub async fn update_site(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
    Json(b): Json<SitePatch>,
) -> ApiResult<Json<Site>> {
    let mut site = visible_site(&s, &p, id).await?;
    if let Some(n) = &b.name {
        site.name = validate::name("name", n, 100)?;
    }
    if let Some(k) = &b.kind {
        site.kind = validate::one_of("kind", k, SITE_KINDS)?;
    }
    if let Some(r) = &b.region_code {
        site.region_code = check_region(&s, &p, r).await?;
    }
    db::sites::update(&s.pool, &site).await?;
    Ok(Json(site))
}

pub async fn delete_site(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    visible_site(&s, &p, id).await?;
    db::sites::delete(&s.pool, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_positions(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Vec<db::sites::Position>>> {
    visible_site(&s, &p, id).await?;
    Ok(Json(db::sites::positions(&s.pool, id).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPosition {
    code: String,
    kind: String,
    #[serde(default)]
    camera_ids: Vec<i64>,
}

pub async fn create_position(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
    Json(b): Json<NewPosition>,
) -> ApiResult<(StatusCode, Json<db::sites::Position>)> {
    visible_site(&s, &p, id).await?;
    let code = validate::name("code", &b.code, 50)?;
    let kind = validate::one_of("kind", &b.kind, POSITION_KINDS)?;
    let pos = db::sites::insert_position(&s.pool, id, &code, &kind, &b.camera_ids).await?;
    Ok((StatusCode::CREATED, Json(pos)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PositionChange {
    kind: Option<String>,
    camera_ids: Option<Vec<i64>>,
}

/// Changes a position's kind or its cameras. The code cannot change: case events name positions by it.
pub async fn update_position(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path((id, position_id)): Path<(i64, i64)>,
    Json(b): Json<PositionChange>,
) -> ApiResult<Json<db::sites::Position>> {
    visible_site(&s, &p, id).await?;
    let kind = b
        .kind
        .as_deref()
        .map(|k| validate::one_of("kind", k, POSITION_KINDS))
        .transpose()?;
    if b.camera_ids.as_ref().is_some_and(|c| c.len() > 1000) {
        return Err(ApiError::invalid("camera_ids has more than 1000 entries"));
    }
    let pos = db::sites::update_position(
        &s.pool,
        id,
        position_id,
        kind.as_deref(),
        b.camera_ids.as_deref(),
    )
    .await?;
    Ok(Json(pos))
}

pub async fn delete_position(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path((id, position_id)): Path<(i64, i64)>,
) -> ApiResult<StatusCode> {
    visible_site(&s, &p, id).await?;
    db::sites::delete_position(&s.pool, id, position_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
