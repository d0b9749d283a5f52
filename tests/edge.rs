//! Edge retrieval from an RTSP NVR (docs/edge.md): the simulator as a Hikvision NVR (`vigil sim
//! --outage`) whose line drops while it keeps recording; Vigil, which imported it as a Hikvision NVR,
//! fetches the lost interval back from its playback path after the line returns, and finishes it after being
//! killed in the middle of the pull.

mod common;
use common::*;
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hikvision_nvr_s_recording_fills_the_gap_its_line_left() {
    let nvr = Sim::small(1, 25, &["--outage", "12:30"]);
    // The tests' base configuration reconnects within 2 s (`[ingest] backoff_max_ms`).
    let mut s = Server::start_with("[edge]\nscan_interval_s = 2\nsettle_s = 4\n");
    let c = s.admin().await;
    let site = c.site("投标评审室", "bid_evaluation", "360702").await;
    let r = c
        .post(
            "/api/v1/nvrs",
            json!({"site_id": site, "vendor": "hikvision", "host": "127.0.0.1", "port": nvr.port, "channels": 1}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let cam = r.body["camera_ids"][0].as_i64().expect("camera");
    c.wait_state(cam, "online", Duration::from_secs(20))
        .await
        .expect("online");

    let row = backfill(&c, cam, Duration::from_secs(90), |b| {
        b["gap_s"].as_f64() > Some(0.0)
    })
    .await;
    let gap = (us_of(&row["start"]), us_of(&row["end"]));
    println!("gap found: {row}");
    assert!((25e6..45e6).contains(&((gap.1 - gap.0) as f64)), "{row}");
    assert!(
        row["source"]
            .as_str()
            .is_some_and(|s| s.contains("/Streaming/tracks/101")),
        "{row}"
    );
    // Killed (SIGKILL) a few seconds into the real-time pull: the footage written so far survives as any
    // recording does, and after the restart the pull resumes with what is still missing.
    let partway = backfill(&c, cam, Duration::from_secs(60), |b| {
        b["state"] == "pulling" && b["fetched_s"].as_f64() >= Some(4.0)
    })
    .await;
    println!("killed during the pull: {partway}");
    s.restart();
    let done = backfill(&c, cam, Duration::from_secs(90), |b| b["state"] == "done").await;
    assert!(done["attempts"].as_i64() >= Some(2), "{done}");
    let after = common::now_ms() * 1000 - gap.1;
    println!(
        "backfill done {} s after the line came back: {done}",
        after / 1_000_000
    );
    assert!(after < 150_000_000, "{} s", after / 1_000_000);
    let r = c
        .get(&format!(
            "/api/v1/cameras/{cam}/recordings?start={}&end={}",
            rfc_us(gap.0 - 5_000_000),
            rfc_us(gap.1 + 5_000_000)
        ))
        .await;
    assert_eq!(
        r.body["spans"].as_array().map(Vec::len),
        Some(1),
        "{}",
        r.text
    );
    assert!(
        r.body["backfilled"]
            .as_array()
            .is_some_and(|b| !b.is_empty()),
        "{}",
        r.text
    );
    let (code, body, _) = c
        .download(&format!(
            "/api/v1/cameras/{cam}/video.mp4?start={}&end={}",
            rfc_us(gap.0),
            rfc_us(gap.1)
        ))
        .await;
    assert_eq!(code, 200);
    let path = s.data_dir().join("nvr-backfilled.mp4");
    std::fs::write(&path, body).expect("write mp4");
    let (duration, _, frames) = ffprobe(&path);
    let want = (gap.1 - gap.0) as f64 / 1e6;
    println!("backfilled range: {duration} s, {frames} frames for {want} s");
    assert!((duration - want).abs() <= 2.0, "{duration} s for {want} s");
    assert!(frames as f64 >= (want - 2.0) * 25.0, "{frames} frames");
}
