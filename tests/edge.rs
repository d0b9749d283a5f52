//! Edge retrieval from an RTSP NVR (docs/edge.md): the simulator as a Hikvision NVR (`vigil sim
//! --outage`) whose line drops for 60 s while it keeps recording; Vigil, which imported it as a Hikvision NVR,
//! fetches the lost interval back from its playback path after the line returns, and finishes it after being
//! killed in the middle of the pull.

mod common;
use common::*;
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hikvision_nvr_s_recording_fills_the_gap_its_line_left() {
    // The line drops 20 s after the NVR starts: time for the server to start and record before it, even
    // on a loaded machine.
    let nvr = Sim::small(1, 25, &["--outage", "20:60"]);
    // The tests' base configuration reconnects within 2 s (`[ingest] backoff_max_ms`).
    let mut s = Server::start_with("[edge]\nscan_interval_s = 2\nsettle_s = 4\n");
    let c = s.admin().await;
    let site = c.site("投标评审室", "bid_evaluation", "360702").await;
    let r = c
        .post(
            "/api/v1/nvrs",
            json!({"site_id": site, "vendor": "hikvision", "host": "127.0.0.1", "port": nvr.port, "channels": 1}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let cam = r.body["camera_ids"][0].as_i64().expect("camera");
    c.wait_state(cam, "online", Duration::from_secs(15))
        .await
        .expect("online before the line drops");

    let row = backfill(&c, cam, Duration::from_secs(120), |b| {
        b["gap_s"].as_f64() > Some(0.0)
    })
    .await;
    let gap = (us_of(&row["start"]), us_of(&row["end"]));
    println!("gap found: {row}");
    assert!((55e6..75e6).contains(&((gap.1 - gap.0) as f64)), "{row}");
    assert!(
        row["source"]
            .as_str()
            .is_some_and(|s| s.contains("/Streaming/tracks/101")),
        "{row}"
    );
    // Killed (SIGKILL) a few seconds into the real-time pull: the footage written so far survives as any
    // recording does, and after the restart the pull resumes with what is still missing.
    let partway = backfill(&c, cam, Duration::from_secs(60), |b| {
        b["state"] == "pulling" && b["fetched_s"].as_f64() >= Some(4.0)
    })
    .await;
    println!("killed during the pull: {partway}");
    s.restart();
    let done = backfill(&c, cam, Duration::from_secs(90), |b| b["state"] == "done").await;
    assert!(done["attempts"].as_i64() >= Some(2), "{done}");
    let after = common::now_ms() * 1000 - gap.1;
    println!(
        "backfill done {} s after the line came back: {done}",
        after / 1_000_000
    );
    assert!(after < 120_000_000, "{} s", after / 1_000_000);
    gap_closed_and_plays(&s, &c, cam, gap, &done).await;
}

/// ONVIF: the simulated camera (`vigil sim --onvif`) is found by WS-Discovery and described with the
/// admin's credentials (make, model, two profiles with sizes and RTSP URIs); a forged answer pointing
/// elsewhere is set aside and never called; wrong credentials are said so; the profiles added as a camera
/// record; only admins may probe, and bad input is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onvif_discovery_finds_the_camera_and_its_profiles_are_added() {
    let sim = Sim::small(
        1,
        25,
        &[
            "--onvif",
            "--username",
            "onvif",
            "--password",
            "onvif-pass-1",
        ],
    );
    let _forger = forged_responder();
    let s = Server::start();
    let c = s.admin().await;
    let site = c.site("发现大厅", "service_hall", "360702").await;
    let found = wait_for(Duration::from_secs(20), || async {
        let r = c
            .post(
                "/api/v1/onvif/discover",
                json!({"site_id": site, "username": "onvif", "password": "onvif-pass-1", "timeout_ms": 1500}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let dev = r.body["devices"].as_array()?.iter().find(|d| {
            d["profiles"].as_array().is_some_and(|p| {
                p.iter().any(|p| {
                    p["stream_uri"]
                        .as_str()
                        .is_some_and(|u| u.contains(&format!(":{}/cam1", sim.port)))
                })
            })
        })?;
        Some((dev.clone(), r.body["rejected"].clone()))
    })
    .await;
    let (dev, rejected) = found.expect("the simulated camera discovered");
    println!("found: {dev}\nrejected: {rejected}");
    assert_eq!(dev["manufacturer"], "Vigil");
    assert_eq!(dev["ptz"], true);
    let profiles = dev["profiles"].as_array().expect("profiles");
    assert_eq!(profiles.len(), 2);
    assert_eq!(
        (profiles[0]["width"].as_u64(), profiles[1]["width"].as_u64()),
        (Some(320), Some(160))
    );
    assert!(
        rejected
            .as_array()
            .is_some_and(|r| r.iter().any(|x| x["why"]
                .as_str()
                .is_some_and(|w| w.contains("another host")))),
        "{rejected}"
    );

    // Wrong credentials: listed, with the reason, no profiles.
    let r = c
        .post(
            "/api/v1/onvif/discover",
            json!({"site_id": site, "username": "onvif", "password": "wrong", "timeout_ms": 1500}),
        )
        .await;
    let same = r.body["devices"]
        .as_array()
        .and_then(|d| d.iter().find(|x| x["address"] == dev["address"]).cloned());
    assert!(
        same.as_ref().is_some_and(|d| d["error"]
            .as_str()
            .is_some_and(|e| e.contains("credentials"))
            && d["profiles"] == json!([])),
        "{}",
        r.text
    );

    // The admin adds what was found: main and sub profiles, with the credentials.
    let cam = c
        .camera(
            json!({"site_id": site, "name": dev["name"], "main_url": profiles[0]["stream_uri"],
            "sub_url": profiles[1]["stream_uri"], "username": "onvif", "password": "onvif-pass-1"}),
        )
        .await;
    c.wait_state(cam, "online", Duration::from_secs(20))
        .await
        .expect("online");

    // Admins only; what is not an address or a sane wait is refused.
    let sup = Client::with_token(&s, &c.token("duty", "supervisor", &["360702"]).await);
    assert_eq!(
        sup.post("/api/v1/onvif/discover", json!({})).await.status,
        403
    );
    for bad in [
        json!({"interfaces": ["eth0"]}),
        json!({"timeout_ms": 60000}),
        json!({"what": 1}),
    ] {
        let r = c.post("/api/v1/onvif/discover", bad.clone()).await;
        assert!(r.status == 422 || r.status == 400, "{bad}: {}", r.text);
    }
}

/// A host on the network that answers every probe with a device elsewhere.
fn forged_responder() -> tokio_util::sync::CancellationToken {
    use socket2::{Domain, Protocol, Socket, Type};
    use std::net::{Ipv4Addr, SocketAddr};
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).expect("socket");
    s.set_reuse_address(true).expect("reuse");
    s.set_reuse_port(true).expect("reuse");
    s.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, 3702)).into())
        .expect("bind 3702");
    s.join_multicast_v4(&Ipv4Addr::new(239, 255, 255, 250), &Ipv4Addr::UNSPECIFIED)
        .expect("join");
    s.set_nonblocking(true).expect("nonblocking");
    let socket = tokio::net::UdpSocket::from_std(s.into()).expect("tokio socket");
    let stop = tokio_util::sync::CancellationToken::new();
    let done = stop.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 16 << 10];
        loop {
            let (n, from) = tokio::select! {
                r = socket.recv_from(&mut buf) => match r { Ok(x) => x, Err(_) => continue },
                _ = done.cancelled() => return,
            };
            let Ok(env) = vigil::xml::parse(&buf[..n]) else {
                continue;
            };
            let Some(id) = vigil::onvif::discovery::message_id(&env) else {
                continue;
            };
            let id = id.to_owned();
            let answer = vigil::onvif::discovery::probe_matches(
                &id,
                "urn:uuid:forged",
                "http://203.0.113.9/onvif/device_service",
            );
            let _ = socket.send_to(&answer, from).await;
        }
    });
    stop
}
