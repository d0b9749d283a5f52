//! Regions: the GB/T 2260 tree (province, city, district). A region grants its whole subtree.
//!
//! A deleted region is kept as a row marked `deleted_at` (migration 0006): [`list`], [`get`] and [`rename`]
//! skip it, but [`subtree`] and [`ancestors`] walk it, so what was scoped to it (audit rows above all) stays
//! visible to the admins of the regions above. A deleted code comes back only at its old place in the tree
//! ([`create_or_revive`]), so that its history never moves to another line of admins.

use super::{now_ms, DbError, Pool};
use serde::Serialize;

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Region {
    pub code: String,
    pub name: String,
    pub level: String,
    pub parent_code: Option<String>,
}

pub async fn list(pool: &Pool) -> Result<Vec<Region>, DbError> {
    Ok(sqlx::query_as::<_, Region>(
        "SELECT code, name, level, parent_code FROM regions WHERE deleted_at IS NULL ORDER BY code",
    )
    .fetch_all(pool)
    .await?)
}

pub async fn get(pool: &Pool, code: &str) -> Result<Region, DbError> {
    sqlx::query_as::<_, Region>(
        "SELECT code, name, level, parent_code FROM regions WHERE code = $1 AND deleted_at IS NULL",
    )
    .bind(code)
    .fetch_optional(pool)
    .await?
    .ok_or(DbError::NotFound)
}

const INSERT: &str =
    "INSERT INTO regions (code, name, level, parent_code, created_at) VALUES ($1, $2, $3, $4, $5)";

/// Runs `sql` (an [`INSERT`], maybe with a conflict clause) for `r`; the rows it wrote.
async fn write(pool: &Pool, r: &Region, sql: &str) -> Result<u64, DbError> {
    let done = sqlx::query(sql)
        .bind(&r.code)
        .bind(&r.name)
        .bind(&r.level)
        .bind(&r.parent_code)
        .bind(now_ms())
        .execute(pool)
        .await
        .map_err(|e| DbError::from_constraint(e, "region"))?;
    Ok(done.rows_affected())
}

/// Adds a region; a code that exists, even deleted, is a conflict (the seed keeps deleted regions deleted).
pub async fn insert(pool: &Pool, r: &Region) -> Result<(), DbError> {
    write(pool, r, INSERT).await.map(|_| ())
}

/// Creates a region, or brings a deleted one with this code back, renamed as `r`.
///
/// A deleted region keeps its history (sites it had, footage, exports, audit rows), which is visible to
/// the admins of the regions above it. Bringing it back anywhere else in the tree would hand that history
/// to another line of admins, so a deleted code is revived only at the place it had (same parent, same
/// level); elsewhere the code is refused for good (Conflict).
pub async fn create_or_revive(pool: &Pool, r: &Region) -> Result<(), DbError> {
    let sql = format!(
        "{INSERT} ON CONFLICT (code) DO UPDATE
           SET name = excluded.name, deleted_at = NULL
           WHERE regions.deleted_at IS NOT NULL AND regions.level = excluded.level
             AND regions.parent_code IS NOT DISTINCT FROM excluded.parent_code"
    );
    if write(pool, r, &sql).await? == 0 {
        let deleted: Option<(Option<i64>,)> =
            sqlx::query_as("SELECT deleted_at FROM regions WHERE code = $1")
                .bind(&r.code)
                .fetch_optional(pool)
                .await?;
        return Err(DbError::Conflict(match deleted {
            Some((Some(_),)) => format!(
                "region code {} belonged to a deleted region elsewhere in the tree; its history stays \
                 there, so the code can only come back at the same place",
                r.code
            ),
            _ => "region already exists".into(),
        }));
    }
    Ok(())
}

/// The region and every region above it, nearest first.
pub async fn ancestors(pool: &Pool, code: &str) -> Result<Vec<String>, DbError> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "WITH RECURSIVE up(code, parent_code, depth) AS (
             SELECT code, parent_code, 0 FROM regions WHERE code = $1
             UNION ALL
             SELECT r.code, r.parent_code, up.depth + 1 FROM regions r JOIN up ON r.code = up.parent_code
         )
         SELECT code FROM up ORDER BY depth",
    )
    .bind(code)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|(c,)| c).collect())
}

/// The given regions and every region below them.
pub async fn subtree(pool: &Pool, roots: &[String]) -> Result<Vec<String>, DbError> {
    let mut out: Vec<String> = Vec::new();
    for root in roots {
        let rows: Vec<(String,)> = sqlx::query_as(
            "WITH RECURSIVE down(code) AS (
                 SELECT code FROM regions WHERE code = $1
                 UNION
                 SELECT r.code FROM regions r JOIN down ON r.parent_code = down.code
             )
             SELECT code FROM down",
        )
        .bind(root)
        .fetch_all(pool)
        .await?;
        out.extend(rows.into_iter().map(|(c,)| c));
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Renames a region (its code, level and parent are what it is, and do not change).
pub async fn rename(pool: &Pool, code: &str, name: &str) -> Result<(), DbError> {
    let done = sqlx::query("UPDATE regions SET name = $1 WHERE code = $2 AND deleted_at IS NULL")
        .bind(name)
        .bind(code)
        .execute(pool)
        .await?;
    if done.rows_affected() == 0 {
        return Err(DbError::NotFound);
    }
    Ok(())
}

/// Deletes (marks deleted) a region that nothing live refers to. Refused (Conflict, saying what is left)
/// while it has live regions below it, sites, or users or unrevoked tokens bound to it.
pub async fn delete(pool: &Pool, code: &str) -> Result<(), DbError> {
    let mut tx = crate::db::begin_write(pool).await?;
    let (children, sites, bound): (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM regions WHERE parent_code = $1 AND deleted_at IS NULL),
                (SELECT count(*) FROM sites WHERE region_code = $1),
                (SELECT count(*) FROM user_regions WHERE region_code = $1)
                  + (SELECT count(*) FROM token_regions tr JOIN api_tokens t ON t.id = tr.token_id
                     WHERE tr.region_code = $1 AND t.revoked_at IS NULL)",
    )
    .bind(code)
    .fetch_one(&mut *tx)
    .await?;
    let left: Vec<String> = [
        (children, "regions below it"),
        (sites, "sites"),
        (bound, "users or tokens bound to it"),
    ]
    .iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, what)| format!("{n} {what}"))
    .collect();
    if !left.is_empty() {
        return Err(DbError::Conflict(format!(
            "region {code} still has {}",
            left.join(", ")
        )));
    }
    let done =
        sqlx::query("UPDATE regions SET deleted_at = $1 WHERE code = $2 AND deleted_at IS NULL")
            .bind(now_ms())
            .bind(code)
            .execute(&mut *tx)
            .await?;
    if done.rows_affected() == 0 {
        return Err(DbError::NotFound);
    }
    tx.commit().await?;
    Ok(())
}
