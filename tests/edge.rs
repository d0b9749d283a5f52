//! Edge retrieval from an RTSP NVR (docs/edge.md): the simulator as a Hikvision NVR (`vigil sim
//! --outage`) whose line drops while it keeps recording; Vigil, which imported it as a Hikvision NVR,
//! fetches the lost interval back from its playback path after the line returns.

mod common;
use common::*;
use serde_json::{json, Value};
use std::time::Duration;

fn us(v: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap_or_default())
        .map(|d| d.timestamp_micros())
        .unwrap_or_else(|_| panic!("a time: {v}"))
}

fn rfc(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us)
        .expect("time")
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
        .replace('+', "%2B")
}

async fn backfill(c: &Client, cam: i64, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Value {
    let path = format!("/api/v1/backfills?camera_id={cam}");
    let found = wait_for(timeout, || async {
        let r = c.get(&path).await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.body["backfills"]
            .as_array()?
            .iter()
            .find(|b| pred(b))
            .cloned()
    })
    .await;
    match found {
        Some(b) => b,
        None => panic!("camera {cam}'s backfill: {}", c.get(&path).await.text),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hikvision_nvr_s_recording_fills_the_gap_its_line_left() {
    let nvr = Sim::small(1, 25, &["--outage", "12:30"]);
    // The tests' base configuration reconnects within 2 s (`[ingest] backoff_max_ms`).
    let s = Server::start_with("[edge]\nscan_interval_s = 2\nsettle_s = 4\n");
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
    let gap = (us(&row["start"]), us(&row["end"]));
    println!("gap found: {row}");
    assert!((25e6..45e6).contains(&((gap.1 - gap.0) as f64)), "{row}");
    assert!(
        row["source"]
            .as_str()
            .is_some_and(|s| s.contains("/Streaming/tracks/101")),
        "{row}"
    );
    let done = backfill(&c, cam, Duration::from_secs(90), |b| b["state"] == "done").await;
    let after = common::now_ms() * 1000 - gap.1;
    println!(
        "backfill done {} s after the line came back: {done}",
        after / 1_000_000
    );
    assert!(after < 120_000_000);
    let r = c
        .get(&format!(
            "/api/v1/cameras/{cam}/recordings?start={}&end={}",
            rfc(gap.0 - 5_000_000),
            rfc(gap.1 + 5_000_000)
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
            rfc(gap.0),
            rfc(gap.1)
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
