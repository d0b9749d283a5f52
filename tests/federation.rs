//! A province over two cities, each its own server with its own simulator and database, on loopback
//! (docs/federation.md): links made with the cities' credentials, the cities' trees and camera states at
//! the province, region isolation through the links, a city that stops or pauses or revokes its link.

mod common;
use common::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A province viewer of camera `id` by MSE: the socket once its init segment and first fragment came.
async fn watch(server: &Server, id: i64, cookie: &str) -> Ws {
    use futures::{SinkExt, StreamExt};
    let mut ws = common::ws::connect(server, id, cookie).await;
    let start = json!({"type": "mse", "codecs": ["avc1.640029", "avc1.42e01e", "avc1.4d401f"]});
    ws.send(Message::text(start.to_string()))
        .await
        .expect("start MSE");
    let mut binary = 0;
    let end = Instant::now() + Duration::from_secs(15);
    while binary < 2 {
        let left = end.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, ws.next()).await {
            Ok(Some(Ok(Message::Binary(_)))) => binary += 1,
            Ok(Some(Ok(Message::Text(t)))) => assert!(!t.contains("error"), "{t}"),
            Ok(Some(Ok(_))) => {}
            other => panic!("camera {id}: no picture from the city: {other:?}"),
        }
    }
    ws
}

/// Whether the socket is closed by the server within `within`.
async fn closed(ws: &mut Ws, within: Duration) -> bool {
    use futures::StreamExt;
    let end = Instant::now() + within;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, ws.next()).await {
            Err(_) => return false,
            Ok(None | Some(Err(_)) | Some(Ok(Message::Close(_)))) => return true,
            Ok(Some(Ok(_))) => {}
        }
    }
}

/// The headers of a GET of `target` signed with `cred` as the province's `admin`.
fn signed(cred: &vigil::federation::sign::Credential, target: &str) -> [(&'static str, String); 4] {
    let time = chrono::Utc::now().timestamp();
    let sig = vigil::federation::sign::Signed {
        method: "GET",
        target,
        time,
        actor: "admin",
        body: b"",
    }
    .sign(&cred.secret);
    [
        ("vigil-link-grant", cred.grant_id.to_string()),
        ("vigil-link-time", time.to_string()),
        ("vigil-link-actor", "admin".into()),
        ("vigil-link-signature", sig),
    ]
}

async fn audit_count(c: &Client, action: &str, actor: &str) -> usize {
    let r = c.get(&format!("/api/v1/audit?action={action}")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let rows = r.body["rows"]
        .as_array()
        .or(r.body.as_array())
        .cloned()
        .unwrap_or_default();
    rows.iter().filter(|x| x["actor"] == actor).count()
}

const PROVINCE: &str = r#"
[federation]
poll_interval_s = 1
feed_wait_s = 3
timeout_s = 2
search_deadline_ms = 1500

[[seed.users]]
username = "inv-nc"
password = "investigator-pw-2"
role = "investigator"
region_codes = ["360100"]
"#;

/// The case numbers a case search at the province finds, with the city named on each, and the cities
/// listed as unreachable.
async fn search(c: &Client, q: &str) -> (Vec<(String, String)>, Vec<Value>) {
    let r = c.get(&format!("/api/v1/cases?q={q}")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let mut found: Vec<(String, String)> = r.body["cases"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|c| {
            let link = c["link"].as_str().unwrap_or("").to_owned();
            (c["case_no"].as_str().unwrap_or("").to_owned(), link)
        })
        .collect();
    found.sort();
    (
        found,
        r.body["unreachable"]
            .as_array()
            .cloned()
            .unwrap_or_default(),
    )
}

struct City {
    server: Server,
    admin: Client,
    camera: i64,
    site: i64,
}

/// A city server with one camera in `region` (a site of it) and, for Ganzhou, one in a region it does
/// not share (Ganzhou's shared camera records).
async fn city(sim: &Sim, n: u32, region: &str, site: &str, unshared: Option<&str>) -> City {
    let server = Server::start();
    let admin = server.admin().await;
    let s = admin.site(site, "service_hall", region).await;
    let camera = admin
        .camera(json!({"name": format!("{site}窗口1"), "site_id": s, "main_url": sim.url(n), "record": unshared.is_some()}))
        .await;
    if let Some(other) = unshared {
        let s2 = admin.site("不共享的大厅", "service_hall", other).await;
        admin
            .camera(json!({"name": "不共享窗口", "site_id": s2, "main_url": sim.url(n), "record": false}))
            .await;
    }
    // A case at the camera's window, an hour ago.
    let r = admin
        .post(
            &format!("/api/v1/sites/{s}/positions"),
            json!({"code": "A1", "kind": "window", "camera_ids": [camera]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let case_no = format!("{}-2026-0001", if unshared.is_some() { "GZ" } else { "NC" });
    let at = chrono::Utc::now() - chrono::Duration::hours(1);
    let event = json!({"event_id": format!("{case_no}-e1"), "case_no": case_no, "case_type": "approval",
        "kind": "accepted", "at": at.to_rfc3339(), "site_id": s, "position": "A1"});
    let r = admin
        .post("/api/v1/events", json!({"events": [event]}))
        .await;
    assert_eq!(r.body["accepted"], 1, "{}", r.text);
    admin
        .wait_state(camera, "online", Duration::from_secs(15))
        .await
        .expect("city camera online");
    City {
        server,
        admin,
        camera,
        site: s,
    }
}

async fn credential(c: &Client, name: &str, regions: &[&str]) -> (i64, String) {
    let r = c
        .post(
            "/api/v1/link-credentials",
            json!({"name": name, "region_codes": regions}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    (
        r.body["id"].as_i64().expect("id"),
        r.body["credential"]
            .as_str()
            .expect("credential")
            .to_owned(),
    )
}

async fn links(c: &Client) -> Vec<Value> {
    let r = c.get("/api/v1/links").await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["links"].as_array().cloned().unwrap_or_default()
}

async fn link_state(c: &Client, name: &str) -> Value {
    links(c)
        .await
        .into_iter()
        .find(|l| l["name"] == name)
        .unwrap_or_else(|| panic!("link {name}"))
}

async fn wait_link(c: &Client, name: &str, state: &str) -> Value {
    wait_for(Duration::from_secs(15), || async {
        let l = link_state(c, name).await;
        (l["state"] == state).then_some(l)
    })
    .await
    .unwrap_or_else(|| panic!("link {name} {state}"))
}

async fn remote_cameras(c: &Client) -> Vec<Value> {
    let r = c.get("/api/v1/cameras").await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c["link"].is_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_province_links_two_cities_and_sees_only_what_each_shares() {
    let sim = Sim::small(2, 25, &[]);
    let ganzhou = city(&sim, 1, "360702", "章贡区政务服务中心", Some("360100")).await;
    let mut nanchang = city(&sim, 2, "360100", "南昌市政务服务中心", None).await;
    let province = Server::start_with(&format!("{PROVINCE}\n{CITY_SUPERVISORS}"));
    let admin = province.admin().await;

    // Each city issues a credential for what it shares; the province links them.
    let (gz_grant, gz_cred) = credential(&ganzhou.admin, "江西省", &["360700"]).await;
    let (_, nc_cred) = credential(&nanchang.admin, "江西省", &["360100"]).await;
    assert!(gz_cred.starts_with("vgl1."));
    let listed = ganzhou.admin.get("/api/v1/link-credentials").await;
    assert!(
        !listed.text.contains(&gz_cred[gz_cred.len() - 20..]),
        "secret shown again: {}",
        listed.text
    );
    // A wrong secret, or garbage, is refused before anything is stored.
    let forged = format!("{}0000", &gz_cred[..gz_cred.len() - 4]);
    for bad in [forged.as_str(), "not-a-credential"] {
        let r = admin
            .post(
                "/api/v1/links",
                json!({"name": "赣州", "url": ganzhou.server.url(""), "credential": bad}),
            )
            .await;
        assert_eq!(r.status, 422, "{}", r.text);
    }
    for (name, city, cred) in [("赣州", &ganzhou, &gz_cred), ("南昌", &nanchang, &nc_cred)] {
        let r = admin
            .post(
                "/api/v1/links",
                json!({"name": name, "url": city.server.url(""), "credential": cred}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(r.body["cameras"], 1, "{}", r.text);
    }
    let gz = wait_link(&admin, "赣州", "up").await;
    assert!(gz["last_contact"].is_string(), "{gz}");
    wait_link(&admin, "南昌", "up").await;

    // The province lists each city's shared camera with its link and state; never the region Ganzhou
    // did not share, never a camera's address.
    let cams = wait_for(Duration::from_secs(10), || async {
        let c = remote_cameras(&admin).await;
        (c.len() == 2 && c.iter().all(|x| x["state"] == "online")).then_some(c)
    })
    .await
    .unwrap_or_else(|| panic!("two remote cameras online"));
    let names: Vec<_> = cams
        .iter()
        .map(|c| (c["link"].clone(), c["name"].clone()))
        .collect();
    assert!(
        names.contains(&(json!("赣州"), json!("章贡区政务服务中心窗口1"))),
        "{names:?}"
    );
    assert!(
        names.contains(&(json!("南昌"), json!("南昌市政务服务中心窗口1"))),
        "{names:?}"
    );
    let text = admin.get("/api/v1/cameras").await.text;
    assert!(
        !text.contains("不共享") && !text.contains("rtsp://"),
        "{text}"
    );
    assert!(cams
        .iter()
        .all(|c| c["id"].as_i64().is_some_and(|id| id < 0)));
    // The shared regions joined the province's tree; the sites are listed with their link.
    let sites = admin.get("/api/v1/sites").await;
    assert!(
        sites.text.contains("章贡区政务服务中心") && !sites.text.contains("不共享"),
        "{}",
        sites.text
    );

    changes_reach_the_province(&admin, &ganzhou).await;

    // A province supervisor of one city sees that city's camera only.
    for (user, pass, city) in [
        ("sup-ganzhou", "supervisor-pass-1", "赣州"),
        ("sup-nanchang", "supervisor-pass-2", "南昌"),
    ] {
        let c = Client::login(&province, user, pass).await;
        let seen = remote_cameras(&c).await;
        assert_eq!(seen.len(), 1, "{user}: {seen:?}");
        assert_eq!(seen[0]["link"], city, "{user}");
        // Links are managed by admins.
        assert_eq!(c.get("/api/v1/links").await.status, 403);
    }

    // Unsigned or forged calls to a city's link route get nothing.
    let http = reqwest::Client::new();
    let unsigned = http
        .get(ganzhou.server.url("/api/v1/link/tree"))
        .send()
        .await
        .expect("get");
    assert_eq!(unsigned.status(), 401);
    let forged = http
        .get(ganzhou.server.url("/api/v1/link/tree"))
        .header("vigil-link-grant", gz_grant.to_string())
        .header(
            "vigil-link-time",
            chrono::Utc::now().timestamp().to_string(),
        )
        .header("vigil-link-signature", "00".repeat(32))
        .send()
        .await
        .expect("get");
    assert_eq!(forged.status(), 401);

    // Ten province viewers of Ganzhou's camera: every one gets the picture, over one stream from the city,
    // which audits it as the province's user.
    let gz_cam = cams
        .iter()
        .find(|c| c["link"] == "赣州")
        .expect("Ganzhou camera")["id"]
        .as_i64()
        .expect("id");
    let cookie = common::ws::cookie(&province, "admin", "admin-password-1").await;
    let mut viewers = Vec::new();
    for _ in 0..10 {
        viewers.push(watch(&province, gz_cam, &cookie).await);
    }
    assert_eq!(
        audit_count(&ganzhou.admin, "link.stream.start", "江西省/admin").await,
        1
    );
    // ... and names every one of the ten views.
    let named = wait_for(Duration::from_secs(5), || async {
        (audit_count(&ganzhou.admin, "live.start", "江西省/admin").await == 10).then_some(())
    })
    .await;
    assert!(named.is_some(), "the city audits each province view");
    assert!(audit_count(&admin, "live.start", "admin").await >= 10);
    // A supervisor of Nanchang at the province cannot open Ganzhou's camera.
    let nc_cookie = common::ws::cookie(&province, "sup-nanchang", "supervisor-pass-2").await;
    let refused = tokio_tungstenite::connect_async(common::ws::request(
        &province,
        gz_cam,
        &nc_cookie,
        Some(&format!("http://{}", province.addr)),
    ))
    .await;
    assert!(
        refused.is_err(),
        "a Nanchang supervisor opened Ganzhou's camera"
    );

    // Playback of Ganzhou's footage from the province: spans and the MP4 through the link, with Range.
    let span = recorded_span(&admin, gz_cam, 3.0).await;
    let (duration, frames) = probe_footage(&province, &admin, gz_cam, span, "gz.mp4").await;
    assert!(
        duration >= 2.9 && frames >= 70,
        "{duration} s, {frames} frames"
    );
    let video = format!(
        "/api/v1/cameras/{gz_cam}/video.mp4?start={}&end={}",
        rfc_us(span.0),
        rfc_us(span.1)
    );
    let part = reqwest::Client::new()
        .get(province.url(&video))
        .header(
            "cookie",
            format!(
                "vigil_session={}",
                cookie.trim_start_matches("vigil_session=")
            ),
        )
        .header("range", "bytes=0-99")
        .send()
        .await
        .expect("range");
    assert_eq!(part.status(), 206);
    assert!(part.headers()["content-range"]
        .to_str()
        .unwrap_or("")
        .starts_with("bytes 0-99/"));
    assert_eq!(part.bytes().await.expect("body").len(), 100);
    assert!(audit_count(&ganzhou.admin, "playback", "江西省/admin").await >= 1);
    // Its timeline pictures too, named by the province's id.
    let strip = admin
        .get(&format!(
            "/api/v1/cameras/{gz_cam}/thumbnails?start={}&end={}&every=1",
            rfc_us(span.0),
            rfc_us(span.1)
        ))
        .await;
    assert_eq!(strip.status, 200, "{}", strip.text);
    let url = strip.body["thumbnails"][0]["url"]
        .as_str()
        .expect("a picture")
        .to_owned();
    assert!(
        url.starts_with(&format!("/api/v1/cameras/{gz_cam}/")),
        "{url}"
    );
    let (code, jpeg, ct) = admin.download(&url).await;
    assert_eq!((code, ct.as_str()), (200, "image/jpeg"));
    assert!(jpeg.starts_with(&[0xff, 0xd8]));
    // Signed with Ganzhou's own credential, a call for the camera it did not share gets nothing.
    let unshared = ganzhou
        .admin
        .get("/api/v1/cameras")
        .await
        .body
        .as_array()
        .cloned()
        .unwrap_or_default();
    let unshared = unshared
        .iter()
        .find(|c| c["name"] == "不共享窗口")
        .expect("unshared camera")["id"]
        .as_i64()
        .expect("id");
    let cred = vigil::federation::sign::Credential::parse(&gz_cred).expect("credential");
    let range = "start=2026-01-01T00:00:00Z&end=2026-01-02T00:00:00Z";
    for what in ["recordings", "video.mp4", "thumbnails"] {
        let target = format!("/api/v1/link/cameras/{unshared}/{what}?{range}");
        let mut req = reqwest::Client::new().get(ganzhou.server.url(&target));
        for (k, v) in signed(&cred, &target) {
            req = req.header(k, v);
        }
        assert_eq!(req.send().await.expect("get").status(), 404, "{what}");
    }
    // And its live stream: the WebSocket upgrade is refused with 404.
    let target = format!("/api/v1/link/cameras/{unshared}/stream?kind=main");
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        format!("ws://{}{target}", ganzhou.server.addr),
    )
    .expect("request");
    for (k, v) in signed(&cred, &target) {
        req.headers_mut().insert(k, v.parse().expect("header"));
    }
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 404),
        other => panic!(
            "an unshared camera's stream: {:?}",
            other.map(|(_, r)| r.status())
        ),
    }
    let nc_sup = Client::login(&province, "sup-nanchang", "supervisor-pass-2").await;
    let r = nc_sup
        .get(&format!(
            "/api/v1/cameras/{gz_cam}/recordings?start={}&end={}",
            rfc_us(span.0),
            rfc_us(span.1)
        ))
        .await;
    assert_eq!(r.status, 404, "{}", r.text);

    // A case search at the province fans out to both cities; an investigator of Nanchang finds its own.
    let (found, unreachable) = search(&admin, "").await;
    assert_eq!(
        found,
        vec![
            ("GZ-2026-0001".into(), "赣州".into()),
            ("NC-2026-0001".into(), "南昌".into())
        ],
        "{unreachable:?}"
    );
    assert!(unreachable.is_empty());
    let inv = Client::login(&province, "inv-nc", "investigator-pw-2").await;
    assert_eq!(
        search(&inv, "").await.0,
        vec![("NC-2026-0001".into(), "南昌".into())]
    );

    // Nanchang stops: the province says so within seconds, with the last contact, and answers at once.
    nanchang.server.stop();
    let t = Instant::now();
    let (found, unreachable) = search(&admin, "").await;
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "the search waited {:?}",
        t.elapsed()
    );
    assert_eq!(found, vec![("GZ-2026-0001".into(), "赣州".into())]);
    assert_eq!(unreachable, vec![json!("南昌")]);
    let down = wait_link(&admin, "南昌", "down").await;
    assert!(
        down["last_contact"].is_string() && down["error"].is_string(),
        "{down}"
    );
    let t = Instant::now();
    let cams = remote_cameras(&admin).await;
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "the province waited on a stopped city"
    );
    let nc = cams
        .iter()
        .find(|c| c["link"] == "南昌")
        .expect("Nanchang's camera still listed");
    assert_eq!(nc["state"], "unreachable");
    assert_eq!(link_state(&admin, "赣州").await["state"], "up");
    nanchang.server.restart();
    wait_link(&admin, "南昌", "up").await;

    export_a_city_case(&province, &admin, &ganzhou, gz_cam, span).await;

    // Ganzhou pauses its credential: the live views end within seconds; it resumes, then revokes it.
    let path = format!("/api/v1/link-credentials/{gz_grant}");
    let paused_at = Instant::now();
    let r = ganzhou.admin.patch(&path, json!({"paused": true})).await;
    assert_eq!(r.status, 204);
    for v in &mut viewers {
        assert!(
            closed(v, Duration::from_secs(10)).await,
            "a live view outlived the pause"
        );
    }
    assert!(paused_at.elapsed() < Duration::from_secs(10));
    let stopped = wait_for(Duration::from_secs(5), || async {
        (audit_count(&ganzhou.admin, "link.stream.stop", "江西省/admin").await == 1).then_some(())
    })
    .await;
    assert!(
        stopped.is_some(),
        "the city audits the end of the province's view"
    );
    wait_link(&admin, "赣州", "down").await;
    assert_eq!(
        ganzhou
            .admin
            .patch(&path, json!({"paused": false}))
            .await
            .status,
        204
    );
    wait_link(&admin, "赣州", "up").await;
    assert_eq!(ganzhou.admin.delete(&path).await.status, 204);
    let revoked = wait_link(&admin, "赣州", "down").await;
    assert!(
        revoked["error"].as_str().unwrap_or("").contains("refused"),
        "{revoked}"
    );

    // The province removes the link: its cameras go.
    let id = revoked["id"].as_i64().expect("id");
    assert_eq!(
        admin.delete(&format!("/api/v1/links/{id}")).await.status,
        204
    );
    let left = remote_cameras(&admin).await;
    assert!(left.iter().all(|c| c["link"] == "南昌"), "{left:?}");
    let _ = ganzhou.camera;
}

/// The change feed: a camera added at Ganzhou, in the region it shares, whose source does not answer,
/// shows at the province within seconds with its state, raises an offline alarm the province lists, and
/// the province's health lists the city's site with its rates. Then it is removed, and goes.
async fn changes_reach_the_province(admin: &Client, ganzhou: &City) {
    let broken = ganzhou
        .admin
        .camera(json!({"name": "断线窗口", "site_id": ganzhou.site, "main_url": "rtsp://127.0.0.1:9/none", "record": false}))
        .await;
    let seen = wait_for(Duration::from_secs(8), || async {
        let cams = remote_cameras(admin).await;
        let c = cams.into_iter().find(|c| c["name"] == "断线窗口")?;
        (c["state"] != "online" && c["state"] != "connecting").then_some(c)
    })
    .await;
    assert!(
        seen.is_some(),
        "the new city camera and its state did not reach the province"
    );
    let alarm = wait_for(Duration::from_secs(8), || async {
        let r = admin.get("/api/v1/alarms?state=active").await;
        assert_eq!(r.status, 200, "{}", r.text);
        let list = r.body.as_array().cloned().unwrap_or_default();
        list.into_iter()
            .find(|a| a["link"] == "赣州" && a["kind"] == "camera_offline")
    })
    .await
    .expect("the city's offline alarm at the province");
    assert!(
        alarm["camera_ids"][0].as_i64().is_some_and(|id| id < 0),
        "{alarm}"
    );
    let health = admin.get("/api/v1/health").await;
    assert_eq!(health.status, 200, "{}", health.text);
    let site = health.body["sites"]
        .as_array()
        .and_then(|l| l.iter().find(|x| x["link"] == "赣州").cloned())
        .expect("the city's site in the province's health");
    assert_eq!(site["cameras"], 2, "{site}");
    assert!(site["completeness"].is_number(), "{site}");
    assert!(!health.text.contains("不共享"), "{}", health.text);
    let r = ganzhou
        .admin
        .delete(&format!("/api/v1/cameras/{broken}"))
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let gone = wait_for(Duration::from_secs(8), || async {
        let cams = remote_cameras(admin).await;
        (!cams.iter().any(|c| c["name"] == "断线窗口")).then_some(())
    })
    .await;
    assert!(
        gone.is_some(),
        "a camera removed at the city stayed at the province"
    );
}

/// Step `name` of a browser script's output.
fn step(out: &str, name: &str) -> Value {
    out.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["step"] == name)
        .unwrap_or_else(|| panic!("no {name} step: {out}"))
}

/// Ganzhou's admin issues the province's credential in its console (shown once); the province's admin
/// links Ganzhou with it in the province's console, and sees the link up with Ganzhou's one shared camera.
fn link_in_the_consoles(province: &Server, ganzhou: &City) {
    let issued = browser::run_script(
        "links.mjs",
        &ganzhou.server,
        &[
            ("VIGIL_PHASE", "issue".into()),
            ("VIGIL_PASSWORD", ADMIN_PASSWORD.into()),
            ("VIGIL_NAME", "江西省".into()),
            ("VIGIL_REGION", "360700".into()),
        ],
    );
    let issued = step(&issued, "issued");
    let credential = issued["credential"].as_str().unwrap_or_default();
    assert!(credential.starts_with("vgl1."), "{issued}");
    assert_eq!(issued["title"], "联网凭证已签发：请立即复制", "{issued}");
    let linked = browser::run_script(
        "links.mjs",
        province,
        &[
            ("VIGIL_PHASE", "link".into()),
            ("VIGIL_PASSWORD", ADMIN_PASSWORD.into()),
            ("VIGIL_NAME", "赣州".into()),
            ("VIGIL_LINK_URL", ganzhou.server.url("")),
            ("VIGIL_CREDENTIAL", credential.into()),
        ],
    );
    let cells = step(&linked, "linked")["cells"].clone();
    assert_eq!(cells[1], "正常", "{cells}");
    assert_eq!(cells[4], "1", "{cells}");
}

/// Reads one entry of a zip whole.
fn zip_entry(path: &std::path::Path, name: &str) -> Vec<u8> {
    use std::io::Read;
    let mut z = zip::ZipArchive::new(std::fs::File::open(path).expect("open")).expect("zip");
    let mut out = Vec::new();
    z.by_name(name)
        .expect(name)
        .read_to_end(&mut out)
        .expect("read");
    out
}

async fn signing_key(c: &Client) -> String {
    let r = c.get("/api/v1/signing-key").await;
    r.body["public_key"].as_str().expect("key").to_owned()
}

/// `vigil verify` of a package with the expected keys: (passed, output).
fn verify(pkg: &std::path::Path, key: &str, countersign_key: &str) -> (bool, String) {
    let out = std::process::Command::new(BIN)
        .arg("verify")
        .arg(pkg)
        .args(["--key", key, "--countersign-key", countersign_key])
        .output()
        .expect("vigil verify");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.success(), text)
}

/// The province exports a Ganzhou case whose clip holds the recorded `span`: the city makes and signs the
/// package for `江西省/admin`, the province countersigns it; `vigil verify` checks both keys; a province
/// investigator of Nanchang cannot export it.
async fn export_a_city_case(
    province: &Server,
    admin: &Client,
    ganzhou: &City,
    gz_cam: i64,
    span: (i64, i64),
) {
    let ev = |id: &str, kind: &str, at: i64| {
        json!({"event_id": id, "case_no": "GZ-2026-0002", "case_type": "approval", "kind": kind,
               "at": rfc_us(at), "site_id": ganzhou.site, "position": "A1"})
    };
    let events =
        json!({"events": [ev("gz2-1", "accepted", span.0), ev("gz2-2", "completed", span.1)]});
    let r = ganzhou.admin.post("/api/v1/events", events).await;
    assert_eq!(r.body["accepted"], 2, "{}", r.text);
    let inv = Client::login(province, "inv-nc", "investigator-pw-2").await;
    // The case's page at the province: the city's case with the province's camera id, playable here.
    let case = admin.get("/api/v1/cases/GZ-2026-0002?link=赣州").await;
    assert_eq!(case.status, 200, "{}", case.text);
    assert_eq!(case.body["link"], "赣州");
    let clip = &case.body["clips"][0];
    assert_eq!(clip["camera_id"], gz_cam, "{clip}");
    let video = clip["video_url"].as_str().expect("video url");
    assert!(
        video.starts_with(&format!("/api/v1/cameras/{gz_cam}/video.mp4?")),
        "{video}"
    );
    let (st, mp4, ct) = admin.download(video).await;
    assert_eq!((st, ct.as_str()), (200, "video/mp4"));
    assert!(mp4.len() > 10_000);
    let pic = clip["thumbnail_url"].as_str().expect("picture url");
    assert_eq!(admin.download(pic).await.0, 200, "{pic}");
    assert_eq!(
        inv.get("/api/v1/cases/GZ-2026-0002?link=赣州").await.status,
        404
    );
    let refused = inv
        .post("/api/v1/cases/GZ-2026-0002/export?link=赣州", json!({}))
        .await;
    assert_eq!(refused.status, 404, "{}", refused.text);
    let r = admin
        .post("/api/v1/cases/GZ-2026-0002/export?link=赣州", json!({}))
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let id = r.body["export_id"].as_str().expect("export id").to_owned();
    let done = wait_for(Duration::from_secs(60), || async {
        let r = admin.get(&format!("/api/v1/exports/{id}")).await;
        assert_ne!(r.body["state"], "failed", "{}", r.text);
        (r.body["state"] == "done").then_some(r.body)
    })
    .await
    .expect("export done");
    assert_eq!(inv.get(&format!("/api/v1/exports/{id}")).await.status, 404);
    let (st, bytes, _) = admin
        .download(done["download_url"].as_str().expect("url"))
        .await;
    assert_eq!(st, 200);
    let dir = tempfile::tempdir().expect("dir");
    let pkg = dir.path().join("gz.zip");
    std::fs::write(&pkg, &bytes).expect("write");
    let (city_key, province_key) = (signing_key(&ganzhou.admin).await, signing_key(admin).await);
    let (ok, out) = verify(&pkg, &city_key, &province_key);
    assert!(
        ok && out.contains("countersigned by") && out.contains("赣州"),
        "{out}"
    );
    // The keys the other way round: both refused.
    let (ok, out) = verify(&pkg, &province_key, &city_key);
    assert!(
        !ok && out.contains("manifest.sig") && out.contains("countersign.sig"),
        "{out}"
    );
    let m: Value = serde_json::from_slice(&zip_entry(&pkg, "manifest.json")).expect("manifest");
    assert_eq!(m["exported_by"], "江西省/admin");
    let clip = &m["clips"][0];
    let mp4 = dir.path().join("clip.mp4");
    std::fs::write(
        &mp4,
        zip_entry(&pkg, clip["file"].as_str().expect("a clip file")),
    )
    .expect("write");
    let (duration, _, frames) = ffprobe(&mp4);
    assert!(
        duration >= 2.5 && frames >= 60,
        "{duration} s, {frames} frames"
    );
    let c: Value =
        serde_json::from_slice(&zip_entry(&pkg, "countersign.json")).expect("countersign");
    assert_eq!(
        (c["holder"].as_str(), c["exported_by"].as_str()),
        (Some("赣州"), Some("admin"))
    );
    // The city audits the export and its download under the province's user, with the case's region.
    for action in ["export.create", "export.download"] {
        assert_eq!(
            audit_count(&ganzhou.admin, action, "江西省/admin").await,
            1,
            "{action}"
        );
    }
}

/// The province console's wall, in zh-CN, plays tiles from both cities (relayed through the links).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_province_wall_plays_both_cities() {
    if !browser::browser_available() {
        return;
    }
    let sim = Sim::small(2, 25, &[]);
    let ganzhou = city(&sim, 1, "360702", "章贡区政务服务中心", Some("360100")).await;
    let nanchang = city(&sim, 2, "360100", "南昌市政务服务中心", None).await;
    let province = Server::start_with(PROVINCE);
    let admin = province.admin().await;
    // Nanchang is linked through the API; Ganzhou through both consoles' 联网 tab.
    let (_, cred) = credential(&nanchang.admin, "江西省", &["360100"]).await;
    let r = admin
        .post(
            "/api/v1/links",
            json!({"name": "南昌", "url": nanchang.server.url(""), "credential": cred}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    link_in_the_consoles(&province, &ganzhou);
    let ids: Vec<i64> = wait_for(Duration::from_secs(15), || async {
        let c = remote_cameras(&admin).await;
        (c.len() == 2 && c.iter().all(|x| x["state"] == "online"))
            .then(|| c.iter().filter_map(|x| x["id"].as_i64()).collect())
    })
    .await
    .expect("both cities' cameras online at the province");
    let out = browser::run_script(
        "wall.mjs",
        &province,
        &[
            ("VIGIL_PHASE", "province".into()),
            ("VIGIL_USER", "admin".into()),
            ("VIGIL_PASSWORD", "admin-password-1".into()),
            ("VIGIL_CAMERAS", json!(ids).to_string()),
            ("VIGIL_CITY_CASE", "GZ-2026-0001".into()),
        ],
    );
    let step: Value = out
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["step"] == "province")
        .unwrap_or_else(|| panic!("no province step: {out}"));
    assert_eq!(step["on_wall"], 2, "{step}");
    assert_eq!(step["in_tree"], 2, "{step}");
    assert!(step["playing"].as_u64().unwrap_or(0) >= 2, "{step}");
    assert_eq!(step["lang"], "zh-CN", "{step}");
    assert_eq!(step["zh"], true, "{step}");
    let names = step["names"].to_string();
    assert!(
        names.contains("章贡区政务服务中心窗口1") && names.contains("南昌市政务服务中心窗口1"),
        "{step}"
    );
    // A city's case from the province's case search: named, opened and exported through its link.
    let case = out
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["step"] == "province_case")
        .unwrap_or_else(|| panic!("no province_case step: {out}"));
    assert_eq!(
        (
            &case["listed"],
            &case["shown"],
            &case["hold"],
            &case["export"]
        ),
        (
            &json!("赣州"),
            &json!("赣州"),
            &json!(false),
            &json!("done")
        ),
        "{case}"
    );
}
