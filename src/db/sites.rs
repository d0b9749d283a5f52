//! Sites (service halls and bid-evaluation sites) and their positions (windows, rooms, seats), each position
//! tied to the cameras that cover it.

use super::{now_ms, DbError, Pool};
use serde::Serialize;

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Site {
    pub id: i64,
    pub name: String,
    pub kind: String,
    pub region_code: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Position {
    pub id: i64,
    pub site_id: i64,
    pub code: String,
    pub kind: String,
    pub camera_ids: Vec<i64>,
}

const SITE_COLUMNS: &str = "id, name, kind, region_code";

pub async fn list(pool: &Pool) -> Result<Vec<Site>, DbError> {
    Ok(
        sqlx::query_as::<_, Site>(&format!("SELECT {SITE_COLUMNS} FROM sites ORDER BY id"))
            .fetch_all(pool)
            .await?,
    )
}

pub async fn get(pool: &Pool, id: i64) -> Result<Site, DbError> {
    sqlx::query_as::<_, Site>(&format!("SELECT {SITE_COLUMNS} FROM sites WHERE id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await?
        .ok_or(DbError::NotFound)
}

pub async fn find_by_name(
    pool: &Pool,
    region_code: &str,
    name: &str,
) -> Result<Option<Site>, DbError> {
    Ok(sqlx::query_as::<_, Site>(&format!(
        "SELECT {SITE_COLUMNS} FROM sites WHERE region_code = $1 AND name = $2"
    ))
    .bind(region_code)
    .bind(name)
    .fetch_optional(pool)
    .await?)
}

pub async fn insert(
    pool: &Pool,
    name: &str,
    kind: &str,
    region_code: &str,
) -> Result<Site, DbError> {
    let id = sqlx::query_scalar::<_, i64>(
        "INSERT INTO sites (name, kind, region_code, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(name)
    .bind(kind)
    .bind(region_code)
    .bind(now_ms())
    .fetch_one(pool)
    .await
    .map_err(|e| DbError::from_constraint(e, "site"))?;
    get(pool, id).await
}

pub async fn update(pool: &Pool, site: &Site) -> Result<(), DbError> {
    let done = sqlx::query("UPDATE sites SET name = $1, kind = $2, region_code = $3 WHERE id = $4")
        .bind(&site.name)
        .bind(&site.kind)
        .bind(&site.region_code)
        .bind(site.id)
        .execute(pool)
        .await
        .map_err(|e| DbError::from_constraint(e, "site"))?;
    if done.rows_affected() == 0 {
        return Err(DbError::NotFound);
    }
    Ok(())
}

/// Deletes a site that has no cameras left (its positions go with it).
pub async fn delete(pool: &Pool, id: i64) -> Result<(), DbError> {
    let done = sqlx::query("DELETE FROM sites WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await
        .map_err(|e| match DbError::from_constraint(e, "site") {
            DbError::Invalid(_) => {
                DbError::Conflict("site still has cameras; delete them first".into())
            }
            other => other,
        })?;
    if done.rows_affected() == 0 {
        return Err(DbError::NotFound);
    }
    Ok(())
}

pub async fn positions(pool: &Pool, site_id: i64) -> Result<Vec<Position>, DbError> {
    let rows: Vec<(i64, i64, String, String)> = sqlx::query_as(
        "SELECT id, site_id, code, kind FROM positions WHERE site_id = $1 ORDER BY code",
    )
    .bind(site_id)
    .fetch_all(pool)
    .await?;
    let ties: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT pc.position_id, pc.camera_id FROM positions p
         JOIN position_cameras pc ON pc.position_id = p.id
         WHERE p.site_id = $1 ORDER BY pc.position_id, pc.camera_id",
    )
    .bind(site_id)
    .fetch_all(pool)
    .await?;
    let mut cameras: std::collections::HashMap<i64, Vec<i64>> = Default::default();
    for (position, camera) in ties {
        cameras.entry(position).or_default().push(camera);
    }
    Ok(rows
        .into_iter()
        .map(|(id, site_id, code, kind)| Position {
            id,
            site_id,
            code,
            kind,
            camera_ids: cameras.remove(&id).unwrap_or_default(),
        })
        .collect())
}

/// Ties a position to exactly `camera_ids` (which must belong to its site), inside the caller's transaction.
/// Returns the ids sorted and without repeats.
async fn tie_cameras(
    tx: &mut crate::db::Tx<'_>,
    site_id: i64,
    position_id: i64,
    camera_ids: &[i64],
) -> Result<Vec<i64>, DbError> {
    let mut ids = camera_ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    for cam in &ids {
        let owner: Option<(i64,)> = sqlx::query_as("SELECT site_id FROM cameras WHERE id = $1")
            .bind(cam)
            .fetch_optional(&mut **tx)
            .await?;
        // One answer for a camera of another site and one that does not exist: the other site may be
        // another city's, whose cameras this caller must not learn of.
        if owner != Some((site_id,)) {
            return Err(DbError::Invalid(format!(
                "camera {cam} does not exist at this site"
            )));
        }
    }
    sqlx::query("DELETE FROM position_cameras WHERE position_id = $1")
        .bind(position_id)
        .execute(&mut **tx)
        .await?;
    for cam in &ids {
        sqlx::query("INSERT INTO position_cameras (position_id, camera_id) VALUES ($1, $2)")
            .bind(position_id)
            .bind(cam)
            .execute(&mut **tx)
            .await
            .map_err(|e| DbError::from_constraint(e, "position camera"))?;
    }
    Ok(ids)
}

/// Creates a position and ties it to cameras, which must belong to the same site; all or nothing.
pub async fn insert_position(
    pool: &Pool,
    site_id: i64,
    code: &str,
    kind: &str,
    camera_ids: &[i64],
) -> Result<Position, DbError> {
    let mut tx = crate::db::begin_write(pool).await?;
    let id = sqlx::query_scalar::<_, i64>(
        "INSERT INTO positions (site_id, code, kind, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(site_id)
    .bind(code)
    .bind(kind)
    .bind(now_ms())
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| DbError::from_constraint(e, "position"))?;
    let camera_ids = tie_cameras(&mut tx, site_id, id, camera_ids).await?;
    tx.commit().await?;
    Ok(Position {
        id,
        site_id,
        code: code.to_owned(),
        kind: kind.to_owned(),
        camera_ids,
    })
}

/// Changes a position's kind and/or its cameras (all or nothing). Its code stays: events name it.
pub async fn update_position(
    pool: &Pool,
    site_id: i64,
    position_id: i64,
    kind: Option<&str>,
    camera_ids: Option<&[i64]>,
) -> Result<Position, DbError> {
    let mut tx = crate::db::begin_write(pool).await?;
    let found: Option<(String, String)> =
        sqlx::query_as("SELECT code, kind FROM positions WHERE id = $1 AND site_id = $2")
            .bind(position_id)
            .bind(site_id)
            .fetch_optional(&mut *tx)
            .await?;
    let Some((code, old_kind)) = found else {
        return Err(DbError::NotFound);
    };
    let kind = kind.map(str::to_owned).unwrap_or(old_kind);
    sqlx::query("UPDATE positions SET kind = $1 WHERE id = $2")
        .bind(&kind)
        .bind(position_id)
        .execute(&mut *tx)
        .await?;
    let camera_ids =
        match camera_ids {
            Some(ids) => tie_cameras(&mut tx, site_id, position_id, ids).await?,
            None => sqlx::query_scalar(
                "SELECT camera_id FROM position_cameras WHERE position_id = $1 ORDER BY camera_id",
            )
            .bind(position_id)
            .fetch_all(&mut *tx)
            .await?,
        };
    tx.commit().await?;
    Ok(Position {
        id: position_id,
        site_id,
        code,
        kind,
        camera_ids,
    })
}

/// Removes a position of the site (its camera ties go with it; its events keep their position code).
pub async fn delete_position(pool: &Pool, site_id: i64, position_id: i64) -> Result<(), DbError> {
    let done = sqlx::query("DELETE FROM positions WHERE id = $1 AND site_id = $2")
        .bind(position_id)
        .bind(site_id)
        .execute(pool)
        .await?;
    if done.rows_affected() == 0 {
        return Err(DbError::NotFound);
    }
    Ok(())
}
