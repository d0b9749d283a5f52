//! Recording through the real simulator and the real server: three minutes recorded and played back by
//! any range, a gap, crash safety under `kill -9`, retention with holds, and the index rebuilt from files.

mod common;
use common::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const SMALL: &[&str] = &[
    "--width",
    "320",
    "--height",
    "240",
    "--fps",
    "25",
    "--bitrate",
    "300",
    "--gop",
    "25",
];

fn start_sim(cameras: u32) -> Sim {
    let mut args: Vec<String> = SMALL.iter().map(|s| s.to_string()).collect();
    args.push("--cameras".into());
    args.push(cameras.to_string());
    Sim::start(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

fn rfc(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us)
        .expect("time")
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
        .replace('+', "%2B")
}

fn parse(t: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(t.as_str().expect("time string"))
        .expect("rfc3339")
        .timestamp_micros()
}

fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

async fn spans(c: &Client, cam: i64, start: i64, end: i64) -> (Vec<(i64, i64)>, Value) {
    spans_of(c, cam, "main", start, end).await
}

/// The recorded spans of one of the camera's streams.
async fn spans_of(
    c: &Client,
    cam: i64,
    stream: &str,
    start: i64,
    end: i64,
) -> (Vec<(i64, i64)>, Value) {
    let r = c
        .get(&format!(
            "/api/v1/cameras/{cam}/recordings?start={}&end={}&stream={stream}",
            rfc(start),
            rfc(end)
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let spans = r.body["spans"]
        .as_array()
        .expect("spans")
        .iter()
        .map(|s| (parse(&s["start"]), parse(&s["end"])))
        .collect();
    (spans, r.body)
}

struct Video {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

/// The end of the camera's last recorded span since `from`.
async fn recorded_end(c: &Client, cam: i64, from: i64) -> i64 {
    let (s, _) = spans(c, cam, from, now_us() + 60_000_000).await;
    s.last().expect("footage").1
}

async fn video(c: &Client, cam: i64, start: i64, end: i64, headers: &[(&str, &str)]) -> Video {
    video_of(c, cam, "main", start, end, headers).await
}

/// `video.mp4` of one of the camera's streams.
async fn video_of(
    c: &Client,
    cam: i64,
    stream: &str,
    start: i64,
    end: i64,
    headers: &[(&str, &str)],
) -> Video {
    let mut req = c.http.get(format!(
        "{}/api/v1/cameras/{cam}/video.mp4?start={}&end={}&stream={stream}",
        c.base,
        rfc(start),
        rfc(end)
    ));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.expect("request");
    Video {
        status: resp.status().as_u16(),
        headers: resp.headers().clone(),
        body: resp.bytes().await.expect("body").to_vec(),
    }
}

async fn recorded_camera(c: &Client, site: i64, name: &str, url: String) -> i64 {
    c.camera(json!({"name": name, "site_id": site, "main_url": url, "record": true}))
        .await
}

/// Waits until the camera has `secs` seconds of footage; returns the start of its first span.
async fn wait_footage(c: &Client, cam: i64, since: i64, secs: f64, timeout: Duration) -> i64 {
    wait_for(timeout, || async {
        let (s, _) = spans(c, cam, since, now_us() + 60_000_000).await;
        let total: i64 = s.iter().map(|(a, b)| b - a).sum();
        (total as f64 >= secs * 1e6).then(|| s[0].0)
    })
    .await
    .unwrap_or_else(|| panic!("camera {cam}: {secs} s of footage"))
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.join("recordings")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "mp4") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

async fn index_rows(data: &Path) -> Vec<vigil::record::index::SegmentRow> {
    let pool = vigil::db::connect(&format!("sqlite://{}", data.join("vigil.db").display()))
        .await
        .expect("db");
    let rows = vigil::record::index::all(&pool).await.expect("rows");
    pool.close().await;
    rows
}

#[tokio::test]
async fn three_minutes_recorded_play_back_by_any_range_and_across_a_gap() {
    let mut sim = start_sim(1);
    let mut server = Server::start_with("[record]\nsegment_seconds = 10\n");
    let c = server.admin().await;
    let site = c.site("章贡区政务服务中心", "service_hall", "360702").await;
    let t_create = now_us();
    let cam = recorded_camera(&c, site, "A区窗口", sim.url(1)).await;

    // Three minutes of recording (the contract), cut into ~10 s segments.
    let first = wait_footage(&c, cam, t_create - 5_000_000, 1.0, Duration::from_secs(20)).await;
    let t_end = first + 180_000_000;
    let (s, _) = wait_for(Duration::from_secs(220), || async {
        let r = spans(&c, cam, first, t_end).await;
        (r.0.last().is_some_and(|l| l.1 >= t_end)).then_some(r)
    })
    .await
    .expect("three minutes recorded");
    assert_eq!(
        s,
        vec![(first, t_end)],
        "one span, no gap, over the three minutes"
    );

    // Any 20 s range inside plays: duration within 0.2 s of 20 s at the simulator's 25 fps.
    let dir = tempfile::tempdir().expect("tmp");
    for (i, offset_ms) in [3_217i64, 71_050, 157_999].into_iter().enumerate() {
        let a = first + offset_ms * 1000;
        let v = video(&c, cam, a, a + 20_000_000, &[]).await;
        assert_eq!(v.status, 200);
        assert_eq!(v.headers["content-type"], "video/mp4");
        let f = dir.path().join(format!("range{i}.mp4"));
        std::fs::write(&f, &v.body).expect("write");
        let (dur, rate, frames) = ffprobe(&f);
        println!(
            "range {i}: {dur:.3} s, {rate}, {frames} frames, {} bytes",
            v.body.len()
        );
        assert!((dur - 20.0).abs() <= 0.2, "duration {dur}");
        assert_eq!(rate, "25/1");
        assert!(frames >= 500, "{frames} frames");
    }

    // HTTP Range and ETag on the same range.
    let (a, b) = (first + 30_000_000, first + 50_000_000);
    let full = video(&c, cam, a, b, &[]).await;
    let etag = full.headers["etag"].to_str().expect("etag").to_owned();
    let part = video(&c, cam, a, b, &[("Range", "bytes=1000-65535")]).await;
    assert_eq!(part.status, 206);
    assert_eq!(
        part.headers["content-range"],
        format!("bytes 1000-65535/{}", full.body.len()).as_str()
    );
    assert_eq!(&part.body[..], &full.body[1000..65536]);
    let again = video(&c, cam, a, b, &[("If-None-Match", &etag)]).await;
    assert_eq!(again.status, 304);
    let bad = video(
        &c,
        cam,
        a,
        b,
        &[("Range", &format!("bytes={}-", full.body.len()))],
    )
    .await;
    assert_eq!(bad.status, 416);

    // A range that ends in the segment still being written keeps its bytes and its tag while that segment
    // grows past its end: a player reading it by byte ranges never gets pieces of two different files.
    let open_end = recorded_end(&c, cam, first).await;
    let (a2, b2) = (open_end - 8_000_000, open_end);
    let before = video(&c, cam, a2, b2, &[]).await;
    wait_for(Duration::from_secs(10), || async {
        (recorded_end(&c, cam, first).await > open_end + 2_000_000).then_some(())
    })
    .await
    .expect("more footage recorded");
    let after = video(&c, cam, a2, b2, &[]).await;
    assert_eq!((before.status, after.status), (200, 200));
    assert_eq!(
        before.headers["etag"], after.headers["etag"],
        "the tag kept"
    );
    assert!(before.body == after.body, "the bytes kept");
    let grown = video(&c, cam, a2, recorded_end(&c, cam, first).await, &[]).await;
    assert_ne!(
        grown.headers["etag"], before.headers["etag"],
        "a longer range is another file"
    );

    // The audit log has one playback row for that range, whatever the byte ranges and revalidations the
    // player made of it, and another for another range.
    video(&c, cam, a, b + 1_000_000, &[("Range", "bytes=0-999")]).await;
    let rows = c.get("/api/v1/audit?action=playback").await.body;
    let rows = rows.as_array().expect("audit rows");
    let of = |from: i64, to: i64| {
        let detail = format!("main {}/{}", rfc(from), rfc(to));
        rows.iter()
            .filter(|r| {
                r["detail"] == detail.as_str() && (r["status"] == 200 || r["status"] == 206)
            })
            .count()
    };
    assert_eq!(of(a, b), 1, "one row for the viewed range: {rows:?}");
    assert_eq!(of(a, b + 1_000_000), 1, "a row for another range: {rows:?}");
    assert!(
        rows.iter()
            .any(|r| r["status"] == 416
                && r["detail"] == format!("main {}/{}", rfc(a), rfc(b)).as_str()),
        "a refused range is written with its range: {rows:?}"
    );

    // A gap: the simulator stops for 20 s.
    sim.kill();
    let t_stop = now_us();
    tokio::time::sleep(Duration::from_secs(20)).await;
    sim.restart();
    let t_back = now_us();
    wait_footage(&c, cam, t_back, 10.0, Duration::from_secs(40)).await;
    let (ga, gb) = (t_stop - 15_000_000, t_back + 8_000_000);
    let (s, body) = spans(&c, cam, ga, gb).await;
    assert_eq!(s.len(), 2, "footage on both sides of the gap: {body}");
    let gap = body["gaps"][0].clone();
    let gap_len = parse(&gap["end"]) - parse(&gap["start"]);
    assert!(gap_len >= 18_000_000, "gap reported: {body}");
    let v = video(&c, cam, ga, gb, &[]).await;
    assert_eq!(v.status, 200);
    assert!(!v.headers["vigil-gaps"].is_empty(), "gap in the header");
    let f = dir.path().join("gap.mp4");
    std::fs::write(&f, &v.body).expect("write");
    let (dur, _, frames) = ffprobe(&f);
    let expect = (s[1].1 - s[0].0) as f64 / 1e6;
    println!("across the gap: {dur:.3} s (expected {expect:.3}), {frames} frames");
    assert!((dur - expect).abs() < 0.3, "{dur} vs {expect}");
    let before = (s[0].1 - s[0].0) as f64 / 1e6;
    let after = (s[1].1 - s[1].0) as f64 / 1e6;
    assert!(
        frames as f64 >= (before + after) * 25.0 - 3.0,
        "frames on both sides: {frames}"
    );

    // The index rebuilt from the files alone equals the index that was kept.
    server.stop();
    let kept = index_rows(&server.data_dir()).await;
    let (ok, out) = server.command(&["check"]);
    assert!(ok, "{out}");
    let (ok, out) = server.command(&["check", "--rebuild"]);
    assert!(ok, "{out}");
    let rebuilt = index_rows(&server.data_dir()).await;
    let strip = |v: Vec<vigil::record::index::SegmentRow>| {
        v.into_iter()
            .map(|mut r| {
                r.id = 0;
                r
            })
            .collect::<Vec<_>>()
    };
    assert!(kept.len() >= 18, "{} segments", kept.len());
    assert_eq!(strip(rebuilt), strip(kept));
}

#[tokio::test]
async fn kill_9_ten_times_loses_at_most_the_gop_in_flight() {
    const CAMS: u32 = 8;
    let sim = start_sim(CAMS);
    let mut server = Server::start_with("[record]\nsegment_seconds = 10\n");
    let c = server.admin().await;
    let site = c.site("赣州市政务服务中心", "service_hall", "360700").await;
    let t0 = now_us();
    let mut cams = Vec::new();
    for n in 1..=CAMS {
        cams.push(recorded_camera(&c, site, &format!("cam{n}"), sim.url(n)).await);
    }
    for cam in &cams {
        wait_footage(&c, *cam, t0 - 5_000_000, 2.0, Duration::from_secs(30)).await;
    }
    let mut worst = 0i64;
    let mut losses = Vec::new();
    for k in 0..10 {
        // Kill at an arbitrary point of a GOP.
        tokio::time::sleep(Duration::from_millis(2_500 + (k * 373) % 1000)).await;
        let t_kill = now_us();
        server.kill9();
        server.restart();
        let c = server.admin().await;
        let (ok, out) = server.command(&["check"]);
        assert!(ok, "check after kill {k}:\n{out}");
        let mut per = Vec::new();
        for cam in &cams {
            let (s, _) = spans(&c, *cam, t_kill - 30_000_000, t_kill).await;
            let end = s.last().map_or(t_kill - 30_000_000, |x| x.1);
            per.push(t_kill - end);
        }
        let max = *per.iter().max().unwrap_or(&0);
        let mean = per.iter().sum::<i64>() / per.len() as i64;
        println!(
            "kill {k}: footage lost per camera: max {:.3} s, mean {:.3} s",
            max as f64 / 1e6,
            mean as f64 / 1e6
        );
        worst = worst.max(max);
        losses.push(max);
        // Recording again on every camera before the next kill.
        let t_restart = now_us();
        for cam in &cams {
            wait_footage(&c, *cam, t_restart, 1.0, Duration::from_secs(30)).await;
        }
    }
    println!(
        "kill -9 x10 with {CAMS} cameras (1 s GOPs): worst loss {:.3} s, per kill {:?}",
        worst as f64 / 1e6,
        losses
            .iter()
            .map(|l| format!("{:.2}", *l as f64 / 1e6))
            .collect::<Vec<_>>()
    );
    // The GOP in flight (1 s at 25 fps) plus the camera-to-server latency of the last frames.
    assert!(
        worst <= 1_400_000,
        "lost more than the GOP in flight: {worst} µs"
    );
    server.stop();
    let (ok, out) = server.command(&["check"]);
    assert!(ok, "{out}");
    let files = segment_files(&server.data_dir());
    assert!(files.len() >= 8 * 11, "{} segment files", files.len());
    for f in &files {
        let (_, _, frames) = ffprobe(f);
        assert!(frames > 0, "{}", f.display());
    }
}

#[tokio::test]
async fn small_disk_budget_removes_oldest_unheld_and_keeps_held() {
    let sim = start_sim(2);
    let server = Server::start_with(
        "[record]\nsegment_seconds = 4\ndisk_budget_mb = 1\nretention_interval_seconds = 1\nmin_free_mb = 0\n",
    );
    let c = server.admin().await;
    let site = c.site("南昌市行政服务中心", "service_hall", "360100").await;
    let t0 = now_us();
    let held = recorded_camera(&c, site, "held", sim.url(1)).await;
    let free = recorded_camera(&c, site, "free", sim.url(2)).await;
    let h0 = wait_footage(&c, held, t0 - 5_000_000, 6.0, Duration::from_secs(30)).await;
    let f0 = wait_footage(&c, free, t0 - 5_000_000, 1.0, Duration::from_secs(30)).await;
    // Hold the first 5 s of the first camera.
    let r = c
        .post(
            "/api/v1/holds",
            json!({"camera_id": held, "start": chrono::DateTime::from_timestamp_micros(h0).expect("t").to_rfc3339(),
                   "end": chrono::DateTime::from_timestamp_micros(h0 + 5_000_000).expect("t").to_rfc3339(),
                   "reason": "投诉 2025-118"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = c
        .post("/api/v1/holds", json!({"case_no": "SP-1", "reason": "x"}))
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert!(r.body["error"]["message"].is_string());
    // 2 cameras at ~40 KB/s outgrow a 1 MiB budget in about 13 s; wait until the free camera's first
    // footage is gone.
    let started = Instant::now();
    let gone = wait_for(Duration::from_secs(60), || async {
        let (s, _) = spans(&c, free, f0 - 1_000_000, f0 + 2_000_000).await;
        s.is_empty().then_some(())
    })
    .await;
    assert!(
        gone.is_some(),
        "oldest unheld footage removed by the budget"
    );
    println!("budget reached after {:?}", started.elapsed());
    // Held footage stays and plays; the footage left is the newest (one span up to now).
    let (s, _) = spans(&c, held, h0, h0 + 5_000_000).await;
    assert_eq!(s, vec![(h0, h0 + 5_000_000)], "held range kept whole");
    let v = video(&c, held, h0, h0 + 5_000_000, &[]).await;
    assert_eq!(v.status, 200);
    let (s, _) = spans(&c, free, f0, now_us() + 10_000_000).await;
    assert_eq!(
        s.len(),
        1,
        "what is left of the unheld camera is its newest footage: {s:?}"
    );
    let files = segment_files(&server.data_dir());
    let bytes: u64 = files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    println!("{} files, {bytes} bytes on disk", files.len());
    for l in server
        .log()
        .lines()
        .filter(|l| l.contains("retention") || l.contains("segment"))
    {
        println!("{l}");
    }
    assert!(bytes < 2 << 20, "recordings bounded by the budget: {bytes}");
}

#[tokio::test]
async fn h265_is_recorded_and_played_and_access_follows_roles_and_regions() {
    let mut args: Vec<String> = SMALL.iter().map(|s| s.to_string()).collect();
    args.extend(["--cameras", "1", "--codec", "h265"].map(String::from));
    let sim = Sim::start(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let server = Server::start_with(&format!(
        "[record]\nsegment_seconds = 4\n{CITY_SUPERVISORS}"
    ));
    let c = server.admin().await;
    let site = c.site("章贡区政务服务中心", "service_hall", "360702").await;
    let t0 = now_us();
    let cam = recorded_camera(&c, site, "H265", sim.url(1)).await;
    let first = wait_footage(&c, cam, t0 - 5_000_000, 6.0, Duration::from_secs(30)).await;
    let v = video(&c, cam, first + 500_000, first + 5_500_000, &[]).await;
    assert_eq!(v.status, 200);
    let dir = tempfile::tempdir().expect("tmp");
    let f = dir.path().join("h265.mp4");
    std::fs::write(&f, &v.body).expect("write");
    let (dur, rate, frames) = ffprobe(&f);
    assert!(
        (dur - 5.0).abs() <= 0.2 && rate == "25/1" && frames >= 125,
        "{dur} {rate} {frames}"
    );
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name",
            "-of",
            "csv=p=0",
        ])
        .arg(&f)
        .output()
        .expect("ffprobe");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "hevc");

    // A supervisor of the city plays back but may not hold; one of another city does not see the camera.
    let sup = Client::login(&server, "sup-ganzhou", "supervisor-pass-1").await;
    let (s, _) = spans(&sup, cam, first, now_us()).await;
    assert!(!s.is_empty());
    let hold = json!({"camera_id": cam, "start": "2026-01-01T00:00:00+08:00", "end": "2026-01-01T01:00:00+08:00", "reason": "x"});
    assert_eq!(sup.post("/api/v1/holds", hold.clone()).await.status, 403);
    let other = Client::login(&server, "sup-nanchang", "supervisor-pass-2").await;
    let r = other
        .get(&format!(
            "/api/v1/cameras/{cam}/recordings?start={}&end={}",
            rfc(first),
            rfc(now_us())
        ))
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(
        video(&other, cam, first, first + 1_000_000, &[])
            .await
            .status,
        404
    );
    // Bad input answers with the error shape.
    let r = c
        .get(&format!(
            "/api/v1/cameras/{cam}/recordings?start=yesterday&end=now"
        ))
        .await;
    assert_eq!(r.status, 422);
    assert!(r.body["error"]["code"].is_string());
    let r = c
        .get(&format!(
            "/api/v1/cameras/{cam}/video.mp4?start={}&end={}",
            rfc(first),
            rfc(first)
        ))
        .await;
    assert_eq!(r.status, 422);
    // No footage in a range: 404 with a code.
    let r = c
        .get(&format!(
            "/api/v1/cameras/{cam}/video.mp4?start={}&end={}",
            rfc(first - 100_000_000),
            rfc(first - 90_000_000)
        ))
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body["error"]["code"], "no_footage");
    // Recording stops when `record` is turned off, and the camera keeps its footage.
    let r = c
        .patch(&format!("/api/v1/cameras/{cam}"), json!({"record": false}))
        .await;
    assert_eq!(r.status, 200);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (before, _) = spans(&c, cam, first, now_us() + 10_000_000).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (after, _) = spans(&c, cam, first, now_us() + 10_000_000).await;
    assert_eq!(before, after, "no more footage once record = false");
    assert!(!after.is_empty());
}

/// A camera whose encoder uses B-frames (the simulator's clip of moving footage: x264 "faster", High
/// profile) sends frames in decode order with presentation times that go back and forth. Its recording
/// keeps every frame, in decode order with rising decode times and the B-frames' composition offsets, and
/// plays back at the camera's rate: decoders see no timestamp going backwards.
#[tokio::test]
async fn b_frames_are_recorded_in_decode_order_and_play_back_at_their_rate() {
    let mut args: Vec<String> = SMALL.iter().map(|s| s.to_string()).collect();
    args.extend(["--cameras", "1", "--clip", "--clip-seconds", "4"].map(String::from));
    let sim = Sim::start(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let server = Server::start_with("[record]\nsegment_seconds = 4\n");
    let c = server.admin().await;
    let site = c.site("B-frames", "service_hall", "360702").await;
    let t0 = now_us();
    let cam = recorded_camera(&c, site, "B", sim.url(1)).await;
    let first = wait_footage(&c, cam, t0 - 5_000_000, 9.0, Duration::from_secs(60)).await;
    // From the third second on: the first GOP of a run is where the reorder depth is learned.
    let v = video(&c, cam, first + 2_000_000, first + 7_000_000, &[]).await;
    assert_eq!(v.status, 200);
    let dir = tempfile::tempdir().expect("tmp");
    let f = dir.path().join("b.mp4");
    std::fs::write(&f, &v.body).expect("write");
    let (dur, rate, frames) = ffprobe(&f);
    assert!(
        (dur - 5.0).abs() <= 0.2 && rate == "25/1" && (125..=130).contains(&frames),
        "{dur} {rate} {frames}"
    );
    let packets = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "packet=pts,dts",
            "-of",
            "csv=p=0",
        ])
        .arg(&f)
        .output()
        .expect("ffprobe");
    let times: Vec<(i64, i64)> = String::from_utf8_lossy(&packets.stdout)
        .lines()
        .filter_map(|l| {
            let (p, d) = l.split_once(',')?;
            Some((p.parse().ok()?, d.parse().ok()?))
        })
        .collect();
    assert!(times.len() >= 125);
    assert!(
        times.windows(2).all(|w| w[1].1 > w[0].1),
        "decode times rise"
    );
    assert!(
        times.iter().all(|(p, d)| p >= d),
        "no frame shown before it is decoded"
    );
    assert!(
        times.windows(2).any(|w| w[1].0 < w[0].0),
        "presentation order differs from decode order: the B-frames are kept"
    );
    let decode = std::process::Command::new("ffmpeg")
        .args(["-v", "warning", "-i"])
        .arg(&f)
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg");
    let err = String::from_utf8_lossy(&decode.stderr);
    assert!(decode.status.success() && err.trim().is_empty(), "{err}");
}

/// Width and height of the first video stream of an MP4.
fn probe_size(path: &Path) -> (u64, u64) {
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
        .args(["stream=width,height", "-of", "json"])
        .arg(path)
        .output()
        .expect("ffprobe");
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    let s = &v["streams"][0];
    (
        s["width"].as_u64().unwrap_or(0),
        s["height"].as_u64().unwrap_or(0),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_camera_records_its_sub_stream_too_when_asked() {
    let sim = start_sim(1);
    let sub_sim = {
        let args = Sim::small_args(1, 25, (160, 120), &[]);
        Sim::start(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let server = Server::start_with("[record]\nsegment_seconds = 2\n");
    let c = server.admin().await;
    let site = c.site("Hall", "service_hall", "360702").await;
    // Asked for without a sub stream: refused, with the reason.
    let r = c
        .post(
            "/api/v1/cameras",
            json!({"name": "NoSub", "site_id": site, "main_url": sim.url(1), "record_sub": true}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert!(r.text.contains("sub_url"), "{}", r.text);
    let since = now_us();
    let cam = c
        .camera(
            json!({"name": "Both", "site_id": site, "main_url": sim.url(1),
            "sub_url": sub_sim.url(1), "record": true, "record_sub": true}),
        )
        .await;
    assert_eq!(
        c.get(&format!("/api/v1/cameras/{cam}")).await.body["record_sub"],
        true
    );
    wait_footage(&c, cam, since, 6.0, Duration::from_secs(60)).await;
    // The sub stream has its own spans and plays as its own MP4, at its own size.
    let (s, e) = wait_for(Duration::from_secs(30), || async {
        let (spans, _) = spans_of(&c, cam, "sub", since, now_us() + 60_000_000).await;
        spans.first().copied()
    })
    .await
    .expect("sub stream spans");
    assert!(e - s >= 3_000_000, "sub span {s}..{e}");
    let sub = video_of(&c, cam, "sub", s, e, &[]).await;
    assert_eq!(sub.status, 200);
    let file = server.dir.path().join("sub.mp4");
    std::fs::write(&file, &sub.body).expect("write");
    assert_eq!(probe_size(&file), (160, 120));
    let (dur, _, frames) = ffprobe(&file);
    assert!(
        dur >= 2.5 && frames >= 60,
        "sub stream MP4: {dur} s, {frames} frames"
    );
    let main = video(&c, cam, s, e, &[]).await;
    let main_file = server.dir.path().join("main.mp4");
    std::fs::write(&main_file, &main.body).expect("write");
    assert_eq!(probe_size(&main_file), (320, 240));
    // The timeline's pictures from the sub stream.
    let strip = c
        .get(&format!(
            "/api/v1/cameras/{cam}/thumbnails?start={}&end={}&every=1&stream=sub",
            rfc(s),
            rfc(e)
        ))
        .await;
    let pics = strip.body["thumbnails"].as_array().expect("thumbnails");
    assert!(!pics.is_empty(), "{}", strip.text);
    let url = pics[0]["url"].as_str().expect("url");
    assert!(url.contains("stream=sub"), "{url}");
    let jpg = c
        .http
        .get(format!("{}{url}", c.base))
        .send()
        .await
        .expect("jpg");
    assert_eq!(jpg.status().as_u16(), 200);
    // Both recorders show in the metrics; turned off, the sub stream's recorder stops, the main one goes on.
    let metrics = c.get("/metrics").await.text;
    for stream in ["main", "sub"] {
        let line =
            format!("vigil_record_gops_written_total{{camera=\"{cam}\",stream=\"{stream}\"}}");
        assert!(metrics.contains(&line), "{line} missing:\n{metrics}");
    }
    let r = c
        .patch(
            &format!("/api/v1/cameras/{cam}"),
            json!({"record_sub": false}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let metrics = c.get("/metrics").await.text;
    assert!(!metrics.contains(&format!(
        "vigil_record_gops_written_total{{camera=\"{cam}\",stream=\"sub\"}}"
    )));
    // Removing the sub stream turns its recording off rather than failing the change.
    let r = c
        .patch(
            &format!("/api/v1/cameras/{cam}"),
            json!({"record_sub": true}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = c
        .patch(&format!("/api/v1/cameras/{cam}"), json!({"sub_url": ""}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["record_sub"], false);
}
