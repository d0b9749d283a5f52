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
    /// Locked by failed logins (an admin lifts it with `POST /users/{id}/unlock`).
    pub locked: bool,
}

/// The fields the login check needs, never serialized.
pub struct Credentials {
    pub user: User,
    pub password_hash: String,
    /// Consecutive failed logins, and the end of the lock (Unix ms) if one is in force.
    pub failed_logins: i64,
    pub locked_until: Option<i64>,
}

fn is_locked(locked_until: Option<i64>) -> bool {
    locked_until.is_some_and(|t| t > now_ms())
}

pub(crate) async fn regions_of(
    pool: &Pool,
    table: &str,
    column: &str,
    id: i64,
) -> Result<Vec<String>, DbError> {
    let rows: Vec<(String,)> = sqlx::query_as(&format!(
        "SELECT region_code FROM {table} WHERE {column} = $1 ORDER BY region_code"
    ))
    .bind(id)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|(c,)| c).collect())
}

pub async fn list(pool: &Pool) -> Result<Vec<User>, DbError> {
    let rows: Vec<(i64, String, String, Option<i64>)> =
        sqlx::query_as("SELECT id, username, role, locked_until FROM users ORDER BY id")
            .fetch_all(pool)
            .await?;
    let mut out = Vec::with_capacity(rows.len());
    for (id, username, role, locked_until) in rows {
        let region_codes = regions_of(pool, "user_regions", "user_id", id).await?;
        out.push(User {
            id,
            username,
            role,
            region_codes,
            locked: is_locked(locked_until),
        });
    }
    Ok(out)
}

pub async fn get(pool: &Pool, id: i64) -> Result<User, DbError> {
    let (id, username, role, locked_until): (i64, String, String, Option<i64>) =
        sqlx::query_as("SELECT id, username, role, locked_until FROM users WHERE id = $1")
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
        locked: is_locked(locked_until),
    })
}

pub async fn credentials(pool: &Pool, username: &str) -> Result<Option<Credentials>, DbError> {
    type Row = (i64, String, String, String, i64, Option<i64>);
    let row: Option<Row> = sqlx::query_as(
        "SELECT id, username, role, password_hash, failed_logins, locked_until
         FROM users WHERE username = $1",
    )
    .bind(username)
    .fetch_optional(pool)
    .await?;
    let Some((id, username, role, password_hash, failed_logins, locked_until)) = row else {
        return Ok(None);
    };
    let region_codes = regions_of(pool, "user_regions", "user_id", id).await?;
    Ok(Some(Credentials {
        user: User {
            id,
            username,
            role,
            region_codes,
            locked: is_locked(locked_until),
        },
        password_hash,
        failed_logins,
        locked_until: locked_until.filter(|t| *t > now_ms()),
    }))
}

/// What [`charge_attempt`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// The password may be checked; this is the n-th attempt since the last good login.
    Allowed { nth: i64 },
    /// The account is locked (by this attempt or before it) until then.
    Locked { until: i64 },
}

/// Counts a login attempt *before* its password is checked, in one statement, so that attempts made at
/// the same moment cannot all pass a check that none of them has counted yet. An attempt past
/// `max_failures` locks the account until `lock_until` and is refused unchecked; a lock that has run out
/// starts a fresh count. A good login then clears the count ([`clear_failures`]); a bad one that was the
/// last allowed locks the account ([`lock`]).
pub async fn charge_attempt(
    pool: &Pool,
    id: i64,
    max_failures: u32,
    lock_until: i64,
) -> Result<Attempt, DbError> {
    let now = now_ms();
    let (nth, locked_until): (i64, Option<i64>) = sqlx::query_as(
        "UPDATE users SET
             failed_logins = CASE WHEN locked_until IS NOT NULL AND locked_until <= $1 THEN 1
                                  WHEN locked_until IS NOT NULL THEN failed_logins
                                  ELSE failed_logins + 1 END,
             locked_until = CASE WHEN locked_until IS NOT NULL AND locked_until <= $1 THEN NULL
                                 ELSE locked_until END
         WHERE id = $2 RETURNING failed_logins, locked_until",
    )
    .bind(now)
    .bind(id)
    .fetch_one(pool)
    .await?;
    if let Some(until) = locked_until {
        return Ok(Attempt::Locked { until });
    }
    if nth > i64::from(max_failures) {
        lock(pool, id, lock_until).await?;
        return Ok(Attempt::Locked { until: lock_until });
    }
    Ok(Attempt::Allowed { nth })
}

/// Locks the account until `until`, unless it is locked already.
pub async fn lock(pool: &Pool, id: i64, until: i64) -> Result<(), DbError> {
    sqlx::query("UPDATE users SET locked_until = $1 WHERE id = $2 AND locked_until IS NULL")
        .bind(until)
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

/// Clears the failure count and any lock (a good login, or an admin's unlock).
pub async fn clear_failures(pool: &Pool, id: i64) -> Result<(), DbError> {
    let done = sqlx::query("UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    if done.rows_affected() == 0 {
        return Err(DbError::NotFound);
    }
    Ok(())
}

/// The new state of a user; `None` fields stay as they are.
#[derive(Default)]
pub struct UserChange {
    pub username: Option<String>,
    pub password_hash: Option<String>,
    pub role: Option<String>,
    pub region_codes: Option<Vec<String>>,
}

/// Changes a user in one transaction. A new password or new rights end the user's sessions.
pub async fn update(pool: &Pool, id: i64, c: &UserChange) -> Result<User, DbError> {
    let mut tx = pool.begin().await?;
    let exists: Option<(i64,)> = sqlx::query_as("SELECT id FROM users WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
    if exists.is_none() {
        return Err(DbError::NotFound);
    }
    sqlx::query(
        "UPDATE users SET username = COALESCE($1, username), password_hash = COALESCE($2, password_hash),
             role = COALESCE($3, role) WHERE id = $4",
    )
    .bind(&c.username)
    .bind(&c.password_hash)
    .bind(&c.role)
    .bind(id)
    .execute(&mut *tx)
    .await
    .map_err(|e| DbError::from_constraint(e, "user"))?;
    if let Some(codes) = &c.region_codes {
        sqlx::query("DELETE FROM user_regions WHERE user_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        for code in codes {
            sqlx::query("INSERT INTO user_regions (user_id, region_code) VALUES ($1, $2)")
                .bind(id)
                .bind(code)
                .execute(&mut *tx)
                .await
                .map_err(|e| DbError::from_constraint(e, &format!("region {code}")))?;
        }
    }
    if c.password_hash.is_some() || c.role.is_some() || c.region_codes.is_some() {
        sqlx::query("DELETE FROM sessions WHERE user_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    get(pool, id).await
}

pub async fn delete(pool: &Pool, id: i64) -> Result<(), DbError> {
    let done = sqlx::query("DELETE FROM users WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    if done.rows_affected() == 0 {
        return Err(DbError::NotFound);
    }
    Ok(())
}

pub async fn insert(
    pool: &Pool,
    username: &str,
    password_hash: &str,
    role: &str,
    region_codes: &[String],
) -> Result<User, DbError> {
    let mut tx = crate::db::begin_write(pool).await?;
    let id = sqlx::query_scalar::<_, i64>(
        "INSERT INTO users (username, password_hash, role, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(username)
    .bind(password_hash)
    .bind(role)
    .bind(now_ms())
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| DbError::from_constraint(e, "user"))?;
    for code in region_codes {
        sqlx::query("INSERT INTO user_regions (user_id, region_code) VALUES ($1, $2)")
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
        locked: false,
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
    insert_token_by(pool, name, token_hash, role, region_codes, expires_at, None).await
}

/// [`insert_token`], remembering who made it.
pub async fn insert_token_by(
    pool: &Pool,
    name: &str,
    token_hash: &str,
    role: &str,
    region_codes: &[String],
    expires_at: Option<i64>,
    created_by: Option<&str>,
) -> Result<i64, DbError> {
    let mut tx = pool.begin().await?;
    let id = sqlx::query_scalar::<_, i64>(
        "INSERT INTO api_tokens (name, token_hash, role, created_at, expires_at, created_by)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(name)
    .bind(token_hash)
    .bind(role)
    .bind(now_ms())
    .bind(expires_at)
    .bind(created_by)
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| DbError::from_constraint(e, "token"))?;
    for code in region_codes {
        sqlx::query("INSERT INTO token_regions (token_id, region_code) VALUES ($1, $2)")
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
         WHERE token_hash = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2)",
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
         VALUES ($1, $2, $3, $4, $5, $6)",
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
        "SELECT id, user_id, csrf_token FROM sessions WHERE token_hash = $1 AND expires_at > $2 AND last_seen_at > $3",
    )
    .bind(token_hash)
    .bind(now)
    .bind(now - idle_ms)
    .fetch_optional(pool)
    .await?;
    let Some((session_id, user_id, csrf)) = row else {
        return Ok(None);
    };
    sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE id = $2")
        .bind(now)
        .bind(session_id)
        .execute(pool)
        .await?;
    // A user deleted meanwhile has no session (the row goes with the user; this covers the moment between).
    match get(pool, user_id).await {
        Ok(user) => Ok(Some((user, csrf))),
        Err(DbError::NotFound) => Ok(None),
        Err(e) => Err(e),
    }
}

pub async fn delete_session(pool: &Pool, token_hash: &str) -> Result<(), DbError> {
    sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
        .bind(token_hash)
        .execute(pool)
        .await?;
    Ok(())
}
