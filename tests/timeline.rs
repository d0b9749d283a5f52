//! The investigator's timeline through the real server and simulator: a strip of thumbnails over recorded
//! footage (one picture per slot, from keyframes, none inside a gap), each picture a real JPEG of the
//! thumbnail width, cached on disk, audited once per camera-hour, and invisible to another region; and the
//! keyframe-only video of fast playback (the same timeline, a frame per GOP).

mod common;
use common::*;
use serde_json::{json, Value};
use std::time::Duration;

const RECORD: &str = "[record]\nsegment_seconds = 4\n";

fn rfc_us(us: i64) -> String {
    rfc_ms(us / 1000).replace('+', "%2B")
}

fn parse(t: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(t.as_str().expect("time"))
        .expect("rfc3339")
        .timestamp_micros()
}

#[tokio::test]
async fn a_strip_of_thumbnails_follows_the_keyframes_and_the_regions() {
    let sim = Sim::small(1, 25, &[]);
    let server = Server::start_with(&format!("{RECORD}{CITY_SUPERVISORS}"));
    let admin = server.admin().await;
    let site = admin
        .site("章贡区政务服务中心", "service_hall", "360702")
        .await;
    let cam = admin
        .camera(json!({"name": "A1", "site_id": site, "main_url": sim.url(1), "record": true}))
        .await;
    let t0 = chrono::Utc::now().timestamp_micros();
    let spans = wait_for(Duration::from_secs(40), || async {
        let r = admin
            .get(&format!(
                "/api/v1/cameras/{cam}/recordings?start={}&end={}",
                rfc_us(t0 - 5_000_000),
                rfc_us(t0 + 120_000_000)
            ))
            .await;
        let s = r.body["spans"].as_array()?.first()?.clone();
        let (a, b) = (parse(&s["start"]), parse(&s["end"]));
        (b - a >= 12_000_000).then_some((a, b))
    })
    .await
    .expect("12 s of footage");
    let (start, end) = spans;
    let sup = Client::login(&server, "sup-ganzhou", "supervisor-pass-1").await;
    let path = |every: &str| {
        format!(
            "/api/v1/cameras/{cam}/thumbnails?start={}&end={}&every={every}",
            rfc_us(start),
            rfc_us(end)
        )
    };
    let r = sup.get(&path("2")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let pics = r.body["thumbnails"].as_array().expect("thumbnails").clone();
    // GOP 1 s, one picture per 2 s slot.
    let want = ((end - start) / 2_000_000) as usize;
    assert!(
        pics.len() + 1 >= want && pics.len() <= want + 1,
        "{} pictures for {want} slots",
        pics.len()
    );
    let times: Vec<i64> = pics.iter().map(|p| parse(&p["at"])).collect();
    assert!(
        times.windows(2).all(|w| w[1] > w[0]),
        "in time order, each once: {times:?}"
    );
    assert!(times.iter().all(|t| *t >= start - 1_000_000 && *t < end));
    for p in &pics {
        let (st, body, ct) = sup.download(p["url"].as_str().expect("url")).await;
        assert_eq!((st, ct.as_str()), (200, "image/jpeg"), "{p}");
        let img = image::load_from_memory(&body).expect("a JPEG");
        assert_eq!(img.width(), vigil::record::thumbs::WIDTH);
    }
    let cached = server.data_dir().join("cache/thumbs");
    assert!(cached.exists(), "pictures cached");
    // Many pictures of one hour are one audit row (or two across an hour's turn).
    let rows = admin
        .get("/api/v1/audit?action=playback.thumbnail")
        .await
        .body;
    let n = rows.as_array().expect("audit rows").len();
    assert!(
        (1..=2).contains(&n),
        "{n} audit rows for {} pictures",
        pics.len()
    );
    // Fast playback: the keyframes alone, over the same timeline (GOP 1 s: a frame a second).
    let video = |kf: bool| {
        format!(
            "/api/v1/cameras/{cam}/video.mp4?start={}&end={}{}",
            rfc_us(start),
            rfc_us(end),
            if kf { "&keyframes=true" } else { "" }
        )
    };
    let dir = tempfile::tempdir().expect("tmp");
    let mut probed = Vec::new();
    for kf in [false, true] {
        let (st, body, _) = sup.download(&video(kf)).await;
        assert_eq!(st, 200);
        let f = dir.path().join(format!("kf-{kf}.mp4"));
        std::fs::write(&f, &body).expect("write");
        let (dur, _, frames) = ffprobe(&f);
        probed.push((dur, frames, body.len()));
    }
    let ((dur, frames, bytes), (kdur, kframes, kbytes)) = (probed[0], probed[1]);
    assert!(
        (dur - kdur).abs() < 0.1,
        "same timeline: {dur} s and {kdur} s"
    );
    let secs = (end - start) as f64 / 1e6;
    assert!(
        (kframes as f64 - secs).abs() <= 2.0,
        "{kframes} keyframes in {secs} s"
    );
    assert!(
        frames >= kframes * 20 && kbytes < bytes,
        "{frames} frames / {bytes} B vs {kframes} / {kbytes} B"
    );
    assert_eq!(
        sup.get(&format!(
            "/api/v1/cameras/{cam}/recordings?start={}&end={}&keyframes=true",
            rfc_us(start),
            rfc_us(end)
        ))
        .await
        .status,
        422
    );

    // Bad input is refused with a clear error; another region sees nothing.
    assert_eq!(sup.get(&path("0.1")).await.status, 422);
    assert_eq!(sup.get(&path("abc")).await.status, 400);
    let other = Client::login(&server, "sup-nanchang", "supervisor-pass-2").await;
    assert_eq!(other.get(&path("2")).await.status, 404);
    let (st, _, _) = other.download(pics[0]["url"].as_str().expect("url")).await;
    assert_eq!(st, 404);
    drop(sim);
}
