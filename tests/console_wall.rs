//! The console's live wall in headless Chromium (tests/browser/wall.mjs) against the real server and
//! simulator: a supervisor logs in through the form and finds a first wall that already plays the cameras of
//! their regions, fills a 16-tile wall from the camera tree and sees
//! every tile play, saves it and finds it again after a reload, runs a tour, sees a camera that dies go
//! offline on its tile and in the alarms panel, opens a tile full screen without a black frame and runs
//! playback on into live; a supervisor of another city sees none of it; on a phone the first wall plays
//! (ManagedMediaSource) and playback works at the screen's width.

mod common;
use common::*;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CONFIG: &str = r#"
[live]
sub_width = 160

[[seed.users]]
username = "ganzhou"
password = "ganzhou-password-1"
role = "supervisor"
region_codes = ["360700"]

[[seed.users]]
username = "nanchang"
password = "nanchang-password-1"
role = "supervisor"
region_codes = ["360100"]
"#;

/// What [`seed`] made.
struct Seeded {
    /// Ganzhou's cameras on `sim`, in the order they go on the wall.
    ganzhou: Vec<i64>,
    /// A Ganzhou camera on its own simulator (the one that dies).
    extra: Option<i64>,
    nanchang: Vec<i64>,
    /// The Ganzhou hall, whose windows A01.. are covered by its first cameras.
    hall: i64,
}

/// Two cities: Ganzhou (a service hall in district 360702 and a bid site in the city itself) and
/// Nanchang (one hall).
async fn seed(c: &Client, sim: &Sim, sim2: Option<&Sim>, n: u32) -> Seeded {
    let hall = c.site("章贡区政务服务中心", "service_hall", "360702").await;
    let bid = c
        .site("赣州市公共资源交易中心", "bid_evaluation", "360700")
        .await;
    let nc = c.site("南昌市政务服务中心", "service_hall", "360100").await;
    let mut ganzhou = Vec::new();
    let in_hall = n * 3 / 4;
    for i in 1..=n {
        let (site, name) = if i <= in_hall {
            (hall, format!("窗口{i:02}"))
        } else {
            (bid, format!("开标室{i:02}"))
        };
        let id = c
            .camera(
                json!({"name": name, "site_id": site, "main_url": sim.url(i), "record": i <= 2}),
            )
            .await;
        ganzhou.push(id);
    }
    // Windows A01.. cover the first cameras; the rest hang directly under their site.
    for (k, id) in ganzhou.iter().take(in_hall.min(4) as usize).enumerate() {
        let r = c
            .post(
                &format!("/api/v1/sites/{hall}/positions"),
                json!({"code": format!("A{:02}", k + 1), "kind": "window", "camera_ids": [id]}),
            )
            .await;
        assert_eq!(r.status, 201, "position: {}", r.text);
    }
    let extra = match sim2 {
        Some(s) => Some(
            c.camera(
                json!({"name": "评标室99", "site_id": bid, "main_url": s.url(1), "record": false}),
            )
            .await,
        ),
        None => None,
    };
    let nanchang = vec![
        c.camera(
            json!({"name": "南昌窗口1", "site_id": nc, "main_url": sim.url(1), "record": false}),
        )
        .await,
    ];
    let all: Vec<i64> = ganzhou
        .iter()
        .chain(extra.iter())
        .chain(nanchang.iter())
        .copied()
        .collect();
    for id in all {
        c.wait_state(id, "online", Duration::from_secs(30))
            .await
            .unwrap_or_else(|| panic!("camera {id} online"));
    }
    Seeded {
        ganzhou,
        extra,
        nanchang,
        hall,
    }
}

fn run_wall(server: &Server, env: Vec<(&str, String)>) -> Vec<Value> {
    let out = browser::run_script("wall.mjs", server, &env);
    out.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect()
}

fn step<'a>(lines: &'a [Value], name: &str) -> &'a Value {
    lines
        .iter()
        .find(|l| l["step"] == name)
        .unwrap_or_else(|| panic!("step {name} missing from {lines:?}"))
}

#[tokio::test]
async fn supervisor_fills_a_16_tile_wall_saves_it_tours_and_sees_a_camera_go_offline() {
    if !browser::browser_available() {
        return;
    }
    // The cameras have microphones: the wall offers their sound, one tile at a time.
    let sim = Sim::small(16, 25, &["--audio", "aac"]);
    let sim2 = Sim::small(1, 25, &[]);
    let server = Server::start_with(CONFIG);
    let admin = server.admin().await;
    let Seeded {
        ganzhou,
        extra,
        nanchang,
        hall,
    } = seed(&admin, &sim, Some(&sim2), 16).await;
    let extra = extra.expect("extra camera");

    // The script writes "kill" here when the wall is up; the simulator of the extra camera then dies. The
    // test keeps the simulator (the watcher only a weak reference), so that a failing test still stops it.
    let signal: PathBuf = server.dir.path().join("kill-signal");
    let sim2 = Arc::new(Mutex::new(sim2));
    let watcher = {
        let signal = signal.clone();
        let sim2 = Arc::downgrade(&sim2);
        std::thread::spawn(move || {
            let end = Instant::now() + Duration::from_secs(400);
            while Instant::now() < end {
                if std::fs::read_to_string(&signal).is_ok_and(|s| s.contains("kill")) {
                    let Some(sim) = sim2.upgrade() else {
                        return false;
                    };
                    sim.lock().unwrap_or_else(|e| e.into_inner()).kill();
                    let _ = std::fs::write(&signal, "killed");
                    return true;
                }
                if sim2.strong_count() == 0 {
                    return false;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            false
        })
    };
    let lines = run_wall(
        &server,
        vec![
            ("VIGIL_PHASE", "main".into()),
            ("VIGIL_USER", "ganzhou".into()),
            ("VIGIL_PASSWORD", "ganzhou-password-1".into()),
            ("VIGIL_CAMERAS", json!(ganzhou).to_string()),
            ("VIGIL_EXTRA", extra.to_string()),
            ("VIGIL_FOREIGN", json!(nanchang).to_string()),
            ("VIGIL_SIGNAL", signal.display().to_string()),
            ("VIGIL_ADMIN_PASSWORD", ADMIN_PASSWORD.into()),
            ("VIGIL_HALL", hall.to_string()),
        ],
    );
    assert!(
        watcher.join().expect("watcher"),
        "the script never asked for the kill"
    );
    assert_eq!(step(&lines, "first-wall")["playing"], 16, "{lines:?}");
    assert_eq!(step(&lines, "play")["playing"], 16, "{lines:?}");
    assert_eq!(step(&lines, "sound")["ok"], true, "{lines:?}");
    assert_eq!(step(&lines, "reload")["same"], true);
    assert_eq!(step(&lines, "tour")["switched"], true);
    assert_eq!(step(&lines, "offline")["tile_offline"], true);
    assert_eq!(step(&lines, "offline")["listed"], true);
    assert_eq!(step(&lines, "card")["carded"], true);
    assert_eq!(step(&lines, "leave")["players"], 0);
    assert_eq!(step(&lines, "leave")["open_views"], 0);

    // The layout is the user's, on the server.
    let c = Client::login(&server, "ganzhou", "ganzhou-password-1").await;
    let wall = c.get("/api/v1/me/wall").await;
    assert_eq!(wall.status, 200, "{}", wall.text);
    let saved = wall.body["layouts"]
        .as_array()
        .and_then(|l| l.iter().find(|l| l["name"] == "16"))
        .cloned()
        .unwrap_or_else(|| panic!("layout 16 saved: {}", wall.text));
    let ids: Vec<i64> = saved["cells"]
        .as_array()
        .expect("cells")
        .iter()
        .filter_map(|c| c["camera_id"].as_i64())
        .collect();
    assert_eq!(ids, ganzhou);
    assert!(wall.body["tours"][0]["camera_ids"]
        .as_array()
        .is_some_and(|a| a.len() == 6));
}

#[tokio::test]
async fn supervisor_of_another_city_sees_none_of_the_first_citys_cameras() {
    if !browser::browser_available() {
        return;
    }
    let sim = Sim::small(2, 25, &[]);
    let server = Server::start_with(CONFIG);
    let admin = server.admin().await;
    let Seeded {
        ganzhou, nanchang, ..
    } = seed(&admin, &sim, None, 2).await;
    let lines = run_wall(
        &server,
        vec![
            ("VIGIL_PHASE", "other-city".into()),
            ("VIGIL_USER", "nanchang".into()),
            ("VIGIL_PASSWORD", "nanchang-password-1".into()),
            ("VIGIL_CAMERAS", json!(nanchang).to_string()),
            ("VIGIL_FOREIGN", json!(ganzhou).to_string()),
        ],
    );
    let r = step(&lines, "other-city");
    assert_eq!(r["tree_foreign"], 0, "{r}");
    assert_eq!(r["api_foreign"], 0, "{r}");
    assert_eq!(r["tiles_foreign_playing"], 0, "{r}");
    assert_eq!(r["own_in_tree"], true, "{r}");
}

#[tokio::test]
async fn supervisor_on_a_phone_finds_a_wall_that_plays_and_plays_back_footage() {
    if !browser::browser_available() {
        return;
    }
    let sim = Sim::small(2, 25, &[]);
    let server = Server::start_with(CONFIG);
    let admin = server.admin().await;
    let Seeded { ganzhou, .. } = seed(&admin, &sim, None, 2).await;
    let lines = run_wall(
        &server,
        vec![
            ("VIGIL_PHASE", "phone".into()),
            ("VIGIL_USER", "ganzhou".into()),
            ("VIGIL_PASSWORD", "ganzhou-password-1".into()),
            ("VIGIL_CAMERAS", json!(ganzhou).to_string()),
        ],
    );
    assert_eq!(step(&lines, "phone-wall")["playing"], 2, "{lines:?}");
    assert!(step(&lines, "phone-playback")["ran"].as_f64() > Some(2.0));
}
