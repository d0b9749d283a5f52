//! The rows of federation (migration 0016): the credentials a city issued (`link_grants`) and the links a
//! province holds (`links`). Secrets are stored sealed with the server's key and opened only to sign or
//! check a request.

use crate::auth::secrets::Sealed;
use crate::db::{now_ms, DbError, Pool};
use serde::Serialize;

/// A credential a city issued, as its admins see it (never the secret).
#[derive(Debug, Clone, Serialize)]
pub struct Grant {
    pub id: i64,
    pub name: String,
    pub region_codes: Vec<String>,
    pub paused: bool,
    pub created_at: i64,
    pub created_by: String,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
    #[serde(skip)]
    pub secret: Sealed,
}

type GrantRow = (
    i64,
    String,
    String,
    String,
    i64,
    i64,
    String,
    Option<i64>,
    Option<i64>,
);

fn grant_of(r: GrantRow) -> Grant {
    Grant {
        id: r.0,
        name: r.1,
        region_codes: serde_json::from_str(&r.2).unwrap_or_default(),
        secret: Sealed(r.3),
        paused: r.4 != 0,
        created_at: r.5,
        created_by: r.6,
        revoked_at: r.7,
        last_used_at: r.8,
    }
}

const GRANT: &str =
    "SELECT id, name, region_codes, secret, paused, created_at, created_by, revoked_at, \
                     last_used_at FROM link_grants";

/// `NotFound` when a change touched no row.
fn found(rows: u64) -> Result<(), DbError> {
    if rows == 0 {
        return Err(DbError::NotFound);
    }
    Ok(())
}

pub async fn insert_grant(
    pool: &Pool,
    name: &str,
    region_codes: &[String],
    secret: &Sealed,
    by: &str,
) -> Result<i64, DbError> {
    let codes = serde_json::to_string(region_codes).unwrap_or_else(|_| "[]".into());
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO link_grants (name, region_codes, secret, created_at, created_by)
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(name)
    .bind(codes)
    .bind(&secret.0)
    .bind(now_ms())
    .bind(by)
    .fetch_one(pool)
    .await?;
    Ok(id)
}

pub async fn grants(pool: &Pool) -> Result<Vec<Grant>, DbError> {
    let rows: Vec<GrantRow> = sqlx::query_as(&format!("{GRANT} ORDER BY id"))
        .fetch_all(pool)
        .await?;
    Ok(rows.into_iter().map(grant_of).collect())
}

pub async fn grant(pool: &Pool, id: i64) -> Result<Grant, DbError> {
    let row: Option<GrantRow> = sqlx::query_as(&format!("{GRANT} WHERE id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await?;
    row.map(grant_of).ok_or(DbError::NotFound)
}

/// Pauses or resumes a grant that is not revoked.
pub async fn pause_grant(pool: &Pool, id: i64, paused: bool) -> Result<(), DbError> {
    let done =
        sqlx::query("UPDATE link_grants SET paused = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(i64::from(paused))
            .bind(id)
            .execute(pool)
            .await?;
    found(done.rows_affected())
}

/// Revokes a grant for good (the row stays, for the audit's sake).
pub async fn revoke_grant(pool: &Pool, id: i64) -> Result<(), DbError> {
    let done =
        sqlx::query("UPDATE link_grants SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(now_ms())
            .bind(id)
            .execute(pool)
            .await?;
    found(done.rows_affected())
}

pub async fn touch_grant(pool: &Pool, id: i64) -> Result<(), DbError> {
    sqlx::query("UPDATE link_grants SET last_used_at = $1 WHERE id = $2")
        .bind(now_ms())
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

/// A link a province holds, as its admins see it (never the secret).
#[derive(Debug, Clone, Serialize)]
pub struct Link {
    pub id: i64,
    pub name: String,
    pub url: String,
    pub grant_id: i64,
    pub paused: bool,
    pub created_at: i64,
    pub created_by: String,
    pub last_contact: Option<i64>,
    pub last_error: Option<String>,
    #[serde(skip)]
    pub secret: Sealed,
}

type LinkRow = (
    i64,
    String,
    String,
    i64,
    String,
    i64,
    i64,
    String,
    Option<i64>,
    Option<String>,
);

fn link_of(r: LinkRow) -> Link {
    Link {
        id: r.0,
        name: r.1,
        url: r.2,
        grant_id: r.3,
        secret: Sealed(r.4),
        paused: r.5 != 0,
        created_at: r.6,
        created_by: r.7,
        last_contact: r.8,
        last_error: r.9,
    }
}

const LINK: &str =
    "SELECT id, name, url, grant_id, secret, paused, created_at, created_by, last_contact, \
                    last_error FROM links";

pub async fn insert_link(
    pool: &Pool,
    name: &str,
    url: &str,
    grant_id: i64,
    secret: &Sealed,
    by: &str,
) -> Result<i64, DbError> {
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO links (name, url, grant_id, secret, created_at, created_by, last_contact)
         VALUES ($1, $2, $3, $4, $5, $6, $5) RETURNING id",
    )
    .bind(name)
    .bind(url)
    .bind(grant_id)
    .bind(&secret.0)
    .bind(now_ms())
    .bind(by)
    .fetch_one(pool)
    .await
    .map_err(|e| match DbError::from(e) {
        DbError::Conflict(_) => DbError::Conflict(format!("a link named {name} exists")),
        e => e,
    })?;
    Ok(id)
}

pub async fn links(pool: &Pool) -> Result<Vec<Link>, DbError> {
    let rows: Vec<LinkRow> = sqlx::query_as(&format!("{LINK} ORDER BY id"))
        .fetch_all(pool)
        .await?;
    Ok(rows.into_iter().map(link_of).collect())
}

pub async fn link(pool: &Pool, id: i64) -> Result<Link, DbError> {
    let row: Option<LinkRow> = sqlx::query_as(&format!("{LINK} WHERE id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await?;
    row.map(link_of).ok_or(DbError::NotFound)
}

pub async fn pause_link(pool: &Pool, id: i64, paused: bool) -> Result<(), DbError> {
    let done = sqlx::query("UPDATE links SET paused = $1 WHERE id = $2")
        .bind(i64::from(paused))
        .bind(id)
        .execute(pool)
        .await?;
    found(done.rows_affected())
}

pub async fn delete_link(pool: &Pool, id: i64) -> Result<(), DbError> {
    let done = sqlx::query("DELETE FROM links WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    found(done.rows_affected())
}

/// Records the outcome of a call over the link: a contact (error None) or the error.
pub async fn contact(pool: &Pool, id: i64, error: Option<&str>) -> Result<(), DbError> {
    let q = match error {
        None => sqlx::query("UPDATE links SET last_contact = $1, last_error = NULL WHERE id = $2")
            .bind(now_ms())
            .bind(id),
        Some(e) => sqlx::query("UPDATE links SET last_error = $1 WHERE id = $2")
            .bind(e.to_owned())
            .bind(id),
    };
    q.execute(pool).await?;
    Ok(())
}
