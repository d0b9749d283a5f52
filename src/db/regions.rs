//! Regions: the GB/T 2260 tree (province, city, district). A region grants its whole subtree.

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
        "SELECT code, name, level, parent_code FROM regions ORDER BY code",
    )
    .fetch_all(pool)
    .await?)
}

pub async fn get(pool: &Pool, code: &str) -> Result<Region, DbError> {
    sqlx::query_as::<_, Region>("SELECT code, name, level, parent_code FROM regions WHERE code = ?")
        .bind(code)
        .fetch_optional(pool)
        .await?
        .ok_or(DbError::NotFound)
}

pub async fn insert(pool: &Pool, r: &Region) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO regions (code, name, level, parent_code, created_at) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(&r.code)
    .bind(&r.name)
    .bind(&r.level)
    .bind(&r.parent_code)
    .bind(now_ms())
    .execute(pool)
    .await
    .map_err(|e| DbError::from_constraint(e, "region"))?;
    Ok(())
}

/// The region and every region above it, nearest first.
pub async fn ancestors(pool: &Pool, code: &str) -> Result<Vec<String>, DbError> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "WITH RECURSIVE up(code, parent_code, depth) AS (
             SELECT code, parent_code, 0 FROM regions WHERE code = ?
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
                 SELECT code FROM regions WHERE code = ?
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
