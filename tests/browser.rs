//! Headless Chromium plays simulated cameras through the `<vigil-live>` player (tests/browser/live.mjs):
//! by MSE and by WebRTC (see `common::browser` for what the browser tests need), with the cameras' sound
//! where they send one.

mod common;
use common::*;
use serde_json::json;
use std::time::Duration;

const USERS: &str = r#"
[live]
sub_width = 160

[[seed.users]]
username = "watcher"
password = "watcher-password-1"
role = "supervisor"
region_codes = ["360000"]
"#;

fn run_cases(server: &Server, cases: serde_json::Value) -> String {
    browser::run_script(
        "live.mjs",
        server,
        &[
            ("VIGIL_USER", "watcher".into()),
            ("VIGIL_PASSWORD", "watcher-password-1".into()),
            ("VIGIL_CASES", cases.to_string()),
        ],
    )
}

#[tokio::test]
async fn chromium_plays_simulated_cameras_by_mse_and_webrtc_and_h265_through_the_transcode() {
    if !browser::browser_available() {
        return;
    }
    let sim = Sim::small(1, 50, &[]);
    let server = Server::start_with(USERS);
    let c = server.admin().await;
    let site = c.site("章贡区政务服务中心", "service_hall", "360702").await;
    let cam = c
        .camera(json!({"name": "窗口1", "site_id": site, "main_url": sim.url(1), "record": false}))
        .await;
    c.wait_state(cam, "online", Duration::from_secs(10))
        .await
        .expect("online");
    // An H.265 camera: Chromium here cannot decode H.265, so the player gets the H.264 transcode.
    let sim265 = Sim::start(&[
        "--width",
        "320",
        "--height",
        "240",
        "--fps",
        "25",
        "--bitrate",
        "300",
        "--gop",
        "50",
        "--cameras",
        "1",
        "--codec",
        "h265",
    ]);
    let cam265 = c
        .camera(
            json!({"name": "窗口2", "site_id": site, "main_url": sim265.url(1), "record": false}),
        )
        .await;
    c.wait_state(cam265, "online", Duration::from_secs(10))
        .await
        .expect("H.265 camera online");
    // Cameras with a microphone: AAC plays by MSE as recorded and by WebRTC as Opus; G.711 has no MSE
    // codec (the tile plays without sound) and plays by WebRTC as Opus.
    let aac = Sim::small(1, 50, &["--audio", "aac"]);
    let pcma = Sim::small(1, 50, &["--audio", "pcma"]);
    let mut sound = Vec::new();
    for (name, sim) in [("aac", &aac), ("pcma", &pcma)] {
        let cam = c
            .camera(json!({"name": format!("有声{name}"), "site_id": site, "main_url": sim.url(1)}))
            .await;
        c.wait_state(cam, "online", Duration::from_secs(10))
            .await
            .expect("camera with sound online");
        sound.push((name, cam));
    }
    let modes: Vec<&str> = std::env::var("VIGIL_BROWSER_MODES")
        .map(|m| {
            m.split(',')
                .map(|s| Box::leak(s.to_owned().into_boxed_str()) as &str)
                .collect()
        })
        .unwrap_or_else(|_| vec!["mse", "webrtc"]);
    let mut cases: Vec<_> = modes
        .iter()
        .map(|m| json!({"name": format!("h264-{m}"), "camera": cam, "mode": m}))
        .collect();
    for m in &modes {
        cases.push(json!({"name": format!("h265-transcoded-{m}"), "camera": cam265, "mode": m}));
        // The camera has no sub stream: a wall tile gets one scaled from the main stream.
        cases.push(json!({"name": format!("h264-scaled-sub-{m}"), "camera": cam, "mode": m, "stream": "sub", "width": 160, "height": 120}));
        for (name, cam) in &sound {
            let heard = *m == "webrtc" || *name == "aac";
            cases.push(json!({"name": format!("{name}-sound-{m}"), "camera": cam, "mode": m, "sound": heard}));
        }
    }
    // The recordings of the cameras with sound play with it in the browser's own <video> (progressive
    // MP4, as the playback and case pages load them).
    for (name, cam) in &sound {
        let (start, end) = recorded_span(&c, *cam, 4.0).await;
        let url = format!(
            "/api/v1/cameras/{cam}/video.mp4?start={}&end={}",
            rfc_us(start),
            rfc_us(end)
        );
        cases.push(json!({"name": format!("{name}-recording"), "recording": url}));
    }
    run_cases(&server, json!(cases));
}
