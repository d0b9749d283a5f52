//! The API the console stands on, through the real server and simulator: each user's wall kept on the
//! server and checked whole, camera lists with state and recording, camera-offline alarms and status
//! notifications, the "test" of a camera before it is saved, site health (online rate, recording
//! completeness) by jurisdiction, and a camera's case events for playback.

mod common;
use common::*;
use futures::StreamExt;
use serde_json::{json, Value};
use std::time::Duration;

const USERS: &str = r#"
[[seed.users]]
username = "watcher"
password = "watcher-password-1"
role = "supervisor"
region_codes = ["360700"]

[[seed.users]]
username = "other-city"
password = "other-city-password-1"
role = "supervisor"
region_codes = ["360100"]
"#;

fn cells(n: u32) -> Vec<Value> {
    (0..n * n)
        .map(|i| json!({"x": i % n, "y": i / n, "w": 1, "h": 1, "camera_id": null}))
        .collect()
}

#[tokio::test]
async fn a_wall_is_kept_per_user_and_a_bad_one_changes_nothing() {
    let server = Server::start_with(USERS);
    let w = Client::login(&server, "watcher", "watcher-password-1").await;
    let empty = w.get("/api/v1/me/wall").await;
    assert_eq!(empty.status, 200, "{}", empty.text);
    assert_eq!(
        empty.body,
        json!({"layouts": [], "tours": [], "current": {"layout": null, "tour": null}})
    );
    // A custom layout: one big tile (2x2) and five small ones around it on a 3x3 grid.
    let big = json!({"name": "1+5", "cols": 3, "rows": 3, "cells": [
        {"x": 0, "y": 0, "w": 2, "h": 2, "camera_id": 7},
        {"x": 2, "y": 0, "w": 1, "h": 1, "camera_id": 8}, {"x": 2, "y": 1, "w": 1, "h": 1, "camera_id": null},
        {"x": 0, "y": 2, "w": 1, "h": 1, "camera_id": null}, {"x": 1, "y": 2, "w": 1, "h": 1, "camera_id": null},
        {"x": 2, "y": 2, "w": 1, "h": 1, "camera_id": null}]});
    let wall = json!({
        "layouts": [{"name": "16", "cols": 4, "rows": 4, "cells": cells(4)}, big],
        "tours": [{"name": "大厅巡查", "camera_ids": [1, 2, 3], "seconds": 10}],
        "current": {"layout": "1+5", "tour": null},
    });
    let r = w.call("PUT", "/api/v1/me/wall", Some(wall.clone())).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(w.get("/api/v1/me/wall").await.body, wall);
    // Another user has their own wall.
    let o = Client::login(&server, "other-city", "other-city-password-1").await;
    assert_eq!(o.get("/api/v1/me/wall").await.body["layouts"], json!([]));

    let overlapping = {
        let mut l = big.clone();
        l["cells"][1]["x"] = json!(1);
        l
    };
    let outside = {
        let mut l = big.clone();
        l["cells"][1]["x"] = json!(4_294_967_295u32);
        l
    };
    let bad = [
        json!({"layouts": [overlapping]}),
        json!({"layouts": [outside]}),
        json!({"layouts": [{"name": "9", "cols": 9, "rows": 3, "cells": cells(3)}]}),
        json!({"layouts": [big.clone(), big.clone()]}),
        json!({"tours": [{"name": "t", "camera_ids": [1], "seconds": 1}]}),
        json!({"tours": [{"name": "t", "camera_ids": [], "seconds": 10}]}),
        json!({"current": {"layout": "missing", "tour": null}}),
        json!({"layouts": [], "colour": "red"}),
        json!({"layouts": [{"name": "", "cols": 1, "rows": 1, "cells": cells(1)}]}),
    ];
    for b in bad {
        let r = w.call("PUT", "/api/v1/me/wall", Some(b.clone())).await;
        assert!(
            (400..500).contains(&r.status),
            "{b} accepted: {} {}",
            r.status,
            r.text
        );
        assert!(r.body["error"]["message"].is_string(), "{}", r.text);
    }
    assert_eq!(w.get("/api/v1/me/wall").await.body, wall, "unchanged");
    // The wall is the user's, and it survives a restart.
    let mut server = server;
    server.restart();
    let w = Client::login(&server, "watcher", "watcher-password-1").await;
    assert_eq!(w.get("/api/v1/me/wall").await.body, wall);
}

async fn notifications(server: &Server, user: &str, password: &str) -> Ws {
    common::ws::notifications(server, &common::ws::cookie(server, user, password).await).await
}

use common::ws::Ws;

/// Waits for a JSON message that satisfies `want`, skipping others.
async fn expect_message(ws: &mut Ws, timeout: Duration, want: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let m = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("message in time")
            .expect("socket open")
            .expect("message");
        if let Ok(text) = m.to_text() {
            if let Ok(v) = serde_json::from_str::<Value>(text) {
                if want(&v) {
                    return v;
                }
            }
        }
    }
}

#[tokio::test]
async fn a_camera_that_drops_raises_one_offline_alarm_and_clears_it_when_back() {
    let mut sim = Sim::small(1, 25, &[]);
    let server = Server::start_with(USERS);
    let a = server.admin().await;
    let site = a.site("章贡区政务服务中心", "service_hall", "360702").await;
    let cam = a
        .camera(json!({"name": "窗口1", "site_id": site, "main_url": sim.url(1)}))
        .await;
    a.wait_state(cam, "online", Duration::from_secs(10))
        .await
        .expect("online");
    let listed = a.get("/api/v1/cameras").await.body;
    assert_eq!(listed[0]["state"], "online", "{listed}");
    let recording = wait_for(Duration::from_secs(10), || async {
        let l = a.get("/api/v1/cameras").await.body;
        (l[0]["recording"] == true).then_some(())
    })
    .await;
    assert!(recording.is_some(), "the camera is listed as recording");
    assert!(listed[0].get("password").is_none());

    let mut mine = notifications(&server, "watcher", "watcher-password-1").await;
    let mut other = notifications(&server, "other-city", "other-city-password-1").await;
    sim.kill();
    let status = expect_message(&mut mine, Duration::from_secs(10), |m| {
        m["type"] == "camera_status" && m["camera_id"] == cam && m["state"] == "offline"
    })
    .await;
    assert_eq!(status["camera_name"], "窗口1");
    let alarm = expect_message(&mut mine, Duration::from_secs(5), |m| {
        m["type"] == "alarm" && m["kind"] == "camera_offline"
    })
    .await;
    assert_eq!(alarm["state"], "active");
    assert_eq!(alarm["camera_ids"], json!([cam]));
    let active = a.get("/api/v1/alarms?state=active").await.body;
    let ours: Vec<&Value> = active
        .as_array()
        .expect("list")
        .iter()
        .filter(|x| x["kind"] == "camera_offline")
        .collect();
    assert_eq!(
        ours.len(),
        1,
        "one alarm, however many reconnects: {active}"
    );
    assert_eq!(ours[0]["camera_ids"], json!([cam]));
    // The other city hears nothing of it and lists no such alarm.
    assert!(
        tokio::time::timeout(Duration::from_millis(500), other.next())
            .await
            .is_err(),
        "another city's supervisor got a notification of this camera"
    );
    let o = Client::login(&server, "other-city", "other-city-password-1").await;
    assert_eq!(o.get("/api/v1/alarms?state=active").await.body, json!([]));

    sim.restart();
    expect_message(&mut mine, Duration::from_secs(40), |m| {
        m["type"] == "alarm" && m["kind"] == "camera_offline" && m["state"] == "cleared"
    })
    .await;
    let active = a.get("/api/v1/alarms?state=active").await.body;
    assert_eq!(active, json!([]), "cleared when back online");
}

#[tokio::test]
async fn a_camera_is_tested_before_it_is_saved() {
    let sim = Sim::small(
        1,
        25,
        &["--username", "operator", "--password", "right-pass"],
    );
    let server = Server::start_with(USERS);
    let a = server.admin().await;
    let ok = a
        .post(
            "/api/v1/cameras/test",
            json!({"main_url": sim.url(1), "username": "operator", "password": "right-pass",
                   "transport": "tcp", "name": "not saved", "site_id": 1, "record": true}),
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(ok.body["state"], "online", "{}", ok.text);
    assert_eq!(ok.body["width"], 320);
    assert!(ok.body["codec"].as_str().unwrap_or("").starts_with("avc1"));
    let data = ok.body["snapshot"].as_str().expect("snapshot");
    let jpeg = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .decode(
                data.strip_prefix("data:image/jpeg;base64,")
                    .expect("data URL"),
            )
            .expect("base64")
    };
    let img = image::load_from_memory(&jpeg).expect("a JPEG");
    assert_eq!(img.width(), 320, "not upscaled past the camera's width");
    assert!(
        !ok.text.contains("right-pass"),
        "the password never comes back"
    );

    let wrong = a
        .post(
            "/api/v1/cameras/test",
            json!({"main_url": sim.url(1), "username": "operator", "password": "wrong"}),
        )
        .await;
    assert_eq!(wrong.body["state"], "auth_failed", "{}", wrong.text);
    assert!(wrong.body["snapshot"].is_null());

    let closed = format!("rtsp://127.0.0.1:{}/cam1", free_port());
    let off = a
        .post("/api/v1/cameras/test", json!({"main_url": closed}))
        .await;
    assert_eq!(off.body["state"], "offline", "{}", off.text);
    assert!(off.body["error"].is_string());

    // Testing a saved camera while editing it: the stored password is used when none is typed.
    let site = a.site("章贡区政务服务中心", "service_hall", "360702").await;
    let saved = a
        .camera(
            json!({"name": "saved", "site_id": site, "main_url": sim.url(1),
                       "username": "operator", "password": "right-pass", "record": false}),
        )
        .await;
    let again = a
        .post(
            "/api/v1/cameras/test",
            json!({"camera_id": saved, "main_url": sim.url(1), "password": ""}),
        )
        .await;
    assert_eq!(again.body["state"], "online", "{}", again.text);
    let o = Client::login(&server, "other-city", "other-city-password-1").await;
    assert_eq!(
        o.post("/api/v1/cameras/test", json!({"camera_id": saved}))
            .await
            .status,
        403,
        "a supervisor may not test cameras"
    );
    a.delete(&format!("/api/v1/cameras/{saved}")).await;

    let bad = a
        .post("/api/v1/cameras/test", json!({"main_url": "http://x/"}))
        .await;
    assert_eq!(bad.status, 422, "{}", bad.text);
    assert_eq!(
        a.get("/api/v1/cameras").await.body,
        json!([]),
        "nothing saved"
    );
    assert!(!server.log().contains("right-pass"));
}

#[tokio::test]
async fn site_health_gives_online_rate_and_recording_completeness_by_jurisdiction() {
    let sim = Sim::small(2, 25, &[]);
    // Sampled every second (60 s by default), so that the period has samples within the test.
    let server = Server::start_with(&format!("{USERS}\n[cases]\nuptime_sample_seconds = 1\n"));
    let a = server.admin().await;
    let site = a.site("章贡区政务服务中心", "service_hall", "360702").await;
    let mut cams = Vec::new();
    for i in 1..=2 {
        cams.push(
            a.camera(json!({"name": format!("窗口{i}"), "site_id": site, "main_url": sim.url(i)}))
                .await,
        );
    }
    // A third camera that never answers.
    let dead = format!("rtsp://127.0.0.1:{}/cam1", free_port());
    a.camera(json!({"name": "坏的", "site_id": site, "main_url": dead}))
        .await;
    for c in &cams {
        a.wait_state(*c, "online", Duration::from_secs(10))
            .await
            .expect("online");
    }
    tokio::time::sleep(Duration::from_secs(6)).await;
    let h = a.get("/api/v1/health?hours=1").await;
    assert_eq!(h.status, 200, "{}", h.text);
    let s = &h.body["sites"][0];
    assert_eq!(s["cameras"], 3);
    assert_eq!(s["online"], 2);
    let rate = s["online_rate"].as_f64().expect("rate");
    assert!((rate - 2.0 / 3.0).abs() < 1e-9, "{rate}");
    // Over the period: the dead camera was never online and the others only once connected.
    assert!(s["uptime_samples"].as_i64().unwrap_or(0) >= 6, "{}", h.text);
    let over = s["online_time_rate"].as_f64().expect("online time rate");
    assert!(
        over > 0.2 && over <= 2.0 / 3.0 + 1e-9,
        "online time rate {over}: {}",
        h.text
    );
    let c = s["completeness"].as_f64().expect("completeness");
    // Two of three cameras record, since they were added a few seconds ago.
    assert!(c > 0.3 && c < 0.67, "completeness {c}: {}", h.text);
    assert!(h.body["disk"]["total_bytes"].as_u64().unwrap_or(0) > 0);
    assert!(h.body["disk"]["recordings_bytes"].as_i64().unwrap_or(0) > 0);

    let w = Client::login(&server, "watcher", "watcher-password-1").await;
    let hw = w.get("/api/v1/health").await.body;
    assert_eq!(hw["sites"][0]["site_id"], site);
    assert!(hw["disk"].is_null(), "the disk is for admins");
    let o = Client::login(&server, "other-city", "other-city-password-1").await;
    assert_eq!(o.get("/api/v1/health").await.body["sites"], json!([]));
    assert_eq!(a.get("/api/v1/health?hours=0").await.status, 422);
}

#[tokio::test]
async fn a_camera_lists_the_case_events_of_the_positions_it_covers() {
    let server = Server::start_with(USERS);
    let a = server.admin().await;
    let site = a.site("章贡区政务服务中心", "service_hall", "360702").await;
    let mut cams = Vec::new();
    for i in 0..2 {
        cams.push(
            a.camera(json!({"name": format!("cam{i}"), "site_id": site,
                            "main_url": "rtsp://127.0.0.1:9/none", "record": false}))
                .await,
        );
    }
    for (code, cam) in [("A1", cams[0]), ("A2", cams[1])] {
        let r = a
            .post(
                &format!("/api/v1/sites/{site}/positions"),
                json!({"code": code, "kind": "window", "camera_ids": [cam]}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let t0 = now_ms() - 3_600_000;
    let ev = |id: &str, kind: &str, at: i64, pos: &str| {
        json!({"event_id": id, "case_no": format!("ZW-{pos}"), "case_type": "approval", "kind": kind,
               "at": rfc_ms(at), "site_id": site, "position": pos})
    };
    let r = a
        .post(
            "/api/v1/events",
            json!({"events": [
                ev("e2", "completed", t0 + 600_000, "A1"),
                ev("e1", "accepted", t0, "A1"),
                ev("e3", "accepted", t0 + 60_000, "A2"),
            ]}),
        )
        .await;
    assert_eq!(r.body["accepted"], 3, "{}", r.text);
    let q = |from: i64, to: i64| {
        format!(
            "/api/v1/cameras/{}/events?start={}&end={}",
            cams[0],
            rfc_ms(from),
            rfc_ms(to)
        )
        .replace('+', "%2B")
    };
    let got = a.get(&q(t0 - 1000, t0 + 3_600_000)).await;
    assert_eq!(got.status, 200, "{}", got.text);
    let kinds: Vec<&str> = got.body["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["kind"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(kinds, ["accepted", "completed"], "{}", got.text);
    assert_eq!(got.body["events"][0]["case_no"], "ZW-A1");
    // The end is exclusive.
    let first = a.get(&q(t0, t0 + 600_000)).await.body;
    assert_eq!(first["events"].as_array().map(Vec::len), Some(1));
    let o = Client::login(&server, "other-city", "other-city-password-1").await;
    assert_eq!(o.get(&q(t0, t0 + 1)).await.status, 404);
}

#[tokio::test]
async fn a_position_changes_its_cameras_and_kind_and_can_be_removed() {
    let server = Server::start_with(USERS);
    let a = server.admin().await;
    let site = a.site("章贡区政务服务中心", "service_hall", "360702").await;
    let elsewhere = a.site("南昌市行政服务中心", "service_hall", "360100").await;
    let cam = |name: &str, site: i64| json!({"name": name, "site_id": site, "main_url": "rtsp://127.0.0.1:9/none", "record": false});
    let c1 = a.camera(cam("c1", site)).await;
    let c2 = a.camera(cam("c2", site)).await;
    let foreign = a.camera(cam("c3", elsewhere)).await;
    let r = a
        .post(
            &format!("/api/v1/sites/{site}/positions"),
            json!({"code": "A1", "kind": "window", "camera_ids": [c1]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let pos = r.body["id"].as_i64().expect("id");
    let path = format!("/api/v1/sites/{site}/positions/{pos}");
    let r = a
        .patch(&path, json!({"kind": "room", "camera_ids": [c2, c1, c2]}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["camera_ids"], json!([c1, c2]));
    assert_eq!(r.body["code"], "A1");
    // A camera of another site, an unknown kind, a renamed code: refused, and nothing changes.
    for bad in [
        json!({"camera_ids": [c1, foreign]}),
        json!({"kind": "hall"}),
        json!({"code": "A2"}),
    ] {
        let r = a.patch(&path, bad.clone()).await;
        assert_eq!(r.status, 422, "{bad}: {}", r.text);
    }
    let listed = a.get(&format!("/api/v1/sites/{site}/positions")).await.body;
    assert_eq!(listed[0]["kind"], "room");
    assert_eq!(listed[0]["camera_ids"], json!([c1, c2]));
    // The position of one site cannot be reached through another.
    let r = a
        .patch(
            &format!("/api/v1/sites/{elsewhere}/positions/{pos}"),
            json!({"kind": "seat"}),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text);
    assert_eq!(a.delete(&path).await.status, 204);
    assert_eq!(a.delete(&path).await.status, 404);
    assert_eq!(
        a.get(&format!("/api/v1/sites/{site}/positions")).await.body,
        json!([])
    );
}

#[tokio::test]
async fn a_region_is_renamed_and_an_unused_one_deleted_within_the_admins_scope() {
    let server = Server::start_with(
        r#"
[[seed.users]]
username = "city-admin"
password = "city-admin-password-1"
role = "admin"
region_codes = ["360700"]
"#,
    );
    let a = server.admin().await;
    let city = Client::login(&server, "city-admin", "city-admin-password-1").await;
    // A district made by mistake below the city, and one with a site.
    let r = city
        .post(
            "/api/v1/regions",
            json!({"code": "360799", "name": "错误区", "level": "district", "parent_code": "360700"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    a.site("章贡区政务服务中心", "service_hall", "360702").await;

    let r = city
        .patch("/api/v1/regions/360799", json!({"name": "  测试区 "}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["name"], "测试区");
    assert_eq!(r.body["parent_code"], "360700");
    // The code, level and parent are what the region is: not changed; nor an empty name.
    for bad in [
        json!({"code": "360798"}),
        json!({"name": "x", "level": "city"}),
        json!({"name": ""}),
    ] {
        let r = city.patch("/api/v1/regions/360799", bad.clone()).await;
        assert_eq!(r.status, 422, "{bad}: {}", r.text);
    }
    // Another city's region is not there for this admin; the province above is not theirs either.
    for code in ["360100", "360000"] {
        let r = city
            .patch(&format!("/api/v1/regions/{code}"), json!({"name": "x"}))
            .await;
        assert_eq!(r.status, 404, "{code}: {}", r.text);
        assert_eq!(
            city.delete(&format!("/api/v1/regions/{code}")).await.status,
            404
        );
    }
    // A region with a site, with users bound to it or with regions below it stays, saying why.
    let r = city.delete("/api/v1/regions/360702").await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert!(r.text.contains("1 sites"), "{}", r.text);
    let r = city.delete("/api/v1/regions/360700").await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert!(
        r.text.contains("regions below it") && r.text.contains("users or tokens"),
        "{}",
        r.text
    );

    assert_eq!(city.delete("/api/v1/regions/360799").await.status, 204);
    assert_eq!(city.delete("/api/v1/regions/360799").await.status, 404);
    let codes: Vec<String> = a
        .get("/api/v1/regions")
        .await
        .body
        .as_array()
        .expect("regions")
        .iter()
        .map(|r| r["code"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(!codes.contains(&"360799".to_owned()), "{codes:?}");
    // The changes are in the audit log, which the city admin still sees after the region is gone.
    let rows = city.get("/api/v1/audit?actor=city-admin").await.body;
    let actions: Vec<&str> = rows
        .as_array()
        .expect("rows")
        .iter()
        .filter(|r| r["status"] == 200 || r["status"] == 204)
        .filter_map(|r| r["action"].as_str())
        .collect();
    assert!(
        actions.contains(&"region.update") && actions.contains(&"region.delete"),
        "{rows}"
    );
    // The code can be created again (its history is its own again).
    let r = city
        .post(
            "/api/v1/regions",
            json!({"code": "360799", "name": "新区", "level": "district", "parent_code": "360700"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = city
        .post(
            "/api/v1/regions",
            json!({"code": "360799", "name": "又一个", "level": "district", "parent_code": "360700"}),
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.text);
}
