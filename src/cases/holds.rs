//! Holds by case, on the recording engine's `holds` table (migrations/0002): one row per clip, with
//! `camera_id`, the clip's range and `case_no`, so that retention (which keeps every segment overlapping
//! a hold of its camera) needs to know nothing of cases.
//!
//! Invariants:
//! - Bid sessions are held automatically: the rows made by `created_by = 'vigil:bid-session'` for a case
//!   are redone in the same transaction as every event of the case, so they always match its sessions.
//! - A hold asked for by a person (`POST /holds {case_no, reason}`) holds the case's clips as they are at
//!   that moment; it is never removed by later events.

use super::clips::{sessions, sort_events, EventRef};
use super::rows::{events, CaseRow, EventRow};
use crate::db::DbError;

pub const BID_HOLDER: &str = "vigil:bid-session";

/// Redoes the automatic holds of a bid case's sessions.
pub async fn redo_bid_holds(
    tx: &mut crate::db::Tx<'_>,
    case: &CaseRow,
    now: i64,
) -> Result<(), DbError> {
    sqlx::query("DELETE FROM holds WHERE case_no = $1 AND created_by = $2")
        .bind(&case.case_no)
        .bind(BID_HOLDER)
        .execute(&mut **tx)
        .await?;
    let evs = events(tx, &case.case_no).await?;
    let mut refs: Vec<EventRef> = evs.iter().map(EventRow::to_ref).collect();
    sort_events(&mut refs);
    // An open session is held for its longest possible length, not just until now.
    for s in sessions(&refs, i64::MAX) {
        for p in &s.positions {
            let cams: Vec<(i64,)> = sqlx::query_as(
                "SELECT pc.camera_id FROM positions p JOIN position_cameras pc ON pc.position_id = p.id
                 WHERE p.site_id = $1 AND p.code = $2",
            )
            .bind(case.site_id)
            .bind(p)
            .fetch_all(&mut **tx)
            .await?;
            for (cam,) in cams {
                insert(
                    tx,
                    cam,
                    &case.case_no,
                    s.start,
                    s.end,
                    &format!("bid {} session of {}", s.name, case.case_no),
                    BID_HOLDER,
                    now,
                )
                .await?;
            }
        }
    }
    Ok(())
}

/// One hold row; times in milliseconds (stored in microseconds, as the segment index keeps them).
#[allow(clippy::too_many_arguments)]
pub async fn insert(
    tx: &mut crate::db::Tx<'_>,
    camera_id: i64,
    case_no: &str,
    start_ms: i64,
    end_ms: i64,
    reason: &str,
    by: &str,
    now: i64,
) -> Result<i64, DbError> {
    Ok(sqlx::query_scalar::<_, i64>(
        "INSERT INTO holds (camera_id, case_no, start_us, end_us, reason, created_by, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(camera_id)
    .bind(case_no)
    .bind(start_ms.saturating_mul(1000))
    .bind(
        end_ms
            .saturating_mul(1000)
            .max(start_ms.saturating_mul(1000) + 1),
    )
    .bind(reason)
    .bind(by)
    .bind(now)
    .fetch_one(&mut **tx)
    .await?)
}
