//! Each user's live wall (`/me/wall`): named layouts (a grid of cells, each cell a span of the grid showing
//! one camera or nothing), named tours (cameras cycled every N seconds) and the current choice. Kept on the
//! server so that a supervisor finds the same wall at any screen.
//!
//! The document is checked whole before it replaces the stored one: limits, unique names, cells inside
//! their grid and not overlapping. Camera ids are not checked against the registry (a camera deleted later
//! leaves an empty tile anyway) and give no access: the wall plays only what `/cameras/{id}/live` allows.

use super::error::{ApiError, ApiResult, Json};
use super::{validate, AppState};
use crate::auth::{Principal, Subject};
use crate::db;
use axum::extract::State;
use axum::Extension;
use serde::{Deserialize, Serialize};

const MAX_LAYOUTS: usize = 32;
const MAX_TOURS: usize = 32;
const MAX_GRID: u32 = 8;
const MAX_CELLS: usize = 64;
const MAX_TOUR_CAMERAS: usize = 256;
const TOUR_SECONDS: std::ops::RangeInclusive<u32> = 5..=3600;

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Wall {
    #[serde(default)]
    layouts: Vec<Layout>,
    #[serde(default)]
    tours: Vec<Tour>,
    #[serde(default)]
    current: Current,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Layout {
    name: String,
    cols: u32,
    rows: u32,
    cells: Vec<Cell>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Cell {
    x: u32,
    y: u32,
    w: u32,
    h: u32,
    camera_id: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Tour {
    name: String,
    camera_ids: Vec<i64>,
    seconds: u32,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Current {
    layout: Option<String>,
    tour: Option<String>,
}

fn unique_names<'a>(what: &str, names: impl Iterator<Item = &'a mut String>) -> ApiResult<()> {
    let mut seen = std::collections::HashSet::new();
    for n in names {
        *n = validate::name(&format!("{what} name"), n, 40)?;
        if !seen.insert(n.clone()) {
            return Err(ApiError::invalid(format!("two {what}s are named {n:?}")));
        }
    }
    Ok(())
}

fn check_layout(l: &Layout) -> ApiResult<()> {
    let bad = |m: String| Err(ApiError::invalid(format!("layout {:?}: {m}", l.name)));
    if !(1..=MAX_GRID).contains(&l.cols) || !(1..=MAX_GRID).contains(&l.rows) {
        return bad(format!("cols and rows must be between 1 and {MAX_GRID}"));
    }
    if l.cells.is_empty() || l.cells.len() > MAX_CELLS {
        return bad(format!("it must have between 1 and {MAX_CELLS} cells"));
    }
    let mut taken = vec![false; (l.cols * l.rows) as usize];
    for (i, c) in l.cells.iter().enumerate() {
        let inside = |at: u32, len: u32, max: u32| {
            len > 0 && u64::from(at) + u64::from(len) <= u64::from(max)
        };
        if !inside(c.x, c.w, l.cols) || !inside(c.y, c.h, l.rows) {
            return bad(format!("cell {i} does not lie inside the grid"));
        }
        if c.camera_id.is_some_and(|id| id <= 0) {
            return bad(format!("cell {i} has an invalid camera_id"));
        }
        for y in c.y..c.y + c.h {
            for x in c.x..c.x + c.w {
                let slot = &mut taken[(y * l.cols + x) as usize];
                if *slot {
                    return bad(format!("cell {i} overlaps another cell"));
                }
                *slot = true;
            }
        }
    }
    Ok(())
}

fn check(wall: &mut Wall) -> ApiResult<()> {
    if wall.layouts.len() > MAX_LAYOUTS || wall.tours.len() > MAX_TOURS {
        return Err(ApiError::invalid(format!(
            "a wall has at most {MAX_LAYOUTS} layouts and {MAX_TOURS} tours"
        )));
    }
    unique_names("layout", wall.layouts.iter_mut().map(|l| &mut l.name))?;
    unique_names("tour", wall.tours.iter_mut().map(|t| &mut t.name))?;
    wall.layouts.iter().try_for_each(check_layout)?;
    for t in &wall.tours {
        if t.camera_ids.is_empty() || t.camera_ids.len() > MAX_TOUR_CAMERAS {
            return Err(ApiError::invalid(format!(
                "tour {:?} must have between 1 and {MAX_TOUR_CAMERAS} cameras",
                t.name
            )));
        }
        if t.camera_ids.iter().any(|&id| id <= 0) {
            return Err(ApiError::invalid(format!(
                "tour {:?} has an invalid camera id",
                t.name
            )));
        }
        if !TOUR_SECONDS.contains(&t.seconds) {
            return Err(ApiError::invalid(format!(
                "tour {:?}: seconds must be between {} and {}",
                t.name,
                TOUR_SECONDS.start(),
                TOUR_SECONDS.end()
            )));
        }
    }
    if let Some(n) = &wall.current.layout {
        if !wall.layouts.iter().any(|l| &l.name == n) {
            return Err(ApiError::invalid(format!(
                "current layout {n:?} is not a layout of this wall"
            )));
        }
    }
    if let Some(n) = &wall.current.tour {
        if !wall.tours.iter().any(|t| &t.name == n) {
            return Err(ApiError::invalid(format!(
                "current tour {n:?} is not a tour of this wall"
            )));
        }
    }
    Ok(())
}

fn user_id(p: &Principal) -> ApiResult<i64> {
    match &p.subject {
        Subject::User { id, .. } => Ok(*id),
        Subject::Token { .. } => Err(ApiError::invalid(
            "a wall belongs to a user; an API token has none",
        )),
    }
}

pub async fn get(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Json<Wall>> {
    let id = user_id(&p)?;
    let wall = match db::walls::get(&s.pool, id).await? {
        Some(doc) => serde_json::from_str(&doc).map_err(ApiError::internal)?,
        None => Wall::default(),
    };
    Ok(Json(wall))
}

pub async fn put(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Json(mut wall): Json<Wall>,
) -> ApiResult<Json<Wall>> {
    let id = user_id(&p)?;
    check(&mut wall)?;
    let doc = serde_json::to_string(&wall).map_err(ApiError::internal)?;
    db::walls::put(&s.pool, id, &doc).await?;
    Ok(Json(wall))
}
