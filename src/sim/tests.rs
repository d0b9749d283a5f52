//! Simulator tests over real sockets, with a minimal RTSP client (no external tools).
//! They need the GStreamer plugins `vigil` depends on (base, good, ugly, rtsp-server).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use super::*;

/// Port 0: each test gets a free port, so tests can run in parallel.
fn opts() -> SimOptions {
    SimOptions {
        cameras: 2,
        listen: "127.0.0.1:0".parse().expect("literal address"),
        width: 320,
        height: 180,
        gop: 5,
        ..SimOptions::default()
    }
}

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn header_values(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

fn connect(addr: SocketAddr) -> BufReader<TcpStream> {
    let stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    BufReader::new(stream)
}

fn describe(conn: &mut BufReader<TcpStream>, url: &str, auth: Option<&str>) -> Response {
    let auth = auth
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    let request =
        format!("DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\n{auth}\r\n");
    conn.get_mut().write_all(request.as_bytes()).expect("send");
    let mut line = String::new();
    conn.read_line(&mut line).expect("status line");
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    let mut headers = Vec::new();
    loop {
        line.clear();
        conn.read_line(&mut line).expect("header");
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    let len = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    conn.read_exact(&mut body).expect("body");
    Response {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

#[test]
fn serves_every_mount_in_both_modes_and_codecs() {
    for (codec, shared_encoder, rtpmap) in [
        (SimCodec::H264, false, "H264/90000"),
        (SimCodec::H265, false, "H265/90000"),
        (SimCodec::H264, true, "H264/90000"),
        (SimCodec::H265, true, "H265/90000"),
    ] {
        let sim = SimServer::start(SimOptions {
            codec,
            shared_encoder,
            ..opts()
        })
        .expect("start");
        for n in 1..=2 {
            let mut conn = connect(sim.local_addr());
            let r = describe(&mut conn, &sim.url(n), None);
            assert_eq!(r.status, 200, "{codec} shared={shared_encoder} cam{n}");
            assert!(r.body.contains(rtpmap), "{}", r.body);
        }
        let mut conn = connect(sim.local_addr());
        assert_eq!(describe(&mut conn, &sim.url(3), None).status, 404);
        sim.stop();
    }
}

#[test]
fn credentials_are_required_when_configured() {
    let sim = SimServer::start(SimOptions {
        username: Some("admin".into()),
        password: Some("s3cret".into()),
        ..opts()
    })
    .expect("start");
    let mut conn = connect(sim.local_addr());
    let r = describe(&mut conn, &sim.url(1), None);
    assert_eq!(r.status, 401);
    let offered = r.header_values("WWW-Authenticate").join(" | ");
    assert!(
        offered.contains("Basic") && offered.contains("Digest"),
        "{offered}"
    );

    // "admin:wrong" and "admin:s3cret" in base64.
    let mut conn = connect(sim.local_addr());
    assert_eq!(
        describe(&mut conn, &sim.url(1), Some("Basic YWRtaW46d3Jvbmc=")).status,
        401
    );
    let mut conn = connect(sim.local_addr());
    assert_eq!(
        describe(&mut conn, &sim.url(2), Some("Basic YWRtaW46czNjcmV0")).status,
        200
    );
}

#[test]
fn stop_disconnects_clients_and_the_port_can_be_reused() {
    let sim = SimServer::start(opts()).expect("start");
    let addr = sim.local_addr();
    let mut conn = connect(addr);
    assert_eq!(describe(&mut conn, &sim.url(1), None).status, 200);

    sim.stop();
    let mut rest = Vec::new();
    // EOF (or a reset): the connection was closed by the server, not left hanging.
    let closed = matches!(conn.read_to_end(&mut rest), Ok(0) | Err(_));
    assert!(closed, "connection still open after stop");
    assert!(
        TcpStream::connect(addr).is_err(),
        "still listening after stop"
    );

    let again = SimServer::start(SimOptions {
        listen: addr,
        ..opts()
    })
    .expect("restart on the same port");
    let mut conn = connect(addr);
    assert_eq!(describe(&mut conn, &again.url(1), None).status, 200);
}

#[test]
fn a_port_in_use_is_an_error_and_servers_coexist() {
    let first = SimServer::start(opts()).expect("first");
    let second = SimServer::start(opts()).expect("second, on another port");
    assert_ne!(first.local_addr(), second.local_addr());

    let clash = SimServer::start(SimOptions {
        listen: first.local_addr(),
        ..opts()
    });
    assert!(matches!(clash, Err(SimError::Bind { .. })), "{clash:?}");

    for sim in [&first, &second] {
        let mut conn = connect(sim.local_addr());
        assert_eq!(describe(&mut conn, &sim.url(2), None).status, 200);
    }
}

#[test]
fn invalid_options_are_rejected() {
    for bad in [
        SimOptions {
            cameras: 0,
            ..opts()
        },
        SimOptions {
            width: 641,
            ..opts()
        },
        SimOptions { fps: 0, ..opts() },
        SimOptions {
            username: Some("u".into()),
            ..opts()
        },
    ] {
        assert!(matches!(
            SimServer::start(bad),
            Err(SimError::InvalidOptions(_))
        ));
    }
}

#[test]
fn debug_redacts_the_password_and_codecs_parse() {
    let opts = SimOptions {
        password: Some("hunter2".into()),
        ..SimOptions::default()
    };
    assert!(!format!("{opts:?}").contains("hunter2"));
    assert_eq!("hevc".parse::<SimCodec>().ok(), Some(SimCodec::H265));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_alongside_tokio() {
    // start() and stop() block briefly; async callers keep them off the reactor threads.
    let sim = tokio::task::spawn_blocking(|| SimServer::start(opts()))
        .await
        .expect("join")
        .expect("start");
    let url = sim.url(1);
    let mut stream = tokio::net::TcpStream::connect(sim.local_addr())
        .await
        .expect("connect");
    let request = format!("OPTIONS {url} RTSP/1.0\r\nCSeq: 1\r\n\r\n");
    tokio::io::AsyncWriteExt::write_all(&mut stream, request.as_bytes())
        .await
        .expect("send");
    let mut buf = [0u8; 12];
    tokio::io::AsyncReadExt::read_exact(&mut stream, &mut buf)
        .await
        .expect("reply");
    assert_eq!(&buf, b"RTSP/1.0 200");
    tokio::task::spawn_blocking(move || sim.stop())
        .await
        .expect("stop");
}
