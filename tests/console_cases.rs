//! The investigator workspace and playback in headless Chromium (tests/browser/cases.mjs), against the real
//! server recording two simulated cameras: log in through the form, search a case by number, open it, play
//! a clip, export and download the evidence package, hold the footage, see a new event of the open case
//! announced and shown on reload; then play a camera's day, seek on
//! the timeline, change speed, jump to the next case event and across a gap in the recording.

mod common;
use common::*;
use serde_json::{json, Value};
use std::time::Duration;

const USERS: &str = r#"
[record]
segment_seconds = 4

[[seed.users]]
username = "inv"
password = "investigator-pw-1"
role = "investigator"
region_codes = ["360000"]
"#;

fn ev(id: &str, case: &str, kind: &str, at: i64, site: i64, pos: &str) -> Value {
    json!({"event_id": id, "case_no": case, "case_type": "approval", "kind": kind, "at": rfc_ms(at),
           "site_id": site, "position": pos, "operator": "窗口人员"})
}

#[tokio::test]
async fn investigator_searches_plays_exports_holds_and_plays_back_a_camera_in_the_console() {
    if !browser::browser_available() {
        return;
    }
    let sim = Sim::small(2, 25, &[]);
    let server = Server::start_with(USERS);
    let admin = server.admin().await;
    let hall = admin
        .site("章贡区政务服务中心", "service_hall", "360702")
        .await;
    let mut cam = Vec::new();
    for (i, name) in ["A区窗口1-6", "A区窗口7-12"].into_iter().enumerate() {
        cam.push(
            admin
                .camera(json!({"name": name, "site_id": hall, "main_url": sim.url(i as u32 + 1)}))
                .await,
        );
    }
    for (code, c) in [("A1", cam[0]), ("A2", cam[1])] {
        let r = admin
            .post(
                &format!("/api/v1/sites/{hall}/positions"),
                json!({"code": code, "kind": "window", "camera_ids": [c]}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    // Short rolls, so that the clips are seconds of footage recorded while the test waits.
    let r = admin
        .call(
            "PUT",
            &format!("/api/v1/sites/{hall}/case-rules"),
            Some(json!({"pre_roll_seconds": 2, "post_roll_seconds": 4, "followup_hours": 72})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
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
        ev("zw1-1", "ZW-360702-0001", "accepted", s(3.0), hall, "A1"),
        ev("zw1-2", "ZW-360702-0001", "reviewed", s(5.0), hall, "A2"),
        ev("zw1-3", "ZW-360702-0001", "completed", s(9.0), hall, "A1"),
        ev("zw2-1", "ZW-360702-0002", "accepted", s(4.0), hall, "A2"),
    ];
    // The footage the events name must be recorded (and its segments indexed) before the console asks.
    tokio::time::sleep(Duration::from_secs(19)).await;
    let approval = server.integrator();
    let r = approval
        .post("/api/v1/events", json!({ "events": events }))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["accepted"], 4, "{}", r.text);

    // A gap in the footage: the cameras go away for a few seconds and come back.
    let mut sim = sim;
    sim.kill();
    tokio::time::sleep(Duration::from_secs(6)).await;
    sim.restart();
    for c in &cam {
        assert!(
            admin
                .wait_state(*c, "online", Duration::from_secs(60))
                .await
                .is_some(),
            "camera {c} back online; log:\n{}",
            server.log()
        );
    }
    tokio::time::sleep(Duration::from_secs(6)).await;

    browser::run_script(
        "cases.mjs",
        &server,
        &[
            ("VIGIL_USER", "inv".into()),
            ("VIGIL_PASSWORD", "investigator-pw-1".into()),
            ("VIGIL_CASE", "ZW-360702-0001".into()),
            ("VIGIL_CASE_PREFIX", "ZW-360702-000".into()),
            ("VIGIL_CAMERA", cam[0].to_string()),
            ("VIGIL_T0", t0.to_string()),
            // The first event of camera 1 (its position A1): where "next event" lands from t0 + 1 s.
            ("VIGIL_EVENT_AT", s(3.0).to_string()),
            // The approval system, which posts one more event while the case is open.
            (
                "VIGIL_EVENTS_TOKEN",
                approval.bearer.clone().unwrap_or_default(),
            ),
            ("VIGIL_SITE", hall.to_string()),
        ],
    );
}
