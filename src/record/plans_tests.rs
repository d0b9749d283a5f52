//! The playback plan cache against a real recorder and SQLite index: reused while the range's rows are
//! unchanged, planned again as soon as a fragment lands in the range; and (ignored, release, run by
//! `scripts/bench-record`) the cost of a 24 h range, cold and cached.

use super::plans::{PlanCache, Source};
use super::tests::{camera, params, publish, rig, t0};
use super::*;
use std::time::{Duration, Instant};

/// Waits until the recorder has written `gops` GOPs.
async fn written(r: &super::tests::Rig, gops: u64) {
    for _ in 0..2000 {
        let done = r
            .recorders
            .statuses()
            .first()
            .is_some_and(|x| x.1.gops_written >= gops);
        if done {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the recorder did not write {gops} GOPs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_is_reused_until_a_fragment_lands_in_its_range() {
    let r = rig(4).await;
    let t = t0();
    r.recorders.apply(&camera(1));
    let p = params(0);
    publish(&r.hub, t, 1, 1, &p, 0, 12).await;
    written(&r, 11).await;
    let cache = PlanCache::new(Footage::local(r.dir.path()));
    let (start, end) = (t, t + 60_000_000);

    let (first, how) = cache
        .plan(&r.pool, 1, "main", start, end)
        .await
        .expect("plan");
    let first = first.expect("footage");
    assert_eq!(how, Source::Planned);
    let (again, how) = cache
        .plan(&r.pool, 1, "main", start, end)
        .await
        .expect("plan");
    assert_eq!(how, Source::Cached);
    assert!(Arc::ptr_eq(&first, &again.expect("footage")));
    // Another range is planned on its own.
    let (_, how) = cache
        .plan(&r.pool, 1, "main", start, end - 1)
        .await
        .expect("plan");
    assert_eq!(how, Source::Planned);

    // More footage in the range: the cached plan no longer matches the index.
    publish(&r.hub, t, 1, 1, &p, 12 * 25, 8).await;
    written(&r, 19).await;
    let (later, how) = cache
        .plan(&r.pool, 1, "main", start, end)
        .await
        .expect("plan");
    assert_eq!(how, Source::Planned);
    let later = later.expect("footage");
    assert!(
        later.frames > first.frames,
        "{} > {}",
        later.frames,
        first.frames
    );
    assert_ne!(later.etag, first.etag);

    // A range without footage is not cached as anything.
    let (none, _) = cache
        .plan(&r.pool, 1, "main", t - 100_000_000, t - 50_000_000)
        .await
        .expect("plan");
    assert!(none.is_none());
    r.recorders.shutdown().await;
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e3
}

/// `scripts/bench-record` runs this in release: a day of 25 fps footage in one-minute segments (tiny
/// frames: planning reads fragment headers, never frame data), then `video.mp4` of the whole day planned
/// cold, its first byte read, and the same range looked up again 1,000 times.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn plan_of_a_day_cold_and_cached() {
    use futures::StreamExt;
    let r = rig(60).await;
    let day = 86_400 * 1_000_000i64;
    let t = t0() - day;
    r.recorders.apply(&camera(9));
    super::tests::publish_fast(&r, 9, t, 86_400 * 25, 64).await;
    written(&r, 86_399).await;
    r.recorders.shutdown().await;
    let cache = PlanCache::new(Footage::local(r.dir.path()));
    let (start, end) = (t, t + day);

    let cold = Instant::now();
    let (plan, how) = cache
        .plan(&r.pool, 9, "main", start, end)
        .await
        .expect("plan");
    let plan = plan.expect("footage");
    let planned = cold.elapsed();
    assert_eq!(how, Source::Planned);
    let mut body = std::pin::pin!(export::stream(plan.parts.clone(), 0, plan.len, 1 << 20));
    body.next().await.expect("a first chunk").expect("read");
    let first_byte = cold.elapsed();

    let mut cached = Vec::with_capacity(1000);
    for _ in 0..1000 {
        let at = Instant::now();
        let (again, how) = cache
            .plan(&r.pool, 9, "main", start, end)
            .await
            .expect("plan");
        cached.push(at.elapsed());
        assert_eq!(how, Source::Cached);
        assert_eq!(again.expect("footage").len, plan.len);
    }
    cached.sort();
    println!(
        "plan: 24 h ({} frames, {} bytes of MP4): cold plan {:.1} ms, first byte {:.1} ms; cached p50 {:.3} ms, p99 {:.3} ms",
        plan.frames,
        plan.len,
        planned.as_secs_f64() * 1e3,
        first_byte.as_secs_f64() * 1e3,
        percentile(&cached, 0.5),
        percentile(&cached, 0.99),
    );
}
