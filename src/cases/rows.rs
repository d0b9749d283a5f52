//! The rows of cases and their events as stored, and their plain reads. The store writes them; cards,
//! holds and views read them (this module depends on none of those).

use super::clips::EventRef;
use super::model::EventFields;
use crate::db::{DbError, Pool};
use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct CaseRow {
    pub case_no: String,
    pub case_type: String,
    pub site_id: i64,
    pub region_code: String,
    pub status: String,
    pub first_at: i64,
    pub last_at: i64,
    pub completed_at: Option<i64>,
    pub deadline: Option<i64>,
    pub followup_deadline: Option<i64>,
    pub card: String,
    pub events: i64,
}

pub(super) const CASE_COLUMNS: &str =
    "case_no, case_type, site_id, region_code, status, first_at, last_at, completed_at, \
     deadline, followup_deadline, card, events";

/// A stored event: its fields and who sent it when.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct EventRow {
    #[sqlx(flatten)]
    #[serde(flatten)]
    pub fields: EventFields,
    pub received_at: i64,
    pub received_by: String,
}

impl std::ops::Deref for EventRow {
    type Target = EventFields;
    fn deref(&self) -> &EventFields {
        &self.fields
    }
}

impl EventRow {
    pub fn to_ref(&self) -> EventRef {
        let extra = serde_json::from_str::<Value>(&self.attributes)
            .ok()
            .and_then(|a| {
                a.get("positions").and_then(Value::as_array).map(|l| {
                    l.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
            })
            .unwrap_or_default();
        EventRef {
            event_id: self.event_id.clone(),
            kind: self.kind.clone(),
            at: self.at,
            position: self.position.clone(),
            extra_positions: extra,
        }
    }
}

/// Events of a case, in rule order.
pub async fn events(conn: &mut crate::db::Conn, case_no: &str) -> Result<Vec<EventRow>, DbError> {
    Ok(sqlx::query_as::<_, EventRow>(
        "SELECT event_id, case_no, case_type, kind, at, site_id, position, operator, deadline, attributes,
             received_at, received_by
         FROM case_events WHERE case_no = $1 ORDER BY at, event_id",
    )
    .bind(case_no)
    .fetch_all(&mut *conn)
    .await?)
}

pub(super) async fn get_conn(
    conn: &mut crate::db::Conn,
    case_no: &str,
) -> Result<CaseRow, DbError> {
    sqlx::query_as::<_, CaseRow>(&format!(
        "SELECT {CASE_COLUMNS} FROM cases WHERE case_no = $1"
    ))
    .bind(case_no)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(DbError::NotFound)
}

pub async fn get(pool: &Pool, case_no: &str) -> Result<CaseRow, DbError> {
    let mut conn = pool.acquire().await?;
    get_conn(&mut conn, case_no).await
}
