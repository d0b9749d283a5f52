//! Camera-offline alarms and camera status notifications (the contract's "camera status changes, alarms").
//!
//! A watcher reads the state of every camera's main stream from the ingest supervisor once a second: it
//! takes one lock per stream and never touches the sessions, so ingest never waits on it.
//!
//! Invariants:
//! - Each change of a main stream's state is one `camera_status` notification.
//! - A camera whose main stream is `offline`, `auth_failed` or `unsupported` has exactly one active
//!   `camera_offline` alarm (`UNIQUE (kind, subject)`, subject `camera:{id}`): raised once when it goes down
//!   (a reconnect attempt in between, `connecting`, neither clears nor raises it again), cleared when it is
//!   `online` again or deleted. Each raise and clear is one `alarm` notification.
//! - A restart re-derives alarms from what it observes: an alarm left active by the previous run is cleared
//!   as soon as the camera is seen online, and kept if it is still down.

use super::CaseService;
use crate::db::{ms_to_rfc3339, now_ms, DbError, Pool};
use crate::hub::StreamKind;
use crate::ingest::{StreamState, Supervisor};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

pub const KIND: &str = "camera_offline";

fn is_down(s: StreamState) -> bool {
    matches!(
        s,
        StreamState::Offline | StreamState::AuthFailed | StreamState::Unsupported
    )
}

/// What a notification says of a camera.
struct CameraInfo {
    name: String,
    site_id: i64,
    region_code: String,
}

async fn camera_info(pool: &Pool, id: i64) -> Result<Option<CameraInfo>, DbError> {
    let row: Option<(String, i64, String)> = sqlx::query_as(
        "SELECT c.name, c.site_id, s.region_code FROM cameras c JOIN sites s ON s.id = c.site_id
         WHERE c.id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(name, site_id, region_code)| CameraInfo {
        name,
        site_id,
        region_code,
    }))
}

fn subject(camera_id: i64) -> String {
    format!("camera:{camera_id}")
}

/// Raises the camera's alarm unless it is already active; returns the notification when it is new.
async fn raise(
    pool: &Pool,
    camera_id: i64,
    cam: &CameraInfo,
    error: Option<&str>,
) -> Result<Option<Value>, DbError> {
    let now = now_ms();
    let message = match error {
        Some(e) => format!("camera {} is offline: {e}", cam.name),
        None => format!("camera {} is offline", cam.name),
    };
    let ids = format!("[{camera_id}]");
    let done = sqlx::query(
        "INSERT INTO alarms (kind, subject, region_code, site_id, case_no, camera_ids, message, state, raised_at)
         VALUES ($1, $2, $3, $4, NULL, $5, $6, 'active', $7)
         ON CONFLICT (kind, subject) DO UPDATE SET state = 'active', raised_at = excluded.raised_at,
             cleared_at = NULL, message = excluded.message, region_code = excluded.region_code,
             site_id = excluded.site_id, camera_ids = excluded.camera_ids
         WHERE alarms.state = 'cleared'",
    )
    .bind(KIND)
    .bind(subject(camera_id))
    .bind(&cam.region_code)
    .bind(cam.site_id)
    .bind(&ids)
    .bind(&message)
    .bind(now)
    .execute(pool)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(None);
    }
    let id: i64 = sqlx::query_scalar("SELECT id FROM alarms WHERE kind = $1 AND subject = $2")
        .bind(KIND)
        .bind(subject(camera_id))
        .fetch_one(pool)
        .await?;
    tracing::warn!(camera = camera_id, "camera offline alarm raised");
    Ok(Some(alarm_json(
        id,
        "active",
        camera_id,
        cam.site_id,
        &cam.region_code,
        &message,
        now,
    )))
}

/// Clears the camera's active alarm, if any; returns the notification when one was cleared.
async fn clear(pool: &Pool, camera_id: i64) -> Result<Option<Value>, DbError> {
    let now = now_ms();
    let row: Option<(i64, Option<i64>, String, String)> = sqlx::query_as(
        "UPDATE alarms SET state = 'cleared', cleared_at = $1 WHERE kind = $2 AND subject = $3 AND state = 'active'
         RETURNING id, site_id, region_code, message",
    )
    .bind(now)
    .bind(KIND)
    .bind(subject(camera_id))
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(id, site_id, region, message)| {
        tracing::info!(camera = camera_id, "camera offline alarm cleared");
        alarm_json(
            id,
            "cleared",
            camera_id,
            site_id.unwrap_or_default(),
            &region,
            &message,
            now,
        )
    }))
}

fn alarm_json(
    id: i64,
    state: &str,
    camera_id: i64,
    site_id: i64,
    region_code: &str,
    message: &str,
    at: i64,
) -> Value {
    json!({
        "type": "alarm", "id": id, "kind": KIND, "state": state, "camera_ids": [camera_id],
        "site_id": site_id, "region_code": region_code, "message": message, "at": ms_to_rfc3339(at),
    })
}

/// Starts the watcher (see the module doc).
pub fn start(svc: Arc<CaseService>, ingest: Arc<Supervisor>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut last: HashMap<i64, StreamState> = HashMap::new();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tick.tick().await;
            if let Err(e) = observe(&svc, &ingest, &mut last).await {
                tracing::error!(error = %e, "camera alarm watcher failed");
            }
        }
    })
}

async fn observe(
    svc: &CaseService,
    ingest: &Supervisor,
    last: &mut HashMap<i64, StreamState>,
) -> Result<(), DbError> {
    let now: HashMap<i64, (StreamState, Option<String>)> = ingest
        .all_statuses()
        .into_iter()
        .filter(|(k, _)| k.kind == StreamKind::Main)
        .map(|(k, s)| (k.camera_id, (s.state, s.error)))
        .collect();
    let send = |v: Value| {
        let _ = svc.notify.send(Arc::from(v.to_string()));
    };
    let gone: Vec<i64> = last
        .keys()
        .filter(|id| !now.contains_key(id))
        .copied()
        .collect();
    for id in gone {
        last.remove(&id);
        if let Some(n) = clear(&svc.pool, id).await? {
            send(n);
        }
    }
    for (&id, (state, error)) in &now {
        let before = last.get(&id).copied();
        if before == Some(*state) {
            continue;
        }
        // Recorded as seen only once handled: a database error retries the change at the next tick.
        let Some(cam) = camera_info(&svc.pool, id).await? else {
            continue;
        };
        // The first sight of a camera after a start is not a change worth telling, unless it is down.
        if before.is_some() || is_down(*state) {
            send(json!({
                "type": "camera_status", "camera_id": id, "camera_name": cam.name, "site_id": cam.site_id,
                "region_code": cam.region_code, "state": state.as_str(), "at": ms_to_rfc3339(now_ms()),
            }));
        }
        let alarm = if is_down(*state) {
            raise(&svc.pool, id, &cam, error.as_deref()).await?
        } else if *state == StreamState::Online {
            clear(&svc.pool, id).await?
        } else {
            None
        };
        if let Some(n) = alarm {
            send(n);
        }
        last.insert(id, *state);
    }
    Ok(())
}
