//! GB/T 28181 downward, through the real server and the real simulated device (`vigil sim --gb28181`):
//! registration with digest (and its refusal), a catalog of 16 channels in pages, binding to a site,
//! live PS over RTP over UDP and TCP (the device connecting, or the platform) into the hub, recorded and played back (ffprobe), H.265, and a
//! device that stops its keepalives going offline and coming back.

mod common;
use common::*;
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const PASSWORD: &str = "gb-secret-1";

/// A simulated device process.
struct Device {
    child: Child,
    id: String,
    /// The simulator's log (stderr).
    log: tempfile::NamedTempFile,
}

impl Device {
    fn start(sip_port: u16, id: &str, password: &str, extra: &[&str]) -> Device {
        let log = tempfile::NamedTempFile::new().expect("log file");
        let child = Command::new(BIN)
            .args(["sim", "--gb28181", "--platform"])
            .arg(format!("127.0.0.1:{sip_port}"))
            .args([
                "--device-id",
                id,
                "--password",
                password,
                "--keepalive",
                "1",
                "--expires",
                "120",
            ])
            .args([
                "--width",
                "320",
                "--height",
                "240",
                "--fps",
                "25",
                "--bitrate",
                "300",
                "--gop",
                "25",
            ])
            .args(extra)
            .env("RUST_LOG", "info,rsipstack=warn")
            .stdout(Stdio::null())
            .stderr(log.reopen().expect("log"))
            .spawn()
            .expect("spawn vigil sim --gb28181");
        Device {
            child,
            id: id.to_owned(),
            log,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    fn signal(&self, sig: rustix::process::Signal) {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).expect("pid");
        rustix::process::kill_process(pid, sig).expect("signal");
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        self.signal(rustix::process::Signal::CONT);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn platform(sip_port: u16, media: u16) -> Server {
    platform_with(sip_port, media, "")
}

fn platform_with(sip_port: u16, media: u16, extra: &str) -> Server {
    Server::start_with(&format!(
        "[gb28181]\nsip_listen = \"127.0.0.1:{sip_port}\"\npassword = \"{PASSWORD}\"\n\
         media_ports = \"{media}-{}\"\nkeepalive_s = 1\nidle_s = 2\n{extra}",
        media + 40
    ))
}

async fn device(c: &Client, id: &str) -> Option<Value> {
    let r = c.get("/api/v1/gb/devices").await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["devices"]
        .as_array()?
        .iter()
        .find(|d| d["id"] == id)
        .cloned()
}

/// Waits until the device is listed online with `channels` channels.
async fn registered(c: &Client, id: &str, channels: usize) -> Value {
    let found = wait_for(Duration::from_secs(30), || async {
        let d = device(c, id).await?;
        let n = d["channels"].as_array()?.len();
        (d["state"] == "online" && n == channels).then_some(d)
    })
    .await;
    match found {
        Some(d) => d,
        None => panic!(
            "device {id} with {channels} channels: {:?}",
            device(c, id).await
        ),
    }
}

async fn bind(c: &Client, id: &str, site: i64, transport: &str) -> Vec<i64> {
    let r = c
        .post(
            &format!("/api/v1/gb/devices/{id}/bind"),
            json!({"site_id": site, "media_transport": transport}),
        )
        .await;
    assert_eq!(r.status, 200, "bind: {}", r.text);
    r.body["camera_ids"]
        .as_array()
        .expect("ids")
        .iter()
        .filter_map(Value::as_i64)
        .collect()
}

async fn status(c: &Client, cam: i64) -> Value {
    c.get(&format!("/api/v1/cameras/{cam}/status")).await.body
}

async fn online(c: &Client, cam: i64) -> Value {
    let found = wait_for(Duration::from_secs(30), || async {
        let s = status(c, cam).await;
        (s["state"] == "online" && s["frames"].as_u64() > Some(10)).then_some(s)
    })
    .await;
    match found {
        Some(s) => s,
        None => panic!("camera {cam} online: {}", status(c, cam).await),
    }
}

/// Waits for `secs` of footage, downloads it as MP4 and returns ffprobe's duration.
async fn recorded(s: &Server, c: &Client, cam: i64, secs: f64) -> f64 {
    let span = recorded_span(c, cam, secs).await;
    let (duration, frames) = probe_footage(s, c, cam, span, &format!("gb-{cam}.mp4")).await;
    assert!(
        frames as f64 >= duration * 20.0,
        "{frames} frames in {duration} s"
    );
    duration
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_register_list_their_catalog_stream_and_record() {
    let (sip, media) = (free_port(), free_port());
    let s = platform(sip, media);
    let c = s.admin().await;

    // A wrong password is refused: the device never appears.
    let bad = Device::start(sip, "34020000001180000009", "wrong", &[]);
    let refused = wait_for(Duration::from_secs(30), || async {
        s.log()
            .contains("REGISTER with a wrong digest refused")
            .then_some(())
    })
    .await;
    assert!(refused.is_some(), "no refused REGISTER in the log");
    assert!(
        device(&c, &bad.id).await.is_none(),
        "a device with a wrong digest was listed"
    );
    drop(bad);

    // 16 channels, three per catalog MESSAGE: all of them arrive, named as the device names them.
    let nvr = Device::start(
        sip,
        "34020000001180000001",
        PASSWORD,
        &["--channels", "16", "--catalog-page", "3"],
    );
    let d = registered(&c, &nvr.id, 16).await;
    assert_eq!(d["site_id"], Value::Null, "a new device is pending");
    assert_eq!(d["manufacturer"], "Vigil");
    // DeviceStatus: its health, recording state and clock (the simulator's is the platform's).
    let st = wait_for(Duration::from_secs(10), || async {
        let d = device(&c, &nvr.id).await?;
        (d["device_status"]["status"] == "OK").then(|| d["device_status"].clone())
    })
    .await
    .expect("DeviceStatus answered");
    assert_eq!(st["record"], "ON");
    assert!(
        st["clock_skew_s"].as_i64().is_some_and(|s| s.abs() <= 2),
        "{st}"
    );
    let names: Vec<&str> = d["channels"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert!(
        names.contains(&"通道 1") && names.contains(&"通道 16"),
        "{names:?}"
    );

    // Bound to a site, its channels are cameras that record (UDP media).
    let site = c.site("国标接入大厅", "service_hall", "360702").await;
    let cams = bind(&c, &nvr.id, site, "udp").await;
    assert_eq!(cams.len(), 16);
    let listed = c.get("/api/v1/cameras").await.body;
    let cam = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == cams[0])
        .cloned()
        .unwrap();
    assert_eq!(cam["source"], "gb28181");
    assert_eq!(cam["name"], "通道 1");
    let st = online(&c, cams[0]).await;
    assert!(st["codec"].as_str().unwrap().starts_with("avc1"), "{st}");
    let duration = recorded(&s, &c, cams[0], 5.0).await;
    assert!(duration >= 4.5, "ffprobe duration {duration}");

    // TCP: the device connects to the platform's media port (RFC 4571 framing); H.265 over UDP.
    let tcp = Device::start(sip, "34020000001180000002", PASSWORD, &["--channels", "1"]);
    registered(&c, &tcp.id, 1).await;
    let tcp_cam = bind(&c, &tcp.id, site, "tcp").await[0];
    let hevc = Device::start(
        sip,
        "34020000001180000003",
        PASSWORD,
        &["--channels", "1", "--codec", "h265"],
    );
    registered(&c, &hevc.id, 1).await;
    let hevc_cam = bind(&c, &hevc.id, site, "udp").await[0];
    // TCP where the platform connects to the device (`a=setup:active` offered, the device listens).
    let active = Device::start(sip, "34020000001180000004", PASSWORD, &["--channels", "1"]);
    registered(&c, &active.id, 1).await;
    let active_cam = bind(&c, &active.id, site, "tcp_active").await[0];
    online(&c, tcp_cam).await;
    let st = online(&c, hevc_cam).await;
    assert!(
        st["codec"].as_str().unwrap().starts_with("hvc1")
            || st["codec"].as_str().unwrap().starts_with("hev1"),
        "{st}"
    );
    assert!(recorded(&s, &c, tcp_cam, 3.0).await >= 2.5);
    assert!(recorded(&s, &c, active_cam, 3.0).await >= 2.5);
    assert!(s.log().contains("connected to the device's media (TCP)"));
    assert!(recorded(&s, &c, hevc_cam, 3.0).await >= 2.5);

    // A device that stops its keepalives goes offline, its cameras with it; it comes back by itself.
    nvr.signal(rustix::process::Signal::STOP);
    wait_for(Duration::from_secs(15), || async {
        (device(&c, &nvr.id).await?["state"] == "offline").then_some(())
    })
    .await
    .expect("device offline after three missed keepalives");
    assert!(s.log().contains("device offline: three keepalives missed"));
    wait_for(Duration::from_secs(20), || async {
        (status(&c, cams[0]).await["state"] != "online").then_some(())
    })
    .await
    .expect("camera offline with its device");
    // ... and raises the camera-offline alarm; the channels nobody needs are idle, not alarmed.
    let alarmed = |active: &Value, cam: i64| {
        active.as_array().is_some_and(|l| {
            l.iter()
                .any(|a| a["kind"] == "camera_offline" && a["camera_ids"] == json!([cam]))
        })
    };
    let active = wait_for(Duration::from_secs(10), || async {
        let active = c.get("/api/v1/alarms?state=active").await.body;
        alarmed(&active, cams[0]).then_some(active)
    })
    .await
    .expect("a camera-offline alarm for the silent device's channel");
    assert!(
        !alarmed(&active, tcp_cam),
        "an online camera alarmed: {active}"
    );
    nvr.signal(rustix::process::Signal::CONT);
    registered(&c, &nvr.id, 16).await;
    online(&c, cams[0]).await;
}

/// Sends `datagrams` to `addr` from one socket; the answers that came back within `wait`.
async fn blast(addr: std::net::SocketAddr, datagrams: &[Vec<u8>], wait: Duration) -> Vec<String> {
    blast_from("127.0.0.1:0", addr, datagrams, wait).await
}

/// [`blast`] from a socket bound to `bind` (another loopback address plays another host).
async fn blast_from(
    bind: &str,
    addr: std::net::SocketAddr,
    datagrams: &[Vec<u8>],
    wait: Duration,
) -> Vec<String> {
    let sock = std::sync::Arc::new(tokio::net::UdpSocket::bind(bind).await.expect("bind"));
    // Answers are read while sending: hundreds of them would overflow the socket's receive buffer.
    let rx = sock.clone();
    let reader = tokio::spawn(async move {
        let mut answers = Vec::new();
        let mut buf = vec![0u8; 65_536];
        while let Ok(Ok(n)) = tokio::time::timeout(wait, rx.recv(&mut buf)).await {
            answers.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        answers
    });
    for d in datagrams {
        sock.send_to(d, addr).await.expect("send");
    }
    reader.await.expect("reader")
}

fn request(method: &str, from: &str, n: u32, body: &str) -> Vec<u8> {
    format!(
        "{method} sip:34020000002000000001@3402000000 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:5999;rport;branch=z9hG4bK-flood-{n}\r\n\
         From: <sip:{from}@3402000000>;tag=t{n}\r\nTo: <sip:34020000002000000001@3402000000>\r\n\
         Call-ID: flood-{n}@127.0.0.1\r\nCSeq: {n} {method}\r\nMax-Forwards: 70\r\n\
         Contact: <sip:{from}@127.0.0.1:5999>\r\nContent-Type: Application/MANSCDP+xml\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Garbage SIP, an INVITE flood, MESSAGEs of an unregistered device, wrong digests and PS garbage on
/// every media port: each gets a clear answer or is dropped, nothing is listed, and a recording camera
/// goes on. A stream nobody needs is invited when a viewer comes and closed (BYE) once they left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_devices_disturb_nothing_and_streams_follow_their_viewers() {
    let (sip, media) = (free_port(), free_port());
    let s = platform(sip, media);
    let c = s.admin().await;
    let site = c.site("国标接入大厅", "service_hall", "360702").await;
    let good = Device::start(sip, "34020000001180000001", PASSWORD, &["--channels", "2"]);
    registered(&c, &good.id, 2).await;
    let cams = bind(&c, &good.id, site, "udp").await;
    let before = online(&c, cams[0]).await["frames"].as_u64().unwrap();

    let addr: std::net::SocketAddr = format!("127.0.0.1:{sip}").parse().unwrap();
    let mut junk: Vec<Vec<u8>> = (0..300u32)
        .map(|i| (0..(i % 97 + 1)).map(|j| (i * 31 + j * 7) as u8).collect())
        .collect();
    junk.push(b"REGISTER sip:x SIP/2.0\r\nVia: nonsense\r\n\r\n".to_vec());
    assert!(blast(addr, &junk, Duration::from_millis(500))
        .await
        .iter()
        .all(|a| !a.contains("200 OK")));

    let invites: Vec<Vec<u8>> = (0..300)
        .map(|n| request("INVITE", "34020000001180000066", n, ""))
        .collect();
    let answers = blast(addr, &invites, Duration::from_secs(3)).await;
    let refused = answers
        .iter()
        .filter(|a| a.starts_with("SIP/2.0 403"))
        .count();
    // A flood may overflow the server's socket and lose some (UDP); every one answered is refused.
    let codes: Vec<&str> = answers.iter().filter_map(|a| a.get(8..11)).collect();
    assert!(
        refused > 0 && codes.iter().all(|c| *c == "403" || *c == "100"),
        "{refused} of 300 INVITEs refused: {codes:?}"
    );

    let keepalive = "<?xml version=\"1.0\"?><Notify><CmdType>Keepalive</CmdType><SN>1</SN><DeviceID>34020000001180000077</DeviceID></Notify>";
    let messages: Vec<Vec<u8>> = (0..50)
        .map(|n| request("MESSAGE", "34020000001180000077", 1000 + n, keepalive))
        .collect();
    let answers = blast(addr, &messages, Duration::from_secs(3)).await;
    assert!(
        !answers.is_empty() && answers.iter().all(|a| a.starts_with("SIP/2.0 403")),
        "{:?}",
        answers.first()
    );

    let registers: Vec<Vec<u8>> = (0..50)
        .map(|n| request("REGISTER", "34020000001180000088", 2000 + n, ""))
        .collect();
    let answers = blast(addr, &registers, Duration::from_secs(3)).await;
    assert!(
        !answers.is_empty() && answers.iter().all(|a| a.starts_with("SIP/2.0 401")),
        "{:?}",
        answers.first()
    );

    let garbage: Vec<Vec<u8>> = (0..2000u32)
        .map(|i| {
            [
                &[0x80u8, 96, 0, i as u8][..],
                &[0, 0, 1, 0xba, 0x44],
                &[0xff; 600],
            ]
            .concat()
        })
        .collect();
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for port in media..=media + 40 {
        for g in garbage.iter().take(50) {
            let _ = sock.send_to(g, ("127.0.0.1", port)).await;
        }
    }

    for id in [
        "34020000001180000066",
        "34020000001180000077",
        "34020000001180000088",
    ] {
        assert!(device(&c, id).await.is_none(), "{id} listed");
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = online(&c, cams[0]).await["frames"].as_u64().unwrap();
    assert!(
        after > before + 25,
        "the recording camera stalled: {before} -> {after}"
    );

    // The second channel records too; make it a live-only camera: no stream until someone watches.
    let r = c
        .patch(
            &format!("/api/v1/cameras/{}", cams[1]),
            json!({"record": false}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let idle = wait_for(Duration::from_secs(20), || async {
        let st = status(&c, cams[1]).await;
        (st["state"] == "idle").then_some(st)
    })
    .await;
    assert!(idle.is_some(), "not idle: {}", status(&c, cams[1]).await);
    let cookie = common::ws::cookie(&s, "admin", "admin-password-1").await;
    let mut ws = common::ws::connect(&s, cams[1], &cookie).await;
    let start = json!({"type": "mse", "codecs": ["avc1.42c00d", "avc1.640029"]}).to_string();
    use futures::SinkExt;
    ws.send(tokio_tungstenite::tungstenite::Message::text(start))
        .await
        .expect("start MSE");
    online(&c, cams[1]).await;
    drop(ws);
    wait_for(Duration::from_secs(20), || async {
        (status(&c, cams[1]).await["state"] == "idle").then_some(())
    })
    .await
    .expect("the stream closed after its viewer left");
    assert!(
        s.log().contains("GB/T 28181 stream closed (BYE)"),
        "no BYE in the log"
    );
}

/// Upward: a city Vigil registers to a province Vigil (the province's own GB/T 28181 platform plays the
/// superior), which queries its catalog, sees only the shared region's camera, INVITEs it and records
/// decodable PS; the city audits the province's view; a forged INVITE for an unshared camera gets 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_city_registers_up_and_the_province_records_its_shared_camera() {
    let (sip_p, media_p, sip_c) = (free_port(), free_port(), free_port());
    let province = platform(sip_p, media_p);
    let sim = Sim::small(2, 25, &[]);
    // The city's halls are seeded, so that its catalog has them when the province first asks.
    let city = Server::start_with(&format!(
        "[[seed.sites]]\nname = \"赣州政务大厅\"\nkind = \"service_hall\"\nregion_code = \"360702\"\n\
         cameras = [ {{ name = \"赣州窗口\", main_url = \"{}\", record = true }} ]\n\
         [[seed.sites]]\nname = \"南昌政务大厅\"\nkind = \"service_hall\"\nregion_code = \"360100\"\n\
         cameras = [ {{ name = \"南昌窗口\", main_url = \"{}\", record = false }} ]\n\
         [gb28181]\nsip_listen = \"127.0.0.1:{sip_c}\"\nid = \"36070000002000000001\"\ndomain = \"3607000000\"\n\
         media_ports = \"{}-{}\"\n\
         [[gb28181.upstream]]\nname = \"province\"\nserver = \"127.0.0.1:{sip_p}\"\n\
         server_id = \"34020000002000000001\"\ndomain = \"3402000000\"\nlocal_id = \"36070000002000000001\"\n\
         password = \"{PASSWORD}\"\nexpires_s = 60\nkeepalive_s = 1\nregion_codes = [\"360700\"]\n",
        sim.url(1),
        sim.url(2),
        media_p + 100,
        media_p + 110
    ));
    let cc = city.admin().await;
    let cams = cc.get("/api/v1/cameras").await.body;
    let id_of = |name: &str| {
        cams.as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .and_then(|c| c["id"].as_i64())
            .unwrap()
    };
    let (shared, hidden) = (id_of("赣州窗口"), id_of("南昌窗口"));
    online(&cc, shared).await;

    let pc = province.admin().await;
    let d = registered(&pc, "36070000002000000001", 1).await;
    // The city's console shows its link up, without its password.
    let ups = cc.get("/api/v1/gb/upstreams").await;
    assert_eq!(ups.status, 200, "{}", ups.text);
    let up = &ups.body["upstreams"][0];
    assert_eq!(
        (up["name"].as_str(), up["registered"].as_bool()),
        (Some("province"), Some(true)),
        "{up}"
    );
    assert!(
        up["last_keepalive"].is_i64() || up["registered_at"].is_i64(),
        "{up}"
    );
    assert!(
        !ups.text.contains(PASSWORD),
        "a link's password left the server"
    );
    let ch = &d["channels"][0];
    assert_eq!(ch["name"], "赣州窗口");
    assert_eq!(ch["civil_code"], "360702");
    let site = pc.site("省级监控", "service_hall", "360000").await;
    let cams = bind(&pc, "36070000002000000001", site, "udp").await;
    online(&pc, cams[0]).await;
    assert!(recorded(&province, &pc, cams[0], 3.0).await >= 2.5);
    assert!(
        audited(&cc, "live.start", Some("gb28181:province"), "360702").await,
        "no audit row of the province's view"
    );

    // The province plays back the city's own recordings of the camera: RecordInfo answered from the
    // city's index, a Playback INVITE answered by replaying them as PS, at 2x by MANSRTSP.
    let record = device_record(&pc, cams[0], 7_000).await;
    let range = (record.0 + 1_000, record.0 + 5_000);
    let (frames, span, _) = device_playback(&province, cams[0], range, 2.0).await;
    assert!(
        (95..=130).contains(&frames),
        "{frames} frames of 4 s of the city's footage"
    );
    assert!(
        (1.6..=3.2).contains(&span),
        "timestamps span {span} s for 4 s at 2x"
    );
    assert!(
        audited(&cc, "playback", Some("gb28181:province"), "360702").await,
        "no audit row of the province's playback"
    );

    // Pretending to be the province, ask the city for the camera it does not share; then, from another
    // host, for the one it shares.
    let addr: std::net::SocketAddr = format!("127.0.0.1:{sip_c}").parse().unwrap();
    let answers = blast(
        addr,
        &[forged_invite(&format!("3601000000131{hidden:07}"))],
        Duration::from_secs(2),
    )
    .await;
    assert!(
        answers.iter().any(|a| a.starts_with("SIP/2.0 404")),
        "{answers:?}"
    );
    let elsewhere = format!("3607020000131{shared:07}");
    let answers = blast_from(
        "127.0.0.2:0",
        addr,
        &[forged_invite(&elsewhere)],
        Duration::from_secs(2),
    )
    .await;
    assert!(
        answers.iter().any(|a| a.starts_with("SIP/2.0 403")),
        "{answers:?}"
    );
    assert!(city
        .log()
        .contains("superior's name from another address refused"));
}

/// An INVITE in the province's name for a city camera, its SDP asking for the video at 127.0.0.1.
fn forged_invite(channel: &str) -> Vec<u8> {
    let sdp = "v=0\r\no=x 0 0 IN IP4 127.0.0.1\r\ns=Play\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
               m=video 9 RTP/AVP 96\r\na=rtpmap:96 PS/90000\r\ny=0000000001\r\n";
    format!(
        "INVITE sip:{channel}@3607000000 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;rport;branch=z9hG4bK-{channel}\r\n\
         From: <sip:34020000002000000001@3402000000>;tag=f1\r\nTo: <sip:{channel}@3607000000>\r\n\
         Call-ID: forged-{channel}@127.0.0.1\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n\
         Contact: <sip:34020000002000000001@127.0.0.1:5999>\r\nContent-Type: APPLICATION/SDP\r\n\
         Content-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    )
    .into_bytes()
}

/// The first and last presentation time (seconds) of an MP4's video packets, and their count.
fn packet_times(path: &std::path::Path) -> (f64, f64, usize) {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v", "-show_entries"])
        .args(["packet=pts_time", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .expect("ffprobe");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let times: Vec<f64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().trim_end_matches(',').parse().ok())
        .collect();
    let first = times.iter().copied().fold(f64::MAX, f64::min);
    let last = times.iter().copied().fold(f64::MIN, f64::max);
    (first, last, times.len())
}

/// Whether the audit has a row of `action` (by `actor`, when given) in `region`.
async fn audited(c: &Client, action: &str, actor: Option<&str>, region: &str) -> bool {
    let audit = c.get(&format!("/api/v1/audit?action={action}")).await.body;
    let rows = audit["items"]
        .as_array()
        .or(audit.as_array())
        .cloned()
        .unwrap_or_default();
    let found = rows
        .iter()
        .any(|r| r["region_code"] == region && actor.is_none_or(|a| r["actor"] == a));
    if !found {
        println!("audit rows of {action}: {audit}");
    }
    found
}

/// The first record a device camera's device-recordings lists over the last ten minutes, once it is at
/// least `min_ms` long: its start and end (Unix ms).
async fn device_record(c: &Client, cam: i64, min_ms: i64) -> (i64, i64) {
    let now = common::now_ms();
    let listed = format!(
        "/api/v1/cameras/{cam}/device-recordings?start={}&end={}",
        rfc_us((now - 600_000) * 1000),
        rfc_us((now + 600_000) * 1000)
    );
    let t = |v: &Value| {
        chrono::DateTime::parse_from_rfc3339(v.as_str()?)
            .ok()
            .map(|d| d.timestamp_millis())
    };
    wait_for(Duration::from_secs(40), || async {
        let r = c.get(&listed).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let rec = r.body["records"].as_array()?.first()?.clone();
        let (a, b) = (t(&rec["start"])?, t(&rec["end"])?);
        (b - a >= min_ms).then_some((a, b))
    })
    .await
    .unwrap_or_else(|| panic!("{min_ms} ms of camera {cam}'s footage on its device"))
}

/// Plays `[start, end]` (Unix ms) of a device camera's own footage over the device-playback socket at
/// `scale`, until the server says it ended: the frames received, the span of their timestamps (s) and
/// the wall time between the first and the last fragment (s).
async fn device_playback(
    s: &Server,
    cam: i64,
    (start, end): (i64, i64),
    scale: f64,
) -> (usize, f64, f64) {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::{client::IntoClientRequest, Message};
    let url = format!(
        "ws://{}/api/v1/cameras/{cam}/device-playback?start={}&end={}",
        s.addr,
        rfc_us(start * 1000),
        rfc_us(end * 1000)
    );
    let cookie = common::ws::cookie(s, "admin", common::ADMIN_PASSWORD).await;
    let mut req = url.into_client_request().expect("request");
    req.headers_mut().insert("cookie", cookie.parse().unwrap());
    let origin = format!("http://{}", s.addr);
    req.headers_mut().insert("origin", origin.parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("device playback socket");
    ws.send(Message::text(r#"{"type":"mse","codecs":[]}"#))
        .await
        .unwrap();
    let speed = json!({"type": "speed", "scale": scale}).to_string();
    ws.send(Message::text(speed)).await.unwrap();
    let mut mp4 = Vec::new();
    let (mut steered, mut ended) = (false, false);
    let (mut first, mut last) = (None, None);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    while let Ok(Some(Ok(m))) = tokio::time::timeout_at(deadline, ws.next()).await {
        match m {
            Message::Binary(b) => {
                let at = std::time::Instant::now();
                if !mp4.is_empty() {
                    first.get_or_insert(at);
                    last = Some(at);
                }
                mp4.extend_from_slice(&b);
            }
            Message::Text(t) => {
                let v: Value = serde_json::from_str(t.as_str()).unwrap();
                assert_ne!(v["type"], "error", "{v}");
                steered |= v["type"] == "steered" && v["command"] == "speed";
                if v["type"] == "end" {
                    ended = true;
                    break;
                }
            }
            Message::Close(_) => break,
            _ => {}
        }
    }
    assert!(steered, "the speed command was not passed on");
    assert!(ended, "the end of the footage was not told");
    let wall = last.unwrap().duration_since(first.unwrap()).as_secs_f64();
    let path = s
        .data_dir()
        .join(format!("device-playback-{cam}-{start}.mp4"));
    std::fs::write(&path, &mp4).unwrap();
    let (a, b, frames) = packet_times(&path);
    println!("device playback of camera {cam} at {scale}x: {frames} frames, timestamps over {:.2} s, received in {wall:.2} s", b - a);
    (frames, b - a, wall)
}

/// Device footage: RecordInfo lists what the simulated NVR holds, and a Playback INVITE of 10 s of it,
/// sped up to 4x by MANSRTSP, arrives in about a quarter of the time as fragments whose timestamps span
/// a quarter of the footage (so a player shows it at 4x) with every frame of it; the view is audited
/// with its region. A camera that is not a device's channel has no device footage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_footage_is_listed_and_plays_at_four_times_speed() {
    let (sip, media) = (free_port(), free_port());
    let s = platform(sip, media);
    let c = s.admin().await;
    let nvr = Device::start(sip, "34020000001180000021", PASSWORD, &["--channels", "1"]);
    registered(&c, &nvr.id, 1).await;
    let site = c.site("国标回放大厅", "service_hall", "360702").await;
    // Not recorded by Vigil: this footage is on the device's disk only.
    let r = c
        .post(
            &format!("/api/v1/gb/devices/{}/bind", nvr.id),
            json!({"site_id": site, "record": false}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let cam = r.body["camera_ids"][0].as_i64().expect("camera");
    // Not recorded, nobody watching: idle (the stream opens on demand), not offline, no alarm.
    let idle = wait_for(Duration::from_secs(10), || async {
        (status(&c, cam).await["state"] == "idle").then_some(())
    })
    .await;
    assert!(idle.is_some(), "{}", status(&c, cam).await);
    let active = c.get("/api/v1/alarms?state=active").await.body;
    assert!(
        !active
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["camera_ids"] == json!([cam])),
        "an idle channel raised an alarm: {active}"
    );

    let record = device_record(&c, cam, 14_000).await;

    let (start, end) = (record.0 + 2_000, record.0 + 12_000);
    let (frames, span, wall) = device_playback(&s, cam, (start, end), 4.0).await;
    // 10 s of 25 fps footage from the keyframe before its start: every frame of it, timestamps scaled.
    assert!((245..=280).contains(&frames), "{frames} frames");
    assert!(
        (2.2..=3.4).contains(&span),
        "timestamps span {span} s for 10 s of footage at 4x"
    );
    assert!(wall < 6.0, "10 s of footage at 4x took {wall} s");
    assert!(
        audited(&c, "playback.device", None, "360702").await,
        "no audit row of the device playback"
    );
    let rtsp = c
        .camera(json!({"site_id": site, "name": "RTSP", "main_url": "rtsp://127.0.0.1:1/x", "record": false}))
        .await;
    let r = c
        .get(&format!(
            "/api/v1/cameras/{rtsp}/device-recordings?start={}&end={}",
            rfc_us(start * 1000),
            rfc_us(end * 1000)
        ))
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
}

/// A site's line drops for 60 s (`vigil sim --outage`) while its NVR keeps recording: the camera comes
/// back by itself, the gap is fetched back from the NVR (edge retrieval) within two minutes of the line's
/// return, marked as backfilled, audited, and the range plays whole in ffprobe. Another site's NVR lost
/// power too (`--outage-unrecorded`): it has nothing for its gap, which stays a gap, said so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn footage_a_dropped_line_lost_is_fetched_back_from_the_nvr() {
    let (sip, media) = (free_port(), free_port());
    let s = platform_with(sip, media, "[edge]\nscan_interval_s = 2\nsettle_s = 4\n");
    let c = s.admin().await;
    let nvr = Device::start(
        sip,
        "34020000001180000031",
        PASSWORD,
        &["--channels", "1", "--outage", "16:60"],
    );
    let dark = Device::start(
        sip,
        "34020000001180000032",
        PASSWORD,
        &[
            "--channels",
            "1",
            "--outage",
            "16:12",
            "--outage-unrecorded",
        ],
    );
    registered(&c, &nvr.id, 1).await;
    registered(&c, &dark.id, 1).await;
    let site = c.site("断网大厅", "service_hall", "360702").await;
    let dark_site = c.site("停电大厅", "service_hall", "360700").await;
    let cam = bind(&c, &nvr.id, site, "udp").await[0];
    let dark_cam = bind(&c, &dark.id, dark_site, "udp").await[0];
    online(&c, cam).await;
    online(&c, dark_cam).await;

    // The line comes back after 60 s; Vigil finds the gap once it records again.
    let row = backfill(&c, cam, Duration::from_secs(120), |b| {
        b["gap_s"].as_f64() > Some(0.0)
    })
    .await;
    let gap = (us_of(&row["start"]), us_of(&row["end"]));
    println!("gap found: {row}");
    assert!(
        (50e6..80e6).contains(&((gap.1 - gap.0) as f64)),
        "a gap of {} s for a 60 s outage",
        (gap.1 - gap.0) / 1_000_000
    );
    assert!(
        row["source"]
            .as_str()
            .is_some_and(|s| s.starts_with(&format!("gb28181://{}/", nvr.id))),
        "{row}"
    );

    // Fetched back within two minutes of the line's return: no gap left around it.
    let done = backfill(&c, cam, Duration::from_secs(120), |b| b["state"] == "done").await;
    let back_after = common::now_ms() * 1000 - gap.1;
    println!(
        "backfill done {} s after the line came back: {done}",
        back_after / 1_000_000
    );
    assert!(
        back_after < 120_000_000,
        "{} s after the line's return",
        back_after / 1_000_000
    );
    assert!(
        done["fetched_s"].as_f64() >= Some(done["gap_s"].as_f64().unwrap_or(0.0) - 1.0),
        "{done}"
    );
    gap_closed_and_plays(&s, &c, cam, gap, &done).await;
    assert!(audited(&c, "backfill", Some("edge"), "360702").await);

    // The NVR without power has nothing of its outage: that part stays a gap. When Vigil reconnected later
    // than the NVR's power came back, the NVR does hold those last seconds, and they are fetched ("done");
    // otherwise the row says it has nothing.
    let none = backfill(&c, dark_cam, Duration::from_secs(60), |b| {
        b["state"] == "nothing" || b["state"] == "done"
    })
    .await;
    if none["state"] == "nothing" {
        assert!(
            none["detail"]
                .as_str()
                .is_some_and(|d| d.contains("no footage")),
            "{none}"
        );
    }
    let r = c
        .get(&format!(
            "/api/v1/cameras/{dark_cam}/recordings?start={}&end={}",
            none["start"]
                .as_str()
                .unwrap_or_default()
                .replace('+', "%2B"),
            none["end"].as_str().unwrap_or_default().replace('+', "%2B")
        ))
        .await;
    let covered: i64 = r.body["spans"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|x| us_of(&x["end"]) - us_of(&x["start"]))
                .sum()
        })
        .unwrap_or(0);
    assert!(
        us_of(&none["end"]) - us_of(&none["start"]) - covered >= 10_000_000,
        "the powerless 12 s should stay a gap: {none} {}",
        r.text
    );
    assert!(audited(&c, "backfill", Some("edge"), "360700").await);

    // A caller of another region sees neither the rows nor the camera's.
    let other = c.token("other-city", "supervisor", &["360100"]).await;
    let o = Client::with_token(&s, &other);
    assert_eq!(
        o.get("/api/v1/backfills").await.body["backfills"],
        json!([])
    );
    assert_eq!(
        o.get(&format!("/api/v1/backfills?camera_id={cam}"))
            .await
            .status,
        404
    );
}

/// PTZ through the device (GB/T 28181 device control): a supervisor's move reaches the dome and is
/// stopped by itself after its duration, presets are set and called; an investigator, another region and
/// an RTSP camera are refused, bad values are errors, a flood is cut at the rate limit, and it is audited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ptz_reaches_the_dome_and_a_move_stops_by_itself() {
    let (sip, media) = (free_port(), free_port());
    let s = platform(sip, media);
    let c = s.admin().await;
    let dome = Device::start(sip, "34020000001180000041", PASSWORD, &["--channels", "1"]);
    registered(&c, &dome.id, 1).await;
    let site = c.site("云台大厅", "service_hall", "360702").await;
    let cam = bind(&c, &dome.id, site, "udp").await[0];
    let listed = c.get("/api/v1/cameras").await.body;
    let entry = listed
        .as_array()
        .and_then(|l| l.iter().find(|x| x["id"] == cam).cloned());
    assert_eq!(entry.map(|e| e["ptz"].clone()), Some(json!(true)));

    let sup = Client::with_token(&s, &c.token("duty", "supervisor", &["360702"]).await);
    let path = format!("/api/v1/cameras/{cam}/ptz");
    let r = sup
        .post(
            &path,
            json!({"action": "move", "pan": 0.5, "tilt": -1.0, "duration_ms": 600}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let seen = |what: &'static str| {
        let dome = &dome;
        async move {
            wait_for(Duration::from_secs(10), || async {
                dome.log().contains(what).then_some(())
            })
            .await
        }
    };
    assert!(
        seen("cmd=Move { pan: 0.50").await.is_some(),
        "{}",
        dome.log()
    );
    // Nobody said stop: the server does, after the move's 600 ms.
    assert!(seen("cmd=Stop").await.is_some(), "{}", dome.log());
    for op in ["set", "goto"] {
        let r = sup
            .post(
                &path,
                json!({"action": "preset", "preset": 3, "preset_op": op}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    assert!(
        seen("cmd=Preset { op: Set, number: 3 }").await.is_some(),
        "{}",
        dome.log()
    );
    assert!(
        seen("cmd=Preset { op: Goto, number: 3 }").await.is_some(),
        "{}",
        dome.log()
    );

    // Who may not, and what is not a command.
    let inv = Client::with_token(&s, &c.token("inv", "investigator", &["360702"]).await);
    assert_eq!(inv.post(&path, json!({"action": "stop"})).await.status, 403);
    let other = Client::with_token(&s, &c.token("far", "supervisor", &["360100"]).await);
    assert_eq!(
        other.post(&path, json!({"action": "stop"})).await.status,
        404
    );
    for bad in [
        json!({"action": "move", "pan": 2.0}),
        json!({"action": "move"}),
        json!({"action": "preset", "preset": 0}),
        json!({"action": "spin"}),
        json!({"action": "move", "pan": 1.0, "duration_ms": 60000}),
    ] {
        let r = sup.post(&path, bad.clone()).await;
        assert_eq!(r.status, 422, "{bad}: {}", r.text);
    }
    let rtsp = c
        .camera(json!({"site_id": site, "name": "枪机", "main_url": "rtsp://127.0.0.1:9/x", "record": false}))
        .await;
    let r = sup
        .post(
            &format!("/api/v1/cameras/{rtsp}/ptz"),
            json!({"action": "stop"}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);

    // A flood: cut at ten a second, the rest refused at once; the dome answers again a second later.
    let mut codes = Vec::new();
    for _ in 0..30 {
        codes.push(sup.post(&path, json!({"action": "stop"})).await.status);
    }
    assert!(codes.contains(&429), "{codes:?}");
    assert!(
        codes.iter().filter(|c| **c == 200).count() <= 10,
        "{codes:?}"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(sup.post(&path, json!({"action": "stop"})).await.status, 200);
    assert!(audited(&c, "ptz", None, "360702").await);
}
