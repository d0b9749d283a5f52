//! Camera online time, as upper levels assess a site (在线率 over a period, beside the online count now).
//!
//! Every `cases.uptime_sample_seconds` the state of each camera's main stream is read from the ingest
//! supervisor (one lock per stream, sessions untouched: ingest never waits) and counted into the hour of
//! the sample: `camera_uptime (camera_id, hour, samples, online)`, migration 0007. The online rate of a
//! period is sum(online) / sum(samples) over the hours it covers ([`rates`]).
//!
//! Invariants:
//! - One tick is one transaction: every camera gets one sample, or none does.
//! - Only `online` counts as online; `connecting` (a reconnect in progress) counts as not online.
//! - Time the server was not running has no samples and counts neither way; recording completeness, which
//!   comes from the footage itself, shows it.
//! - Hours older than [`KEEP_DAYS`] are removed, so the table stays a few rows per camera and day.

use crate::db::{now_ms, DbError, Pool};
use crate::hub::StreamKind;
use crate::ingest::{StreamState, Supervisor};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

const HOUR_MS: i64 = 3_600_000;
/// Days of hourly samples kept (a quarter and some, for quarterly assessments).
pub const KEEP_DAYS: i64 = 100;

/// Counts one sample of every camera in `states` (camera id, online) into the hour of `at_ms`.
pub async fn record(pool: &Pool, at_ms: i64, states: &[(i64, bool)]) -> Result<(), DbError> {
    let hour = at_ms.div_euclid(HOUR_MS) * HOUR_MS;
    let mut tx = pool.begin().await?;
    for &(camera_id, online) in states {
        // A camera deleted since the statuses were read has no row to count into (foreign key): skipped.
        sqlx::query(
            "INSERT INTO camera_uptime (camera_id, hour, samples, online)
             SELECT $1, $2, 1, $3 WHERE EXISTS (SELECT 1 FROM cameras WHERE id = $1)
             ON CONFLICT (camera_id, hour) DO UPDATE
               SET samples = camera_uptime.samples + 1, online = camera_uptime.online + excluded.online",
        )
        .bind(camera_id)
        .bind(hour)
        .bind(i64::from(online))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Removes the hours older than [`KEEP_DAYS`] before `now_ms`.
pub async fn prune(pool: &Pool, now_ms: i64) -> Result<u64, DbError> {
    let done = sqlx::query("DELETE FROM camera_uptime WHERE hour < $1")
        .bind(now_ms - KEEP_DAYS * 24 * HOUR_MS)
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}

/// Samples and online samples per camera over the hours that meet `[from_ms, to_ms)`.
pub async fn rates(
    pool: &Pool,
    from_ms: i64,
    to_ms: i64,
) -> Result<HashMap<i64, (i64, i64)>, DbError> {
    let first_hour = from_ms.div_euclid(HOUR_MS) * HOUR_MS;
    let rows: Vec<(i64, i64, i64)> = sqlx::query_as(
        "SELECT camera_id, CAST(sum(samples) AS BIGINT), CAST(sum(online) AS BIGINT) FROM camera_uptime
         WHERE hour >= $1 AND hour < $2 GROUP BY camera_id",
    )
    .bind(first_hour)
    .bind(to_ms)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|(c, s, o)| (c, (s, o))).collect())
}

/// Starts the sampler (see the module doc); `every` is the sampling period.
pub fn start(pool: Pool, ingest: Arc<Supervisor>, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every.max(Duration::from_secs(1)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut last_prune = 0i64;
        loop {
            tick.tick().await;
            let states: Vec<(i64, bool)> = ingest
                .all_statuses()
                .into_iter()
                .filter(|(k, _)| k.kind == StreamKind::Main)
                .map(|(k, s)| (k.camera_id, s.state == StreamState::Online))
                .collect();
            let now = now_ms();
            if let Err(e) = record(&pool, now, &states).await {
                tracing::error!(error = %e, "camera uptime sample not written");
            }
            if now - last_prune >= HOUR_MS {
                match prune(&pool, now).await {
                    Ok(n) if n > 0 => tracing::info!(rows = n, "old camera uptime hours removed"),
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %e, "camera uptime prune failed"),
                }
                last_prune = now;
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn pool_with_cameras(dir: &tempfile::TempDir) -> Pool {
        let url = format!("sqlite://{}", dir.path().join("vigil.db").display());
        let pool = crate::db::connect(&url).await.expect("db");
        for sql in [
            "INSERT INTO regions (code, name, level, created_at) VALUES ('360000', 'p', 'province', 0)",
            "INSERT INTO sites (id, name, kind, region_code, created_at) VALUES (1, 's', 'service_hall', '360000', 0)",
            "INSERT INTO cameras (id, site_id, name, main_url, created_at, updated_at) VALUES (1, 1, 'a', 'rtsp://x/1', 0, 0)",
            "INSERT INTO cameras (id, site_id, name, main_url, created_at, updated_at) VALUES (2, 1, 'b', 'rtsp://x/2', 0, 0)",
        ] {
            sqlx::query(sql).execute(&pool).await.expect(sql);
        }
        pool
    }

    #[tokio::test]
    async fn samples_add_up_per_hour_and_old_hours_go() {
        let dir = tempfile::tempdir().expect("tmp");
        let pool = pool_with_cameras(&dir).await;
        let h0 = 1_795_300_000_000i64.div_euclid(HOUR_MS) * HOUR_MS;
        // Camera 1 online three samples of four; camera 2 never; camera 9 was deleted meanwhile.
        for (i, up) in [true, true, false, true].into_iter().enumerate() {
            let at = h0 + 60_000 * i as i64;
            record(&pool, at, &[(1, up), (2, false), (9, true)])
                .await
                .expect("record");
        }
        record(&pool, h0 + HOUR_MS + 5, &[(1, false)])
            .await
            .expect("record");
        let r = rates(&pool, h0 + 30 * 60_000, h0 + HOUR_MS)
            .await
            .expect("rates");
        assert_eq!(r.get(&1), Some(&(4, 3)), "the hour that meets the window");
        assert_eq!(r.get(&2), Some(&(4, 0)));
        assert_eq!(r.get(&9), None, "no row for a camera that is gone");
        let both = rates(&pool, h0, h0 + 2 * HOUR_MS).await.expect("rates");
        assert_eq!(both.get(&1), Some(&(5, 3)));

        let removed = prune(&pool, h0 + HOUR_MS + KEEP_DAYS * 24 * HOUR_MS)
            .await
            .expect("prune");
        assert_eq!(removed, 2, "the first hour of both cameras");
        let left = rates(&pool, h0, h0 + 2 * HOUR_MS).await.expect("rates");
        assert_eq!(left.get(&1), Some(&(1, 0)));
    }
}
