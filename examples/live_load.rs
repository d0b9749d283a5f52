//! Load generator for `scripts/bench-live`: N MSE viewers and M WebRTC viewers (str0m clients in RTP
//! mode) of one camera, for a number of seconds. Prints one JSON line: frames received per viewer.
//!
//! `cargo run --release --example live_load -- URL COOKIE MSE RTC SECONDS`
//! (URL: `ws://HOST/api/v1/cameras/ID/live?stream=main`, COOKIE: `vigil_session=...`).

use futures::{SinkExt, StreamExt};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};
use str0m::change::SdpAnswer;
use str0m::media::{Direction, MediaKind};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(url: &str, cookie: &str) -> anyhow::Result<Ws> {
    let mut req = url.into_client_request()?;
    req.headers_mut().insert("cookie", cookie.parse()?);
    let (ws, _) = tokio_tungstenite::connect_async(req).await?;
    Ok(ws)
}

async fn mse_viewer(
    url: String,
    cookie: String,
    frames: Arc<AtomicU64>,
    end: Instant,
) -> anyhow::Result<()> {
    let mut ws = connect(&url, &cookie).await?;
    ws.send(Message::text(r#"{"type":"mse","codecs":["avc1.640029"]}"#))
        .await?;
    while Instant::now() < end {
        match tokio::time::timeout(Duration::from_secs(2), ws.next()).await {
            Ok(Some(Ok(Message::Binary(b)))) if b.get(4..8) == Some(b"moof") => {
                frames.fetch_add(1, Relaxed);
            }
            Ok(Some(Ok(_))) => {}
            Ok(_) => break,
            Err(_) => {}
        }
    }
    Ok(())
}

async fn rtc_viewer(
    url: String,
    cookie: String,
    frames: Arc<AtomicU64>,
    end: Instant,
) -> anyhow::Result<()> {
    let mut rtc = Rtc::builder().set_rtp_mode(true).build(Instant::now());
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
    let local = sock.local_addr()?;
    rtc.add_local_candidate(Candidate::host(local, "udp")?);
    let mut api = rtc.sdp_api();
    api.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
    let (offer, pending) = api.apply().ok_or_else(|| anyhow::anyhow!("no offer"))?;
    let mut ws = connect(&url, &cookie).await?;
    let msg = serde_json::json!({"type": "webrtc/offer", "sdp": offer.to_sdp_string()});
    ws.send(Message::text(msg.to_string())).await?;
    let answer = loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => {
                let v: serde_json::Value = serde_json::from_str(t.as_str())?;
                if v["type"] == "webrtc/answer" {
                    break v["sdp"].as_str().unwrap_or("").to_owned();
                }
                anyhow::bail!("unexpected {v}");
            }
            Some(Ok(_)) => continue,
            _ => anyhow::bail!("socket closed before the answer"),
        }
    };
    rtc.sdp_api()
        .accept_answer(pending, SdpAnswer::from_sdp_string(&answer)?)?;
    let mut buf = vec![0u8; 2048];
    while Instant::now() < end {
        let timeout = loop {
            match rtc.poll_output()? {
                Output::Timeout(t) => break t,
                Output::Transmit(t) => {
                    let _ = sock.send_to(&t.contents, t.destination).await;
                }
                Output::Event(Event::RtpPacket(p)) => {
                    if p.header.marker {
                        frames.fetch_add(1, Relaxed);
                    }
                }
                Output::Event(_) => {}
            }
        };
        let wait = timeout
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(500));
        tokio::select! {
            r = sock.recv_from(&mut buf) => {
                let (n, source) = r?;
                let Ok(contents) = buf[..n].try_into() else { continue };
                rtc.handle_input(Input::Receive(Instant::now(), Receive { proto: Protocol::Udp, source, destination: local, contents }))?;
            }
            _ = tokio::time::sleep(wait) => rtc.handle_input(Input::Timeout(Instant::now()))?,
        }
    }
    drop(ws);
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 6 {
        anyhow::bail!("usage: live_load URL COOKIE MSE RTC SECONDS");
    }
    str0m::crypto::from_feature_flags().install_process_default();
    let (url, cookie) = (args[1].clone(), args[2].clone());
    let (mse, rtc): (usize, usize) = (args[3].parse()?, args[4].parse()?);
    let seconds: u64 = args[5].parse()?;
    let end = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    let mut counters = Vec::new();
    for i in 0..mse + rtc {
        let c = Arc::new(AtomicU64::new(0));
        counters.push((i < mse, c.clone()));
        let (u, k) = (url.clone(), cookie.clone());
        tasks.push(tokio::spawn(async move {
            let r = if i < mse {
                mse_viewer(u, k, c, end).await
            } else {
                rtc_viewer(u, k, c, end).await
            };
            if let Err(e) = r {
                eprintln!("viewer {i}: {e}");
            }
        }));
        if i % 50 == 49 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    for t in tasks {
        let _ = t.await;
    }
    let summary = |mse_kind: bool| {
        let v: Vec<u64> = counters
            .iter()
            .filter(|(k, _)| *k == mse_kind)
            .map(|(_, c)| c.load(Relaxed))
            .collect();
        let min = v.iter().copied().min().unwrap_or(0);
        let avg = if v.is_empty() {
            0.0
        } else {
            v.iter().sum::<u64>() as f64 / v.len() as f64
        };
        serde_json::json!({"viewers": v.len(), "min_frames": min, "avg_frames": avg})
    };
    println!(
        "{}",
        serde_json::json!({"seconds": seconds, "mse": summary(true), "webrtc": summary(false)})
    );
    Ok(())
}
