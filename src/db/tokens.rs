//! Bearer tokens as admins see them: list, one, revoke. The secret is never stored (only its SHA-256 in
//! `api_tokens.token_hash`, never selected here) and never shown again after `POST /tokens`.

use super::users::regions_of;
use super::{ms_to_rfc3339, now_ms, DbError, Pool};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Token {
    pub id: i64,
    pub name: String,
    pub role: String,
    pub region_codes: Vec<String>,
    pub created_at: String,
    pub created_by: Option<String>,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
    /// Neither expired nor revoked.
    pub active: bool,
}

type Row = (
    i64,
    String,
    String,
    i64,
    Option<String>,
    Option<i64>,
    Option<i64>,
);
const SELECT: &str =
    "SELECT id, name, role, created_at, created_by, expires_at, revoked_at FROM api_tokens";

async fn from_row(pool: &Pool, r: Row) -> Result<Token, DbError> {
    let (id, name, role, created_at, created_by, expires_at, revoked_at) = r;
    let now = now_ms();
    Ok(Token {
        id,
        name,
        role,
        region_codes: regions_of(pool, "token_regions", "token_id", id).await?,
        created_at: ms_to_rfc3339(created_at),
        created_by,
        expires_at: expires_at.map(ms_to_rfc3339),
        revoked_at: revoked_at.map(ms_to_rfc3339),
        active: revoked_at.is_none() && expires_at.is_none_or(|t| t > now),
    })
}

pub async fn list(pool: &Pool) -> Result<Vec<Token>, DbError> {
    let rows: Vec<Row> = sqlx::query_as(&format!("{SELECT} ORDER BY id"))
        .fetch_all(pool)
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push(from_row(pool, r).await?);
    }
    Ok(out)
}

pub async fn get(pool: &Pool, id: i64) -> Result<Token, DbError> {
    let row: Row = sqlx::query_as(&format!("{SELECT} WHERE id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await?
        .ok_or(DbError::NotFound)?;
    from_row(pool, row).await
}

/// Revokes a token for good (revoking twice keeps the first time).
pub async fn revoke(pool: &Pool, id: i64) -> Result<(), DbError> {
    let done =
        sqlx::query("UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2")
            .bind(now_ms())
            .bind(id)
            .execute(pool)
            .await?;
    if done.rows_affected() == 0 {
        return Err(DbError::NotFound);
    }
    Ok(())
}
