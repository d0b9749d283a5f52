//! Each user's live wall document (`user_walls`); the API checks its shape before storing it.

use super::{now_ms, DbError, Pool};

pub async fn get(pool: &Pool, user_id: i64) -> Result<Option<String>, DbError> {
    Ok(
        sqlx::query_scalar("SELECT doc FROM user_walls WHERE user_id = $1")
            .bind(user_id)
            .fetch_optional(pool)
            .await?,
    )
}

pub async fn put(pool: &Pool, user_id: i64, doc: &str) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO user_walls (user_id, doc, updated_at) VALUES ($1, $2, $3)
         ON CONFLICT (user_id) DO UPDATE SET doc = excluded.doc, updated_at = excluded.updated_at",
    )
    .bind(user_id)
    .bind(doc)
    .bind(now_ms())
    .execute(pool)
    .await?;
    Ok(())
}
