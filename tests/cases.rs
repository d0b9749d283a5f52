//! Cases through the real server (and, for the investigator, the real simulator): events validated item by
//! item and idempotent, cases independent of the order of their events, clips by the rules with their
//! coverage, playable clips, a signed evidence package that `vigil verify` checks, and held bid sessions
//! that outlive retention.

mod common;
use common::*;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const USERS: &str = r#"
[[seed.users]]
username = "inv"
password = "investigator-pw-1"
role = "investigator"
region_codes = ["360000"]

[[seed.users]]
username = "inv-nc"
password = "investigator-pw-2"
role = "investigator"
region_codes = ["360100"]

[[seed.users]]
username = "sup"
password = "supervisor-pw-1"
role = "supervisor"
region_codes = ["360000"]
"#;

fn ms_of(v: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(v.as_str().expect("time string"))
        .expect("rfc3339")
        .timestamp_millis()
}

#[allow(clippy::too_many_arguments)]
fn ev(id: &str, case: &str, ty: &str, kind: &str, at: i64, site: i64, pos: &str) -> Value {
    json!({"event_id": id, "case_no": case, "case_type": ty, "kind": kind, "at": rfc_ms(at),
           "site_id": site, "position": pos, "operator": "窗口人员"})
}

/// Two sites with positions (cameras that point nowhere: no recording is needed here).
async fn layout(admin: &Client) -> (i64, i64) {
    let hall = admin
        .site("章贡区政务服务中心", "service_hall", "360702")
        .await;
    let bid = admin
        .site("赣州市公共资源交易中心", "bid_evaluation", "360700")
        .await;
    let mut cams = Vec::new();
    for (i, site) in [hall, hall, bid].into_iter().enumerate() {
        cams.push(
            admin
                .camera(json!({"name": format!("cam{i}"), "site_id": site,
                               "main_url": "rtsp://127.0.0.1:9/none", "record": false}))
                .await,
        );
    }
    for (site, code, kind, cam) in [
        (hall, "A1", "window", cams[0]),
        (hall, "A2", "window", cams[1]),
        (bid, "R1", "room", cams[2]),
    ] {
        let r = admin
            .post(
                &format!("/api/v1/sites/{site}/positions"),
                json!({"code": code, "kind": kind, "camera_ids": [cam]}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    (hall, bid)
}

#[tokio::test]
async fn a_batch_keeps_good_items_lists_bad_ones_and_retries_are_duplicates() {
    let server = Server::start_with(USERS);
    let admin = server.admin().await;
    let (hall, _bid) = layout(&admin).await;
    let sender = server.integrator();
    let t = now_ms() - 3_600_000;
    let batch = json!({"events": [
        ev("e1", "AP-0001", "approval", "accepted", t, hall, "A1"),
        ev("e2", "AP-0001", "approval", "reviewed", t + 60_000, hall, "A2"),
        ev("bad-site", "AP-0002", "approval", "accepted", t, 999, "A1"),
        ev("bad-pos", "AP-0002", "approval", "accepted", t, hall, "Z9"),
        ev("bad-kind", "AP-0002", "approval", "opening_start", t, hall, "A1"),
        {"event_id": "bad-time", "case_no": "AP-0002", "case_type": "approval", "kind": "accepted",
         "at": "yesterday", "site_id": hall, "position": "A1"},
        ev("e3", "AP-0003", "approval", "accepted", t, hall, "A2"),
        "not an object",
    ]});
    let r = sender.post("/api/v1/events", batch.clone()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["accepted"], 3, "{}", r.text);
    assert_eq!(r.body["duplicates"], 0);
    let rejected = r.body["rejected"].as_array().expect("rejected");
    let idx: Vec<i64> = rejected
        .iter()
        .filter_map(|x| x["index"].as_i64())
        .collect();
    assert_eq!(idx, vec![2, 3, 4, 5, 7], "{}", r.text);
    let msg = |i: usize| rejected[i]["error"].as_str().unwrap_or("").to_owned();
    assert!(msg(0).contains("unknown site"), "{}", msg(0));
    assert!(msg(1).contains("unknown position"), "{}", msg(1));
    assert!(msg(2).contains("kind"), "{}", msg(2));
    assert!(msg(3).contains("RFC 3339"), "{}", msg(3));

    // The same batch again: duplicates, not doubles.
    let r2 = sender.post("/api/v1/events", batch).await;
    assert_eq!(r2.status, 200, "{}", r2.text);
    assert_eq!(r2.body["accepted"], 0, "{}", r2.text);
    assert_eq!(r2.body["duplicates"], 3);
    assert_eq!(r2.body["rejected"].as_array().map(Vec::len), Some(5));
    // An event id reused for another event is refused, not taken as a duplicate.
    let r3 = sender
        .post(
            "/api/v1/events",
            json!({"events": [ev("e1", "AP-0001", "approval", "completed", t, hall, "A1")]}),
        )
        .await;
    assert_eq!(r3.body["accepted"], 0, "{}", r3.text);
    assert!(r3.body["rejected"][0]["error"]
        .as_str()
        .unwrap_or("")
        .contains("already used"));
    // A bad body as a whole is a 4xx and writes nothing.
    let r4 = sender.post("/api/v1/events", json!({"evnts": []})).await;
    assert_eq!(r4.status, 422, "{}", r4.text);

    let inv = Client::login(&server, "inv", "investigator-pw-1").await;
    let case = inv.get("/api/v1/cases/AP-0001").await;
    assert_eq!(case.status, 200, "{}", case.text);
    assert_eq!(case.body["events"].as_array().map(Vec::len), Some(2));
    assert_eq!(case.body["status"], "open");
    assert_eq!(inv.get("/api/v1/cases/AP-0002").await.status, 404);
    // Search: by prefix, by site, by type.
    let list = inv.get("/api/v1/cases?q=AP-000").await;
    let nos: Vec<&str> = list.body["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .filter_map(|c| c["case_no"].as_str())
        .collect();
    assert_eq!(nos, vec!["AP-0001", "AP-0003"], "{}", list.text);
    let none = inv.get("/api/v1/cases?case_type=bid").await;
    assert_eq!(none.body["cases"], json!([]), "{}", none.text);
    // Another city's investigator does not even learn that the case exists; an integrator cannot read.
    let other = Client::login(&server, "inv-nc", "investigator-pw-2").await;
    assert_eq!(other.get("/api/v1/cases/AP-0001").await.status, 404);
    assert_eq!(other.get("/api/v1/cases").await.body["cases"], json!([]));
    assert_eq!(sender.get("/api/v1/cases").await.status, 403);
    let sup = Client::login(&server, "sup", "supervisor-pw-1").await;
    assert_eq!(sup.get("/api/v1/cases").await.status, 403);
    assert_eq!(sup.get("/api/v1/alarms?state=active").await.status, 200);
    // Everyone signed in may read the public key.
    let key = sender.get("/api/v1/signing-key").await;
    assert_eq!(key.status, 200);
    assert_eq!(key.body["public_key"].as_str().map(str::len), Some(64));
}

/// A minimal WebSocket client (server text frames only), signed in with a session cookie.
async fn ws_connect(
    server: &Server,
    path: &str,
    user: &str,
    password: &str,
) -> tokio::net::TcpStream {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let cookie = common::ws::cookie(server, user, password).await;
    let mut s = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("connect");
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nCookie: {cookie}\r\n\r\n",
        server.addr
    );
    s.write_all(req.as_bytes()).await.expect("handshake");
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut b).await.expect("handshake answer");
        head.push(b[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    s
}

/// The next text frame from the server.
async fn ws_text(s: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut h = [0u8; 2];
    s.read_exact(&mut h).await.expect("frame");
    let mut len = u64::from(h[1] & 0x7f);
    if len == 126 {
        let mut l = [0u8; 2];
        s.read_exact(&mut l).await.expect("len");
        len = u64::from(u16::from_be_bytes(l));
    } else if len == 127 {
        let mut l = [0u8; 8];
        s.read_exact(&mut l).await.expect("len");
        len = u64::from_be_bytes(l);
    }
    let mut payload = vec![0u8; len as usize];
    s.read_exact(&mut payload).await.expect("payload");
    assert_eq!(h[0] & 0x0f, 1, "a text frame");
    String::from_utf8(payload).expect("utf-8")
}

/// The case as `GET /cases/{no}` shows it, without the parts that depend on arrival.
fn essence(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(evs) = v["events"].as_array_mut() {
        for e in evs {
            e.as_object_mut().map(|o| o.remove("received_at"));
        }
    }
    v
}

#[tokio::test]
async fn the_same_events_in_any_order_give_the_same_case() {
    let (a, b) = (Server::start_with(USERS), Server::start_with(USERS));
    let t = now_ms() - 7_200_000;
    let mut layouts = Vec::new();
    for s in [&a, &b] {
        layouts.push(layout(&s.admin().await).await);
    }
    assert_eq!(layouts[0], layouts[1]);
    let (hall, bid) = layouts[0];
    let mut events = vec![
        ev("x1", "AP-7", "approval", "accepted", t, hall, "A1"),
        ev(
            "x2",
            "AP-7",
            "approval",
            "processing",
            t + 5_000,
            hall,
            "A2",
        ),
        ev("x3", "AP-7", "approval", "reviewed", t + 9_000, hall, "A1"),
        ev(
            "x4",
            "AP-7",
            "approval",
            "completed",
            t + 20_000,
            hall,
            "A1",
        ),
        ev("y1", "BID-7", "bid", "opening_start", t, bid, "R1"),
        ev("y2", "BID-7", "bid", "opening_end", t + 30_000, bid, "R1"),
        ev(
            "y3",
            "BID-7",
            "bid",
            "evaluation_start",
            t + 40_000,
            bid,
            "R1",
        ),
        ev(
            "y4",
            "BID-7",
            "bid",
            "evaluation_end",
            t + 90_000,
            bid,
            "R1",
        ),
    ];
    events[1]["deadline"] = json!(rfc_ms(t + 10_000));
    // Server a: in order, one batch. Server b: reversed, one by one, with retries in between.
    let mut ws = ws_connect(&a, "/api/v1/notifications", "inv", "investigator-pw-1").await;
    let sa = a.integrator();
    let r = sa.post("/api/v1/events", json!({"events": events})).await;
    assert_eq!(r.body["accepted"], 8, "{}", r.text);
    let sb = b.integrator();
    for (i, e) in events.iter().rev().enumerate() {
        let r = sb.post("/api/v1/events", json!({"events": [e]})).await;
        assert_eq!(r.body["accepted"], 1, "{}", r.text);
        if i % 3 == 0 {
            let again = sb.post("/api/v1/events", json!({"events": [e]})).await;
            assert_eq!(again.body["duplicates"], 1, "{}", again.text);
        }
    }
    let ia = Client::login(&a, "inv", "investigator-pw-1").await;
    let ib = Client::login(&b, "inv", "investigator-pw-1").await;
    for no in ["AP-7", "BID-7"] {
        let ca = ia.get(&format!("/api/v1/cases/{no}")).await;
        let cb = ib.get(&format!("/api/v1/cases/{no}")).await;
        assert_eq!(ca.status, 200, "{}", ca.text);
        assert_eq!(essence(&ca.body), essence(&cb.body));
        assert_eq!(ca.body["status"], "completed");
    }
    let ap = ia.get("/api/v1/cases/AP-7").await.body;
    // Completed after its deadline: a yellow card (the follow-up deadline is 72 h later).
    assert_eq!(ap["card"], "yellow", "{ap}");
    // Clips by the rules (pre-roll 30 s, post-roll 120 s; no recordings here, so all missing).
    let clips: Vec<(i64, i64)> = ap["clips"]
        .as_array()
        .expect("clips")
        .iter()
        .map(|c| {
            (
                (ms_of(&c["start"]) - t) / 1000,
                (ms_of(&c["end"]) - t) / 1000,
            )
        })
        .collect();
    assert_eq!(clips, vec![(-30, 9), (-25, 125), (-21, 20), (-10, 140)]);
    assert!(ap["clips"]
        .as_array()
        .expect("clips")
        .iter()
        .all(|c| c["coverage"] == "missing"));
    let bidc = ia.get("/api/v1/cases/BID-7").await.body;
    let sessions: Vec<(i64, i64)> = bidc["clips"]
        .as_array()
        .expect("clips")
        .iter()
        .map(|c| {
            (
                (ms_of(&c["start"]) - t) / 1000,
                (ms_of(&c["end"]) - t) / 1000,
            )
        })
        .collect();
    assert_eq!(sessions, vec![(0, 30), (40, 90)]);
    // The yellow card raised an alarm that names the case's cameras.
    let alarms = ia.get("/api/v1/alarms?state=active").await.body;
    let alarm = alarms
        .as_array()
        .and_then(|l| l.iter().find(|x| x["case_no"] == "AP-7"))
        .expect("alarm of AP-7");
    assert_eq!(alarm["kind"], "case_yellow");
    assert_eq!(alarm["camera_ids"].as_array().map(Vec::len), Some(2));
    // ... and a notification to the investigators watching (after any camera status changes: the
    // cameras of this test have no stream and go offline meanwhile).
    let note = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let note: Value = serde_json::from_str(&ws_text(&mut ws).await).expect("json");
            if note["type"] != "camera_status" {
                return note;
            }
        }
    })
    .await
    .expect("a notification");
    assert_eq!(note["type"], "case_card", "{note}");
    assert_eq!(note["case_no"], "AP-7");
    assert_eq!(note["card"], "yellow");
    assert_eq!(note["camera_names"], json!(["cam0", "cam1"]));
}

// ---------------------------------------------------------------------------------------------------
// The investigator scenario: real simulator, real recordings.

fn ffprobe_duration(path: &Path) -> f64 {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "default=nw=1:nk=1",
        ])
        .arg(path)
        .output()
        .expect("ffprobe");
    assert!(out.status.success(), "ffprobe: {:?}", out);
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("duration")
}

fn verify(pkg: &Path) -> (bool, String) {
    let out = Command::new(BIN)
        .arg("verify")
        .arg(pkg)
        .env("RUST_LOG", "warn")
        .output()
        .expect("vigil verify");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Rewrites a zip with one byte of `name` flipped (a valid zip: only the content changed).
fn flip_in_zip(src: &Path, dst: &Path, name: &str) {
    let mut zin = zip::ZipArchive::new(std::fs::File::open(src).expect("open")).expect("zip");
    let mut zout = zip::ZipWriter::new(std::fs::File::create(dst).expect("create"));
    for i in 0..zin.len() {
        let mut f = zin.by_index(i).expect("entry");
        let n = f.name().to_owned();
        let mut data = Vec::new();
        f.read_to_end(&mut data).expect("read");
        if n == name {
            let at = data.len() / 2;
            data[at] ^= 0x01;
        }
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        zout.start_file(n, opts).expect("start");
        zout.write_all(&data).expect("write");
    }
    zout.finish().expect("finish");
}

/// (camera, start, end), times in ms from the scenario's start.
type Clip = (i64, i64, i64);

fn clip_times(case: &Value, t0: i64) -> Vec<Clip> {
    case["clips"]
        .as_array()
        .expect("clips")
        .iter()
        .map(|c| {
            (
                c["camera_id"].as_i64().expect("camera"),
                ms_of(&c["start"]) - t0,
                ms_of(&c["end"]) - t0,
            )
        })
        .collect()
}

#[tokio::test]
async fn investigator_finds_plays_exports_and_holds_a_case() {
    let sim = Sim::small(5, 25, &[]);
    let mut server = Server::start_with(&format!(
        "{USERS}\n[record]\nsegment_seconds = 4\nretention_interval_seconds = 1\nmin_free_mb = 0\n\
         bid_evaluation_days = 365\n"
    ));
    let admin = server.admin().await;
    let hall1 = admin
        .site("章贡区政务服务中心", "service_hall", "360702")
        .await;
    let hall2 = admin
        .site("南昌市政务服务中心", "service_hall", "360100")
        .await;
    let bid = admin
        .site("赣州市公共资源交易中心", "bid_evaluation", "360700")
        .await;
    let mut cam = Vec::new();
    for (i, site) in [hall1, hall1, hall2, bid, bid].into_iter().enumerate() {
        cam.push(
            admin
                .camera(json!({"name": format!("cam{}", i + 1), "site_id": site,
                               "main_url": sim.url(i as u32 + 1)}))
                .await,
        );
    }
    for (site, code, kind, cams) in [
        (hall1, "A1", "window", vec![cam[0]]),
        (hall1, "A2", "window", vec![cam[1]]),
        (hall2, "B1", "window", vec![cam[2]]),
        (bid, "开标室1", "room", vec![cam[3]]),
        (bid, "评标室1", "room", vec![cam[4]]),
        (bid, "S1", "seat", vec![cam[3]]),
    ] {
        let r = admin
            .post(
                &format!("/api/v1/sites/{site}/positions"),
                json!({"code": code, "kind": kind, "camera_ids": cams}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    // Rules per site: short rolls so that the test records seconds, not minutes.
    for (site, pre, post) in [(hall1, 2, 4), (hall2, 3, 5)] {
        let r = admin
            .call(
                "PUT",
                &format!("/api/v1/sites/{site}/case-rules"),
                Some(json!({"pre_roll_seconds": pre, "post_roll_seconds": post, "followup_hours": 72})),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    for c in &cam {
        assert!(
            admin
                .wait_state(*c, "online", Duration::from_secs(30))
                .await
                .is_some(),
            "camera {c} online; log:\n{}",
            server.log()
        );
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let t0 = now_ms();
    let s = |x: f64| t0 + (x * 1000.0) as i64;
    let events = vec![
        ev("ap1-1", "AP-1", "approval", "accepted", s(3.0), hall1, "A1"),
        ev("ap1-2", "AP-1", "approval", "reviewed", s(5.0), hall1, "A2"),
        ev(
            "ap1-3",
            "AP-1",
            "approval",
            "completed",
            s(9.0),
            hall1,
            "A1",
        ),
        ev("ap2-1", "AP-2", "approval", "accepted", s(4.0), hall1, "A2"),
        ev("ap3-1", "AP-3", "approval", "accepted", s(6.0), hall2, "B1"),
        ev(
            "ap3-2",
            "AP-3",
            "approval",
            "completed",
            s(10.0),
            hall2,
            "B1",
        ),
        ev(
            "b-1",
            "BID-1",
            "bid",
            "opening_start",
            s(2.0),
            bid,
            "开标室1",
        ),
        ev("b-2", "BID-1", "bid", "opening_end", s(6.0), bid, "开标室1"),
        {
            let mut e = ev(
                "b-3",
                "BID-1",
                "bid",
                "evaluation_start",
                s(8.0),
                bid,
                "评标室1",
            );
            e["attributes"] = json!({"positions": ["S1"]});
            e
        },
        ev(
            "b-4",
            "BID-1",
            "bid",
            "evaluation_end",
            s(14.0),
            bid,
            "评标室1",
        ),
    ];
    // The footage the events name is recorded while they arrive, late and out of order.
    tokio::time::sleep(Duration::from_secs(17)).await;
    let sender = server.integrator();
    let mut shuffled = events.clone();
    shuffled.reverse();
    let (first, second) = shuffled.split_at(4);
    for part in [first, second, first] {
        let r = sender.post("/api/v1/events", json!({"events": part})).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert!(r.body["rejected"] == json!([]), "{}", r.text);
    }

    let inv = Client::login(&server, "inv", "investigator-pw-1").await;
    let expected: Vec<(&str, Vec<Clip>)> = vec![
        (
            "AP-1",
            vec![
                (cam[0], 1000, 9000),
                (cam[1], 3000, 9000),
                (cam[0], 7000, 13000),
            ],
        ),
        ("AP-2", vec![(cam[1], 2000, 8000)]),
        ("AP-3", vec![(cam[2], 3000, 10000), (cam[2], 7000, 15000)]),
        (
            "BID-1",
            vec![
                (cam[3], 2000, 6000),
                (cam[3], 8000, 14000),
                (cam[4], 8000, 14000),
            ],
        ),
    ];
    let dir = tempfile::tempdir().expect("tempdir");
    for (no, want) in &expected {
        let r = inv.get(&format!("/api/v1/cases/{no}")).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(&clip_times(&r.body, t0), want, "{no}: {}", r.text);
        for c in r.body["clips"].as_array().expect("clips") {
            assert_eq!(c["coverage"], "full", "{no}: {c}");
            let want_s = (ms_of(&c["end"]) - ms_of(&c["start"])) as f64 / 1000.0;
            let (st, body, ct) = inv.download(c["video_url"].as_str().expect("url")).await;
            assert_eq!(st, 200, "{c}");
            assert_eq!(ct, "video/mp4");
            let f = dir.path().join(format!("{no}-{}.mp4", c["index"]));
            std::fs::write(&f, &body).expect("write clip");
            let got = ffprobe_duration(&f);
            assert!(
                (got - want_s).abs() < 0.5,
                "{no} clip {c}: {got} s, want {want_s} s"
            );
            let (st, jpg, ct) = inv
                .download(c["thumbnail_url"].as_str().expect("url"))
                .await;
            assert_eq!((st, ct.as_str()), (200, "image/jpeg"), "{c}");
            assert_eq!(&jpg[..2], &[0xFF, 0xD8]);
        }
    }
    // Another city's investigator sees none of the first hall's cases.
    let other = Client::login(&server, "inv-nc", "investigator-pw-2").await;
    assert_eq!(other.get("/api/v1/cases/AP-1").await.status, 404);
    assert_eq!(other.get("/api/v1/cases/AP-3").await.status, 200);

    // Export AP-1: a background job, then a package that verifies offline.
    let r = inv.post("/api/v1/cases/AP-1/export", json!({})).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let id = r.body["export_id"].as_str().expect("export id").to_owned();
    let done = wait_for(Duration::from_secs(60), || async {
        let r = inv.get(&format!("/api/v1/exports/{id}")).await;
        assert_ne!(r.body["state"], "failed", "{}", r.text);
        (r.body["state"] == "done").then_some(r.body)
    })
    .await
    .expect("export done");
    assert_eq!(done["progress"], 1.0);
    let (st, zip_bytes, _) = inv
        .download(done["download_url"].as_str().expect("url"))
        .await;
    assert_eq!(st, 200);
    let pkg = dir.path().join("AP-1.zip");
    std::fs::write(&pkg, &zip_bytes).expect("write package");
    let (ok, out) = verify(&pkg);
    assert!(ok, "{out}");
    let mut names = Vec::new();
    {
        let mut z = zip::ZipArchive::new(std::fs::File::open(&pkg).expect("open")).expect("zip");
        let mut m = String::new();
        z.by_name("manifest.json")
            .expect("manifest")
            .read_to_string(&mut m)
            .expect("read");
        let m: Value = serde_json::from_str(&m).expect("manifest json");
        assert_eq!(m["case"]["case_no"], "AP-1");
        assert_eq!(m["exported_by"], "inv");
        assert_eq!(m["clips"].as_array().map(Vec::len), Some(3));
        assert_eq!(m["files"].as_array().map(Vec::len), Some(3));
        for i in 0..z.len() {
            names.push(z.by_index(i).expect("entry").name().to_owned());
        }
        // Each MP4 plays, with the clip's length.
        for c in m["clips"].as_array().expect("clips") {
            let f = dir.path().join("x.mp4");
            let mut data = Vec::new();
            z.by_name(c["file"].as_str().expect("file"))
                .expect("clip file")
                .read_to_end(&mut data)
                .expect("read");
            std::fs::write(&f, data).expect("write");
            let want = (ms_of(&c["end"]) - ms_of(&c["start"])) as f64 / 1000.0;
            assert!((ffprobe_duration(&f) - want).abs() < 0.5, "{c}");
        }
    }
    assert_eq!(names.len(), 5, "{names:?}");
    // One byte flipped in any file: verify fails and names that file.
    for name in &names {
        let bad = dir.path().join("bad.zip");
        flip_in_zip(&pkg, &bad, name);
        let (ok, out) = verify(&bad);
        assert!(!ok, "{name} flipped but verified: {out}");
        assert!(out.contains(&format!("FAILED {name}")), "{name}: {out}");
    }
    // ... also flipped in place, inside the zip (the zip's own checksum then fails too).
    let mut raw = zip_bytes.clone();
    let needle = names
        .iter()
        .find(|n| n.ends_with(".mp4"))
        .expect("an mp4")
        .clone();
    let at = zip_bytes
        .windows(needle.len())
        .position(|w| w == needle.as_bytes())
        .expect("local header")
        + needle.len()
        + 5_000;
    raw[at] ^= 0x80;
    let bad = dir.path().join("raw.zip");
    std::fs::write(&bad, &raw).expect("write");
    let (ok, out) = verify(&bad);
    assert!(!ok && out.contains(&format!("FAILED {needle}")), "{out}");

    // Hold AP-3 by case; BID-1's sessions are held already.
    let r = inv
        .post(
            "/api/v1/holds",
            json!({"case_no": "AP-3", "reason": "投诉调查"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);

    // Retention with a budget far too small: everything unheld goes, the held sessions stay.
    drop(sim);
    tokio::time::sleep(Duration::from_secs(3)).await;
    server.stop();
    let cfg = std::fs::read_to_string(server.config_path()).expect("config");
    std::fs::write(
        server.config_path(),
        cfg.replace(
            "segment_seconds = 4\n",
            "segment_seconds = 4\ndisk_budget_mb = 1\n",
        ),
    )
    .expect("config");
    server.restart();
    let inv = Client::login(&server, "inv", "investigator-pw-1").await;
    let gone = wait_for(Duration::from_secs(20), || async {
        let r = inv.get("/api/v1/cases/AP-2").await;
        (r.body["clips"][0]["coverage"] == "missing").then_some(())
    })
    .await;
    assert!(
        gone.is_some(),
        "retention did not remove unheld footage; log:\n{}",
        server.log()
    );
    for no in ["BID-1", "AP-3"] {
        let r = inv.get(&format!("/api/v1/cases/{no}")).await;
        for c in r.body["clips"].as_array().expect("clips") {
            assert_eq!(c["coverage"], "full", "{no} after retention: {c}");
        }
    }
    // Footage of the bid cameras outside the sessions went.
    let r = inv.get("/api/v1/cases/AP-1").await;
    assert!(r.body["clips"]
        .as_array()
        .expect("clips")
        .iter()
        .all(|c| c["coverage"] != "full"));
}
