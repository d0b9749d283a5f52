//! The API's promises that need no camera stream: authentication, validation without partial writes,
//! write-only passwords, and a server that survives cameras that lie or send garbage.

mod common;
use common::*;
use serde_json::json;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn every_route_requires_a_session() {
    let server = Server::start();
    let anon = Client::anonymous(&server);
    let admin = server.admin().await;
    // The route table is the server's own: take it from its OpenAPI document.
    let doc = admin.get("/api/v1/openapi.json").await.body;
    let paths = doc["paths"].as_object().expect("paths");
    assert!(paths.len() >= 10, "{doc}");
    let mut checked = 0;
    for (path, methods) in paths {
        for method in methods.as_object().expect("methods").keys() {
            if path == "/api/v1/session" && method == "post" {
                continue; // the login itself
            }
            let concrete = path.replace("{id}", "1");
            let r = anon
                .call(&method.to_uppercase(), &concrete, Some(json!({})))
                .await;
            assert_eq!(
                r.status, 401,
                "{method} {path} without a session: {}",
                r.text
            );
            assert_eq!(r.body["error"]["code"], "unauthorized");
            checked += 1;
        }
    }
    assert!(checked >= 19, "checked {checked} routes");
    assert_eq!(anon.get("/metrics").await.status, 401);
    // A forged cookie or token is no better than none.
    let forged = reqwest::Client::new()
        .get(server.url("/api/v1/cameras"))
        .header("Cookie", "vigil_session=forged")
        .bearer_auth("vgl_forged")
        .send()
        .await
        .expect("request");
    assert_eq!(forged.status(), 401);
    // Health is public.
    assert_eq!(anon.get("/healthz").await.status, 200);
}

#[tokio::test]
async fn login_logout_and_csrf() {
    let server = Server::start();
    let anon = Client::anonymous(&server);
    let r = anon
        .post(
            "/api/v1/session",
            json!({"username": "admin", "password": "wrong"}),
        )
        .await;
    assert_eq!(r.status, 401);
    let r = anon
        .post(
            "/api/v1/session",
            json!({"username": "nobody", "password": "wrong"}),
        )
        .await;
    assert_eq!(r.status, 401);

    let mut c = server.admin().await;
    let token = c.csrf.take();
    // A change with the cookie but without the CSRF token is refused, and writes nothing.
    let r = c
        .post(
            "/api/v1/sites",
            json!({"name": "x", "kind": "service_hall", "region_code": "360702"}),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    c.csrf = token;
    assert_eq!(c.get("/api/v1/sites").await.body, json!([]));
    assert_eq!(c.delete("/api/v1/session").await.status, 204);
    assert_eq!(c.get("/api/v1/sites").await.status, 401);
}

#[tokio::test]
async fn bad_input_gets_a_clear_4xx_and_writes_nothing() {
    let server = Server::start();
    let c = server.admin().await;
    let site = c.site("章贡区政务服务中心", "service_hall", "360702").await;
    let ok = json!({"name": "A区", "site_id": site, "main_url": "rtsp://127.0.0.1:9/cam1"});
    c.camera(ok.clone()).await;

    let r = c
        .raw(
            "POST",
            "/api/v1/cameras",
            "application/json",
            "{\"name\": \"x\", ",
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("malformed JSON"),
        "{}",
        r.text
    );

    let cases = [
        (
            json!({"name": "B", "site_id": 999, "main_url": "rtsp://h/x"}),
            422,
            "site_id",
        ),
        (
            json!({"name": "B", "site_id": site, "main_url": "http://h/x"}),
            422,
            "rtsp://",
        ),
        (
            json!({"name": "B", "site_id": site, "main_url": "not a url"}),
            422,
            "main_url",
        ),
        (
            json!({"name": "", "site_id": site, "main_url": "rtsp://h/x"}),
            422,
            "name",
        ),
        (
            json!({"name": "B", "site_id": site, "main_url": "rtsp://h/x", "transport": "carrier-pigeon"}),
            422,
            "transport",
        ),
        (
            json!({"name": "B", "site_id": "one", "main_url": "rtsp://h/x"}),
            422,
            "site_id",
        ),
        (
            json!({"name": "B", "site_id": site, "main_url": "rtsp://h/x", "colour": "red"}),
            422,
            "colour",
        ),
        (
            json!({"name": "A区", "site_id": site, "main_url": "rtsp://h/x"}),
            409,
            "already exists",
        ),
    ];
    for (body, status, words) in cases {
        let r = c.post("/api/v1/cameras", body.clone()).await;
        assert_eq!(r.status, status, "{body}: {}", r.text);
        let msg = r.body["error"]["message"].as_str().unwrap_or("");
        assert!(
            msg.contains(words),
            "{body}: message {msg:?} should name {words:?}"
        );
    }
    assert_eq!(
        c.get("/api/v1/cameras").await.body.as_array().map(Vec::len),
        Some(1),
        "nothing half-written"
    );

    // Sites, regions, positions, NVRs: the same discipline.
    for (path, body, status) in [
        (
            "/api/v1/sites",
            json!({"name": "x", "kind": "market", "region_code": "360702"}),
            422,
        ),
        (
            "/api/v1/sites",
            json!({"name": "x", "kind": "service_hall", "region_code": "999999"}),
            422,
        ),
        (
            "/api/v1/sites",
            json!({"name": "章贡区政务服务中心", "kind": "service_hall", "region_code": "360702"}),
            409,
        ),
        (
            "/api/v1/regions",
            json!({"code": "36", "name": "x", "level": "city"}),
            422,
        ),
        (
            "/api/v1/regions",
            json!({"code": "360703", "name": "x", "level": "district", "parent_code": "111111"}),
            422,
        ),
        (
            &format!("/api/v1/sites/{site}/positions"),
            json!({"code": "A1", "kind": "window", "camera_ids": [424242]}),
            422,
        ),
        (
            "/api/v1/nvrs",
            json!({"site_id": site, "vendor": "generic", "host": "h", "channels": 4}),
            422,
        ),
        (
            "/api/v1/nvrs",
            json!({"site_id": site, "vendor": "hikvision", "host": "h", "channels": 0}),
            422,
        ),
        (
            "/api/v1/nvrs",
            json!({"site_id": site, "vendor": "sony", "host": "h", "channels": 2}),
            422,
        ),
    ] {
        let r = c.post(path, body.clone()).await;
        assert_eq!(r.status, status, "{path} {body}: {}", r.text);
        assert!(r.body["error"]["message"].is_string(), "{}", r.text);
    }
    assert_eq!(
        c.get("/api/v1/sites").await.body.as_array().map(Vec::len),
        Some(1)
    );
    assert_eq!(
        c.get(&format!("/api/v1/sites/{site}/positions")).await.body,
        json!([])
    );
    assert_eq!(
        c.get("/api/v1/cameras").await.body.as_array().map(Vec::len),
        Some(1)
    );
    assert_eq!(c.get("/api/v1/cameras/abc").await.status, 400);
    assert_eq!(c.get("/api/v1/cameras/12345").await.status, 404);
    // A site with cameras cannot be deleted from under them.
    assert_eq!(c.delete(&format!("/api/v1/sites/{site}")).await.status, 409);
}

#[tokio::test]
async fn camera_passwords_never_leave_the_server() {
    const SECRET: &str = "Pa55-never-shown";
    let sim = Sim::start(&[
        "--cameras",
        "1",
        "--width",
        "160",
        "--height",
        "120",
        "--username",
        "op",
        "--password",
        SECRET,
    ]);
    let server = Server::start();
    let c = server.admin().await;
    let site = c.site("南昌市行政服务中心", "service_hall", "360100").await;
    let mut seen = String::new();
    // Credentials given inside the URL are moved out of it.
    let url = sim
        .url(1)
        .replace("rtsp://", &format!("rtsp://op:{SECRET}@"));
    let r = c
        .post(
            "/api/v1/cameras",
            json!({"name": "窗口", "site_id": site, "main_url": url}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    seen += &r.text;
    let cam = r.body["id"].as_i64().expect("id");
    assert_eq!(r.body["main_url"], sim.url(1));
    c.wait_state(cam, "online", Duration::from_secs(5))
        .await
        .expect("online with the password from the URL");
    let r = c.post("/api/v1/cameras", json!({"name": "窗口2", "site_id": site, "main_url": sim.url(1), "username": "op", "password": SECRET})).await;
    seen += &r.text;
    let r = c.post("/api/v1/nvrs", json!({"site_id": site, "vendor": "dahua", "host": "10.0.0.9", "channels": 2, "username": "op", "password": SECRET})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    seen += &r.text;
    for path in [
        "/api/v1/cameras",
        &format!("/api/v1/cameras/{cam}"),
        &format!("/api/v1/cameras/{cam}/status"),
        "/api/v1/openapi.json",
    ] {
        seen += &c.get(path).await.text;
    }
    seen += &c
        .patch(&format!("/api/v1/cameras/{cam}"), json!({"record": false}))
        .await
        .text;
    seen += &c.get("/metrics").await.text;
    // A snapshot of the live camera (a look at footage: audited), and the audit log itself.
    let snap = c.get(&format!("/api/v1/cameras/{cam}/snapshot.jpg")).await;
    assert_eq!(snap.status, 200, "snapshot of an online camera");
    let snaps = c.get("/api/v1/audit?action=camera.snapshot").await.body;
    assert_eq!(snaps[0]["status"], 200, "{snaps}");
    assert_eq!(snaps[0]["target"], format!("/cameras/{cam}/snapshot.jpg"));
    seen += &c.get("/api/v1/audit").await.text;
    seen += &c.get("/api/v1/users").await.text;
    assert!(
        !seen.contains(SECRET),
        "a response holds the camera password"
    );
    assert!(
        !server.log().contains(SECRET),
        "the server log holds the camera password"
    );
    assert!(
        !seen.contains("\"password\""),
        "no response has a password field"
    );
}

/// A fake camera on a local port that answers with `reply` to whatever it is sent.
async fn liar(reply: impl Fn(usize) -> Vec<u8> + Send + Sync + 'static) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let reply = std::sync::Arc::new(reply);
    tokio::spawn(async move {
        let mut conn = 0;
        while let Ok((mut sock, _)) = listener.accept().await {
            conn += 1;
            let reply = reply.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut n = 0;
                while let Ok(k) = sock.read(&mut buf).await {
                    if k == 0 {
                        break;
                    }
                    n += 1;
                    let _ = sock.write_all(&reply(n)).await;
                }
                let _ = conn;
            });
        }
    });
    port
}

fn rtsp_reply(cseq: usize, extra_headers: &str, body: &str) -> Vec<u8> {
    format!(
        "RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\n{extra_headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[tokio::test]
async fn cameras_that_lie_or_send_garbage_never_take_the_server_down() {
    let mut server = Server::start();
    let c = server.admin().await;
    let site = c.site("章贡区政务服务中心", "service_hall", "360702").await;

    // 1. Pure garbage instead of RTSP.
    let garbage = liar(|_| (0..2000u32).map(|i| (i * 7919 % 251) as u8).collect()).await;
    // 2. A DESCRIBE that claims H.264 with a broken SPS, then garbage interleaved "RTP".
    let sdp = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=x\r\nt=0 0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n\
               a=fmtp:96 packetization-mode=1;sprop-parameter-sets=Z0IAKeKQ,aM48gA==\r\na=control:trackID=0\r\n";
    let sdp = sdp.to_owned();
    let lying = liar(move |n| match n {
        1 => rtsp_reply(1, "Content-Type: application/sdp\r\n", &sdp),
        2 => rtsp_reply(
            2,
            "Session: 1234\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n",
            "",
        ),
        3 => {
            let mut v = rtsp_reply(3, "Session: 1234\r\n", "");
            // Interleaved frames whose payload is a truncated FU-A and random bytes.
            for i in 0..50u8 {
                v.extend_from_slice(&[
                    b'$', 0, 0, 20, 0x80, 96, 0, i, 0, 0, 0, i, 1, 2, 3, 4, 0x7c, 0x85, i, 0xff,
                    0xee, 0x11, 0x22, 0x33,
                ]);
            }
            v
        }
        _ => Vec::new(),
    })
    .await;
    // 3. A camera that says it sends MJPEG only.
    let mjpeg_sdp = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=x\r\nt=0 0\r\nm=video 0 RTP/AVP 26\r\na=control:trackID=0\r\n".to_owned();
    let mjpeg = liar(move |n| rtsp_reply(n, "Content-Type: application/sdp\r\n", &mjpeg_sdp)).await;

    let mut cams = Vec::new();
    for (name, port) in [("garbage", garbage), ("lying", lying), ("mjpeg", mjpeg)] {
        cams.push(c.camera(json!({"name": name, "site_id": site, "main_url": format!("rtsp://127.0.0.1:{port}/x")})).await);
    }
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(server.alive(), "server died; log:\n{}", server.log());
    assert_eq!(c.get("/healthz").await.status, 200);
    for cam in &cams {
        let st = c.status(*cam).await;
        assert_ne!(st["state"], "online", "{st}");
        assert!(
            st["error"].is_string() || st["state"] == "connecting",
            "{st}"
        );
    }
    let st = c
        .wait_state(cams[2], "unsupported", Duration::from_secs(5))
        .await
        .expect("mjpeg is unsupported");
    assert!(st["error"].as_str().unwrap_or("").contains("codec"), "{st}");
}
