//! Vigil's own recordings for a superior platform: its RecordInfo queries answered from the index, and
//! its Playback INVITEs served by replaying the footage as PS over RTP, at the pace its MANSRTSP asks.
//!
//! Invariants: the caller (`upstream`) has checked that the camera is shared with the superior at the
//! time of the query or INVITE; footage is read one fragment (GOP) at a time on a blocking thread, so a
//! day-long range costs one GOP of memory; a replay that reached its range's end says so (MediaStatus
//! 121) and waits for the superior's BYE.

use super::mansrtsp::Command;
use super::pace::Pace;
use super::send::Answering;
use crate::db::Pool;
use crate::ingest::annexb::{parameter_sets, to_annex_b};
use crate::media::ps;
use crate::record::footage::Footage;
use crate::record::frames::{Gop, Reader};
use crate::record::index::{self, merge_spans};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Records per RecordInfo MESSAGE.
pub const PAGE: usize = 8;
/// Records answered at most for one query.
const MAX_RECORDS: usize = 1_000;

/// The spans (Unix ms) of a camera's main stream within `[start, end]`, as RecordInfo answers them.
pub async fn record_spans(
    pool: &Pool,
    camera_id: i64,
    (start_ms, end_ms): (i64, i64),
) -> Result<Vec<(i64, i64)>, crate::db::DbError> {
    let (start_us, end_us) = (start_ms * 1000, end_ms * 1000);
    let rows = index::overlapping(pool, camera_id, "main", start_us, end_us).await?;
    let times: Vec<(i64, i64)> = rows.iter().map(|r| (r.start_us, r.end_us)).collect();
    let mut spans = merge_spans(&times, start_us, end_us);
    spans.truncate(MAX_RECORDS);
    Ok(spans
        .into_iter()
        .map(|(a, z)| (a / 1000, z / 1000))
        .collect())
}

/// The next fragment of the reader, read on a blocking thread.
async fn next_gop(reader: Reader) -> (Reader, Option<Gop>) {
    let read = tokio::task::spawn_blocking(move || {
        let mut reader = reader;
        let gop = reader.next_gop();
        (reader, gop)
    });
    match read.await {
        Ok(r) => r,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// Replays `[start, end]` (Unix seconds) of a camera's recordings to the superior; true when it reached
/// the end.
pub async fn replay(
    pool: &Pool,
    footage: Footage,
    camera_id: i64,
    (start_s, end_s): (i64, i64),
    answering: Answering,
    mut control: mpsc::Receiver<Command>,
    cancel: CancellationToken,
) -> std::io::Result<bool> {
    let (start_us, end_us) = (start_s * 1_000_000, end_s * 1_000_000);
    let rows = index::overlapping(pool, camera_id, "main", start_us, end_us)
        .await
        .map_err(std::io::Error::other)?;
    let mut reader = Reader::new(footage, rows, start_us, end_us);
    let (mut pending, mut sink, mut buf) = (Some(answering), None, Vec::new());
    let mut pace: Option<Pace> = None;
    let mut first_us = None;
    let mut steered = true;
    loop {
        let (r, gop) = next_gop(reader).await;
        reader = r;
        let Some(gop) = gop else { return Ok(true) };
        if let Some(a) = pending.take() {
            sink = Some(a.open(ps::video_type(gop.h265)).await?);
        }
        let Some(sink) = sink.as_mut() else { continue };
        let sets = parameter_sets(&gop.extra, gop.h265);
        let mut frames = gop.frames.iter();
        let mut frame = frames.next();
        while let Some(f) = frame {
            let first = *first_us.get_or_insert(f.wall_us);
            let pace = pace.get_or_insert_with(|| Pace::new(f.wall_us / 1000));
            let due = pace.due(f.wall_us / 1000);
            tokio::select! {
                _ = cancel.cancelled() => return Ok(false),
                cmd = control.recv(), if steered => match cmd {
                    Some(cmd) => {
                        if let Some(from) = pace.apply(cmd) {
                            reader.seek(start_us + (from * 1e6) as i64);
                            pace.anchor((start_us + (from * 1e6) as i64) / 1000);
                            break;
                        }
                        pace.anchor(f.wall_us / 1000);
                    }
                    None => steered = false,
                },
                _ = tokio::time::sleep_until(due), if !pace.paused => {
                    buf.clear();
                    to_annex_b(&mut buf, if f.keyframe { &sets } else { &[] }, &f.data);
                    let dts = crate::time::us_to_ticks(f.wall_us - first) as u64;
                    sink.frame(&buf, dts + u64::from(f.composition_offset), dts, f.keyframe).await?;
                    frame = frames.next();
                }
            }
        }
    }
}
