//! Users, bearer tokens and cookie sessions. Secrets are stored only as hashes: argon2id for passwords,
//! SHA-256 for tokens and session cookies (they are long random values, so a fast hash is enough).

use super::{now_ms, DbError, Pool};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub role: String,
    pub region_codes: Vec<String>,
}

/// The fields the login check needs, never serialized.
pub struct Credentials {
    pub user: User,
    pub password_hash: String,
}

async fn regions_of(
    pool: &Pool,
    table: &str,
    column: &str,
    id: i64,
) -> Result<Vec<String>, DbError> {
    let rows: Vec<(String,)> = sqlx::query_as(&format!(
        "SELECT region_code FROM {table} WHERE {column} = ? ORDER BY region_code"
    ))
    .bind(id)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|(c,)| c).collect())
}

pub async fn list(pool: &Pool) -> Result<Vec<User>, DbError> {
    let rows: Vec<(i64, String, String)> =
        sqlx::query_as("SELECT id, username, role FROM users ORDER BY id")
            .fetch_all(pool)
            .await?;
    let mut out = Vec::with_capacity(rows.len());
    for (id, username, role) in rows {
        let region_codes = regions_of(pool, "user_regions", "user_id", id).await?;
        out.push(User {
            id,
            username,
            role,
            region_codes,
        });
    }
    Ok(out)
}

pub async fn get(pool: &Pool, id: i64) -> Result<User, DbError> {
    let (id, username, role): (i64, String, String) =
        sqlx::query_as("SELECT id, username, role FROM users WHERE id = ?")
            .bind(id)
            .fetch_optional(pool)
            .await?
            .ok_or(DbError::NotFound)?;
    let region_codes = regions_of(pool, "user_regions", "user_id", id).await?;
    Ok(User {
        id,
        username,
        role,
        region_codes,
    })
}

pub async fn credentials(pool: &Pool, username: &str) -> Result<Option<Credentials>, DbError> {
    let row: Option<(i64, String, String, String)> =
        sqlx::query_as("SELECT id, username, role, password_hash FROM users WHERE username = ?")
            .bind(username)
            .fetch_optional(pool)
            .await?;
    let Some((id, username, role, password_hash)) = row else {
        return Ok(None);
    };
    let region_codes = regions_of(pool, "user_regions", "user_id", id).await?;
    Ok(Some(Credentials {
        user: User {
            id,
            username,
            role,
            region_codes,
        },
        password_hash,
    }))
}

pub async fn insert(
    pool: &Pool,
    username: &str,
    password_hash: &str,
    role: &str,
    region_codes: &[String],
) -> Result<User, DbError> {
    let mut tx = pool.begin().await?;
    let id = sqlx::query(
        "INSERT INTO users (username, password_hash, role, created_at) VALUES (?, ?, ?, ?)",
    )
    .bind(username)
    .bind(password_hash)
    .bind(role)
    .bind(now_ms())
    .execute(&mut *tx)
    .await
    .map_err(|e| DbError::from_constraint(e, "user"))?
    .last_insert_rowid();
    for code in region_codes {
        sqlx::query("INSERT INTO user_regions (user_id, region_code) VALUES (?, ?)")
            .bind(id)
            .bind(code)
            .execute(&mut *tx)
            .await
            .map_err(|e| DbError::from_constraint(e, &format!("region {code}")))?;
    }
    tx.commit().await?;
    Ok(User {
        id,
        username: username.to_owned(),
        role: role.to_owned(),
        region_codes: region_codes.to_vec(),
    })
}

/// A bearer token as the auth layer sees it.
pub struct TokenRow {
    pub id: i64,
    pub name: String,
    pub role: String,
    pub region_codes: Vec<String>,
}

pub async fn insert_token(
    pool: &Pool,
    name: &str,
    token_hash: &str,
    role: &str,
    region_codes: &[String],
    expires_at: Option<i64>,
) -> Result<i64, DbError> {
    let mut tx = pool.begin().await?;
    let id = sqlx::query(
        "INSERT INTO api_tokens (name, token_hash, role, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(name)
    .bind(token_hash)
    .bind(role)
    .bind(now_ms())
    .bind(expires_at)
    .execute(&mut *tx)
    .await
    .map_err(|e| DbError::from_constraint(e, "token"))?
    .last_insert_rowid();
    for code in region_codes {
        sqlx::query("INSERT INTO token_regions (token_id, region_code) VALUES (?, ?)")
            .bind(id)
            .bind(code)
            .execute(&mut *tx)
            .await
            .map_err(|e| DbError::from_constraint(e, &format!("region {code}")))?;
    }
    tx.commit().await?;
    Ok(id)
}

/// The live (not expired, not revoked) token with this hash.
pub async fn token_by_hash(pool: &Pool, token_hash: &str) -> Result<Option<TokenRow>, DbError> {
    let row: Option<(i64, String, String)> = sqlx::query_as(
        "SELECT id, name, role FROM api_tokens
         WHERE token_hash = ? AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)",
    )
    .bind(token_hash)
    .bind(now_ms())
    .fetch_optional(pool)
    .await?;
    let Some((id, name, role)) = row else {
        return Ok(None);
    };
    let region_codes = regions_of(pool, "token_regions", "token_id", id).await?;
    Ok(Some(TokenRow {
        id,
        name,
        role,
        region_codes,
    }))
}

pub async fn insert_session(
    pool: &Pool,
    token_hash: &str,
    csrf_token: &str,
    user_id: i64,
    expires_at: i64,
) -> Result<(), DbError> {
    let now = now_ms();
    sqlx::query(
        "INSERT INTO sessions (token_hash, csrf_token, user_id, created_at, last_seen_at, expires_at)
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(token_hash)
    .bind(csrf_token)
    .bind(user_id)
    .bind(now)
    .bind(now)
    .bind(expires_at)
    .execute(pool)
    .await?;
    Ok(())
}

/// The session's user and CSRF token, if the session is alive; touches its idle clock.
pub async fn session_by_hash(
    pool: &Pool,
    token_hash: &str,
    idle_ms: i64,
) -> Result<Option<(User, String)>, DbError> {
    let now = now_ms();
    let row: Option<(i64, i64, String)> = sqlx::query_as(
        "SELECT id, user_id, csrf_token FROM sessions WHERE token_hash = ? AND expires_at > ? AND last_seen_at > ?",
    )
    .bind(token_hash)
    .bind(now)
    .bind(now - idle_ms)
    .fetch_optional(pool)
    .await?;
    let Some((session_id, user_id, csrf)) = row else {
        return Ok(None);
    };
    sqlx::query("UPDATE sessions SET last_seen_at = ? WHERE id = ?")
        .bind(now)
        .bind(session_id)
        .execute(pool)
        .await?;
    let user = get(pool, user_id).await?;
    Ok(Some((user, csrf)))
}

pub async fn delete_session(pool: &Pool, token_hash: &str) -> Result<(), DbError> {
    sqlx::query("DELETE FROM sessions WHERE token_hash = ?")
        .bind(token_hash)
        .execute(pool)
        .await?;
    Ok(())
}
