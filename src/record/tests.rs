//! The recorder in process, without cameras: frames of real encoder output published into the hub with
//! synthetic times, recorded to a temporary data directory and a real SQLite index, then checked,
//! rebuilt from the files and exported, with ffprobe as the judge.

use super::*;
use crate::config::RecordConfig;
use crate::hub::{Frame, VideoParams};
use crate::media::fmp4::tests::{sample_entry, samples, H264_AVCC, H264_SAMPLES};
use bytes::Bytes;

pub(super) fn params(generation: u64) -> Arc<VideoParams> {
    let entry = sample_entry(b"avc1", b"avcC", H264_AVCC, 640, 360);
    Arc::new(VideoParams {
        codec: "avc1.640029".into(),
        width: 640,
        height: 360,
        extra_data: Bytes::from_static(H264_AVCC),
        sample_entry: Bytes::from(entry),
        generation,
    })
}

pub(super) fn camera(id: i64) -> Camera {
    Camera {
        id,
        site_id: 1,
        region_code: "360000".into(),
        nvr_id: None,
        channel: None,
        name: format!("cam{id}"),
        main_url: "rtsp://127.0.0.1/x".into(),
        sub_url: None,
        username: None,
        password: None,
        transport: "tcp".into(),
        record: true,
        record_sub: false,
    }
}

pub(super) struct Rig {
    pub(super) dir: tempfile::TempDir,
    pub(super) pool: Pool,
    pub(super) hub: Arc<Hub>,
    pub(super) recorders: Arc<Recorders>,
}

pub(super) async fn rig(segment_seconds: u64) -> Rig {
    rig_with(RecordConfig {
        segment_seconds,
        // Frames are published faster than real time: room for all of them.
        queue_gops: 1000,
        fsync: false,
        min_free_mb: 0,
        retention_interval_seconds: 3600,
        ..RecordConfig::default()
    })
    .await
}

pub(super) async fn rig_with(cfg: RecordConfig) -> Rig {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("vigil.db").display());
    let pool = crate::db::connect(&url).await.expect("db");
    let hub = Arc::new(Hub::new(4096));
    let recorders = Recorders::new(
        hub.clone(),
        pool.clone(),
        cfg,
        dir.path().to_owned(),
        None,
        None,
    );
    Rig {
        dir,
        pool,
        hub,
        recorders,
    }
}

/// An hour ago, on a whole second: recovery looks for unindexed files in recent days only.
pub(super) fn t0() -> i64 {
    (chrono::Utc::now().timestamp() - 3600) * 1_000_000
}

/// Publishes `seconds` of 25 fps video (1 s GOPs) of camera `cam` starting at frame `from`.
pub(super) async fn publish(
    hub: &Hub,
    t0: i64,
    cam: i64,
    run: u64,
    p: &Arc<VideoParams>,
    from: i64,
    seconds: i64,
) {
    let frames = samples(H264_SAMPLES);
    let s = hub.stream(StreamKey {
        camera_id: cam,
        kind: StreamKind::Main,
    });
    for i in from..from + seconds * 25 {
        let k = (i % 25) as usize;
        s.publish(Arc::new(Frame {
            data: frames[0].clone(),
            media_time: i * 3600,
            composition_offset: 0,
            wall_time_us: t0 + i * 40_000,
            keyframe: k == 0,
            params: p.clone(),
            run,
            loss: 0,
            audio: None,
        }));
        if i % 5 == 0 {
            tokio::task::yield_now().await;
        }
    }
}

fn ffprobe(path: &std::path::Path) -> serde_json::Value {
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-show_entries"])
        .arg("stream=nb_read_frames,r_frame_rate:format=duration")
        .args(["-of", "json"])
        .arg(path)
        .output()
        .expect("ffprobe");
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "ffprobe {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_checks_rebuilds_and_exports() {
    let r = rig(4).await;
    let t = t0();
    r.recorders.apply(&camera(1));
    let p = params(0);
    publish(&r.hub, t, 1, 1, &p, 0, 20).await;
    // A change of parameters starts a new segment; a new run too.
    let p2 = params(1);
    publish(&r.hub, t, 1, 1, &p2, 500, 3).await;
    publish(&r.hub, t, 1, 2, &p2, 575, 3).await;
    // Let the queue drain, then stop (closes the open segment).
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    r.recorders.shutdown().await;

    let rows = index::all(&r.pool).await.expect("rows");
    assert!(rows.len() >= 5, "{} segments", rows.len());
    assert!(rows.iter().all(|s| s.state == "complete"));
    // Contiguous: each segment ends where the next begins (same run), and the frames add up.
    let frames: i64 = rows.iter().map(|s| s.frames).sum();
    assert_eq!(frames, 26 * 25 - 1 + 1, "every frame recorded once");
    for w in rows.windows(2) {
        assert!(
            (w[1].start_us - w[0].end_us).abs() < 1000,
            "{} .. {}",
            w[0].end_us,
            w[1].start_us
        );
    }
    files_agree_with_the_index(&r, &rows).await;
    export_plays_the_range(&r, t).await;
}

/// `check` finds nothing, every segment file plays as it is, and the index rebuilt from the files equals
/// the one kept.
async fn files_agree_with_the_index(r: &Rig, rows: &[index::SegmentRow]) {
    let c = check::check(&r.pool, r.dir.path(), None, false)
        .await
        .expect("check");
    assert!(c.problems.is_empty(), "{:?}", c.problems);
    // Every segment file plays as it is.
    for s in rows {
        let v = ffprobe(&r.dir.path().join(&s.path));
        assert_eq!(v["streams"][0]["nb_read_frames"], s.frames.to_string());
    }
    // The index rebuilt from the files equals the one kept.
    let rebuilt = check::rows_from_files(r.dir.path()).expect("files readable");
    let strip = |v: &[index::SegmentRow]| -> Vec<index::SegmentRow> {
        v.iter()
            .cloned()
            .map(|mut x| {
                x.id = 0;
                x
            })
            .collect()
    };
    assert_eq!(strip(&rebuilt), strip(rows));
}

/// Exports 7.3 s from inside the first run: it starts at the keyframe before, trimmed by the edit list,
/// and a byte range of the plan is the same bytes as the whole file there.
async fn export_plays_the_range(r: &Rig, t: i64) {
    let (start, end) = (t + 2_500_000, t + 9_800_000);
    let segs = index::overlapping(&r.pool, 1, "main", start, end)
        .await
        .expect("rows");
    let plan = export::plan(&Footage::local(r.dir.path()), &segs, start, end)
        .expect("plan")
        .expect("footage");
    assert_eq!(plan.start_us, start);
    assert_eq!(plan.end_us, end);
    assert!(plan.gaps.is_empty());
    use futures::StreamExt;
    let body: Vec<u8> = export::stream(plan.parts.clone(), 0, plan.len, 1 << 16)
        .map(|b| b.expect("read"))
        .collect::<Vec<_>>()
        .await
        .concat();
    assert_eq!(body.len() as u64, plan.len);
    let out = r.dir.path().join("export.mp4");
    std::fs::write(&out, &body).expect("write");
    let v = ffprobe(&out);
    let dur: f64 = v["format"]["duration"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .expect("duration");
    assert!((dur - 7.3).abs() < 0.05, "{v}");
    assert_eq!(v["streams"][0]["r_frame_rate"], "25/1", "{v}");
    // A byte range of the plan is the same bytes as the whole file there.
    let part: Vec<u8> = export::stream(plan.parts.clone(), 1000, 200_000, 4096)
        .map(|b| b.expect("read"))
        .collect::<Vec<_>>()
        .await
        .concat();
    assert_eq!(&part[..], &body[1000..200_000]);
    // So are the ranges the API serves, which take only the parts they need: inside the file's parts,
    // from the middle to the end, and the header alone.
    let len = body.len() as u64;
    for (from, to) in [(1000, 200_000), (len / 2, len), (0, 10), (len - 1, len)] {
        let got: Vec<u8> = plan
            .body(from, to, 4096)
            .map(|b| b.expect("read"))
            .collect::<Vec<_>>()
            .await
            .concat();
        assert_eq!(&got[..], &body[from as usize..to as usize], "{from}..{to}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_segment_after_a_crash_is_recovered_to_its_complete_fragments() {
    let r = rig(60).await;
    let t = t0();
    r.recorders.apply(&camera(2));
    let p = params(0);
    publish(&r.hub, t, 2, 1, &p, 0, 6).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    // "Crash": the row is still open; add half a fragment of garbage at the end of the file.
    let rows = index::all(&r.pool).await.expect("rows");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].state, "open");
    let indexed = rows[0].clone();
    let path = r.dir.path().join(&indexed.path);
    let full = std::fs::read(&path).expect("read");
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .expect("open");
    std::io::Write::write_all(
        &mut f,
        &full[indexed.bytes as usize - 5000..indexed.bytes as usize],
    )
    .expect("append");
    drop(f);
    // An orphan file with only an init segment (crash before its row was inserted).
    let orphan = path.with_file_name("1-main-deadbeef.mp4");
    std::fs::write(&orphan, &full[..700]).expect("orphan");
    let rep = recovery::recover(&r.pool, r.dir.path(), None)
        .await
        .expect("recover");
    assert_eq!(rep.open_recovered, 1);
    assert_eq!(rep.removed, 1);
    assert!(!orphan.exists());
    let after = index::get(&r.pool, indexed.id).await.expect("row");
    assert_eq!(after.state, "complete");
    assert!(after.frames >= indexed.frames);
    assert_eq!(
        std::fs::metadata(&path).expect("meta").len() as i64,
        after.bytes
    );
    let c = check::check(&r.pool, r.dir.path(), None, false)
        .await
        .expect("check");
    assert!(c.problems.is_empty(), "{:?}", c.problems);
    ffprobe(&path);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_removes_oldest_unheld_first_and_keeps_held() {
    let r = rig(2).await;
    let t = t0();
    r.recorders.apply(&camera(3));
    publish(&r.hub, t, 3, 1, &params(0), 0, 30).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    r.recorders.shutdown().await;
    let rows = index::all(&r.pool).await.expect("rows");
    let total: i64 = rows.iter().map(|s| s.bytes).sum();
    assert!(rows.len() >= 10);
    // Hold the first 5 seconds; the budget is half of what is recorded.
    index::insert_hold(
        &r.pool,
        3,
        None,
        t,
        t + 5_000_000,
        "complaint 2025-118",
        "test",
    )
    .await
    .expect("hold");
    let mut cfg = r.recorders.shared().cfg.clone();
    cfg.disk_budget_mb = 1;
    let shared = Shared {
        pool: r.pool.clone(),
        cfg,
        data_dir: r.dir.path().to_owned(),
        boot_ms: 0,
        disk_full: Default::default(),
        retention_kick: Default::default(),
        footage: Footage::local(r.dir.path()),
        tier: None,
        node: None,
    };
    // Scale: the budget in MiB is coarse, so compare against the bytes the pass says it removed.
    let rep = retention::pass(&shared).await.expect("pass");
    let left = index::all(&r.pool).await.expect("rows");
    let unheld: i64 = left
        .iter()
        .filter(|s| s.start_us >= t + 5_000_000)
        .map(|s| s.bytes)
        .sum();
    assert!(
        total > 1 << 20 && unheld <= 1 << 20,
        "unheld footage over budget: {unheld}"
    );
    // Held footage alone exceeds this budget: the alarm stays raised.
    assert!(shared.disk_full.load(std::sync::atomic::Ordering::Relaxed));
    assert_eq!(rep.by_budget, rows.len() - left.len());
    // Held footage stays; of the rest, the oldest went first: what is left unheld is the newest.
    assert!(left.iter().any(|s| s.start_us == t), "held segment kept");
    let removed: Vec<_> = rows
        .iter()
        .filter(|s| !left.iter().any(|l| l.path == s.path))
        .collect();
    let unheld_left: Vec<_> = left
        .iter()
        .filter(|s| s.start_us >= t + 5_000_000)
        .collect();
    if let (Some(newest_removed), Some(oldest_left)) = (
        removed.iter().map(|s| s.start_us).max(),
        unheld_left.iter().map(|s| s.start_us).min(),
    ) {
        assert!(newest_removed < oldest_left);
    }
    for s in &removed {
        assert!(!r.dir.path().join(&s.path).exists());
    }
    assert!(index::garbage(&r.pool, None)
        .await
        .expect("garbage")
        .is_empty());
}

/// Publishes `frames` frames of `size` zero bytes of camera `cam` (25 fps, 1 s GOPs, one run) from wall
/// time `t`, as fast as the writer takes them: never more than 200 GOPs ahead of it.
pub(super) async fn publish_fast(r: &Rig, cam: i64, t: i64, frames: i64, size: usize) {
    let p = params(0);
    let s = r.hub.stream(StreamKey {
        camera_id: cam,
        kind: StreamKind::Main,
    });
    let data = Bytes::from(vec![0u8; size]);
    for i in 0..frames {
        s.publish(Arc::new(Frame {
            data: data.clone(),
            media_time: i * 3600,
            composition_offset: 0,
            wall_time_us: t + i * 40_000,
            keyframe: i % 25 == 0,
            params: p.clone(),
            run: 1,
            loss: 0,
            audio: None,
        }));
        if i % 250 == 0 {
            loop {
                let written = r
                    .recorders
                    .statuses()
                    .first()
                    .map_or(0, |x| x.1.gops_written) as i64;
                if i / 25 - written < 200 {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        }
    }
}

/// `scripts/bench-record` runs this in release: one hour of 25 fps, 4 Mbit/s footage recorded (fsync off),
/// then the MP4 of the whole hour planned and read back through the same stream the API serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn export_throughput_of_one_hour() {
    use futures::StreamExt;
    let r = rig(60).await;
    let t = t0() - 3600 * 1_000_000;
    r.recorders.apply(&camera(9));
    publish_fast(&r, 9, t, 3600 * 25, 20_000).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    r.recorders.shutdown().await;
    let (start, end) = (t, t + 3600 * 1_000_000);
    let started = std::time::Instant::now();
    let rows = index::overlapping(&r.pool, 9, "main", start, end)
        .await
        .expect("rows");
    let dir = r.dir.path().to_owned();
    let plan =
        tokio::task::spawn_blocking(move || export::plan(&Footage::local(&dir), &rows, start, end))
            .await
            .expect("join")
            .expect("plan")
            .expect("footage");
    let planned = started.elapsed();
    let mut n = 0u64;
    let mut body = std::pin::pin!(export::stream(plan.parts.clone(), 0, plan.len, 1 << 20));
    while let Some(b) = body.next().await {
        n += b.expect("read").len() as u64;
    }
    let total = started.elapsed();
    assert_eq!(n, plan.len);
    println!(
        "export: one hour ({} frames, {:.0} MB) planned in {:.0} ms, served in {:.2} s: {:.0} MB/s",
        plan.frames,
        n as f64 / 1e6,
        planned.as_secs_f64() * 1e3,
        total.as_secs_f64(),
        n as f64 / 1e6 / total.as_secs_f64()
    );
}

/// A segment row of camera `cam`'s `stream` that ended `age_days` ago, at a path numbered `n`.
fn aged_row(cam: i64, stream: &str, kind: &str, age_days: i64, n: u32) -> index::SegmentRow {
    let day = 86_400_000_000i64;
    let now = chrono::Utc::now().timestamp_micros();
    index::SegmentRow {
        id: 0,
        camera_id: cam,
        stream: stream.into(),
        run: 1,
        site_kind: kind.into(),
        start_us: now - age_days * day - 60_000_000,
        end_us: now - age_days * day,
        duration_90k: 60 * 90_000,
        frames: 1500,
        bytes: 1000,
        codec: "avc1.640029".into(),
        width: 640,
        height: 360,
        keyframes: Vec::new(),
        path: format!("recordings/{cam}/x/{n}.mp4"),
        state: "complete".into(),
        stored: "local".into(),
        node: None,
        backfill_id: None,
    }
}

/// The paths of the index's rows.
async fn paths(pool: &Pool) -> Vec<String> {
    index::all(pool)
        .await
        .expect("rows")
        .into_iter()
        .map(|x| x.path)
        .collect()
}

#[tokio::test]
async fn a_recorded_sub_stream_is_kept_its_own_days() {
    let r = rig_with(RecordConfig {
        sub_days: 90,
        fsync: false,
        min_free_mb: 0,
        ..RecordConfig::default()
    })
    .await;
    let main_old = aged_row(21, "main", "service_hall", 31, 1);
    let sub_month = aged_row(21, "sub", "service_hall", 31, 2);
    let sub_old = aged_row(21, "sub", "service_hall", 91, 3);
    let bid_sub = aged_row(22, "sub", "bid_evaluation", 400, 4);
    for x in [&main_old, &sub_month, &sub_old, &bid_sub] {
        index::insert(&r.pool, x, None).await.expect("insert");
    }
    let rep = retention::pass(r.recorders.shared()).await.expect("pass");
    assert_eq!(rep.by_age, 2);
    let left = paths(&r.pool).await;
    // The main stream goes after the kind's 30 days, the sub stream after 90; a kind kept for good keeps both.
    assert_eq!(left, vec![sub_month.path, bid_sub.path]);
}

#[tokio::test]
async fn retention_by_age_follows_the_site_kind_and_holds() {
    let r = rig(60).await;
    let row =
        |cam: i64, kind: &str, age_days: i64, n: u32| aged_row(cam, "main", kind, age_days, n);
    let hall_old = row(11, "service_hall", 31, 1);
    let hall_new = row(11, "service_hall", 29, 2);
    let bid_old = row(12, "bid_evaluation", 400, 3);
    let held_old = row(13, "service_hall", 45, 4);
    // The same rules hold for footage in the object storage tier.
    let bucket_old = row(14, "service_hall", 31, 5);
    let bucket_held = row(15, "service_hall", 45, 6);
    for x in [
        &hall_old,
        &hall_new,
        &bid_old,
        &held_old,
        &bucket_old,
        &bucket_held,
    ] {
        index::insert(&r.pool, x, None).await.expect("insert");
    }
    sqlx::query("UPDATE segments SET stored = 'bucket' WHERE camera_id IN (14, 15)")
        .execute(&r.pool)
        .await
        .expect("to the bucket");
    for (cam, seg) in [(13, &held_old), (15, &bucket_held)] {
        index::insert_hold(
            &r.pool,
            cam,
            None,
            seg.start_us,
            seg.start_us + 1,
            "complaint",
            "test",
        )
        .await
        .expect("hold");
    }
    let rep = retention::pass(r.recorders.shared()).await.expect("pass");
    assert_eq!(rep.by_age, 2);
    let left = paths(&r.pool).await;
    assert_eq!(
        left,
        vec![hall_new.path, bid_old.path, held_old.path, bucket_held.path]
    );
    // The bucket's object is on the garbage list for the tier's mover, not for the local unlink.
    let objects = index::bucket_garbage(&r.pool).await.expect("garbage");
    assert_eq!(objects.len(), 1);
    assert_eq!(objects[0].1, bucket_old.path);
    let totals = index::totals(&r.pool).await.expect("totals");
    assert_eq!((totals.bucket_count, totals.bucket_bytes), (1, 1000));
}
