//! The object storage tier against a real S3 service (SeaweedFS with signed requests checked): a wrong
//! key is refused and nothing is deleted; with the right key closed segments move to the bucket and leave
//! the local disk; `video.mp4` across the local/bucket boundary plays in ffprobe with the right duration;
//! a bucket that stops leaves footage local, raises the alarm, and the backlog drains when it returns.
//! And the move's ordering (docs/storage.md, "Object storage"): killed at each step, the server recovers to
//! an index that `vigil check` agrees with, every row's bytes where the row says. A segment file that cannot
//! be read stays on the local disk and does not hold up the others.

mod common;
use common::weed::{Weed, SECRET_KEY};
use common::*;
use serde_json::json;
use std::time::Duration;

/// A metric's value from `/metrics` (0 when absent).
async fn metric(c: &Client, name: &str) -> f64 {
    let r = c.get("/metrics").await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.text
        .lines()
        .find(|l| l.split([' ', '{']).next() == Some(name))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0)
}

/// (path, stored, start_us, end_us) of every complete segment.
async fn segments(s: &Server) -> Vec<(String, String, i64, i64)> {
    let pool = s.db().await;
    let rows = sqlx::query_as(
        "SELECT path, stored, start_us, end_us FROM segments WHERE state = 'complete' ORDER BY start_us",
    )
    .fetch_all(&pool)
    .await
    .expect("segments");
    pool.close().await;
    rows
}

fn rfc_us(us: i64) -> String {
    rfc_ms(us / 1000).replace('+', "%2B")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn footage_moves_to_the_bucket_and_plays_across_the_boundary() {
    let mut weed = Weed::start();
    let sim = Sim::small(1, 25, &[]);
    let record = "[record]\nsegment_seconds = 3\n";
    // A wrong secret: every upload is refused by the service.
    let mut server = Server::start_with(&format!("{record}{}", weed.config("not-the-key", 4)));
    let admin = server.admin().await;
    let site = admin.site("Hall", "bid_evaluation", "360702").await;
    let cam = admin
        .camera(json!({"name": "Cam", "site_id": site, "main_url": sim.url(1), "record": true}))
        .await;
    let refused = wait_for(Duration::from_secs(60), || async {
        (metric(&admin, "vigil_storage_alarm").await == 1.0
            && metric(&admin, "vigil_storage_backlog_segments").await >= 2.0)
            .then_some(())
    })
    .await;
    assert!(
        refused.is_some(),
        "a wrong key must be refused; log:\n{}",
        server.log()
    );
    assert_eq!(
        metric(&admin, "vigil_storage_moved_segments_total").await,
        0.0
    );
    let before = segments(&server).await;
    assert!(before.iter().all(|s| s.1 == "local"), "{before:?}");
    for (path, ..) in &before {
        assert!(
            server.data_dir().join(path).exists(),
            "{path} deleted without upload"
        );
    }

    // The right key: the backlog moves.
    let config = std::fs::read_to_string(server.config_path()).expect("config");
    std::fs::write(
        server.config_path(),
        config.replace("not-the-key", SECRET_KEY),
    )
    .expect("config");
    server.restart();
    let admin = server.admin().await;
    let moved = wait_for(Duration::from_secs(60), || async {
        let done = metric(&admin, "vigil_storage_moved_segments_total").await
            >= before.len() as f64
            && metric(&admin, "vigil_storage_backlog_segments").await == 0.0
            && metric(&admin, "vigil_storage_alarm").await == 0.0;
        done.then_some(())
    })
    .await;
    assert!(
        moved.is_some(),
        "backlog did not move; log:\n{}",
        server.log()
    );
    let segs = segments(&server).await;
    let in_bucket: Vec<_> = segs.iter().filter(|s| s.1 == "bucket").collect();
    assert!(in_bucket.len() >= before.len(), "{segs:?}");
    for (path, ..) in &in_bucket {
        assert!(
            !server.data_dir().join(path).exists(),
            "{path} still on the local disk"
        );
        let size = weed.object_size(path);
        assert!(size.is_some_and(|n| n > 0), "{path} not in the bucket");
    }

    // Wait for local footage after the bucket's, then play a range across the boundary.
    let local = wait_for(Duration::from_secs(30), || async {
        let s = segments(&server).await;
        let first_local = s.iter().position(|x| x.1 == "local")?;
        (first_local > 0 && s.len() > first_local + 1).then_some(s)
    })
    .await
    .expect("local segments after the bucket's");
    let start = local.iter().find(|s| s.1 == "bucket").expect("bucket").2 + 500_000;
    let end = local.last().expect("last").3 - 500_000;
    let (status, body, _) = admin
        .download(&format!(
            "/api/v1/cameras/{cam}/video.mp4?start={}&end={}",
            rfc_us(start),
            rfc_us(end)
        ))
        .await;
    assert_eq!(status, 200);
    let file = server.dir.path().join("across.mp4");
    std::fs::write(&file, &body).expect("write");
    let (duration, rate, frames) = ffprobe(&file);
    let want = (end - start) as f64 / 1e6;
    assert_eq!(rate, "25/1");
    assert!(
        (duration - want).abs() < 1.0,
        "duration {duration} s, range {want} s"
    );
    // The server's restart left a gap (the export holds a picture over it): count the recorded time.
    let recorded: i64 = local
        .iter()
        .map(|s| (s.3.min(end) - s.2.max(start)).max(0))
        .sum();
    let recorded = recorded as f64 / 1e6;
    assert!(
        (frames as f64 - recorded * 25.0).abs() <= 25.0,
        "{frames} frames, {recorded} s recorded in the range"
    );

    // The bucket stops: recording goes on, footage stays local, the alarm rises; it drains on return.
    weed.stop();
    let raised = wait_for(Duration::from_secs(60), || async {
        (metric(&admin, "vigil_storage_alarm").await == 1.0
            && metric(&admin, "vigil_storage_backlog_segments").await >= 1.0)
            .then_some(())
    })
    .await;
    assert!(
        raised.is_some(),
        "no alarm while the bucket is down; log:\n{}",
        server.log()
    );
    let waiting: Vec<_> = segments(&server)
        .await
        .into_iter()
        .filter(|s| s.1 == "local")
        .collect();
    for (path, ..) in &waiting {
        assert!(
            server.data_dir().join(path).exists(),
            "{path} deleted while the bucket was down"
        );
    }
    weed.restart();
    let drained = wait_for(Duration::from_secs(90), || async {
        (metric(&admin, "vigil_storage_alarm").await == 0.0
            && metric(&admin, "vigil_storage_backlog_segments").await == 0.0)
            .then_some(())
    })
    .await;
    assert!(
        drained.is_some(),
        "backlog did not drain; log:\n{}",
        server.log()
    );
    let (ok, report) = server.command(&["check"]);
    assert!(ok, "vigil check: {report}");
    drop(sim);
}

/// Every complete row's bytes are where it says: a bucket row's object is in the bucket and its file is
/// gone; a local row's file is on the disk.
async fn footage_where_rows_say(server: &Server, weed: &Weed) -> usize {
    let segs = segments(server).await;
    let mut in_bucket = 0;
    for (path, stored, ..) in &segs {
        let local = server.data_dir().join(path).exists();
        if stored == "bucket" {
            in_bucket += 1;
            assert!(!local, "{path}: moved, but its file is still there");
            assert!(
                weed.object_size(path).is_some_and(|n| n > 0),
                "{path}: not in the bucket"
            );
        } else {
            assert!(local, "{path}: local row without its file");
        }
    }
    in_bucket
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_step_of_moving_a_segment_survives_a_crash() {
    let weed = Weed::start();
    let sim = Sim::small(1, 25, &[]);
    let config = format!(
        "[record]\nsegment_seconds = 2\n{}",
        weed.config(SECRET_KEY, 1)
    );
    for point in ["tier.uploaded", "tier.committed", "garbage.unlinked"] {
        let mut server = Server::start_with(&config);
        let admin = server.admin().await;
        let site = admin.site("Hall", "service_hall", "360702").await;
        let cam = admin
            .camera(json!({"name": "Cam", "site_id": site, "main_url": sim.url(1), "record": true}))
            .await;
        server.crash_at(point, 1).await;
        server.restart();
        let admin = server.admin().await;
        let moved = wait_for(Duration::from_secs(60), || async {
            let n = metric(&admin, "vigil_storage_moved_segments_total").await;
            let online = admin.status(cam).await["state"] == "online";
            (n >= 2.0 && online).then_some(())
        })
        .await;
        assert!(
            moved.is_some(),
            "{point}: moving and recording go on; log:\n{}",
            server.log()
        );
        server.stop();
        let (ok, out) = server.command(&["check"]);
        assert!(ok && out.contains(" 0 problems"), "{point}: {out}");
        assert!(footage_where_rows_say(&server, &weed).await >= 2, "{point}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_segment_that_cannot_be_read_stays_local_and_the_others_move() {
    let weed = Weed::start();
    let sim = Sim::small(1, 25, &[]);
    let server = Server::start_with(&format!(
        "[record]\nsegment_seconds = 2\n{}",
        weed.config(SECRET_KEY, 12)
    ));
    let admin = server.admin().await;
    let site = admin.site("Hall", "service_hall", "360702").await;
    admin
        .camera(json!({"name": "Cam", "site_id": site, "main_url": sim.url(1), "record": true}))
        .await;
    // The oldest segment is damaged on the disk before it is due to move.
    let first = wait_for(Duration::from_secs(30), || async {
        segments(&server).await.into_iter().next()
    })
    .await
    .expect("a complete segment");
    let file = server.data_dir().join(&first.0);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .and_then(|f| f.set_len(100))
        .expect("truncate");
    let moved = wait_for(Duration::from_secs(60), || async {
        (metric(&admin, "vigil_storage_moved_segments_total").await >= 3.0).then_some(())
    })
    .await;
    assert!(moved.is_some(), "the others move; log:\n{}", server.log());
    let segs = segments(&server).await;
    let bad = segs.iter().find(|s| s.0 == first.0).expect("its row stays");
    assert_eq!(bad.1, "local");
    assert!(file.exists(), "the damaged file is left for vigil check");
    assert_eq!(
        metric(&admin, "vigil_storage_alarm").await,
        0.0,
        "not a bucket failure"
    );
    assert!(server.log().contains("segment cannot be read for its move"));
    drop(sim);
}
