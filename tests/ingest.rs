//! Cameras through the real simulator and the real server: online, wrong password, offline and back,
//! NVR import, snapshot, changes applied at once, a camera that sends audio too.

mod common;
use common::*;
use serde_json::json;
use std::time::Duration;

fn start_sim(cameras: u32, extra: &[&str]) -> Sim {
    Sim::small(cameras, 25, extra)
}

#[tokio::test]
async fn camera_added_is_online_with_the_simulators_fps_then_follows_changes() {
    let sim = start_sim(2, &[]);
    let server = Server::start();
    let c = server.admin().await;
    let site = c.site("章贡区政务服务中心", "service_hall", "360702").await;
    let cam = c
        .camera(json!({"name": "A区窗口", "site_id": site, "main_url": sim.url(1)}))
        .await;

    let st = c
        .wait_state(cam, "online", Duration::from_secs(5))
        .await
        .expect("online within 5 s");
    assert_eq!(st["width"], 320);
    assert_eq!(st["height"], 240);
    assert!(
        st["codec"].as_str().unwrap_or("").starts_with("avc1."),
        "{st}"
    );
    // The rate is measured over two seconds of frames: wait until the window is full.
    let st = wait_for(Duration::from_secs(5), || async {
        let s = c.status(cam).await;
        let fps = s["fps"].as_f64().unwrap_or(0.0);
        (s["frames"].as_u64().unwrap_or(0) > 60 && (fps - 25.0).abs() < 1.0).then_some(s)
    })
    .await;
    let st = match st {
        Some(s) => s,
        None => panic!("fps near 25: {}", c.status(cam).await),
    };
    assert!(st["bitrate_bps"].as_u64().unwrap_or(0) > 10_000, "{st}");
    assert!(st["last_frame_at"].as_str().is_some());

    // A change of URL restarts the session at once, on the new stream.
    let before = st["attempts"].as_u64().unwrap_or(0);
    let r = c
        .patch(
            &format!("/api/v1/cameras/{cam}"),
            json!({"main_url": sim.url(2)}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["main_url"], sim.url(2));
    let st = c
        .wait_state(cam, "online", Duration::from_secs(5))
        .await
        .expect("online after change");
    assert!(st["attempts"].as_u64().unwrap_or(0) <= before + 1, "{st}");

    // A change that does not touch the source keeps the session as it is.
    let r = c
        .patch(
            &format!("/api/v1/cameras/{cam}"),
            json!({"name": "A区窗口(改)"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(c.status(cam).await["state"], "online");

    // Deleting stops it: the camera is gone and so is its status.
    assert_eq!(
        c.delete(&format!("/api/v1/cameras/{cam}")).await.status,
        204
    );
    assert_eq!(
        c.get(&format!("/api/v1/cameras/{cam}/status")).await.status,
        404
    );
}

#[tokio::test]
async fn wrong_password_gives_auth_failed_without_a_reconnect_storm() {
    let sim = start_sim(1, &["--username", "operator", "--password", "right-pass"]);
    let server = Server::start();
    let c = server.admin().await;
    let site = c.site("南昌市行政服务中心", "service_hall", "360100").await;
    let bad = c
        .camera(json!({"name": "wrong", "site_id": site, "main_url": sim.url(1), "username": "operator", "password": "wrong-pass"}))
        .await;
    let good = c
        .camera(json!({"name": "right", "site_id": site, "main_url": sim.url(1), "username": "operator", "password": "right-pass"}))
        .await;
    let st = c
        .wait_state(bad, "auth_failed", Duration::from_secs(5))
        .await
        .expect("auth_failed");
    assert!(st["error"].as_str().unwrap_or("").contains("401"), "{st}");
    c.wait_state(good, "online", Duration::from_secs(5))
        .await
        .expect("right password online");
    // Several seconds later the wrong one has not hammered the camera.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let st = c.status(bad).await;
    assert_eq!(st["state"], "auth_failed");
    assert_eq!(st["attempts"], 1, "one attempt, then a long wait: {st}");
}

#[tokio::test]
async fn simulator_killed_gives_offline_then_online_when_it_returns() {
    let mut sim = start_sim(1, &[]);
    let server = Server::start();
    let c = server.admin().await;
    let site = c
        .site("赣州市公共资源交易中心", "bid_evaluation", "360700")
        .await;
    let cam = c
        .camera(json!({"name": "开标室1", "site_id": site, "main_url": sim.url(1)}))
        .await;
    c.wait_state(cam, "online", Duration::from_secs(5))
        .await
        .expect("online");

    sim.kill();
    let st = c
        .wait_state(cam, "offline", Duration::from_secs(5))
        .await
        .expect("offline within 5 s of the kill");
    assert!(st["error"].as_str().is_some(), "{st}");
    // Stay away long enough for the backoff to grow.
    tokio::time::sleep(Duration::from_secs(6)).await;
    sim.restart();
    c.wait_state(cam, "online", Duration::from_secs(5))
        .await
        .expect("online within 5 s of the return");
}

#[tokio::test]
async fn nvr_import_of_eight_channels_gives_eight_online_cameras() {
    let sim = Sim::start(&[
        "--cameras",
        "8",
        "--width",
        "160",
        "--height",
        "120",
        "--bitrate",
        "100",
    ]);
    let server = Server::start();
    let c = server.admin().await;
    let site = c.site("章贡区政务服务中心", "service_hall", "360702").await;
    let r = c
        .post(
            "/api/v1/nvrs",
            json!({"site_id": site, "vendor": "generic", "host": "127.0.0.1", "port": sim.port, "channels": 8,
                   "username": "admin", "password": "nvr-secret-77", "url_template": "rtsp://{host}:{port}/cam{channel}"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let ids: Vec<i64> = r.body["camera_ids"]
        .as_array()
        .expect("ids")
        .iter()
        .filter_map(|v| v.as_i64())
        .collect();
    assert_eq!(ids.len(), 8);
    for id in &ids {
        c.wait_state(*id, "online", Duration::from_secs(10))
            .await
            .unwrap_or_else(|| panic!("camera {id} online"));
    }
    let cams = c.get("/api/v1/cameras").await.body;
    let urls: Vec<&str> = cams
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|c| c["main_url"].as_str())
        .collect();
    for n in 1..=8 {
        assert!(urls.contains(&sim.url(n).as_str()), "{urls:?}");
    }
    assert!(!r.text.contains("nvr-secret-77") && !cams.to_string().contains("nvr-secret-77"));

    // Vendor templates make the vendor's URLs; a list of channels makes exactly those.
    let r = c
        .post(
            "/api/v1/nvrs",
            json!({"site_id": site, "vendor": "hikvision", "host": "10.1.2.3", "channels": [3, 5]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let cams = c.get("/api/v1/cameras").await.body.to_string();
    assert!(
        cams.contains("rtsp://10.1.2.3:554/Streaming/Channels/301"),
        "{cams}"
    );
    assert!(
        cams.contains("rtsp://10.1.2.3:554/Streaming/Channels/502"),
        "{cams}"
    );
}

#[tokio::test]
async fn snapshot_is_a_jpeg_of_the_cameras_size_and_not_blank() {
    for codec in ["h264", "h265"] {
        let sim = start_sim(1, &["--codec", codec]);
        let server = Server::start();
        let c = server.admin().await;
        let site = c.site("章贡区政务服务中心", "service_hall", "360702").await;
        let cam = c
            .camera(json!({"name": "大厅", "site_id": site, "main_url": sim.url(1)}))
            .await;
        c.wait_state(cam, "online", Duration::from_secs(10))
            .await
            .expect("online");
        let resp = c
            .http
            .get(server.url(&format!("/api/v1/cameras/{cam}/snapshot.jpg")))
            .send()
            .await
            .expect("get");
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "image/jpeg");
        let bytes = resp.bytes().await.expect("body");
        assert_eq!(&bytes[..2], &[0xFF, 0xD8], "{codec}: JPEG magic");
        let img = image::load_from_memory(&bytes).expect("decodes").to_luma8();
        assert_eq!((img.width(), img.height()), (320, 240), "{codec}");
        let n = img.pixels().len() as f64;
        let mean = img.pixels().map(|p| p.0[0] as f64).sum::<f64>() / n;
        let var = img
            .pixels()
            .map(|p| (p.0[0] as f64 - mean).powi(2))
            .sum::<f64>()
            / n;
        assert!(var > 100.0, "{codec}: picture looks blank (variance {var})");
    }
}

/// The codec names ffprobe reads from an RTSP stream, in stream order.
fn rtsp_codecs(url: &str) -> Vec<String> {
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-rtsp_transport", "tcp", "-show_entries"])
        .args(["stream=codec_name", "-of", "csv=p=0", url])
        .output()
        .expect("ffprobe");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect()
}

/// Cameras that send audio beside their video (`vigil sim --audio`): the stream carries both tracks, and
/// Vigil records the audio with the video; the MP4 of the footage has both, in step, and decodes.
#[tokio::test]
async fn a_camera_with_an_audio_track_is_recorded_with_its_sound() {
    let aac = start_sim(1, &["--audio", "aac"]);
    let pcma = start_sim(1, &["--audio", "pcma"]);
    assert_eq!(rtsp_codecs(&aac.url(1)), ["h264", "aac"]);
    assert_eq!(rtsp_codecs(&pcma.url(1)), ["h264", "pcm_alaw"]);
    let server = Server::start();
    let c = server.admin().await;
    let site = c.site("章贡区政务服务中心", "service_hall", "360702").await;
    for (name, sim, codec, taken) in [
        ("有声AAC", &aac, "aac", "aac"),
        ("有声G711", &pcma, "pcm_alaw", "pcma"),
    ] {
        let cam = c
            .camera(json!({"name": name, "site_id": site, "main_url": sim.url(1)}))
            .await;
        let st = wait_for(Duration::from_secs(15), || async {
            let s = c.status(cam).await;
            (s["state"] == "online" && s["frames"].as_u64().unwrap_or(0) > 50).then_some(s)
        })
        .await
        .unwrap_or_else(|| panic!("camera {cam} online with frames"));
        assert!(
            st["codec"].as_str().unwrap_or("").starts_with("avc1."),
            "{st}"
        );
        assert_eq!(st["audio"], taken, "{st}");
        let span = recorded_span(&c, cam, 6.0).await;
        let path = save_footage(&server, &c, cam, span, &format!("audio-{codec}.mp4")).await;
        let streams = probe_streams(&path);
        eprintln!("{name}: {streams:?}");
        assert_eq!(streams.len(), 2, "{streams:?}");
        let (v, a) = (&streams[0], &streams[1]);
        assert_eq!((v.0.as_str(), a.0.as_str()), ("h264", codec), "{streams:?}");
        assert!(v.1 >= 5.5 && a.2 > 0, "{streams:?}");
        assert!(
            (v.1 - a.1).abs() < 1.0,
            "audio as long as the video: {streams:?}"
        );
    }
}
