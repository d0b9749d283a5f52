//! Case search benchmark (`scripts/bench-cases`): a SQLite database with N case events (5 per approval
//! case), C cameras (one per window, 5 windows per hall) and D days of segment index for every camera;
//! then p50/p99 of the work of `GET /cases/{case_no}` (case row, events, clip rules, coverage of every
//! clip from the segment index, JSON), of a case-number prefix search (`GET /cases?q=`, 50 per page), and
//! of the segment lookup that `video.mp4` and exports plan from (`record::index::overlapping`).
//!
//! Usage: bench-cases [--events N] [--cameras C] [--days D] [--segment-seconds S] [--samples K] [--db PATH]
//! The database is kept at PATH and reused when it exists (delete it to regenerate).

use std::time::Instant;
use vigil::auth::Scope;
use vigil::cases::{clips::Rules, store, view};

struct Args {
    events: i64,
    cameras: i64,
    days: i64,
    segment_seconds: i64,
    samples: usize,
    db: String,
}

fn args() -> Args {
    let mut a = Args {
        events: 10_000_000,
        cameras: 500,
        days: 365,
        segment_seconds: 60,
        samples: 2000,
        db: "target/bench-cases.db".into(),
    };
    let v: Vec<String> = std::env::args().skip(1).collect();
    // `cargo bench` passes --bench; `cargo test --all-targets` does not, and then the benchmark runs as a
    // smoke test on a small fresh database, so that the suite exercises it without its hour of setup.
    if !v.iter().any(|x| x == "--bench") {
        let db = std::env::temp_dir().join(format!("vigil-bench-cases-{}.db", std::process::id()));
        for ext in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{ext}", db.display()));
        }
        return Args {
            events: 5_000,
            cameras: 10,
            days: 2,
            segment_seconds: 600,
            samples: 50,
            db: db.display().to_string(),
        };
    }
    let mut i = 0;
    while i + 1 < v.len() {
        let n = || v[i + 1].parse::<i64>().expect("a number");
        match v[i].as_str() {
            "--events" => a.events = n(),
            "--cameras" => a.cameras = n(),
            "--days" => a.days = n(),
            "--segment-seconds" => a.segment_seconds = n(),
            "--samples" => a.samples = n() as usize,
            "--db" => a.db = v[i + 1].clone(),
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    a
}

const DAY_MS: i64 = 86_400_000;
const KINDS: [&str; 5] = [
    "accepted",
    "processing",
    "reviewed",
    "approved",
    "completed",
];
const OFFSETS_MS: [i64; 5] = [0, 300_000, 1_800_000, 7_200_000, DAY_MS];

/// A deterministic pseudo-random sequence (xorshift).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn case_no(i: i64) -> String {
    format!("360702-2025-{i:08}")
}

enum Val {
    I(i64),
    T(String),
}

async fn generate(pool: &vigil::db::Pool, a: &Args, t0: i64) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut conn = pool.acquire().await?;
    sqlx::query("PRAGMA synchronous = OFF")
        .execute(&mut *conn)
        .await?;
    sqlx::query("INSERT INTO regions (code, name, level, parent_code, created_at) VALUES ('360000', 'p', 'province', NULL, 0), ('360700', 'c', 'city', '360000', 0), ('360702', 'd', 'district', '360700', 0)")
        .execute(&mut *conn).await?;
    let halls = (a.cameras / 5).max(1);
    sqlx::query("BEGIN").execute(&mut *conn).await?;
    for h in 0..halls {
        sqlx::query("INSERT INTO sites (id, name, kind, region_code, created_at) VALUES ($1, $2, 'service_hall', '360702', 0)")
            .bind(h + 1).bind(format!("hall {h}")).execute(&mut *conn).await?;
        for w in 0..5 {
            let cam = h * 5 + w + 1;
            sqlx::query("INSERT INTO cameras (id, site_id, name, main_url, record, created_at, updated_at) VALUES ($1, $2, $3, 'rtsp://127.0.0.1:9/x', 0, 0, 0)")
                .bind(cam).bind(h + 1).bind(format!("cam{cam}")).execute(&mut *conn).await?;
            sqlx::query("INSERT INTO positions (id, site_id, code, kind, created_at) VALUES ($1, $2, $3, 'window', 0)")
                .bind(cam).bind(h + 1).bind(format!("W{}", w + 1)).execute(&mut *conn).await?;
            sqlx::query("INSERT INTO position_cameras (position_id, camera_id) VALUES ($1, $2)")
                .bind(cam)
                .bind(cam)
                .execute(&mut *conn)
                .await?;
        }
    }
    sqlx::query("COMMIT").execute(&mut *conn).await?;
    // Cases and events, spread over the period.
    let cases = a.events / 5;
    let span = a.days * DAY_MS;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut case_rows = Vec::new();
    let mut ev_rows = Vec::new();
    sqlx::query("BEGIN").execute(&mut *conn).await?;
    for i in 0..cases {
        let site = (rng.next() % halls as u64) as i64 + 1;
        let at = t0 + i * span / cases.max(1);
        let pos = format!("W{}", rng.next() % 5 + 1);
        case_rows.push(vec![
            Val::T(case_no(i)),
            Val::I(site),
            Val::I(at),
            Val::I(at + DAY_MS),
            Val::I(at + DAY_MS),
        ]);
        for (k, kind) in KINDS.iter().enumerate() {
            ev_rows.push(vec![
                Val::T(format!("ev-{i}-{k}")),
                Val::T(case_no(i)),
                Val::T((*kind).to_owned()),
                Val::I(at + OFFSETS_MS[k]),
                Val::I(site),
                Val::T(pos.clone()),
            ]);
        }
        if case_rows.len() >= 100 {
            let one = "(?,?,?,?,?)".to_owned();
            let sql = format!(
                "INSERT INTO cases (case_no, case_type, site_id, region_code, status, first_at, last_at, completed_at, card, events, updated_at)
                 SELECT column1, 'approval', column2, '360702', 'completed', column3, column4, column5, 'none', 5, 0 FROM (VALUES {})",
                vec![one; case_rows.len()].join(",")
            );
            let mut q = sqlx::query(&sql);
            for r in case_rows.drain(..) {
                for v in r {
                    q = match v {
                        Val::I(x) => q.bind(x),
                        Val::T(t) => q.bind(t),
                    };
                }
            }
            q.execute(&mut *conn).await?;
            let one = "(?,?,?,?,?,?)".to_owned();
            let sql = format!(
                "INSERT INTO case_events (event_id, content_hash, case_no, case_type, kind, at, site_id, position, operator, deadline, attributes, received_at, received_by)
                 SELECT column1, 'h', column2, 'approval', column3, column4, column5, column6, NULL, NULL, '{{}}', 0, 'bench' FROM (VALUES {})",
                vec![one; ev_rows.len()].join(",")
            );
            let mut q = sqlx::query(&sql);
            for r in ev_rows.drain(..) {
                for v in r {
                    q = match v {
                        Val::I(x) => q.bind(x),
                        Val::T(t) => q.bind(t),
                    };
                }
            }
            q.execute(&mut *conn).await?;
        }
        if i % 200_000 == 199_999 {
            sqlx::query("COMMIT").execute(&mut *conn).await?;
            sqlx::query("BEGIN").execute(&mut *conn).await?;
            eprintln!(
                "  {} cases, {:.0} s",
                i + 1,
                started.elapsed().as_secs_f64()
            );
        }
    }
    sqlx::query("COMMIT").execute(&mut *conn).await?;
    // The segment index: every camera, the whole period, no gaps. SQLite makes the rows itself, one day
    // per statement, in time order across cameras (as a recording server appends them), so that the id,
    // end-time and state indexes grow at their ends and the rest at one place per camera: a year of 60 s
    // segments for 500 cameras (263 M rows) is then minutes of generation, not hours of bound inserts.
    sqlx::query("PRAGMA cache_size = -1000000")
        .execute(&mut *conn)
        .await?;
    let step_us = a.segment_seconds * 1_000_000;
    let per_day = DAY_MS * 1000 / step_us;
    let mut n: i64 = 0;
    for day in 0..a.days {
        let first_us = (t0 + day * DAY_MS) * 1000;
        n += sqlx::query(
            "WITH RECURSIVE k(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM k WHERE i + 1 < $1)
             INSERT INTO segments (camera_id, stream, run, site_kind, start_us, end_us, duration_90k, frames, bytes, codec, width, height, keyframes, path, state)
             SELECT c.id, 'main', 1, 'service_hall', $2 + k.i * $3, $2 + (k.i + 1) * $3, $4 * 90000, $4 * 25, $4 * 500000,
                    'avc1.64001f', 1920, 1080, zeroblob(16), 'recordings/' || c.id || '/' || ($2 + k.i * $3) || '.mp4', 'complete'
             FROM k CROSS JOIN cameras c ORDER BY k.i, c.id",
        )
        .bind(per_day)
        .bind(first_us)
        .bind(step_us)
        .bind(a.segment_seconds)
        .execute(&mut *conn)
        .await?
        .rows_affected() as i64;
        if day % 10 == 9 {
            eprintln!(
                "  {} days, {n} segments, {:.0} s",
                day + 1,
                started.elapsed().as_secs_f64()
            );
        }
    }
    sqlx::query("ANALYZE").execute(&mut *conn).await?;
    eprintln!(
        "generated {} cases, {} events, {n} segments in {:.0} s",
        cases,
        cases * 5,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = args();
    let fresh = !std::path::Path::new(&a.db).exists();
    let pool = vigil::db::connect(&format!("sqlite://{}", a.db)).await?;
    // The period ends yesterday (UTC midnight), so that every clip is in the index.
    let t0 = (vigil::db::now_ms() / DAY_MS - a.days - 1) * DAY_MS;
    if fresh {
        generate(&pool, &a, t0).await?;
    }
    let (cases,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM cases")
        .fetch_one(&pool)
        .await?;
    let (events,): (i64,) = sqlx::query_as("SELECT MAX(id) FROM case_events")
        .fetch_one(&pool)
        .await?;
    let (segments,): (i64,) = sqlx::query_as("SELECT MAX(id) FROM segments")
        .fetch_one(&pool)
        .await?;
    let rules = Rules {
        pre_roll_s: 30,
        post_roll_s: 120,
        deadline_hours: None,
        followup_hours: 72,
    };
    let mut rng = Rng(42);
    let now = vigil::db::now_ms();
    // Warm the cache as a running server would be.
    for _ in 0..200 {
        let no = case_no((rng.next() % cases as u64) as i64);
        let c = store::get(&pool, &no).await?;
        view::case_view(&pool, c, &rules, now, &vigil::auth::Scope::All).await?;
    }
    let mut get_ms = Vec::with_capacity(a.samples);
    let mut clips = 0usize;
    let mut full = 0usize;
    for _ in 0..a.samples {
        let no = case_no((rng.next() % cases as u64) as i64);
        let t = Instant::now();
        let c = store::get(&pool, &no).await?;
        let v = view::case_view(&pool, c, &rules, now, &vigil::auth::Scope::All).await?;
        let body = serde_json::to_vec(&v)?;
        get_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        std::hint::black_box(body);
        clips += v.clips.len();
        full += v
            .clips
            .iter()
            .filter(|c| c.coverage == vigil::cases::coverage::Coverage::Full)
            .count();
    }
    let scoped = Scope::Regions(["360000", "360700", "360702"].map(String::from).into());
    let mut search_ms = Vec::with_capacity(a.samples);
    let mut found = 0usize;
    for k in 0..a.samples {
        let no = case_no((rng.next() % cases as u64) as i64);
        // Prefixes that match 1000, 100 and 10 cases.
        let cut = no.len() - 3 + k % 3;
        let f = store::Filter {
            prefix: Some(no[..cut].to_owned()),
            limit: 50,
            ..Default::default()
        };
        let scope = if k % 2 == 0 { &Scope::All } else { &scoped };
        let t = Instant::now();
        let rows = store::search(&pool, scope, &f).await?;
        let body = serde_json::to_vec(&rows)?;
        search_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        std::hint::black_box(body);
        found += rows.len();
    }
    // What `video.mp4` and an export plan from: the segments of a ten-minute window at a random time of a
    // random camera's history (`record::index::overlapping`).
    let span_ms = a.days * DAY_MS;
    let mut plan_ms = Vec::with_capacity(a.samples);
    let mut planned = 0usize;
    for _ in 0..a.samples {
        let cam = 1 + (rng.next() % a.cameras as u64) as i64;
        let at = (t0 + (rng.next() % (span_ms - 600_000) as u64) as i64) * 1000;
        let t = Instant::now();
        let rows =
            vigil::record::index::overlapping(&pool, cam, "main", at, at + 600_000_000).await?;
        plan_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        assert!(!rows.is_empty(), "camera {cam} has footage at {at}");
        planned += rows.len();
    }
    println!(
        "database: {cases} cases, {events} events, {} cameras, {segments} segments ({} days of {} s segments)",
        a.cameras, a.days, a.segment_seconds
    );
    println!(
        "GET /cases/{{no}} (store+clips+coverage+JSON): p50 {:.2} ms, p99 {:.2} ms over {} cases ({:.1} clips each, {:.0}% full)",
        pct(&mut get_ms, 0.5),
        pct(&mut get_ms, 0.99),
        a.samples,
        clips as f64 / a.samples as f64,
        100.0 * full as f64 / clips.max(1) as f64
    );
    println!(
        "GET /cases?q=PREFIX (50 per page): p50 {:.2} ms, p99 {:.2} ms over {} searches ({:.1} cases each)",
        pct(&mut search_ms, 0.5),
        pct(&mut search_ms, 0.99),
        a.samples,
        found as f64 / a.samples as f64
    );
    println!(
        "index::overlapping (10 min of one camera at a random time): p50 {:.2} ms, p99 {:.2} ms over {} lookups ({:.1} segments each)",
        pct(&mut plan_ms, 0.5),
        pct(&mut plan_ms, 0.99),
        a.samples,
        planned as f64 / a.samples as f64
    );
    Ok(())
}
