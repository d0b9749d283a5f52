//! The one time module: the units the server keeps time in and the conversions between them.
//!
//! - Media time is 90 kHz ticks (RTP's video clock, and the MP4 timescale of every track written).
//! - Footage times (segments, frames, clips) are Unix microseconds; database times of rows (cases,
//!   users, audit) are Unix milliseconds. Both are UTC.
//! - Outside the server, times are RFC 3339: parsed with an explicit offset (a time without one is
//!   ambiguous across a province's offices and is refused), printed in UTC with a `Z`.
//!
//! Conversions round down, so that a time converted back never lands after the one it came from.

use chrono::{DateTime, SecondsFormat, Utc};

/// 90 kHz: ticks in a second.
pub const TICKS_PER_SECOND: i64 = 90_000;

/// 90 kHz ticks to microseconds (rounded down).
pub fn ticks_to_us(t: i64) -> i64 {
    t.saturating_mul(100) / 9
}

/// Microseconds to 90 kHz ticks (rounded down).
pub fn us_to_ticks(us: i64) -> i64 {
    us * 9 / 100
}

/// Now, in Unix milliseconds (the database's unit for rows).
pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// Now, in Unix microseconds (the unit of footage).
pub fn now_us() -> i64 {
    Utc::now().timestamp_micros()
}

/// Unix milliseconds as RFC 3339 in UTC, to the millisecond; empty when out of range.
pub fn ms_to_rfc3339(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// Unix microseconds as RFC 3339 in UTC, to the microsecond; empty when out of range.
pub fn us_to_rfc3339(us: i64) -> String {
    DateTime::from_timestamp_micros(us)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Micros, true))
        .unwrap_or_default()
}

/// Unix milliseconds as a compact UTC stamp for file names (`20260301T093000Z`).
pub fn ms_to_compact(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y%m%dT%H%M%SZ").to_string())
        .unwrap_or_default()
}

/// The time format of GB/T 28181 (MANSCDP bodies, the `Date` of a registration): local time in the
/// devices' offset, without a zone.
const GB_FORMAT: &str = "%Y-%m-%dT%H:%M:%S";

fn gb_offset(offset_minutes: i32) -> chrono::FixedOffset {
    chrono::FixedOffset::east_opt(offset_minutes * 60)
        .unwrap_or(chrono::FixedOffset::east_opt(0).expect("zero offset"))
}

/// Unix milliseconds as a GB/T 28181 time in the devices' UTC offset (`2026-03-01T09:30:00`).
pub fn ms_to_gb(ms: i64, offset_minutes: i32) -> String {
    DateTime::from_timestamp_millis(ms)
        .map(|t| {
            t.with_timezone(&gb_offset(offset_minutes))
                .format(GB_FORMAT)
                .to_string()
        })
        .unwrap_or_default()
}

/// A GB/T 28181 time (seconds, optionally with a fraction; some devices put a space for the `T`) as
/// Unix milliseconds.
pub fn gb_to_ms(v: &str, offset_minutes: i32) -> Option<i64> {
    let v = v.trim().replacen(' ', "T", 1);
    let naive = chrono::NaiveDateTime::parse_from_str(&v, "%Y-%m-%dT%H:%M:%S%.f").ok()?;
    naive
        .and_local_timezone(gb_offset(offset_minutes))
        .single()
        .map(|t| t.timestamp_millis())
}

/// Why an outside time was refused; says what was expected.
#[derive(Debug, thiserror::Error)]
#[error(
    "{field} must be an RFC 3339 time with offset, e.g. 2026-03-01T09:30:00+08:00; got {value:?}"
)]
pub struct BadTime {
    pub field: String,
    pub value: String,
}

fn parse(field: &str, v: &str) -> Result<DateTime<chrono::FixedOffset>, BadTime> {
    DateTime::parse_from_rfc3339(v.trim()).map_err(|_| BadTime {
        field: field.to_owned(),
        value: v.chars().take(64).collect(),
    })
}

/// An RFC 3339 time with offset, as Unix milliseconds.
pub fn parse_ms(field: &str, v: &str) -> Result<i64, BadTime> {
    parse(field, v).map(|t| t.timestamp_millis())
}

/// An RFC 3339 time with offset, as Unix microseconds.
pub fn parse_us(field: &str, v: &str) -> Result<i64, BadTime> {
    parse(field, v).map(|t| t.timestamp_micros())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_round_down_and_round_trip_within_a_tick() {
        assert_eq!(ticks_to_us(TICKS_PER_SECOND), 1_000_000);
        assert_eq!(us_to_ticks(1_000_000), TICKS_PER_SECOND);
        for us in [0, 1, 11, 12, 999_999, 1_700_000_000_123_456] {
            let back = ticks_to_us(us_to_ticks(us));
            assert!(back <= us && us - back < 12, "{us} -> {back}");
        }
    }

    #[test]
    fn outside_times_need_an_offset_and_print_in_utc() {
        let us = parse_us("start", "2026-03-01T09:30:00+08:00").expect("parses");
        assert_eq!(us_to_rfc3339(us), "2026-03-01T01:30:00.000000Z");
        assert_eq!(ms_to_rfc3339(us / 1000), "2026-03-01T01:30:00.000Z");
        assert_eq!(ms_to_compact(us / 1000), "20260301T013000Z");
        let e = parse_ms("deadline", "2026-03-01 09:30").expect_err("no offset");
        assert!(e
            .to_string()
            .starts_with("deadline must be an RFC 3339 time"));
    }

    #[test]
    fn gb_times_are_local_to_the_devices() {
        let ms = parse_ms("t", "2026-03-01T09:30:00+08:00").expect("parses");
        assert_eq!(ms_to_gb(ms, 480), "2026-03-01T09:30:00");
        assert_eq!(gb_to_ms("2026-03-01T09:30:00", 480), Some(ms));
        assert_eq!(gb_to_ms("2026-03-01 09:30:00.500", 480), Some(ms + 500));
        assert_eq!(gb_to_ms("2026-03-01T01:30:00", 0), Some(ms));
        assert_eq!(gb_to_ms("yesterday", 480), None);
    }
}
