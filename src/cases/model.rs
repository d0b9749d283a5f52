//! Case events as they arrive, and the checks each one passes on its own before anything is written.
//!
//! Invariants:
//! - An item is checked alone: a bad item (wrong type, unknown word, bad time) is listed with its index and
//!   the reason and never stops the good items of the same batch.
//! - The content hash is a function of the item's meaning, not of its spelling: the same event sent with
//!   its keys in another order, or its time in another offset, hashes the same; so a retry is recognised
//!   as a duplicate, and an `event_id` reused for something else is refused.

use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

pub const CASE_TYPES: &[&str] = &["approval", "bid"];
/// Steps of an approval case (办件): 受理, 承办, 审核, 批准, 办结.
pub const APPROVAL_KINDS: &[&str] = &[
    "accepted",
    "processing",
    "reviewed",
    "approved",
    "completed",
];
/// Steps of a bid project: 开标 and 评标 sessions.
pub const BID_KINDS: &[&str] = &[
    "opening_start",
    "opening_end",
    "evaluation_start",
    "evaluation_end",
];

/// The most items one `POST /events` takes.
pub const MAX_BATCH: usize = 1000;

/// One item of `POST /events` as sent.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventIn {
    pub event_id: String,
    pub case_no: String,
    pub case_type: String,
    pub kind: String,
    pub at: String,
    pub site_id: i64,
    pub position: String,
    #[serde(default)]
    pub operator: Option<String>,
    #[serde(default)]
    pub deadline: Option<String>,
    #[serde(default)]
    pub attributes: Option<Map<String, Value>>,
}

/// The fields of an event, as checked here and as stored (`rows::EventRow`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, sqlx::FromRow)]
pub struct EventFields {
    pub event_id: String,
    pub case_no: String,
    pub case_type: String,
    pub kind: String,
    /// Unix milliseconds.
    pub at: i64,
    pub site_id: i64,
    pub position: String,
    pub operator: Option<String>,
    pub deadline: Option<i64>,
    /// Canonical JSON object (keys sorted).
    pub attributes: String,
}

/// An item that passed the checks that need no database.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub fields: EventFields,
    /// Seat and room codes the event adds to a bid session (`attributes.positions`).
    pub extra_positions: Vec<String>,
    pub content_hash: String,
}

impl std::ops::Deref for Event {
    type Target = EventFields;
    fn deref(&self) -> &EventFields {
        &self.fields
    }
}

/// Parses an RFC 3339 time with an offset to Unix milliseconds.
pub fn parse_time(field: &str, v: &str) -> Result<i64, String> {
    crate::time::parse_ms(field, v).map_err(|e| e.to_string())
}

/// A case number (办件编号, 项目编号): 1 to 64 characters, letters (any script), digits and `-_.()`,
/// so that it is safe in a URL path and a file name.
pub fn case_no(v: &str) -> Result<String, String> {
    let v = v.trim();
    if v.is_empty() || v.chars().count() > 64 {
        return Err("case_no must have 1 to 64 characters".into());
    }
    if let Some(c) = v
        .chars()
        .find(|c| !(c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '(' | ')')))
    {
        return Err(format!(
            "case_no may hold letters, digits and - _ . ( ) only; found {c:?}"
        ));
    }
    if v.starts_with('.') {
        return Err("case_no must not start with a dot".into());
    }
    Ok(v.to_owned())
}

fn text(field: &str, v: &str, max: usize) -> Result<String, String> {
    let v = v.trim();
    if v.is_empty() {
        return Err(format!("{field} must not be empty"));
    }
    if v.chars().count() > max {
        return Err(format!("{field} is longer than {max} characters"));
    }
    if v.chars().any(char::is_control) {
        return Err(format!("{field} contains control characters"));
    }
    Ok(v.to_owned())
}

/// JSON with object keys sorted (serde_json's map is ordered by key without `preserve_order`).
fn canonical(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// The case type is known and the kind is one of its kinds.
fn type_and_kind(case_type: &str, kind: &str) -> Result<(), String> {
    if !CASE_TYPES.contains(&case_type) {
        return Err(format!(
            "case_type must be approval or bid; got {case_type:?}"
        ));
    }
    let kinds = if case_type == "approval" {
        APPROVAL_KINDS
    } else {
        BID_KINDS
    };
    if !kinds.contains(&kind) {
        return Err(format!(
            "kind of a {case_type} event must be one of {}; got {kind:?}",
            kinds.join(", ")
        ));
    }
    Ok(())
}

/// The seat and room codes a bid event adds (`attributes.positions`).
fn extra_positions(attributes: &Value) -> Result<Vec<String>, String> {
    let Some(p) = attributes.get("positions") else {
        return Ok(Vec::new());
    };
    let bad = "attributes.positions must be a list of position codes";
    p.as_array()
        .ok_or(bad)?
        .iter()
        .map(|code| text("attributes.positions[]", code.as_str().ok_or(bad)?, 50))
        .collect()
}

/// Checks one item alone. Errors are the reason shown to the sender.
pub fn check(item: &Value) -> Result<Event, String> {
    let e: EventIn = serde_json::from_value(item.clone()).map_err(|e| e.to_string())?;
    let event_id = text("event_id", &e.event_id, 128)?;
    let case_no = case_no(&e.case_no)?;
    type_and_kind(&e.case_type, &e.kind)?;
    let at = parse_time("at", &e.at)?;
    // Before 2000 or more than a day ahead: a broken clock on the sender, not an event.
    let now = crate::db::now_ms();
    if !(946_684_800_000..=now + 86_400_000).contains(&at) {
        return Err(format!("at {:?} is not a plausible time", e.at));
    }
    if e.site_id <= 0 {
        return Err("site_id must be a positive integer".into());
    }
    let position = text("position", &e.position, 50)?;
    let operator = e
        .operator
        .as_deref()
        .filter(|o| !o.trim().is_empty())
        .map(|o| text("operator", o, 100))
        .transpose()?;
    let deadline = e
        .deadline
        .as_deref()
        .map(|d| parse_time("deadline", d))
        .transpose()?;
    let attributes = Value::Object(e.attributes.unwrap_or_default());
    let attributes_text = canonical(&attributes);
    if attributes_text.len() > 8192 {
        return Err("attributes take at most 8 KiB of JSON".into());
    }
    let extra_positions = extra_positions(&attributes)?;
    let canon = serde_json::json!({
        "event_id": event_id, "case_no": case_no, "case_type": e.case_type, "kind": e.kind, "at": at,
        "site_id": e.site_id, "position": position, "operator": operator, "deadline": deadline,
        "attributes": attributes,
    });
    let content_hash = hex::encode(Sha256::digest(canonical(&canon).as_bytes()));
    Ok(Event {
        fields: EventFields {
            event_id,
            case_no,
            case_type: e.case_type,
            kind: e.kind,
            at,
            site_id: e.site_id,
            position,
            operator,
            deadline,
            attributes: attributes_text,
        },
        extra_positions,
        content_hash,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item() -> Value {
        json!({"event_id": "e1", "case_no": "360702-2026-0001", "case_type": "approval", "kind": "accepted",
               "at": "2026-03-01T09:30:00+08:00", "site_id": 1, "position": "A12", "operator": "张三"})
    }

    #[test]
    fn same_meaning_same_hash() {
        let a = check(&item()).unwrap();
        let mut other = item();
        other["at"] = json!("2026-03-01T01:30:00Z");
        let b = check(&other).unwrap();
        assert_eq!(a.content_hash, b.content_hash);
        other["operator"] = json!("李四");
        assert_ne!(check(&other).unwrap().content_hash, a.content_hash);
    }

    #[test]
    fn bad_items_say_why() {
        let cases = [
            ("kind", json!("opening_start"), "kind of a approval"),
            ("at", json!("yesterday"), "RFC 3339"),
            ("case_no", json!("a/b"), "letters"),
            ("case_type", json!("tender"), "approval or bid"),
            ("site_id", json!("x"), "invalid type"),
        ];
        for (field, value, reason) in cases {
            let mut v = item();
            v[field] = value;
            let err = check(&v).unwrap_err();
            assert!(err.contains(reason), "{field}: {err}");
        }
        let mut v = item();
        v["extra"] = json!(1);
        assert!(check(&v).unwrap_err().contains("unknown field"));
    }
}
