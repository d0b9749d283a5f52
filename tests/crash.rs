//! The write ordering of docs/storage.md, step by step: the server is killed (abort, as `kill -9`)
//! between each write, fsync and commit of a segment's life and of its deletion, then started again;
//! after its recovery, `vigil check` finds the index and the files in agreement every time: no row names
//! a file that is not there, no fragment is indexed that is not complete, no file is left unindexed.

mod common;
use common::*;
use serde_json::json;
use std::time::Duration;

/// Short segments and a retention that always has work (free space it can never reach), so that every
/// point, deletion included, is reached within seconds.
const STORAGE: &str =
    "[record]\nsegment_seconds = 2\nretention_interval_seconds = 1\nmin_free_mb = 100000000\n";

/// Runs the server until it dies at `point` (its `nth` arrival), restarts it, and checks the data.
async fn crash_and_check(sim: &Sim, point: &str, nth: u32) {
    let mut server = Server::start_with(STORAGE);
    let admin = server.admin().await;
    let site = admin
        .site("章贡区政务服务中心", "service_hall", "360702")
        .await;
    admin
        .camera(json!({"name": "A12", "site_id": site, "main_url": sim.url(1)}))
        .await;
    server.crash_at(point, nth).await;
    server.restart();
    // Recording goes on after the recovery.
    let admin = server.admin().await;
    let recording = wait_for(Duration::from_secs(20), || async {
        let s = admin.get("/api/v1/cameras").await.body;
        let id = s.as_array()?.first()?["id"].as_i64()?;
        let st = admin.status(id).await;
        (st["state"] == "online").then_some(())
    })
    .await;
    assert!(recording.is_some(), "{point}: the camera records again");
    server.stop();
    let (ok, out) = server.command(&["check"]);
    assert!(
        ok,
        "{point}: index and files disagree after recovery:\n{out}"
    );
    assert!(out.contains(" 0 problems"), "{point}: {out}");
}

/// The camera sends sound too: each fragment written holds the video and then the audio (one `mdat`),
/// so a crash inside a fragment's write may cut either.
#[tokio::test]
async fn every_step_of_writing_a_segment_survives_a_crash() {
    let sim = Sim::small(1, 25, &["--audio", "aac"]);
    for (point, nth) in [
        ("segment.written", 1),
        ("segment.synced", 1),
        ("segment.indexed", 1),
        ("fragment.written", 2),
        ("fragment.synced", 2),
        ("fragment.indexed", 2),
        ("segment.completed", 1),
    ] {
        crash_and_check(&sim, point, nth).await;
    }
}

#[tokio::test]
async fn every_step_of_deleting_a_segment_survives_a_crash() {
    let sim = Sim::small(1, 25, &[]);
    for point in ["garbage.listed", "garbage.unlinked", "garbage.synced"] {
        crash_and_check(&sim, point, 1).await;
    }
}

/// The complete segment rows of the server's index, oldest first.
async fn complete_rows(server: &Server) -> Vec<vigil::record::index::SegmentRow> {
    let pool = server.db().await;
    let mut rows = vigil::record::index::all(&pool).await.expect("rows");
    pool.close().await;
    rows.retain(|r| r.state == "complete");
    rows.sort_by_key(|r| r.start_us);
    rows
}

fn rfc_us(us: i64) -> String {
    rfc_ms(us / 1000).replace('+', "%2B").replace(':', "%3A")
}

#[tokio::test]
async fn a_lost_segment_file_is_a_gap_and_held_footage_survives_repair() {
    let sim = Sim::small(1, 25, &[]);
    let mut server = Server::start_with("[record]\nsegment_seconds = 2\n");
    let admin = server.admin().await;
    let site = admin
        .site("章贡区政务服务中心", "service_hall", "360702")
        .await;
    let cam = admin
        .camera(json!({"name": "A12", "site_id": site, "main_url": sim.url(1)}))
        .await;
    let rows = wait_for(Duration::from_secs(40), || async {
        let rows = complete_rows(&server).await;
        (rows.len() >= 5).then_some(rows)
    })
    .await
    .expect("five complete segments");
    let (start, end) = (rows[0].start_us, rows[4].end_us);
    // A segment in the middle loses its file (a disk error, an operator's mistake).
    let lost = &rows[2];
    std::fs::remove_file(server.data_dir().join(&lost.path)).expect("remove");
    let path = format!(
        "/api/v1/cameras/{cam}/video.mp4?start={}&end={}",
        rfc_us(start),
        rfc_us(end)
    );
    let resp = admin
        .http
        .get(format!("{}{path}", admin.base))
        .send()
        .await
        .expect("video");
    assert_eq!(resp.status(), 200, "the rest of the range plays");
    let missing = resp
        .headers()
        .get("vigil-missing")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    assert!(!missing.is_empty(), "the lost footage is reported");
    let body = resp.bytes().await.expect("body");
    let file = server.dir.path().join("lost.mp4");
    std::fs::write(&file, &body).expect("write");
    let (dur, _, _) = ffprobe(&file);
    let want = (end - start) as f64 / 1e6;
    assert!(
        (dur - want).abs() < 1.0,
        "plays {dur} s of the {want} s asked for"
    );

    // Held footage is never removed by a repair, even when its file is unreadable.
    let r = admin
        .post(
            "/api/v1/holds",
            json!({"camera_id": cam, "start": rfc_ms(start / 1000), "end": rfc_ms(end / 1000),
                   "reason": "投诉"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    server.stop();
    let broken = server.data_dir().join(&rows[3].path);
    std::fs::write(&broken, b"not a segment any more").expect("overwrite");
    let (_, out) = server.command(&["check", "--repair"]);
    assert!(
        broken.exists(),
        "held footage was removed by the repair: {out}"
    );
    let left = complete_rows(&server).await;
    assert!(
        left.iter().any(|r| r.id == rows[3].id),
        "its row stays: {out}"
    );
}
