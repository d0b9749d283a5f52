//! The latency a relay adds, for `scripts/bench-federation`: one MSE viewer of a camera at the server that
//! records it (a city) and one of the same camera relayed by another (the province). Each fragment's
//! media bytes (its `mdat`) are the same frame on both sides, so a frame is matched by their hash and the
//! relay's added latency is its arrival at the province's viewer minus its arrival at the city's. The
//! first seconds are left out: each viewer starts with the frames its server kept since the last keyframe,
//! sent at once, whose arrival says nothing of the path.
//! Prints one JSON line: frames seen on each side, frames matched, min / p50 / p99 / max added
//! milliseconds.
//! Exits 1 when fewer than 90 % of the city's frames reached the province (a figure over lost frames is
//! no figure).
//!
//! `cargo run --release --example relay_latency -- CITY_URL CITY_COOKIE PROVINCE_URL PROVINCE_COOKIE SECONDS`
//! (URLs: `ws://HOST/api/v1/cameras/ID/live?stream=main`, cookies: `vigil_session=...`).

use futures::{SinkExt, StreamExt};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

/// The `mdat` payload of a fragment (`moof` + `mdat` in one message), when there is one.
fn mdat(b: &[u8]) -> Option<&[u8]> {
    let mut at = 0usize;
    while at + 8 <= b.len() {
        let size = u32::from_be_bytes(b[at..at + 4].try_into().ok()?) as usize;
        if size < 8 || at + size > b.len() {
            return None;
        }
        if &b[at + 4..at + 8] == b"mdat" {
            return Some(&b[at + 8..at + size]);
        }
        at += size;
    }
    None
}

/// Reads one viewer's fragments until `end`, sending (side, hash, arrival) for each.
async fn viewer(
    side: usize,
    url: String,
    cookie: String,
    end: Instant,
    out: mpsc::UnboundedSender<(usize, [u8; 32], Instant)>,
) -> anyhow::Result<()> {
    let mut req = url.into_client_request()?;
    req.headers_mut().insert("cookie", cookie.parse()?);
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await?;
    ws.send(Message::text(r#"{"type":"mse","codecs":["avc1.640029"]}"#))
        .await?;
    while Instant::now() < end {
        match tokio::time::timeout(Duration::from_secs(2), ws.next()).await {
            Ok(Some(Ok(Message::Binary(b)))) => {
                let at = Instant::now();
                if let Some(m) = mdat(&b) {
                    let _ = out.send((side, Sha256::digest(m).into(), at));
                }
            }
            Ok(Some(Ok(_))) | Err(_) => {}
            Ok(_) => anyhow::bail!("viewer {side}: the socket closed"),
        }
    }
    Ok(())
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    sorted
        .get(((sorted.len() as f64 * q) as usize).min(sorted.len().saturating_sub(1)))
        .copied()
        .unwrap_or(f64::NAN)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 6 {
        anyhow::bail!(
            "usage: relay_latency CITY_URL CITY_COOKIE PROVINCE_URL PROVINCE_COOKIE SECONDS"
        );
    }
    let start = Instant::now();
    let settled = start + Duration::from_secs(3);
    let end = start + Duration::from_secs(args[5].parse()?);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let city = tokio::spawn(viewer(0, args[1].clone(), args[2].clone(), end, tx.clone()));
    let province = tokio::spawn(viewer(1, args[3].clone(), args[4].clone(), end, tx));
    let mut seen: [HashMap<[u8; 32], Instant>; 2] = [HashMap::new(), HashMap::new()];
    let mut early = std::collections::HashSet::new();
    while let Some((side, hash, at)) = rx.recv().await {
        if at < settled {
            early.insert(hash);
        }
        seen[side].entry(hash).or_insert(at);
    }
    for s in &mut seen {
        s.retain(|h, _| !early.contains(h));
    }
    city.await??;
    province.await??;
    let [at_city, at_province] = &seen;
    let mut added: Vec<f64> = at_province
        .iter()
        .filter_map(|(h, p)| {
            let c = at_city.get(h)?;
            // Signed: a frame the province's viewer got first (the two sockets are read by one
            // process, on a busy machine) shows as negative rather than hidden as zero.
            let ms = |d: Duration| d.as_secs_f64() * 1000.0;
            Some(ms(p.saturating_duration_since(*c)) - ms(c.saturating_duration_since(*p)))
        })
        .collect();
    added.sort_by(f64::total_cmp);
    let report = serde_json::json!({
        "city_frames": at_city.len(),
        "province_frames": at_province.len(),
        "matched": added.len(),
        "min_ms": added.first().copied().unwrap_or(f64::NAN),
        "p50_ms": quantile(&added, 0.5),
        "p99_ms": quantile(&added, 0.99),
        "max_ms": added.last().copied().unwrap_or(f64::NAN),
    });
    println!("{report}");
    if (added.len() as f64) < at_city.len() as f64 * 0.9 || added.is_empty() {
        eprintln!(
            "FAILED: {} of the city's {} frames matched at the province",
            added.len(),
            at_city.len()
        );
        std::process::exit(1);
    }
    Ok(())
}
