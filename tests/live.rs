//! Live view over the WebSocket protocol, through the real simulator and the real server: instant start
//! from the GOP cache, fragments at the camera's frame rate, access rules, and fan-out to 200 viewers
//! with one that never reads.

mod common;
use common::ws::{connect, cookie, request, Ws};
use common::*;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

/// 320x240, 25 fps, a keyframe every 2 s: a viewer may arrive anywhere in a long GOP.
fn sim(cameras: u32) -> Sim {
    Sim::small(cameras, 50, &[])
}

const USERS: &str = r#"
[live]
viewer_queue = 25
send_timeout_ms = 3000

[[seed.users]]
username = "watcher"
password = "watcher-password-1"
role = "supervisor"
region_codes = ["360700"]

[[seed.users]]
username = "nanchang"
password = "nanchang-password-1"
role = "supervisor"
region_codes = ["360100"]

[[seed.users]]
username = "auditor"
password = "auditor-password-1"
role = "investigator"
region_codes = ["360000"]
"#;

/// The status an upgrade attempt is refused with.
async fn refused(server: &Server, camera: i64, cookie: &str, origin: Option<&str>) -> u16 {
    match tokio_tungstenite::connect_async(request(server, camera, cookie, origin)).await {
        Ok(_) => 101,
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => r.status().as_u16(),
        Err(e) => panic!("unexpected error {e}"),
    }
}

async fn start_mse(ws: &mut Ws) {
    ws.send(Message::text(
        json!({"type": "mse", "codecs": ["avc1.640029", "avc1.42e01e"]}).to_string(),
    ))
    .await
    .expect("send mse");
}

/// Flags of the first sample of a `moof` (from its `trun`), and whether the message is a fragment.
fn first_sample_is_sync(frag: &[u8]) -> Option<bool> {
    let at = frag.windows(4).position(|w| w == b"trun")?;
    let flags = u32::from_be_bytes(frag.get(at + 4..at + 8)?.try_into().ok()?) & 0xff_ffff;
    let mut p = at + 16; // version/flags, sample_count, data_offset
    if flags & 0x4 != 0 {
        p += 4;
    }
    if flags & 0x100 != 0 {
        p += 4;
    }
    if flags & 0x200 != 0 {
        p += 4;
    }
    let sample_flags = u32::from_be_bytes(frag.get(p..p + 4)?.try_into().ok()?);
    Some(sample_flags & 0x0001_0000 == 0)
}

enum Got {
    Text(Value),
    Binary(Vec<u8>),
}

async fn next(ws: &mut Ws, timeout: Duration) -> Option<Got> {
    loop {
        match tokio::time::timeout(timeout, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => {
                return Some(Got::Text(serde_json::from_str(t.as_str()).expect("json")))
            }
            Ok(Some(Ok(Message::Binary(b)))) => return Some(Got::Binary(b.to_vec())),
            Ok(Some(Ok(_))) => continue,
            _ => return None,
        }
    }
}

/// Connects, asks for MSE, and returns the time to the first decodable fragment (init segment received,
/// then a fragment that starts with a keyframe), with the messages up to it.
async fn first_picture(
    server: &Server,
    camera: i64,
    cookie: &str,
) -> (Duration, Ws, Vec<u8>, Vec<u8>) {
    let t0 = Instant::now();
    let mut ws = connect(server, camera, cookie).await;
    start_mse(&mut ws).await;
    let mut init = None;
    loop {
        match next(&mut ws, Duration::from_secs(5)).await {
            Some(Got::Text(v)) => {
                assert_eq!(v["type"], "mse", "{v}");
                let mime = v["mime"].as_str().expect("mime");
                assert!(mime.starts_with("video/mp4; codecs=\"avc1."), "{mime}");
            }
            Some(Got::Binary(b)) if init.is_none() => {
                assert_eq!(&b[4..8], b"ftyp", "the init segment comes first");
                init = Some(b);
            }
            Some(Got::Binary(b)) => {
                assert_eq!(
                    first_sample_is_sync(&b),
                    Some(true),
                    "first fragment is a keyframe"
                );
                return (t0.elapsed(), ws, init.expect("init"), b);
            }
            None => panic!("no picture within 5 s; log:\n{}", server.log()),
        }
    }
}

async fn setup(cameras: u32) -> (Sim, Server, Vec<i64>, String) {
    let sim = sim(cameras);
    let server = Server::start_with(USERS);
    let c = server.admin().await;
    let site = c.site("章贡区政务服务中心", "service_hall", "360702").await;
    let mut ids = Vec::new();
    for n in 1..=cameras {
        let id = c
            .camera(json!({"name": format!("窗口{n}"), "site_id": site, "main_url": sim.url(n), "record": false}))
            .await;
        c.wait_state(id, "online", Duration::from_secs(10))
            .await
            .expect("camera online");
        ids.push(id);
    }
    let cookie = cookie(&server, "watcher", "watcher-password-1").await;
    (sim, server, ids, cookie)
}

#[tokio::test]
async fn first_decodable_fragment_under_300ms_anywhere_in_the_gop_then_camera_frame_rate() {
    let (_sim, server, cams, cookie) = setup(1).await;
    let cam = cams[0];
    // Let the GOP cache fill, then arrive at eight different points of the 2 s GOP.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let mut worst = Duration::ZERO;
    for i in 0..8 {
        let (t, ws, _, _) = first_picture(&server, cam, &cookie).await;
        println!(
            "connect {i}: first decodable fragment after {} ms",
            t.as_millis()
        );
        worst = worst.max(t);
        drop(ws);
        tokio::time::sleep(Duration::from_millis(270)).await;
    }
    println!(
        "worst connect-to-first-decodable-fragment: {} ms",
        worst.as_millis()
    );
    assert!(worst < Duration::from_millis(300), "worst {worst:?}");

    // Then frames arrive at the camera's rate: count the fragments of 3 s once the cached GOP is through.
    let (_, mut ws, init, first) = first_picture(&server, cam, &cookie).await;
    let mut file = init.clone();
    file.extend_from_slice(&first);
    let catch_up_end = Instant::now() + Duration::from_millis(2_200);
    let mut skips = 0;
    while Instant::now() < catch_up_end {
        match next(&mut ws, Duration::from_secs(2)).await {
            Some(Got::Binary(b)) => file.extend_from_slice(&b),
            Some(Got::Text(v)) => {
                assert_eq!(v["type"], "skip", "{v}");
                skips += 1;
            }
            None => panic!("stream stopped"),
        }
    }
    let t0 = Instant::now();
    let mut count = 0;
    while t0.elapsed() < Duration::from_secs(3) {
        if let Some(Got::Binary(b)) = next(&mut ws, Duration::from_secs(2)).await {
            count += 1;
            file.extend_from_slice(&b);
        }
    }
    let fps = count as f64 / t0.elapsed().as_secs_f64();
    println!("live fragments: {count} in {:?} = {fps:.1}/s", t0.elapsed());
    assert!((fps - 25.0).abs() < 2.5, "fps {fps}");
    assert_eq!(skips, 0, "a reading viewer is never skipped");

    // What the viewer got is a playable fMP4 stream: every fragment decodes.
    let path = server.dir.path().join("live.mp4");
    std::fs::write(&path, &file).expect("write");
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_entries",
        ])
        .args(["stream=nb_read_frames,codec_name,width", "-of", "json"])
        .arg(&path)
        .output()
        .expect("ffprobe");
    let probe: Value = serde_json::from_slice(&out.stdout).expect("ffprobe json");
    let s = &probe["streams"][0];
    assert_eq!(s["codec_name"], "h264", "{probe}");
    assert_eq!(s["width"], 320);
    let frames: u64 = s["nb_read_frames"]
        .as_str()
        .unwrap_or("0")
        .parse()
        .unwrap_or(0);
    assert!(
        frames >= count as u64,
        "{frames} decoded of {count}+; {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn live_access_is_for_supervisors_and_admins_of_the_cameras_region_from_the_same_origin() {
    let (_sim, server, cams, watcher) = setup(1).await;
    let cam = cams[0];
    let same = format!("http://{}", server.addr);
    assert_eq!(refused(&server, cam, &watcher, Some(&same)).await, 101);
    // Another city's supervisor: the camera does not exist for them.
    let other = cookie(&server, "nanchang", "nanchang-password-1").await;
    assert_eq!(refused(&server, cam, &other, Some(&same)).await, 404);
    // Investigators search cases and play back; live is not theirs.
    let inv = cookie(&server, "auditor", "auditor-password-1").await;
    assert_eq!(refused(&server, cam, &inv, Some(&same)).await, 403);
    // A page of another site cannot ride the cookie.
    assert_eq!(
        refused(&server, cam, &watcher, Some("http://evil.example")).await,
        403
    );
    assert_eq!(
        refused(&server, cam, "vigil_session=nope", Some(&same)).await,
        401
    );

    // A malformed message is answered with an error, and the socket stays usable.
    let mut ws = connect(&server, cam, &watcher).await;
    ws.send(Message::text("{\"type\":\"bogus\"}"))
        .await
        .expect("send");
    match next(&mut ws, Duration::from_secs(2)).await {
        Some(Got::Text(v)) => assert_eq!(v["type"], "error", "{v}"),
        _ => panic!("expected an error message"),
    }
    start_mse(&mut ws).await;
    match next(&mut ws, Duration::from_secs(2)).await {
        Some(Got::Text(v)) => assert_eq!(v["type"], "mse", "{v}"),
        _ => panic!("expected the mse answer"),
    }

    // The view's start and end are in the audit log, with who watched which camera.
    drop(ws);
    let admin = server.admin().await;
    let target = format!("/cameras/{cam}/live");
    let audited = wait_for(Duration::from_secs(5), || async {
        let rows = admin.get("/api/v1/audit?actor=watcher").await.body;
        let rows = rows.as_array().cloned().unwrap_or_default();
        let has = |action: &str| {
            rows.iter().any(|r| {
                r["action"] == action && r["target"].as_str().unwrap_or("").starts_with(&target)
            })
        };
        (has("live.start") && has("live.stop")).then_some(())
    })
    .await;
    assert!(
        audited.is_some(),
        "live.start and live.stop audited for the watcher"
    );
}

/// The live views of `actor` the audit log has (started, stopped).
async fn audited_views(admin: &Client, actor: &str) -> (usize, usize) {
    let rows = admin
        .get(&format!("/api/v1/audit?actor={actor}&limit=5000"))
        .await
        .body;
    let rows = rows.as_array().cloned().unwrap_or_default();
    let n = |action: &str| {
        rows.iter()
            .filter(|r| r["action"] == action && r["status"].as_i64().unwrap_or(500) < 400)
            .count()
    };
    (n("live.start"), n("live.stop"))
}

/// A viewer that leaves while its socket is still opening (a tile scrolled away, a page left) hangs up
/// while the server answers the upgrade: every view the log shows started is shown ended too. The server
/// is made slow to answer, as under load: another writer holds the database while the start's audit row
/// waits for it, and the viewer (a supervisor's token, whose checks only read) resets its connection then.
#[tokio::test]
async fn a_viewer_gone_during_the_upgrade_has_its_view_audited_as_ended() {
    let (_sim, server, cams, _) = setup(1).await;
    let admin = server.admin().await;
    let token = admin.token("wall-screen", "supervisor", &["360700"]).await;
    let head = format!(
        "GET /api/v1/cameras/{}/live?stream=main HTTP/1.1\r\nHost: {addr}\r\n\
         Authorization: Bearer {token}\r\nOrigin: http://{addr}\r\nConnection: Upgrade\r\n\
         Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        cams[0],
        addr = server.addr
    );
    let db = server.db().await;
    let attempts = 5;
    for _ in 0..attempts {
        hang_up_while_the_database_is_held(&server, &db, &head).await;
    }
    let actor = "token:wall-screen";
    let balanced = wait_for(Duration::from_secs(10), || async {
        let (started, stopped) = audited_views(&admin, actor).await;
        (started == attempts && stopped == attempts).then_some(())
    })
    .await;
    assert!(
        balanced.is_some(),
        "each of {attempts} hang-ups has its live.start and its live.stop: (started, stopped) = {:?}",
        audited_views(&admin, actor).await
    );
}

/// A viewer that asks for MSE and then never reads, with a tiny receive buffer so that it blocks fast.
async fn never_reading(server: &Server, camera: i64, cookie: &str) -> Ws {
    let sock = tokio::net::TcpSocket::new_v4().expect("socket");
    sock.set_recv_buffer_size(4096).expect("rcvbuf");
    let tcp = sock.connect(server.addr).await.expect("connect");
    let origin = format!("http://{}", server.addr);
    let (mut ws, _) = tokio_tungstenite::client_async(
        request(server, camera, cookie, Some(&origin)),
        tokio_tungstenite::MaybeTlsStream::Plain(tcp),
    )
    .await
    .expect("handshake");
    start_mse(&mut ws).await;
    ws
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned))
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn two_hundred_viewers_keep_the_frame_rate_while_one_never_reads() {
    let (_sim, server, cams, cookie) = setup(1).await;
    let cam = cams[0];
    let pid = server.pid().expect("server pid");
    let admin = server.admin().await;
    // The camera records throughout: the recorder must lose nothing to the viewers.
    let r = admin
        .patch(&format!("/api/v1/cameras/{cam}"), json!({"record": true}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let stalled = never_reading(&server, cam, &cookie).await;
    let rss_before = rss_kib(pid);

    const VIEWERS: usize = 200;
    let warm_up = Duration::from_secs(4);
    let window = Duration::from_secs(4);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..VIEWERS {
        let mut ws = connect(&server, cam, &cookie).await;
        start_mse(&mut ws).await;
        tasks.push(tokio::spawn(async move {
            let (mut frames, mut skips) = (0u32, 0u32);
            let from = start + warm_up;
            let to = from + window;
            while Instant::now() < to {
                match next(&mut ws, Duration::from_secs(3)).await {
                    Some(Got::Binary(b)) => {
                        let now = Instant::now();
                        if now >= from && now < to && first_sample_is_sync(&b).is_some() {
                            frames += 1;
                        }
                    }
                    Some(Got::Text(v)) if v["type"] == "skip" => skips += 1,
                    Some(Got::Text(_)) => {}
                    None => break,
                }
            }
            (frames, skips)
        }));
    }
    println!("{VIEWERS} viewers connected in {:?}", start.elapsed());
    let mut worst = u32::MAX;
    let mut skipped_readers = 0;
    for t in tasks {
        let (frames, skips) = t.await.expect("viewer");
        worst = worst.min(frames);
        skipped_readers += (skips > 0) as u32;
    }
    let rss_after = rss_kib(pid);
    let stats = admin.get("/api/v1/live/stats").await.body;
    println!(
        "worst viewer: {worst} frames in {window:?} (camera: {} fps); readers skipped: {skipped_readers}; \
         server RSS {rss_before} -> {rss_after} KiB; stats {stats}",
        25
    );
    let expected = 25 * window.as_secs() as u32;
    assert!(
        worst + 5 >= expected,
        "worst viewer got {worst} of {expected} frames"
    );
    assert!(
        rss_after < rss_before + 64 * 1024,
        "RSS grew from {rss_before} to {rss_after} KiB"
    );
    assert!(
        skipped_readers <= VIEWERS as u32 / 20,
        "{skipped_readers} reading viewers skipped"
    );
    // The one that never reads holds no more than its ring cursor: once its connection accepts nothing
    // for send_timeout_ms it is dropped, while the camera keeps streaming to everyone else.
    let dropped = wait_for(Duration::from_secs(20), || async {
        let s = admin.get("/api/v1/live/stats").await.body;
        (s["latency"]["mse_viewers"].as_u64() == Some(0)).then_some(s)
    })
    .await;
    assert!(
        dropped.is_some(),
        "the viewer that never reads was not dropped: {}",
        admin.get("/api/v1/live/stats").await.body
    );
    assert!(server.log().contains("live viewer dropped"));
    // The camera's ingest never slowed down.
    let st = admin.status(cam).await;
    assert!(
        (st["fps"].as_f64().unwrap_or(0.0) - 25.0).abs() < 1.5,
        "{st}"
    );
    // The recorder wrote GOPs all along and neither skipped a frame nor dropped a GOP.
    let metrics = admin.get("/metrics").await.text;
    let counter = |name: &str| -> u64 {
        let prefix = format!("{name}{{camera=\"{cam}\",");
        metrics
            .lines()
            .find(|l| l.starts_with(&prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} for camera {cam} in /metrics"))
    };
    // About 8 s of 2 s GOPs have passed since recording started.
    assert!(counter("vigil_record_gops_written_total") >= 3, "{metrics}");
    assert_eq!(counter("vigil_record_frames_skipped_total"), 0);
    assert_eq!(counter("vigil_record_gops_dropped_total"), 0);
    drop(stalled);
}

#[tokio::test]
async fn whep_client_receives_the_camera_by_webrtc_and_can_end_the_session() {
    use str0m::change::SdpAnswer;
    use str0m::net::{Protocol, Receive};
    use str0m::{Event, Input, Output};

    let (_sim, server, cams, _) = setup(1).await;
    let cam = cams[0];
    let c = Client::login(&server, "watcher", "watcher-password-1").await;
    let (mut rtc, pending, sock, offer) = common::ws::whep_offer().await;
    let local = sock.local_addr().expect("addr");

    let url = server.url(&format!("/api/v1/cameras/{cam}/whep"));
    let post = |ct: &'static str, body: String| {
        c.http
            .post(&url)
            .header("content-type", ct)
            .header("x-csrf-token", c.csrf.clone().unwrap_or_default())
            .body(body)
            .send()
    };
    let wrong = post("application/json", "{}".into()).await.expect("post");
    assert_eq!(wrong.status(), 415);
    let r = post("application/sdp", offer).await.expect("post");
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["content-type"], "application/sdp");
    let location = r.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    let answer = r.text().await.expect("answer");
    rtc.sdp_api()
        .accept_answer(
            pending,
            SdpAnswer::from_sdp_string(&answer).expect("answer parses"),
        )
        .expect("answer accepted");

    let mut frames = 0u32;
    let end = Instant::now() + Duration::from_secs(6);
    let mut buf = vec![0u8; 2048];
    while Instant::now() < end && frames < 50 {
        let timeout = loop {
            match rtc.poll_output().expect("poll") {
                Output::Timeout(t) => break t,
                Output::Transmit(t) => {
                    let _ = sock.send_to(&t.contents, t.destination).await;
                }
                Output::Event(Event::RtpPacket(p)) if p.header.marker => frames += 1,
                Output::Event(_) => {}
            }
        };
        let wait = timeout
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(200));
        tokio::select! {
            r = sock.recv_from(&mut buf) => {
                let (n, source) = r.expect("recv");
                if let Ok(contents) = buf[..n].try_into() {
                    rtc.handle_input(Input::Receive(Instant::now(), Receive { proto: Protocol::Udp, source, destination: local, contents })).expect("input");
                }
            }
            _ = tokio::time::sleep(wait) => rtc.handle_input(Input::Timeout(Instant::now())).expect("timeout"),
        }
    }
    println!("WHEP: {frames} frames");
    assert!(frames >= 50, "{frames} frames by WHEP");
    let del = c
        .http
        .delete(server.url(&location))
        .header("x-csrf-token", c.csrf.clone().unwrap_or_default())
        .send()
        .await
        .expect("delete");
    assert_eq!(del.status(), 204);
    let again = c
        .http
        .delete(server.url(&location))
        .header("x-csrf-token", c.csrf.clone().unwrap_or_default())
        .send()
        .await
        .expect("delete");
    assert_eq!(again.status(), 404);
}

/// The `tfdt` decode time of a fragment.
fn decode_time(frag: &[u8]) -> Option<u64> {
    let at = frag.windows(4).position(|w| w == b"tfdt")? + 4;
    let version = *frag.get(at)?;
    let b = frag.get(at + 4..)?;
    Some(if version == 1 {
        u64::from_be_bytes(b.get(..8)?.try_into().ok()?)
    } else {
        u64::from(u32::from_be_bytes(b.get(..4)?.try_into().ok()?))
    })
}

/// An H.265 camera watched by a browser that plays H.264 only (the server transcodes), then restarted at
/// another resolution: the viewer gets a new init segment of the new size, the decode times go on
/// rising through the reconnect, and what follows the new init plays in ffprobe.
#[tokio::test]
async fn transcoded_live_survives_a_reconnect_and_a_resolution_change() {
    let mut sim = Sim::small(1, 25, &["--codec", "h265"]);
    let server = Server::start_with(USERS);
    let c = server.admin().await;
    let site = c.site("章贡区政务服务中心", "service_hall", "360702").await;
    let cam = c
        .camera(json!({"name": "H265", "site_id": site, "main_url": sim.url(1), "record": false}))
        .await;
    c.wait_state(cam, "online", Duration::from_secs(10))
        .await
        .expect("online");
    let mut ws = connect(
        &server,
        cam,
        &cookie(&server, "watcher", "watcher-password-1").await,
    )
    .await;
    start_mse(&mut ws).await; // H.264 codecs only: the server transcodes
    let mut inits = 0;
    let mut times: Vec<u64> = Vec::new();
    let mut after_change: Vec<u8> = Vec::new();
    let mut restarted = false;
    let end = Instant::now() + Duration::from_secs(60);
    while Instant::now() < end {
        match next(&mut ws, Duration::from_secs(20)).await {
            Some(Got::Text(v)) if v["type"] == "mse" => {
                inits += 1;
                if inits == 2 {
                    after_change.clear();
                }
            }
            Some(Got::Text(v)) => assert_eq!(v["type"], "skip", "{v}"),
            Some(Got::Binary(b)) => {
                if let Some(t) = decode_time(&b) {
                    times.push(t);
                }
                if inits >= 2 {
                    after_change.extend_from_slice(&b);
                }
            }
            None => panic!("the live view stopped; log:\n{}", server.log()),
        }
        if !restarted && times.len() >= 15 {
            // The camera drops, and comes back at another resolution.
            sim.kill();
            sim.set_args(Sim::small_args(1, 25, (480, 272), &["--codec", "h265"]));
            sim.restart();
            restarted = true;
        }
        if inits >= 2 && times.len() >= 45 {
            break;
        }
    }
    assert!(
        inits >= 2,
        "a new init segment after the change ({inits} inits)"
    );
    assert!(
        times.windows(2).all(|w| w[1] > w[0]),
        "decode times rise through the reconnect: {times:?}"
    );
    let file = server.dir.path().join("after-change.mp4");
    std::fs::write(&file, &after_change).expect("write");
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=width,height",
            "-of",
            "csv=p=0",
        ])
        .arg(&file)
        .output()
        .expect("ffprobe");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "480,272");
    let (_, _, frames) = ffprobe(&file);
    assert!(frames >= 10, "{frames} frames after the change");
}
