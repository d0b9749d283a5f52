//! Yellow and red cards (黄牌 / 红牌), the alarms they raise and the notifications they send.
//!
//! - A case gets a yellow card when it reaches its deadline unfinished and a red card when it reaches its
//!   follow-up deadline unfinished. A case finished late keeps the card it had earned at its completion.
//! - The card is a function of (completion time, deadlines, now): recomputed when events arrive and by a
//!   sweep every `card_interval_seconds` for open cases whose deadlines pass with no event.
//! - A card raises one alarm per (case, colour) (`UNIQUE (kind, subject)`: a sweep that runs twice raises
//!   nothing twice), naming the cameras of the case's positions, and one notification.

use super::rows::CaseRow;
use crate::db::{now_ms, DbError, Pool};
use serde::Serialize;
use serde_json::json;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Card {
    None,
    Yellow,
    Red,
}

impl Card {
    pub fn parse(s: &str) -> Card {
        match s {
            "yellow" => Card::Yellow,
            "red" => Card::Red,
            _ => Card::None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Card::None => "none",
            Card::Yellow => "yellow",
            Card::Red => "red",
        }
    }
}

/// The card of a case finished at `completed_at` (or still open) at `now`.
pub fn card_for(
    completed_at: Option<i64>,
    deadline: Option<i64>,
    followup: Option<i64>,
    now: i64,
) -> Card {
    let t = completed_at.unwrap_or(now);
    match (deadline, followup) {
        (_, Some(f)) if t >= f => Card::Red,
        (Some(d), _) if t >= d => Card::Yellow,
        _ => Card::None,
    }
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct AlarmRow {
    pub id: i64,
    pub kind: String,
    pub subject: String,
    pub region_code: String,
    pub site_id: Option<i64>,
    pub case_no: Option<String>,
    pub camera_ids: String,
    pub message: String,
    pub state: String,
    pub raised_at: i64,
    pub cleared_at: Option<i64>,
}

/// Raises the alarm of a case's card, once. Returns the notification to send when it is new.
pub async fn raise_card_alarm(
    pool: &Pool,
    case: &CaseRow,
    card: Card,
) -> Result<Option<serde_json::Value>, DbError> {
    let cams: Vec<(i64, String)> = sqlx::query_as(
        "SELECT DISTINCT c.id, c.name FROM case_events e
         JOIN positions p ON p.site_id = e.site_id AND p.code = e.position
         JOIN position_cameras pc ON pc.position_id = p.id JOIN cameras c ON c.id = pc.camera_id
         WHERE e.case_no = $1 ORDER BY c.id",
    )
    .bind(&case.case_no)
    .fetch_all(pool)
    .await?;
    let ids: Vec<i64> = cams.iter().map(|c| c.0).collect();
    let names: Vec<&str> = cams.iter().map(|c| c.1.as_str()).collect();
    let (colour, deadline) = match card {
        Card::Red => ("red", case.followup_deadline),
        _ => ("yellow", case.deadline),
    };
    let message = format!(
        "case {} got a {colour} card: unfinished at {}; cameras: {}",
        case.case_no,
        deadline.map(crate::db::ms_to_rfc3339).unwrap_or_default(),
        if names.is_empty() {
            "none".to_owned()
        } else {
            names.join(", ")
        }
    );
    let kind = format!("case_{colour}");
    let now = now_ms();
    let done = sqlx::query(
        "INSERT INTO alarms (kind, subject, region_code, site_id, case_no, camera_ids, message, state, raised_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'active', $8) ON CONFLICT (kind, subject) DO NOTHING",
    )
    .bind(&kind)
    .bind(&case.case_no)
    .bind(&case.region_code)
    .bind(case.site_id)
    .bind(&case.case_no)
    .bind(serde_json::to_string(&ids).unwrap_or_else(|_| "[]".into()))
    .bind(&message)
    .bind(now)
    .execute(pool)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(None);
    }
    // A red card supersedes the yellow one.
    if card == Card::Red {
        sqlx::query(
            "UPDATE alarms SET state = 'cleared', cleared_at = $1 WHERE kind = 'case_yellow' AND subject = $2
             AND state = 'active'",
        )
        .bind(now)
        .bind(&case.case_no)
        .execute(pool)
        .await?;
    }
    tracing::warn!(case = %case.case_no, card = colour, "case card raised");
    Ok(Some(json!({
        "type": "case_card",
        "case_no": case.case_no,
        "card": colour,
        "site_id": case.site_id,
        "region_code": case.region_code,
        "camera_ids": ids,
        "camera_names": names,
        "message": message,
        "at": crate::db::ms_to_rfc3339(now),
    })))
}

/// Open cases whose card is behind the clock get their new card; returns the changed cases.
pub async fn sweep(pool: &Pool, now: i64) -> Result<Vec<(CaseRow, Card)>, DbError> {
    let rows: Vec<CaseRow> = sqlx::query_as(
        "SELECT case_no, case_type, site_id, region_code, status, first_at, last_at, completed_at, deadline,
             followup_deadline, card, events
         FROM cases WHERE status = 'open' AND deadline <= $1
           AND (card = 'none' OR (card = 'yellow' AND followup_deadline <= $2))
         LIMIT 1000",
    )
    .bind(now)
    .bind(now)
    .fetch_all(pool)
    .await?;
    let mut out = Vec::new();
    for mut row in rows {
        let card = card_for(None, row.deadline, row.followup_deadline, now);
        if card == Card::parse(&row.card) {
            continue;
        }
        sqlx::query(
            "UPDATE cases SET card = $1, updated_at = $2 WHERE case_no = $3 AND status = 'open'",
        )
        .bind(card.as_str())
        .bind(now)
        .bind(&row.case_no)
        .execute(pool)
        .await?;
        row.card = card.as_str().to_owned();
        out.push((row, card));
    }
    Ok(out)
}

/// Alarms visible in the scope, newest first.
pub async fn list_alarms(
    pool: &Pool,
    state: Option<&str>,
    limit: i64,
) -> Result<Vec<AlarmRow>, DbError> {
    let mut sql = String::from(
        "SELECT id, kind, subject, region_code, site_id, case_no, camera_ids, message, state, raised_at,
             cleared_at FROM alarms",
    );
    let limit_at = if state.is_some() {
        sql.push_str(" WHERE state = $1");
        2
    } else {
        1
    };
    sql.push_str(&format!(
        " ORDER BY raised_at DESC, id DESC LIMIT ${limit_at}"
    ));
    let mut q = sqlx::query_as::<_, AlarmRow>(&sql);
    if let Some(s) = state {
        q = q.bind(s);
    }
    Ok(q.bind(limit).fetch_all(pool).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cards_follow_the_clock_and_completion() {
        let (d, f) = (Some(100), Some(200));
        assert_eq!(card_for(None, d, f, 50), Card::None);
        assert_eq!(card_for(None, d, f, 100), Card::Yellow);
        assert_eq!(card_for(None, d, f, 250), Card::Red);
        assert_eq!(card_for(Some(90), d, f, 250), Card::None);
        assert_eq!(card_for(Some(150), d, f, 999), Card::Yellow);
        assert_eq!(card_for(None, None, None, 999), Card::None);
    }
}
