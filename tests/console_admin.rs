//! The administration pages (web/admin*.js) in headless Chromium against the real server and simulator
//! (tests/browser/admin.mjs drives them; see `common::browser`). Afterwards the API is asked whether what
//! the pages showed really happened: what was saved, what was not, and the audit rows.

mod common;
use common::*;
use std::time::Duration;

const CONFIG: &str = r#"
[auth]
login_max_failures = 2
lockout_minutes = 0
login_address_max_failures = 100

[cases]
uptime_sample_seconds = 1

[[seed.users]]
username = "clerk"
password = "clerk-password-1"
role = "investigator"
region_codes = ["360702"]
"#;

/// A child process killed when the test ends, however it ends.
struct Reaped(std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn an_admin_sets_up_a_site_through_the_administration_pages() {
    if !browser::browser_available() {
        return;
    }
    // Also an ONVIF camera, for the ONVIF 发现 tab to find and add.
    let sim = Sim::small(2, 25, &["--onvif"]);
    // A camera that demands credentials, tested from its edit form with the stored password.
    let cred_sim = Sim::small(
        1,
        25,
        &["--username", "operator", "--password", "right-pass"],
    );
    // A GB/T 28181 NVR that registers to the server, for the 国标设备 tab to bind.
    let sip = free_port();
    let server = Server::start_with(&format!(
        "{CONFIG}\n[gb28181]\nsip_listen = \"127.0.0.1:{sip}\"\npassword = \"gb-pass-1\"\nmedia_ports = \"{}-{}\"\n",
        sip + 1,
        sip + 20
    ));
    let gb_device = "34020000001180000005";
    let gb_log = tempfile::NamedTempFile::new().expect("log file");
    let _nvr = Reaped(
        std::process::Command::new(BIN)
            .args([
                "sim",
                "--gb28181",
                "--platform",
                &format!("127.0.0.1:{sip}"),
                "--device-id",
                gb_device,
            ])
            .args([
                "--password",
                "gb-pass-1",
                "--channels",
                "2",
                "--width",
                "320",
                "--height",
                "240",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(gb_log.reopen().expect("log"))
            .spawn()
            .expect("spawn vigil sim --gb28181"),
    );
    // An account locked by failed logins, for the page to unlock.
    for _ in 0..2 {
        let r = Client::anonymous(&server)
            .post(
                "/api/v1/session",
                serde_json::json!({"username": "clerk", "password": "wrong-password"}),
            )
            .await;
        assert_eq!(r.status, 401, "failed login: {}", r.text);
    }
    let r = Client::anonymous(&server)
        .post(
            "/api/v1/session",
            serde_json::json!({"username": "clerk", "password": "clerk-password-1"}),
        )
        .await;
    assert_eq!(r.status, 429, "clerk should be locked: {}", r.text);
    // A port nobody listens on: the camera test must read it as offline.
    let closed_port = free_port();
    browser::run_script(
        "admin.mjs",
        &server,
        &[
            ("VIGIL_USER", "admin".into()),
            ("VIGIL_PASSWORD", "admin-password-1".into()),
            ("VIGIL_SIM_PORT", sim.port.to_string()),
            ("VIGIL_CRED_SIM_PORT", cred_sim.port.to_string()),
            ("VIGIL_CLOSED_PORT", closed_port.to_string()),
            ("VIGIL_GB_DEVICE", gb_device.into()),
        ],
    );

    // The wall's PTZ pad reached the NVR: moves toward the upper right, a stop, preset 2.
    let nvr_log = std::fs::read_to_string(gb_log.path()).unwrap_or_default();
    let ptz: Vec<&str> = nvr_log
        .lines()
        .filter(|l| l.contains("ptz command"))
        .collect();
    assert!(
        ptz.iter()
            .any(|l| l.contains("Move { pan: 0.") && !l.contains("tilt: -")),
        "{ptz:#?}"
    );
    assert!(ptz.iter().any(|l| l.contains("cmd=Stop")), "{ptz:#?}");
    assert!(
        ptz.iter()
            .any(|l| l.contains("Preset { op: Goto, number: 2 }")),
        "{ptz:#?}"
    );

    let c = server.admin().await;
    let cams = c.get("/api/v1/cameras").await.body;
    // Added from ONVIF discovery: main and sub streams from its two profiles.
    let onvif = format!("rtsp://127.0.0.1:{}/cam1", sim.port);
    assert!(
        cams.as_array()
            .is_some_and(|l| l.iter().any(|c| c["main_url"] == onvif
                && c["sub_url"] == onvif
                && c["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("Vigil SimDome")))),
        "the ONVIF camera was not added: {cams}"
    );
    let cams = cams.as_array().expect("camera list");
    let names: Vec<&str> = cams.iter().filter_map(|c| c["name"].as_str()).collect();
    assert!(
        names.contains(&"综合窗口1"),
        "saved camera missing: {names:?}"
    );
    assert!(
        !names.contains(&"坏摄像机") && !names.contains(&"综合窗口2"),
        "a tested but unsaved camera was stored: {names:?}"
    );
    // The NVR brought two channels; the second was renamed and then deleted on the page.
    let gb: Vec<_> = cams.iter().filter(|c| c["source"] == "gb28181").collect();
    assert_eq!(
        gb.len(),
        2,
        "GB/T 28181 channels bound on the page: {cams:?}"
    );
    let nvr: Vec<_> = cams.iter().filter(|c| c["nvr_id"].is_i64()).collect();
    assert_eq!(nvr.len(), 1, "NVR channels: {cams:?}");
    assert_eq!(nvr[0]["name"], "NVR-1 ch01");
    let saved = cams
        .iter()
        .find(|c| c["name"] == "综合窗口1")
        .and_then(|c| c["id"].as_i64())
        .expect("camera id");
    assert!(
        c.wait_state(saved, "online", Duration::from_secs(10))
            .await
            .is_some(),
        "the saved camera is not online"
    );

    let regions = c.get("/api/v1/regions").await.body;
    assert!(
        regions
            .as_array()
            .expect("regions")
            .iter()
            .any(|r| r["code"] == "360703" && r["parent_code"] == "360700"),
        "region: {regions}"
    );
    let sites = c.get("/api/v1/sites").await.body;
    assert_eq!(
        sites[0]["name"], "南康区行政服务中心",
        "edited site: {sites}"
    );
    // A12 was created with 综合窗口1, then edited on the page to a seat covered by NVR-1 ch01 only; B01 was
    // created and deleted.
    let positions = c
        .get(&format!("/api/v1/sites/{}/positions", sites[0]["id"]))
        .await
        .body;
    assert_eq!(
        positions.as_array().map(Vec::len),
        Some(1),
        "positions: {positions}"
    );
    assert!(
        positions[0]["code"] == "A12"
            && positions[0]["kind"] == "seat"
            && positions[0]["camera_ids"] == serde_json::json!([nvr[0]["id"]]),
        "position: {positions}"
    );
    // The credentialed camera was saved with its password (online) and the edit form's test left it as is.
    let door = cams
        .iter()
        .find(|c| c["name"] == "门禁摄像机")
        .expect("the credentialed camera");
    assert_eq!(door["username"], "operator", "{door}");
    assert!(
        door.get("password").is_none(),
        "a password in the list: {door}"
    );
    let door_id = door["id"].as_i64().expect("camera id");
    assert!(
        c.wait_state(door_id, "online", Duration::from_secs(10))
            .await
            .is_some(),
        "the credentialed camera is not online with its stored password"
    );
    let users = c.get("/api/v1/users").await.body;
    assert!(
        users
            .as_array()
            .expect("users")
            .iter()
            .any(|u| u["username"] == "nk-supervisor"
                && u["role"] == "supervisor"
                && u["region_codes"] == serde_json::json!(["360703"])),
        "user: {users}"
    );
    let supervisor = Client::login(&server, "nk-supervisor", "supervisor-pass-1").await;
    let seen = supervisor.get("/api/v1/cameras").await.body;
    assert_eq!(
        seen.as_array().map(Vec::len),
        Some(6),
        "the supervisor sees the district's cameras (three RTSP, one from ONVIF, two GB/T 28181 channels): {seen}"
    );
    // Unlocked on the page: the clerk logs in again.
    Client::login(&server, "clerk", "clerk-password-1").await;
    let tokens = c.get("/api/v1/tokens").await.body;
    assert!(
        tokens
            .as_array()
            .expect("tokens")
            .iter()
            .any(|t| t["name"] == "approval-nk" && t["active"] == true),
        "token: {tokens}"
    );

    let audit = c.get("/api/v1/audit?action=camera.create").await.body;
    assert!(
        audit
            .as_array()
            .expect("audit")
            .iter()
            .any(|r| r["actor"] == "admin" && r["detail"] == "综合窗口1"),
        "audit: {audit}"
    );
    for action in [
        "region.create",
        "site.create",
        "site.update",
        "position.create",
        "position.update",
        "position.delete",
        "camera.test",
        "camera.update",
        "camera.delete",
        "nvr.import",
        "onvif.discover",
        "user.create",
        "user.unlock",
        "token.create",
    ] {
        let rows = c.get(&format!("/api/v1/audit?action={action}")).await.body;
        assert!(
            rows.as_array().is_some_and(|r| !r.is_empty()),
            "no {action} row"
        );
    }
}
