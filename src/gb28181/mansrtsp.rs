//! MANSRTSP (GB/T 28181-2016 annex B): the RTSP-like bodies of the INFO requests that steer a playback
//! session: `PLAY` with `Scale` (speed) or `Range: npt=` (seek), and `PAUSE`.
//!
//! Invariants: a body is at most [`MAX_BODY`] bytes; a scale is finite and within [`MIN_SCALE`,
//! `MAX_SCALE`]; a seek offset is finite and not negative. Anything else is an error, never a panic.

use thiserror::Error;

pub const CONTENT_TYPE: &str = "Application/MANSRTSP";
pub const MAX_BODY: usize = 4096;
pub const MIN_SCALE: f64 = 0.125;
pub const MAX_SCALE: f64 = 16.0;

/// One command of a playback session.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Command {
    /// Resume (both `None`), change the speed, or seek to seconds after the session's start.
    Play {
        scale: Option<f64>,
        from_s: Option<f64>,
    },
    Pause,
}

#[derive(Debug, Error, PartialEq)]
pub enum MansrtspError {
    #[error("MANSRTSP body of {0} bytes is too large")]
    TooLarge(usize),
    #[error("MANSRTSP request line missing or not MANSRTSP/1.0")]
    RequestLine,
    #[error("MANSRTSP method {0} is not supported")]
    Method(String),
    #[error("MANSRTSP {0} value is not valid")]
    Value(&'static str),
}

/// The body of an INFO request (CRLF lines, ending with an empty line).
pub fn build(cmd: &Command, cseq: u32) -> Vec<u8> {
    let mut s = match cmd {
        Command::Play { .. } => format!("PLAY MANSRTSP/1.0\r\nCSeq: {cseq}\r\n"),
        Command::Pause => format!("PAUSE MANSRTSP/1.0\r\nCSeq: {cseq}\r\nPauseTime: now\r\n"),
    };
    if let Command::Play { scale, from_s } = cmd {
        if let Some(scale) = scale {
            s.push_str(&format!("Scale: {scale}\r\n"));
        }
        match from_s {
            Some(from) => s.push_str(&format!("Range: npt={from:.3}-\r\n")),
            None if scale.is_none() => s.push_str("Range: npt=now-\r\n"),
            None => {}
        }
    }
    s.push_str("\r\n");
    s.into_bytes()
}

/// Reads an INFO body.
pub fn parse(body: &[u8]) -> Result<Command, MansrtspError> {
    if body.len() > MAX_BODY {
        return Err(MansrtspError::TooLarge(body.len()));
    }
    let text = String::from_utf8_lossy(body);
    let mut lines = text.lines().map(str::trim);
    let first = lines.next().unwrap_or_default();
    let mut parts = first.split_whitespace();
    let method = parts.next().unwrap_or_default().to_ascii_uppercase();
    if !parts
        .next()
        .is_some_and(|v| v.eq_ignore_ascii_case("MANSRTSP/1.0"))
    {
        return Err(MansrtspError::RequestLine);
    }
    let (mut scale, mut from_s) = (None, None);
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "scale" => scale = Some(scale_value(value)?),
            "range" => from_s = range_start(value)?,
            _ => {}
        }
    }
    match method.as_str() {
        "PLAY" => Ok(Command::Play { scale, from_s }),
        "PAUSE" => Ok(Command::Pause),
        _ => Err(MansrtspError::Method(method.chars().take(16).collect())),
    }
}

fn scale_value(v: &str) -> Result<f64, MansrtspError> {
    v.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && (MIN_SCALE..=MAX_SCALE).contains(s))
        .ok_or(MansrtspError::Value("Scale"))
}

/// `npt=12.5-` (or `npt=12.5-30`): the start; `npt=now-` and `npt=-`: no seek.
fn range_start(v: &str) -> Result<Option<f64>, MansrtspError> {
    let npt = v
        .strip_prefix("npt=")
        .ok_or(MansrtspError::Value("Range"))?;
    let start = npt.split('-').next().unwrap_or_default().trim();
    if start.is_empty() || start.eq_ignore_ascii_case("now") {
        return Ok(None);
    }
    start
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Some)
        .ok_or(MansrtspError::Value("Range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_it_writes() {
        for cmd in [
            Command::Pause,
            Command::Play {
                scale: Some(4.0),
                from_s: None,
            },
            Command::Play {
                scale: None,
                from_s: Some(12.5),
            },
            Command::Play {
                scale: None,
                from_s: None,
            },
        ] {
            assert_eq!(parse(&build(&cmd, 3)), Ok(cmd));
        }
    }

    #[test]
    fn refuses_what_devices_should_never_get() {
        assert_eq!(parse(b""), Err(MansrtspError::RequestLine));
        assert_eq!(
            parse(b"PLAY MANSRTSP/1.0\r\nScale: NaN\r\n"),
            Err(MansrtspError::Value("Scale"))
        );
        assert_eq!(
            parse(b"PLAY MANSRTSP/1.0\r\nScale: 1000\r\n"),
            Err(MansrtspError::Value("Scale"))
        );
        assert_eq!(
            parse(b"PLAY MANSRTSP/1.0\r\nRange: npt=-5-\r\n"),
            Ok(Command::Play {
                scale: None,
                from_s: None
            })
        );
        assert_eq!(
            parse(b"PLAY MANSRTSP/1.0\r\nRange: npt=x-\r\n"),
            Err(MansrtspError::Value("Range"))
        );
        assert!(matches!(
            parse(b"TEARDOWN MANSRTSP/1.0\r\n"),
            Err(MansrtspError::Method(_))
        ));
        assert!(matches!(
            parse(&[b'a'; MAX_BODY + 1]),
            Err(MansrtspError::TooLarge(_))
        ));
    }
}
