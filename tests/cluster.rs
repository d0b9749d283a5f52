//! A cluster on loopback, everything started by the test: PostgreSQL (`common::pg`), SeaweedFS with signed
//! requests, three `vigil serve` nodes with the object tier, and 24 simulated cameras. Cameras are spread
//! over the nodes, each recorded by exactly one; a viewer of one node watches live and plays back a camera
//! another node records; a node killed with `kill -9` has its cameras taken over within 15 s (the gap per
//! camera is measured and printed); a node stopped with SIGSTOP for longer than the lease writes no row
//! under its stale epoch when it wakes, then rejoins; `vigil node drain` hands a node's cameras over; the
//! live nodes' older segments move to the bucket, leave their disks, and play from any node. No two nodes
//! ever index the same camera's same time.

mod common;
use common::ws::{connect, cookie, Ws};
use common::*;
use futures::{SinkExt, StreamExt};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

const CAMERAS: usize = 24;
const LEASE_S: u64 = 3;
/// Segments move to the bucket this long after their end: after the playback from another node's disk.
const MOVE_AFTER_S: u64 = 25;

fn node_config(name: &str, weed: &weed::Weed) -> String {
    format!(
        "[cluster]\nnode_name = \"{name}\"\nlease_seconds = {LEASE_S}\n\n[record]\nsegment_seconds = 4\n\n{}",
        weed.config(weed::SECRET_KEY, MOVE_AFTER_S)
    )
}

/// Camera ids by the node `GET /nodes` says records them (alive nodes only).
async fn holders(admin: &Client) -> BTreeMap<String, BTreeSet<i64>> {
    let r = admin.get("/api/v1/nodes").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let mut out = BTreeMap::new();
    for n in r.body["nodes"].as_array().expect("nodes") {
        if n["alive"].as_bool() != Some(true) {
            continue;
        }
        let cams = n["cameras"].as_array().expect("cameras");
        let set: BTreeSet<i64> = cams.iter().filter_map(|c| c.as_i64()).collect();
        out.insert(n["name"].as_str().expect("name").to_owned(), set);
    }
    out
}

/// Waits until every camera is held by exactly one of `nodes` (and each of them holds some); returns
/// the holding.
async fn spread(
    admin: &Client,
    nodes: &[&str],
    ids: &[i64],
    within: Duration,
) -> BTreeMap<String, BTreeSet<i64>> {
    let want: BTreeSet<i64> = ids.iter().copied().collect();
    let last = std::sync::Mutex::new(BTreeMap::new());
    let got = wait_for(within, || async {
        let h = holders(admin).await;
        *last.lock().expect("lock") = h.clone();
        let all: Vec<i64> = h.values().flatten().copied().collect();
        let distinct: BTreeSet<i64> = all.iter().copied().collect();
        let only_these = h
            .iter()
            .all(|(n, c)| c.is_empty() || nodes.contains(&n.as_str()));
        let each = nodes
            .iter()
            .all(|n| h.get(*n).is_some_and(|c| !c.is_empty()));
        (all.len() == distinct.len() && distinct == want && only_these && each).then_some(h)
    })
    .await;
    got.unwrap_or_else(|| {
        panic!(
            "cameras not spread over {nodes:?}: {:?}",
            last.lock().expect("lock")
        )
    })
}

/// Segment rows: (camera, node, start, end, frames).
async fn rows(pool: &vigil::db::Pool) -> Vec<(i64, Option<String>, i64, i64, i64)> {
    sqlx::query_as(
        "SELECT camera_id, node, start_us, end_us, frames FROM segments WHERE frames > 0
         ORDER BY camera_id, start_us",
    )
    .fetch_all(pool)
    .await
    .expect("segments")
}

/// No two rows of different nodes cover the same time of one camera.
fn assert_no_double_writes(rows: &[(i64, Option<String>, i64, i64, i64)]) {
    for (i, a) in rows.iter().enumerate() {
        for b in rows[i + 1..].iter().take_while(|b| b.0 == a.0) {
            let overlap = a.2 < b.3 && b.2 < a.3;
            assert!(
                !(overlap && a.1 != b.1),
                "camera {}: {:?} [{}, {}) and {:?} [{}, {}) overlap",
                a.0,
                a.1,
                a.2,
                a.3,
                b.1,
                b.2,
                b.3
            );
        }
    }
}

/// The first time after `after_us` that `node` recorded each of `cameras`, minus the last time before
/// it that anyone did: the gap each camera's recording had.
fn gaps(
    rows: &[(i64, Option<String>, i64, i64, i64)],
    cameras: &BTreeSet<i64>,
    node_gone: &str,
) -> BTreeMap<i64, f64> {
    let mut out = BTreeMap::new();
    for &cam in cameras {
        let mine: Vec<_> = rows.iter().filter(|r| r.0 == cam).collect();
        let last_old = mine
            .iter()
            .filter(|r| r.1.as_deref() == Some(node_gone))
            .map(|r| r.3)
            .max();
        let first_new = mine
            .iter()
            .filter(|r| r.1.as_deref() != Some(node_gone) && Some(r.2) > last_old)
            .map(|r| r.2)
            .min();
        if let (Some(a), Some(b)) = (last_old, first_new) {
            out.insert(cam, (b - a) as f64 / 1e6);
        }
    }
    out
}

#[tokio::test]
async fn three_nodes_share_take_over_fence_and_drain() {
    let pg = pg::Postgres::start();
    let weed = weed::Weed::start();
    let sim = Sim::small(CAMERAS as u32, 25, &[]);
    let db = pg.database();
    let n1 = Server::start_on(&node_config("n1", &weed), Some(db.clone()));
    let mut n2 = Server::start_on(&node_config("n2", &weed), Some(db.clone()));
    let mut n3 = Server::start_on(&node_config("n3", &weed), Some(db.clone()));
    let admin = n1.admin().await;
    let site = admin.site("集群大厅", "service_hall", "360702").await;
    let mut ids = Vec::new();
    for i in 1..=CAMERAS {
        let body = json!({"name": format!("Cam {i}"), "site_id": site, "main_url": sim.url(i as u32), "record": true});
        ids.push(admin.camera(body).await);
    }
    let pool = n1.db().await;

    // 1. Spread: every camera recorded by exactly one node, each node some.
    let start = spread(&admin, &["n1", "n2", "n3"], &ids, Duration::from_secs(30)).await;
    println!("spread: {start:?}");
    let recording = wait_for(Duration::from_secs(30), || async {
        let r = rows(&pool).await;
        let cams: BTreeSet<i64> = r.iter().map(|r| r.0).collect();
        (cams.len() == CAMERAS).then_some(())
    })
    .await;
    assert!(
        recording.is_some(),
        "every camera records: {:?}",
        rows(&pool).await
    );
    let nodes = admin.get("/api/v1/nodes").await.body;
    for n in nodes["nodes"].as_array().expect("nodes") {
        assert!(n["upload_backlog"]["segments"].is_i64(), "{n}");
        assert!(n["load"].as_f64().is_some_and(|l| l > 0.0), "{n}");
        assert!(n["leases"][0]["epoch"].is_i64(), "{n}");
    }
    let status = admin.status(ids[0]).await;
    assert!(
        status["node"].is_string(),
        "status names the recording node: {status}"
    );

    // Live on n1 of a camera n2 records: relayed, one node-to-node stream for two viewers.
    let remote = *start["n2"].iter().next().expect("a camera of n2");
    let session = cookie(&n1, "admin", ADMIN_PASSWORD).await;
    let mut viewers = Vec::new();
    for _ in 0..2 {
        let mut ws = connect(&n1, remote, &session).await;
        first_fragment(&mut ws).await;
        viewers.push(ws);
    }
    let streams = n1
        .log()
        .lines()
        .filter(|l| l.contains("relay: streaming"))
        .count();
    assert_eq!(streams, 1, "one node-to-node stream for both viewers");
    drop(viewers);
    // Playback on n1 of footage on n2's disk: read through n2 (skeleton, then byte ranges).
    let seg = wait_for(Duration::from_secs(20), || async {
        rows(&pool)
            .await
            .into_iter()
            .find(|r| r.0 == remote && r.1.as_deref() == Some("n2") && r.3 - r.2 >= 3_000_000)
    })
    .await
    .expect("a segment of n2 with 3 s of footage");
    let (from, to) = (seg.2 + 500_000, seg.2 + 2_500_000);
    let (status, body, _) = admin
        .download(&format!(
            "/api/v1/cameras/{remote}/video.mp4?start={}&end={}",
            rfc_ms(from / 1000).replace('+', "%2B"),
            rfc_ms(to / 1000).replace('+', "%2B")
        ))
        .await;
    assert_eq!(status, 200, "playback on n1 of footage on n2's disk");
    let file = n1.dir.path().join("remote.mp4");
    std::fs::write(&file, &body).expect("write");
    let (duration, rate, frames) = ffprobe(&file);
    assert_eq!(rate, "25/1");
    assert!(
        (duration - 2.0).abs() < 0.5,
        "duration {duration} s of a 2 s range"
    );
    assert!((45..=55).contains(&frames), "{frames} frames in 2 s");
    let wrong_key = reqwest::Client::new()
        .get(n2.url(&format!(
            "/api/v1/internal/segments/{}/bytes?offset=0&len=8",
            1
        )))
        .header("x-vigil-cluster-key", "not-the-key")
        .send()
        .await
        .expect("get");
    assert_eq!(wrong_key.status(), 401, "a wrong cluster key is refused");

    let url = format!("ws://{}/api/v1/internal/streams/{remote}/main", n2.addr);
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
            assert_eq!(r.status(), 401, "node-to-node calls need the cluster key")
        }
        other => panic!("a stream without the cluster key: {:?}", other.map(|_| ())),
    }

    // 2. kill -9 of n2: its cameras are recorded again by the others within 15 s.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let lost = start["n2"].clone();
    let killed = Instant::now();
    n2.kill9();
    let after = spread(&admin, &["n1", "n3"], &ids, Duration::from_secs(15)).await;
    let took = killed.elapsed();
    let since_us = chrono::Utc::now().timestamp_micros();
    let resumed = wait_for(Duration::from_secs(15), || async {
        let r = rows(&pool).await;
        lost.iter()
            .all(|c| {
                r.iter()
                    .any(|r| r.0 == *c && r.1.as_deref() != Some("n2") && r.3 > since_us)
            })
            .then_some(r)
    })
    .await
    .expect("the killed node's cameras record again");
    assert!(
        killed.elapsed() < Duration::from_secs(15 + 15),
        "takeover took {:?}",
        killed.elapsed()
    );
    let g = gaps(&resumed, &lost, "n2");
    println!("kill -9 n2: leases taken in {took:?}; recorded gap per camera (s): {g:?}");
    assert_eq!(
        g.len(),
        lost.len(),
        "a gap measured for each camera of n2: {g:?}"
    );
    assert!(g.values().all(|s| *s < 15.0), "gaps under 15 s: {g:?}");
    assert_no_double_writes(&resumed);
    println!("after n2: {after:?}");

    // 3. SIGSTOP n3 for twice the lease: n1 takes everything; n3 wakes, writes nothing stale, rejoins.
    let n3_pid = n3.pid().expect("n3 runs").to_string();
    let stopped_us = chrono::Utc::now().timestamp_micros();
    assert!(std::process::Command::new("kill")
        .args(["-STOP", &n3_pid])
        .status()
        .expect("kill")
        .success());
    spread(&admin, &["n1"], &ids, Duration::from_secs(15)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(std::process::Command::new("kill")
        .args(["-CONT", &n3_pid])
        .status()
        .expect("kill")
        .success());
    let back = spread(&admin, &["n1", "n3"], &ids, Duration::from_secs(30)).await;
    println!("n3 back: {back:?}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let r = rows(&pool).await;
    assert_no_double_writes(&r);
    // Rows n3 began after it was stopped are only those of cameras it took again after waking (new
    // epochs); its writes under the old ones were refused.
    let stale: Vec<_> = r
        .iter()
        .filter(|r| r.1.as_deref() == Some("n3") && r.2 > stopped_us && !back["n3"].contains(&r.0))
        .collect();
    assert!(
        stale.is_empty(),
        "n3 indexed footage of cameras it no longer held: {stale:?}"
    );
    assert!(
        n3.log().contains("lease lost"),
        "n3 noticed it lost its leases"
    );

    // 4. Drain n3: its cameras move to n1; n1 holds all.
    let (ok, out) = n3.command(&["node", "drain", "n3"]);
    assert!(ok, "{out}");
    spread(&admin, &["n1"], &ids, Duration::from_secs(15)).await;
    assert_no_double_writes(&rows(&pool).await);
    let audit = admin.get("/api/v1/audit?action=node.drain").await;
    assert!(audit.text.contains("node.drain"), "{}", audit.text);

    // 5. The live nodes' older segments move to the bucket and leave their disks; the dead node's stay.
    let moved = wait_for(Duration::from_secs(60), || async {
        let s = stored(&pool).await;
        let by = |node: &str| s.iter().filter(|r| r.1 == node && r.3 == "bucket").count();
        (by("n1") > 0 && by("n3") > 0).then_some(s)
    })
    .await
    .expect("segments of n1 and n3 in the bucket");
    for (_, node, path, where_) in &moved {
        let disk = match node.as_str() {
            "n1" => n1.data_dir(),
            "n2" => n2.data_dir(),
            _ => n3.data_dir(),
        };
        if where_ == "bucket" {
            assert!(weed.object_size(path).is_some(), "{path} is in the bucket");
            let gone = wait_for(Duration::from_secs(10), || async {
                (!disk.join(path).exists()).then_some(())
            })
            .await;
            assert!(gone.is_some(), "{path} left {node}'s disk");
        }
    }
    assert!(
        moved.iter().filter(|r| r.1 == "n2").all(|r| r.3 == "local"),
        "the dead node's footage stays on its disk"
    );
    // A range of n3's footage, now in the bucket, plays from n1.
    let (cam, _, path, _) = moved
        .iter()
        .find(|r| r.1 == "n3" && r.3 == "bucket")
        .expect("a moved segment of n3");
    let (s0, s1): (i64, i64) =
        sqlx::query_as("SELECT start_us, end_us FROM segments WHERE path = $1")
            .bind(path)
            .fetch_one(&pool)
            .await
            .expect("row");
    let (status, body, _) = admin
        .download(&format!(
            "/api/v1/cameras/{cam}/video.mp4?start={}&end={}",
            rfc_ms(s0 / 1000).replace('+', "%2B"),
            rfc_ms(s1 / 1000).replace('+', "%2B")
        ))
        .await;
    assert_eq!(status, 200);
    let file = n1.dir.path().join("bucket.mp4");
    std::fs::write(&file, &body).expect("write");
    let (duration, _, _) = ffprobe(&file);
    let want = (s1 - s0) as f64 / 1e6;
    assert!(
        (duration - want).abs() < 0.5,
        "duration {duration} s of {want} s"
    );
    n3.stop();
}

/// Segment rows: (camera, node, path, stored).
async fn stored(pool: &vigil::db::Pool) -> Vec<(i64, String, String, String)> {
    sqlx::query_as(
        "SELECT camera_id, node, path, stored FROM segments
         WHERE frames > 0 AND node IS NOT NULL AND state = 'complete'",
    )
    .fetch_all(pool)
    .await
    .expect("segments")
}

/// Asks for MSE and waits (10 s at most) for the init segment and a first fragment.
async fn first_fragment(ws: &mut Ws) {
    ws.send(Message::text(
        json!({"type": "mse", "codecs": ["avc1.640029", "avc1.42e01e"]}).to_string(),
    ))
    .await
    .expect("send mse");
    let end = Instant::now() + Duration::from_secs(10);
    let mut binaries = 0;
    while binaries < 2 {
        let left = end.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, ws.next()).await {
            Ok(Some(Ok(Message::Binary(b)))) => {
                if binaries == 0 {
                    assert_eq!(&b[4..8], b"ftyp", "the init segment comes first");
                }
                binaries += 1;
            }
            Ok(Some(Ok(Message::Text(t)))) => assert!(t.contains("\"mse\""), "{t}"),
            Ok(Some(Ok(_))) => {}
            other => panic!("no live picture relayed within 10 s: {other:?}"),
        }
    }
}
