//! Trust (issue 14), against the real binary, simulator and database: footage that never crosses a
//! region, even after a camera moved; a deleted region's history that stays where it was; camera
//! passwords that go only to their camera; live views that end with their caller's rights; logins that
//! cannot be raced; seeds that stay deleted; security headers; a private data directory; and an audit
//! chain that someone with the database but without the key cannot rewrite.

mod common;
use common::ws::{connect, cookie, Ws};
use common::*;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

const USERS: &str = r#"
[cases]
pre_roll_seconds = 20
post_roll_seconds = 20

[[seed.users]]
username = "ganzhou-inv"
password = "ganzhou-password-1"
role = "investigator"
region_codes = ["360700"]

[[seed.users]]
username = "ganzhou-admin"
password = "ganzhou-password-1"
role = "admin"
region_codes = ["360700"]

[[seed.users]]
username = "nanchang-inv"
password = "nanchang-password-1"
role = "investigator"
region_codes = ["360100"]

[[seed.users]]
username = "nanchang-admin"
password = "nanchang-password-1"
role = "admin"
region_codes = ["360100"]
"#;

/// Waits until the camera has recorded at least `secs` seconds since `since_ms`.
async fn wait_footage(c: &Client, cam: i64, since_ms: i64, secs: f64) {
    let path = format!(
        "/api/v1/cameras/{cam}/recordings?start={}&end={}",
        urlq(&rfc_ms(since_ms)),
        urlq(&rfc_ms(since_ms + 3_600_000))
    );
    let got = wait_for(Duration::from_secs(30), || async {
        let spans = c.get(&path).await.body;
        let total: i64 = spans["spans"]
            .as_array()?
            .iter()
            .map(|s| ms(&s["end"]) - ms(&s["start"]))
            .sum();
        (total as f64 >= secs * 1000.0).then_some(())
    })
    .await;
    assert!(got.is_some(), "camera {cam} recorded {secs} s");
}

fn ms(v: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap_or_default())
        .map(|t| t.timestamp_millis())
        .unwrap_or(0)
}

fn urlq(v: &str) -> String {
    v.replace('+', "%2B").replace(':', "%3A")
}

/// Starts an export as `c` and waits until it is done; returns its status document.
async fn export(c: &Client, case_no: &str) -> Value {
    let r = c
        .post(&format!("/api/v1/cases/{case_no}/export"), json!({}))
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let id = r.body["export_id"].as_str().expect("id").to_owned();
    wait_for(Duration::from_secs(60), || async {
        let r = c.get(&format!("/api/v1/exports/{id}")).await;
        (r.body["state"] == "done").then_some(r.body)
    })
    .await
    .expect("export done")
}

/// The manifest of an export package.
async fn manifest(c: &Client, done: &Value) -> Value {
    let (st, bytes, _) = c
        .download(done["download_url"].as_str().expect("url"))
        .await;
    assert_eq!(st, 200);
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("zip");
    let mut f = zip.by_name("manifest.json").expect("manifest");
    let mut text = String::new();
    std::io::Read::read_to_string(&mut f, &mut text).expect("read");
    serde_json::from_str(&text).expect("json")
}

#[tokio::test]
async fn a_camera_moved_to_another_city_leaves_the_old_citys_cases() {
    let sim = Sim::small(1, 25, &[]);
    let server = Server::start_with(USERS);
    let admin = server.admin().await;
    let hall = admin
        .site("章贡区政务服务中心", "service_hall", "360702")
        .await;
    let t0 = now_ms();
    let cam = admin
        .camera(json!({"name": "A12 窗口", "site_id": hall, "main_url": sim.url(1)}))
        .await;
    let r = admin
        .post(
            &format!("/api/v1/sites/{hall}/positions"),
            json!({"code": "A12", "kind": "window", "camera_ids": [cam]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    wait_footage(&admin, cam, t0, 4.0).await;
    let events = json!({"events": [{"event_id": "e1", "case_no": "GZ-2026-0001", "case_type": "approval",
        "kind": "accepted", "at": rfc_ms(now_ms() - 2_000), "site_id": hall, "position": "A12"}]});
    let r = server.integrator().post("/api/v1/events", events).await;
    assert_eq!(r.body["accepted"], 1, "{}", r.text);

    let inv = Client::login(&server, "ganzhou-inv", "ganzhou-password-1").await;
    let case = inv.get("/api/v1/cases/GZ-2026-0001").await;
    assert_eq!(
        case.body["clips"].as_array().map(Vec::len),
        Some(1),
        "{}",
        case.text
    );
    let thumb = case.body["clips"][0]["thumbnail_url"]
        .as_str()
        .expect("thumbnail")
        .to_owned();
    let (st, _, ct) = inv.download(&thumb).await;
    assert_eq!((st, ct.as_str()), (200, "image/jpeg"));
    let events_path = format!(
        "/api/v1/cameras/{cam}/events?start={}&end={}",
        urlq(&rfc_ms(t0 - 60_000)),
        urlq(&rfc_ms(now_ms() + 60_000))
    );
    assert!(inv.get(&events_path).await.text.contains("GZ-2026-0001"));
    let before = export(&inv, "GZ-2026-0001").await;
    let m = manifest(&inv, &before).await;
    assert!(m.to_string().contains(&format!("camera{cam}")), "{m}");

    // The camera moves to a hall of 南昌市.
    let other = admin
        .site("南昌市行政服务中心", "service_hall", "360100")
        .await;
    let r = admin
        .patch(&format!("/api/v1/cameras/{cam}"), json!({"site_id": other}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);

    // 赣州市 keeps its case, but none of the camera's footage through it.
    let case = inv.get("/api/v1/cases/GZ-2026-0001").await;
    assert_eq!(case.status, 200);
    assert_eq!(case.body["clips"], json!([]), "{}", case.text);
    assert_eq!(
        inv.download(&thumb).await.0,
        404,
        "the thumbnail went with the camera"
    );
    let id = before["id"].as_str().expect("id");
    assert_eq!(inv.get(&format!("/api/v1/exports/{id}")).await.status, 404);
    let old = before["download_url"].as_str().expect("url");
    assert_eq!(
        inv.download(old).await.0,
        404,
        "the old export holds its footage"
    );
    let after = export(&inv, "GZ-2026-0001").await;
    let m = manifest(&inv, &after).await;
    assert!(!m.to_string().contains(&format!("camera{cam}")), "{m}");
    assert_eq!(m["files"], json!([]), "{m}");
    let held = inv
        .post(
            "/api/v1/holds",
            json!({"case_no": "GZ-2026-0001", "reason": "投诉"}),
        )
        .await;
    assert_eq!(
        held.status, 409,
        "nothing of the case is theirs to hold: {}",
        held.text
    );

    // 南昌市 now has the camera, and sees none of 赣州市's case numbers through it.
    let nc = Client::login(&server, "nanchang-inv", "nanchang-password-1").await;
    let evs = nc.get(&events_path).await;
    assert_eq!(evs.status, 200, "{}", evs.text);
    assert_eq!(evs.body["events"], json!([]), "{}", evs.text);
    assert_eq!(nc.get("/api/v1/cases/GZ-2026-0001").await.status, 404);

    // 南昌市's approval system cannot learn of 赣州市's case through a number that collides.
    let r = admin
        .post(
            &format!("/api/v1/sites/{other}/positions"),
            json!({"code": "B1", "kind": "window", "camera_ids": []}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let nc_system = Client::with_token(
        &server,
        &admin.token("nc-approval", "integrator", &["360100"]).await,
    );
    let r = nc_system
        .post(
            "/api/v1/events",
            json!({"events": [{"event_id": "nc-1", "case_no": "GZ-2026-0001", "case_type": "bid",
                "kind": "opening_start", "at": rfc_ms(now_ms()), "site_id": other, "position": "B1"}]}),
        )
        .await;
    let why = r.body["rejected"][0]["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(!why.is_empty(), "{}", r.text);
    assert!(
        !why.contains("approval") && !why.contains(&format!("site {hall}")),
        "the rejection tells of 赣州市's case: {why}"
    );

    // Case views, exports, holds and event lookups are filed under their region: 赣州市's admin sees the
    // views of its case, 南昌市's admin none of them.
    let gz = Client::login(&server, "ganzhou-admin", "ganzhou-password-1").await;
    let ncadm = Client::login(&server, "nanchang-admin", "nanchang-password-1").await;
    for action in [
        "case.view",
        "export.create",
        "export.download",
        "hold.create",
    ] {
        let rows = gz.get(&format!("/api/v1/audit?action={action}")).await.body;
        let rows = rows.as_array().expect("rows");
        assert!(
            !rows.is_empty(),
            "{action}: 赣州市's admin sees the rows of its case"
        );
        assert!(
            rows.iter().all(|r| r["region_code"] == "360702"),
            "{action}: {rows:?}"
        );
        let theirs = ncadm
            .get(&format!("/api/v1/audit?action={action}"))
            .await
            .body;
        assert_eq!(theirs, json!([]), "{action}: 南昌市's admin sees none");
    }
    let lookups = ncadm.get("/api/v1/audit?action=camera.events").await.body;
    assert!(
        lookups
            .as_array()
            .is_some_and(|r| r.iter().any(|x| x["actor"] == "nanchang-inv")),
        "{lookups}"
    );
}

#[tokio::test]
async fn a_deleted_region_code_comes_back_only_where_it_was() {
    let server = Server::start_with(USERS);
    let admin = server.admin().await;
    let gz = Client::login(&server, "ganzhou-admin", "ganzhou-password-1").await;
    let nc = Client::login(&server, "nanchang-admin", "nanchang-password-1").await;
    let region = |parent: &str| json!({"code": "360799", "name": "测试区", "level": "district", "parent_code": parent});
    assert_eq!(
        gz.post("/api/v1/regions", region("360700")).await.status,
        201
    );
    let site = gz.site("测试区大厅", "service_hall", "360799").await;
    assert_eq!(
        gz.delete(&format!("/api/v1/sites/{site}")).await.status,
        204
    );
    assert_eq!(gz.delete("/api/v1/regions/360799").await.status, 204);
    // Elsewhere in the tree the code is refused: its history stays with 赣州市.
    for c in [&nc, &admin] {
        let r = c.post("/api/v1/regions", region("360100")).await;
        assert_eq!(r.status, 409, "{}", r.text);
        assert!(!r.text.contains("360700"), "{}", r.text);
    }
    let history = nc.get("/api/v1/audit").await.body;
    assert!(
        !history.to_string().contains("360799"),
        "南昌市 did not adopt the deleted region's rows: {history}"
    );
    // At its old place it comes back.
    assert_eq!(
        gz.post("/api/v1/regions", region("360700")).await.status,
        201
    );
}

/// A fake RTSP server that answers every request with a Basic challenge and keeps what clients send:
/// where a stored camera password would go if the server sent it to a new address.
fn password_trap() -> (u16, std::sync::mpsc::Receiver<String>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut conn = conn;
                let _ = conn.set_read_timeout(Some(Duration::from_secs(20)));
                let mut buf = [0u8; 4096];
                while let Ok(n) = conn.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    let req = String::from_utf8_lossy(&buf[..n]).into_owned();
                    let cseq = req
                        .lines()
                        .find_map(|l| l.strip_prefix("CSeq:"))
                        .unwrap_or(" 1")
                        .trim()
                        .to_owned();
                    let _ = tx.send(req);
                    let answer = format!(
                        "RTSP/1.0 401 Unauthorized\r\nCSeq: {cseq}\r\n\
                         WWW-Authenticate: Basic realm=\"camera\"\r\n\r\n"
                    );
                    let _ = conn.write_all(answer.as_bytes());
                }
            });
        }
    });
    (port, rx)
}

#[tokio::test]
async fn a_stored_camera_password_goes_only_to_its_camera() {
    let sim = Sim::small(
        1,
        25,
        &["--username", "cam-user", "--password", "cam-secret-9"],
    );
    let server = Server::start();
    let admin = server.admin().await;
    let hall = admin
        .site("章贡区政务服务中心", "service_hall", "360702")
        .await;
    let cam = admin
        .camera(
            json!({"name": "A12", "site_id": hall, "main_url": sim.url(1),
                       "username": "cam-user", "password": "cam-secret-9", "record": false}),
        )
        .await;
    let (trap_port, caught) = password_trap();
    let elsewhere = format!("rtsp://127.0.0.1:{trap_port}/Streaming/Channels/101");

    // Testing the camera at another address without typing the password: refused, nothing sent there.
    let r = admin
        .post(
            "/api/v1/cameras/test",
            json!({"camera_id": cam, "main_url": elsewhere}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    // Moving the camera without typing the password: refused, the camera unchanged.
    for field in ["main_url", "sub_url"] {
        let r = admin
            .patch(&format!("/api/v1/cameras/{cam}"), json!({field: elsewhere}))
            .await;
        assert_eq!(r.status, 422, "{field}: {}", r.text);
    }
    let stored = admin.get(&format!("/api/v1/cameras/{cam}")).await.body;
    assert_eq!(stored["main_url"], sim.url(1));
    std::thread::sleep(Duration::from_millis(500));
    let sent: Vec<String> = caught.try_iter().collect();
    assert!(
        sent.iter().all(|r| !r.contains("Authorization")),
        "the stored password went to another address: {sent:?}"
    );

    // The same camera at its own address is tested with its stored password.
    let same = format!("rtsp://127.0.0.1:{}/cam1", sim.port);
    let r = admin
        .post(
            "/api/v1/cameras/test",
            json!({"camera_id": cam, "main_url": same}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["state"], "online", "{}", r.text);
    // With the password typed again, the camera may move.
    let r = admin
        .patch(
            &format!("/api/v1/cameras/{cam}"),
            json!({"main_url": elsewhere, "password": "a-new-password"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);

    // Credentials written into an NVR's URL template are taken out of it, never shown.
    let r = admin
        .post(
            "/api/v1/nvrs",
            json!({"site_id": hall, "vendor": "generic", "host": "127.0.0.1", "port": sim.port,
                   "channels": 1, "url_template": "rtsp://nvr-user:tpl-secret-7@{host}:{port}/cam{channel}"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert!(
        !r.text.contains("tpl-secret-7") && !r.text.contains("nvr-user@"),
        "{}",
        r.text
    );
    let all = admin.get("/api/v1/cameras").await.text;
    assert!(
        !all.contains("tpl-secret-7") && !all.contains("cam-secret-9"),
        "{all}"
    );
}

const LIVE: &str = r#"
[auth]
recheck_seconds = 1

[live]
max_session_seconds = 8

[[seed.users]]
username = "watcher"
password = "watcher-password-1"
role = "supervisor"
region_codes = ["360700"]
"#;

/// Reads the socket until the server ends it; the time it took, or `None` when it stayed open.
async fn ended_within(ws: &mut Ws, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        match tokio::time::timeout(limit - start.elapsed(), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) if t.as_str().contains("\"ended\"") => {
                return Some(start.elapsed())
            }
            Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) => {
                return Some(start.elapsed())
            }
            Ok(Some(Ok(_))) => continue,
            Err(_) => return None,
        }
    }
    None
}

/// A live socket that is playing (init segment received).
async fn playing(server: &Server, cam: i64, cookie: &str) -> Ws {
    let mut ws = connect(server, cam, cookie).await;
    ws.send(Message::text(
        json!({"type": "mse", "codecs": ["avc1.640029", "avc1.42e01e"]}).to_string(),
    ))
    .await
    .expect("send");
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if let Ok(Some(Ok(Message::Binary(_)))) =
            tokio::time::timeout(Duration::from_secs(10), ws.next()).await
        {
            return ws;
        }
    }
    panic!("the live view did not start");
}

#[tokio::test]
async fn live_views_end_with_their_callers_rights() {
    let sim = Sim::small(1, 25, &[]);
    let server = Server::start_with(LIVE);
    let admin = server.admin().await;
    let hall = admin
        .site("章贡区政务服务中心", "service_hall", "360702")
        .await;
    let cam = admin
        .camera(json!({"name": "A12", "site_id": hall, "main_url": sim.url(1), "record": false}))
        .await;
    admin
        .wait_state(cam, "online", Duration::from_secs(15))
        .await
        .expect("online");
    let users = admin.get("/api/v1/users").await.body;
    let watcher_id = users
        .as_array()
        .and_then(|u| u.iter().find(|x| x["username"] == "watcher"))
        .and_then(|u| u["id"].as_i64())
        .expect("watcher");

    // Logout ends the views of that session (a view and the notification stream).
    let (session, csrf) = common::ws::session(&server, "watcher", "watcher-password-1").await;
    let mut ws = playing(&server, cam, &session).await;
    let mut notes = common::ws::notifications(&server, &session).await;
    let out = reqwest::Client::new()
        .delete(server.url("/api/v1/session"))
        .header("cookie", &session)
        .header("x-csrf-token", csrf)
        .send()
        .await
        .expect("logout");
    assert_eq!(out.status(), 204);
    let took = ended_within(&mut ws, Duration::from_secs(5)).await;
    assert!(took.is_some(), "the live view ended after the logout");
    let took = ended_within(&mut notes, Duration::from_secs(5)).await;
    assert!(
        took.is_some(),
        "the notification stream ended after the logout"
    );

    // A change of the user's regions ends their live views.
    let mut ws = playing(
        &server,
        cam,
        &cookie(&server, "watcher", "watcher-password-1").await,
    )
    .await;
    let r = admin
        .patch(
            &format!("/api/v1/users/{watcher_id}"),
            json!({"region_codes": ["360100"]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(
        ended_within(&mut ws, Duration::from_secs(5))
            .await
            .is_some(),
        "rights changed"
    );

    // A revoked token ends its views.
    let r = admin
        .post(
            "/api/v1/tokens",
            json!({"name": "wall-box", "role": "supervisor", "region_codes": ["360700"]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let (token, token_id) = (
        r.body["token"].as_str().expect("token").to_owned(),
        r.body["id"].as_i64().expect("id"),
    );
    let url = format!("ws://{}/api/v1/cameras/{cam}/live?stream=main", server.addr);
    let mut req =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(url)
            .expect("request");
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header"),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("token view");
    assert_eq!(
        admin
            .delete(&format!("/api/v1/tokens/{token_id}"))
            .await
            .status,
        204
    );
    assert!(
        ended_within(&mut ws, Duration::from_secs(5))
            .await
            .is_some(),
        "token revoked"
    );

    // A WHEP session ends with its caller's rights too: the server has ended it before anyone deletes it.
    let r = admin
        .patch(
            &format!("/api/v1/users/{watcher_id}"),
            json!({"region_codes": ["360700"]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let watcher = Client::login(&server, "watcher", "watcher-password-1").await;
    let (_rtc, _pending, _sock, offer) = common::ws::whep_offer().await;
    let r = watcher
        .http
        .post(server.url(&format!("/api/v1/cameras/{cam}/whep")))
        .header("content-type", "application/sdp")
        .header("x-csrf-token", watcher.csrf.clone().unwrap_or_default())
        .body(offer)
        .send()
        .await
        .expect("whep");
    assert_eq!(r.status(), 201);
    let location = r.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    let r = admin
        .patch(
            &format!("/api/v1/users/{watcher_id}"),
            json!({"region_codes": ["360100"]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    tokio::time::sleep(Duration::from_secs(4)).await;
    let r = admin.delete(&location).await;
    assert_eq!(
        r.status, 404,
        "the WHEP session was ended by the server: {}",
        r.text
    );

    // Every live view ends at its maximum duration (8 s here), rights or not.
    let r = admin
        .patch(
            &format!("/api/v1/users/{watcher_id}"),
            json!({"region_codes": ["360700"]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let mut ws = playing(
        &server,
        cam,
        &cookie(&server, "watcher", "watcher-password-1").await,
    )
    .await;
    let took = ended_within(&mut ws, Duration::from_secs(15)).await;
    let took = took.expect("the view ended at its maximum duration");
    assert!(
        took >= Duration::from_secs(4),
        "not before its time: {took:?}"
    );
}

#[tokio::test]
async fn logins_cannot_be_raced_and_names_cannot_pose_as_others() {
    let server = Server::start_with(
        "[auth]\nlogin_max_failures = 3\nlockout_minutes = 0\nlogin_address_max_failures = 1000\n",
    );
    let admin = server.admin().await;
    let r = admin
        .post(
            "/api/v1/users",
            json!({"username": "clerk", "password": "clerk-password-1", "role": "supervisor",
                   "region_codes": ["360700"]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    // Sixteen guesses at once get no more tries than three one after another.
    let tries = (0..16).map(|i| {
        let url = server.url("/api/v1/session");
        async move {
            reqwest::Client::new()
                .post(url)
                .json(&json!({"username": "clerk", "password": format!("guess-{i}")}))
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        }
    });
    let statuses = futures::future::join_all(tries).await;
    let checked = statuses.iter().filter(|s| **s == 401).count();
    assert!(checked <= 3, "{checked} passwords checked: {statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 16 - checked);

    // A user's name never reads as a token or a linked server's user.
    for name in ["token:approval-system", "province/admin", "a\\b"] {
        let r = admin
            .post(
                "/api/v1/users",
                json!({"username": name, "password": "some-password-1", "role": "admin"}),
            )
            .await;
        assert_eq!(r.status, 422, "{name}: {}", r.text);
    }
    // A failed login's name cannot forge an actor or a log line.
    let forged = "token:approval-system\n2026-12-02T00:00:00.000000Z  INFO vigil: forged line";
    let anon = Client::anonymous(&server);
    let r = anon
        .post(
            "/api/v1/session",
            json!({"username": forged, "password": "x"}),
        )
        .await;
    assert_eq!(r.status, 401);
    let rows = admin.get("/api/v1/audit?action=login_failed").await.body;
    let rows = rows.as_array().expect("rows");
    assert!(
        rows.iter().all(|r| r["actor"] != "token:approval-system"
            && !r["actor"].as_str().unwrap_or("").contains('\n')),
        "{rows:?}"
    );
    assert!(
        server
            .log()
            .lines()
            .all(|l| !l.starts_with("2026-12-02T00:00:00.000000Z")),
        "a forged line reached the log"
    );
}

const SEEDED: &str = r#"
[[seed.users]]
username = "demo-sup"
password = "vigil-demo"
role = "supervisor"
region_codes = ["360700"]

[[seed.users]]
username = "demo-inv"
password = "vigil-demo"
role = "investigator"
region_codes = ["360700"]
"#;

#[tokio::test]
async fn seeded_users_stay_deleted_and_keep_their_new_passwords() {
    let mut server = Server::start_with(SEEDED);
    let admin = server.admin().await;
    let users = admin.get("/api/v1/users").await.body;
    let id = |name: &str| {
        users
            .as_array()
            .and_then(|u| u.iter().find(|x| x["username"] == name))
            .and_then(|u| u["id"].as_i64())
            .expect("seeded user")
    };
    assert_eq!(
        admin
            .delete(&format!("/api/v1/users/{}", id("demo-sup")))
            .await
            .status,
        204
    );
    let r = admin
        .patch(
            &format!("/api/v1/users/{}", id("demo-inv")),
            json!({"password": "a-better-password-2"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    server.restart();
    let anon = Client::anonymous(&server);
    let login = |u: &'static str, p: &'static str| {
        let anon = &anon;
        async move {
            anon.post("/api/v1/session", json!({"username": u, "password": p}))
                .await
                .status
        }
    };
    assert_eq!(
        login("demo-sup", "vigil-demo").await,
        401,
        "deleted stays deleted"
    );
    assert_eq!(
        login("demo-inv", "vigil-demo").await,
        401,
        "the demo password is gone"
    );
    assert_eq!(login("demo-inv", "a-better-password-2").await, 200);
}

#[tokio::test]
async fn pages_carry_security_headers_and_the_data_directory_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let sim = Sim::small(1, 25, &[]);
    let server = Server::start();
    for path in ["/", "/app.js", "/api/v1/me", "/healthz"] {
        let r = reqwest::get(server.url(path)).await.expect("get");
        let h = |n: &str| {
            r.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned()
        };
        let csp = h("content-security-policy");
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
            "{path}: {csp}"
        );
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert_eq!(h("x-content-type-options"), "nosniff", "{path}");
        assert!(
            h("strict-transport-security").is_empty(),
            "no HSTS without TLS"
        );
    }
    // Recording makes folders and files; all are the server user's alone.
    let admin = server.admin().await;
    let hall = admin
        .site("章贡区政务服务中心", "service_hall", "360702")
        .await;
    let t0 = now_ms();
    let cam = admin
        .camera(json!({"name": "A12", "site_id": hall, "main_url": sim.url(1)}))
        .await;
    wait_footage(&admin, cam, t0, 2.0).await;
    let mut checked = 0;
    let mut stack = vec![server.data_dir()];
    while let Some(p) = stack.pop() {
        let meta = std::fs::metadata(&p).expect("metadata");
        let mode = meta.permissions().mode() & 0o777;
        assert_eq!(mode & 0o077, 0, "{} is {mode:o}", p.display());
        checked += 1;
        if meta.is_dir() {
            for e in std::fs::read_dir(&p).expect("read_dir").flatten() {
                stack.push(e.path());
            }
        }
    }
    assert!(checked > 8, "{checked} paths");
}

/// One audit row as stored.
#[derive(sqlx::FromRow)]
struct AuditRow {
    id: i64,
    at: i64,
    actor: String,
    role: Option<String>,
    action: String,
    target: Option<String>,
    region_code: Option<String>,
    status: i64,
    client: Option<String>,
    detail: Option<String>,
}

/// The chain hash as a version without the audit key made it: what someone with write access to the
/// database can compute.
fn plain_hash(prev: &str, r: &AuditRow) -> String {
    use sha2::{Digest, Sha256};
    let canonical = json!([
        r.id,
        r.at,
        r.actor,
        r.role,
        r.action,
        r.target,
        r.region_code,
        r.status,
        r.client,
        r.detail
    ]);
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(b"\n");
    h.update(canonical.to_string().as_bytes());
    hex::encode(h.finalize())
}

#[tokio::test]
async fn the_audit_chain_cannot_be_rewritten_without_its_key() {
    let mut server = Server::start();
    let admin = server.admin().await;
    for name in ["一号厅", "二号厅", "三号厅", "四号厅", "五号厅"] {
        admin.site(name, "service_hall", "360702").await;
    }
    server.stop();
    let (ok, out) = server.command(&["audit", "verify"]);
    assert!(ok && out.contains("intact"), "{out}");
    let key = std::fs::read_to_string(server.data_dir().join("keys/audit.key")).expect("key");
    let b64 = key.split_whitespace().nth(1).expect("key field").to_owned();
    if common::test_postgres().is_none() {
        let db = std::fs::read(server.data_dir().join("vigil.db")).expect("db");
        assert!(
            !db.windows(b64.len()).any(|w| w == b64.as_bytes()),
            "the database never holds the audit key"
        );
    }

    // Someone with the database rewrites row 3 and recomputes the chain after it, as they could when
    // the chain was a plain hash.
    let pool = server.db().await;
    let rows: Vec<AuditRow> = sqlx::query_as(
        "SELECT id, at, actor, role, action, target, region_code, status, client, detail
         FROM audit WHERE id >= 3 ORDER BY id",
    )
    .fetch_all(&pool)
    .await
    .expect("rows");
    assert!(rows.len() > 2);
    let mut prev: String = sqlx::query_scalar("SELECT hash FROM audit WHERE id = 2")
        .fetch_one(&pool)
        .await
        .expect("row 2");
    for mut r in rows {
        if r.id == 3 {
            r.actor = "someone-else".into();
        }
        let hash = plain_hash(&prev, &r);
        sqlx::query("UPDATE audit SET actor = $1, prev_hash = $2, hash = $3 WHERE id = $4")
            .bind(&r.actor)
            .bind(&prev)
            .bind(&hash)
            .bind(r.id)
            .execute(&pool)
            .await
            .expect("rewrite");
        prev = hash;
    }
    let (ok, out) = server.command(&["audit", "verify"]);
    assert!(!ok, "a rewritten chain is found: {out}");
    assert!(out.contains("first broken row: 3"), "{out}");
    // Without its key the log is not checked against a new one: removing the key hides nothing.
    let key_path = server.data_dir().join("keys/audit.key");
    std::fs::rename(&key_path, key_path.with_extension("moved")).expect("move key");
    let (ok, out) = server.command(&["audit", "verify"]);
    assert!(!ok && out.contains("missing"), "{out}");
    assert!(!key_path.exists(), "a check makes no key");
}

#[tokio::test]
async fn holds_and_exports_have_limits_and_ends() {
    let server = Server::start_with(
        &format!(
            "{USERS}\n[cases]\nexport_quota = 2\nexport_days = 1\ncard_interval_seconds = 1\n"
        )
        .replace(
            "[cases]\npre_roll_seconds = 20\npost_roll_seconds = 20\n",
            "",
        ),
    );
    let admin = server.admin().await;
    let hall = admin
        .site("章贡区政务服务中心", "service_hall", "360702")
        .await;
    let cam = admin
        .camera(json!({"name": "A12", "site_id": hall, "main_url": "rtsp://127.0.0.1:9/x", "record": false}))
        .await;
    let r = admin
        .post(
            &format!("/api/v1/sites/{hall}/positions"),
            json!({"code": "A12", "kind": "window", "camera_ids": [cam]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let events = json!({"events": [{"event_id": "q1", "case_no": "GZ-LIM-1", "case_type": "approval",
        "kind": "accepted", "at": rfc_ms(now_ms() - 60_000), "site_id": hall, "position": "A12"}]});
    assert_eq!(
        server
            .integrator()
            .post("/api/v1/events", events)
            .await
            .body["accepted"],
        1
    );
    let inv = Client::login(&server, "ganzhou-inv", "ganzhou-password-1").await;

    // A user keeps at most export_quota exports.
    let first = export(&inv, "GZ-LIM-1").await;
    export(&inv, "GZ-LIM-1").await;
    let r = inv.post("/api/v1/cases/GZ-LIM-1/export", json!({})).await;
    assert_eq!(r.status, 429, "{}", r.text);
    assert_eq!(r.body["error"]["code"], "quota_exceeded");

    // Exports expire after export_days (here: made to look two days old); the row stays, the file goes.
    let pool = server.db().await;
    sqlx::query("UPDATE exports SET created_at = created_at - 2 * 86400000")
        .execute(&pool)
        .await
        .expect("age exports");
    let id = first["id"].as_str().expect("id").to_owned();
    let expired = wait_for(Duration::from_secs(10), || async {
        let r = inv.get(&format!("/api/v1/exports/{id}")).await;
        (r.body["state"] == "expired").then_some(r.body)
    })
    .await
    .expect("expired");
    assert!(expired["download_url"].is_null(), "{expired}");
    assert_eq!(
        inv.download(&format!("/api/v1/exports/{id}/download"))
            .await
            .0,
        410
    );
    assert!(!server.data_dir().join(format!("exports/{id}.zip")).exists());
    // ... which frees the quota; an export of a held case does not expire.
    let r = inv
        .post(
            "/api/v1/holds",
            json!({"case_no": "GZ-LIM-1", "reason": "投诉调查"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let kept = export(&inv, "GZ-LIM-1").await;
    sqlx::query("UPDATE exports SET created_at = created_at - 2 * 86400000 WHERE id = $1")
        .bind(kept["id"].as_str())
        .execute(&pool)
        .await
        .expect("age");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let r = inv
        .get(&format!(
            "/api/v1/exports/{}",
            kept["id"].as_str().unwrap_or("")
        ))
        .await;
    assert_eq!(
        r.body["state"], "done",
        "a held case's export stays: {}",
        r.text
    );

    // A hold of a camera covers a bounded range, is listed in its region, and is released by an admin.
    let hold = |days: i64| {
        json!({"camera_id": cam, "start": rfc_ms(now_ms() - days * 86_400_000), "end": rfc_ms(now_ms()),
               "reason": "投诉"})
    };
    assert_eq!(
        inv.post("/api/v1/holds", hold(40)).await.status,
        422,
        "longer than 31 days"
    );
    let r = inv.post("/api/v1/holds", hold(1)).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let hold_id = r.body["id"].as_i64().expect("id");
    let listed = inv
        .get(&format!("/api/v1/holds?camera_id={cam}"))
        .await
        .body;
    assert!(
        listed
            .as_array()
            .is_some_and(|l| l.iter().any(|h| h["id"] == hold_id)),
        "{listed}"
    );
    let nc = Client::login(&server, "nanchang-inv", "nanchang-password-1").await;
    assert_eq!(nc.get("/api/v1/holds").await.body, json!([]));
    assert_eq!(
        inv.delete(&format!("/api/v1/holds/{hold_id}")).await.status,
        403,
        "an admin's decision"
    );
    let ncadm = Client::login(&server, "nanchang-admin", "nanchang-password-1").await;
    assert_eq!(
        ncadm
            .delete(&format!("/api/v1/holds/{hold_id}"))
            .await
            .status,
        404
    );
    let gz = Client::login(&server, "ganzhou-admin", "ganzhou-password-1").await;
    assert_eq!(
        gz.delete(&format!("/api/v1/holds/{hold_id}")).await.status,
        204
    );
    let listed = inv
        .get(&format!("/api/v1/holds?camera_id={cam}"))
        .await
        .body;
    assert!(
        listed
            .as_array()
            .is_some_and(|l| l.iter().all(|h| h["id"] != hold_id)),
        "{listed}"
    );
    let rows = gz.get("/api/v1/audit?action=hold.release").await.body;
    assert!(
        rows.as_array().is_some_and(|r| r
            .iter()
            .any(|x| x["status"] == 204 && x["region_code"] == "360702")),
        "{rows}"
    );
}
