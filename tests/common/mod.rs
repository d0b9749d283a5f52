//! Test harness: the real `vigil` binary as simulator and server, each in its own process on its own
//! ports with its own temporary data directory, and an HTTP client that logs in like the console does.
#![allow(dead_code)]

pub mod browser;
pub mod pg;
pub mod weed;
pub mod ws;

use serde_json::{json, Value};
use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_vigil");
pub const ADMIN_PASSWORD: &str = "admin-password-1";

/// Milliseconds since the epoch as RFC 3339 (UTC, millisecond precision), as the API takes times.
pub fn rfc_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .expect("time")
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Microseconds since the epoch as RFC 3339 (UTC, µs precision), ready for a query string.
pub fn rfc_us(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us)
        .expect("time")
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
        .replace('+', "%2B")
}

/// An RFC 3339 time of an answer, in microseconds since the epoch.
pub fn us_of(v: &serde_json::Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap_or_default())
        .map(|d| d.timestamp_micros())
        .unwrap_or_else(|_| panic!("a time: {v}"))
}

/// Waits for the camera's first edge-retrieval row (`GET /backfills`) that `pred` accepts.
pub async fn backfill(
    c: &Client,
    cam: i64,
    timeout: Duration,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let path = format!("/api/v1/backfills?camera_id={cam}");
    let found = wait_for(timeout, || async {
        let r = c.get(&path).await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.body["backfills"]
            .as_array()?
            .iter()
            .find(|b| pred(b))
            .cloned()
    })
    .await;
    match found {
        Some(b) => b,
        None => panic!("camera {cam}'s backfill: {}", c.get(&path).await.text),
    }
}

/// After a backfill `done` of `gap` (µs): the camera's recording has no hole around it any more, the
/// backfilled part is marked, and the range downloads as an MP4 that plays its whole length at 25 fps.
pub async fn gap_closed_and_plays(
    s: &Server,
    c: &Client,
    cam: i64,
    gap: (i64, i64),
    done: &serde_json::Value,
) {
    let r = c
        .get(&format!(
            "/api/v1/cameras/{cam}/recordings?start={}&end={}",
            rfc_us(gap.0 - 5_000_000),
            rfc_us(gap.1 + 5_000_000)
        ))
        .await;
    assert_eq!(
        r.body["spans"].as_array().map(Vec::len),
        Some(1),
        "{}",
        r.text
    );
    let marked = r.body["backfilled"].as_array().cloned().unwrap_or_default();
    assert!(
        marked.iter().any(|b| b["backfill_id"] == done["id"]
            && us_of(&b["end"]) - us_of(&b["start"]) >= gap.1 - gap.0 - 2_000_000),
        "backfilled marks: {}",
        r.text
    );
    let (duration, frames) = probe_footage(s, c, cam, gap, &format!("backfilled-{cam}.mp4")).await;
    let want = (gap.1 - gap.0) as f64 / 1e6;
    println!("backfilled range: {duration} s, {frames} frames for {want} s");
    assert!(
        (duration - want).abs() <= 2.0,
        "{duration} s for a {want} s gap"
    );
    assert!(
        frames as f64 >= (want - 2.0) * 25.0,
        "{frames} frames in {want} s"
    );
}

/// Waits (up to a minute) until the camera's first recorded span of the last two minutes lasts `secs`:
/// that span, Unix µs.
pub async fn recorded_span(c: &Client, cam: i64, secs: f64) -> (i64, i64) {
    let since = chrono::Utc::now().timestamp_micros() - 120_000_000;
    wait_for(Duration::from_secs(60), || async {
        let until = chrono::Utc::now().timestamp_micros() + 60_000_000;
        let r = c
            .get(&format!(
                "/api/v1/cameras/{cam}/recordings?start={}&end={}",
                rfc_us(since),
                rfc_us(until)
            ))
            .await;
        let first = r.body["spans"].as_array()?.first()?.clone();
        let t = |v: &Value| {
            chrono::DateTime::parse_from_rfc3339(v.as_str()?)
                .ok()
                .map(|d| d.timestamp_micros())
        };
        let (a, b) = (t(&first["start"])?, t(&first["end"])?);
        ((b - a) as f64 >= secs * 1e6).then_some((a, b))
    })
    .await
    .unwrap_or_else(|| panic!("camera {cam}: {secs} s of footage"))
}

/// ffprobe's JSON of `entries` for a file; panics on any decoder complaint.
fn ffprobe_json(path: &std::path::Path, entries: &str) -> Value {
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-show_entries", entries])
        .args(["-of", "json"])
        .arg(path)
        .output()
        .expect("ffprobe");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && err.trim().is_empty(),
        "ffprobe {}: {err}",
        path.display()
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

/// Each stream of a media file as ffprobe reads it: (codec name, duration s, frames decoded).
pub fn probe_streams(path: &std::path::Path) -> Vec<(String, f64, u64)> {
    let v = ffprobe_json(path, "stream=codec_name,duration,nb_read_frames");
    let num = |v: &Value| {
        v.as_str()
            .and_then(|d| d.parse::<f64>().ok())
            .unwrap_or(-1.0)
    };
    v["streams"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| {
                    let codec = s["codec_name"].as_str().unwrap_or("").to_owned();
                    (codec, num(&s["duration"]), num(&s["nb_read_frames"]) as u64)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `video.mp4` of `range` (Unix µs) of camera `cam`, saved as `name` in the server's data directory.
pub async fn save_footage(
    s: &Server,
    c: &Client,
    cam: i64,
    range: (i64, i64),
    name: &str,
) -> PathBuf {
    let (code, body, _) = c
        .download(&format!(
            "/api/v1/cameras/{cam}/video.mp4?start={}&end={}",
            rfc_us(range.0),
            rfc_us(range.1)
        ))
        .await;
    assert_eq!(code, 200);
    let path = s.data_dir().join(name);
    std::fs::write(&path, body).expect("write mp4");
    path
}

/// [`save_footage`], read by ffprobe (which must find no decoder complaint): (duration s, frames).
pub async fn probe_footage(
    s: &Server,
    c: &Client,
    cam: i64,
    range: (i64, i64),
    name: &str,
) -> (f64, u64) {
    let (duration, _, frames) = ffprobe(&save_footage(s, c, cam, range, name).await);
    (duration, frames)
}

/// Now, in milliseconds since the epoch.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Sends `request` (raw HTTP/1.1) while another writer holds the server's database, so that the server
/// is slow to answer as under load, and resets the connection before the answer: a client gone while its
/// call is under way.
pub async fn hang_up_while_the_database_is_held(
    server: &Server,
    db: &vigil::db::Pool,
    request: &str,
) {
    use tokio::io::AsyncWriteExt;
    let mut writer = db.acquire().await.expect("connection");
    let hold = match vigil::db::engine(db) {
        vigil::db::Engine::Sqlite => vec!["BEGIN IMMEDIATE".to_owned()],
        vigil::db::Engine::Postgres => vec![
            "BEGIN".to_owned(),
            format!("SELECT pg_advisory_xact_lock({})", vigil::db::WRITE_LOCK),
        ],
    };
    for statement in hold {
        sqlx::query(&statement)
            .execute(&mut *writer)
            .await
            .expect("hold the write lock");
    }
    let mut tcp = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("connect");
    tcp.write_all(request.as_bytes()).await.expect("send");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = tcp.set_zero_linger();
    drop(tcp);
    sqlx::query("ROLLBACK")
        .execute(&mut *writer)
        .await
        .expect("release the write lock");
}

/// ffprobe of a file: (duration s, frame rate, decoded frames); panics on any decoder complaint.
pub fn ffprobe(path: &std::path::Path) -> (f64, String, u64) {
    let v = ffprobe_json(path, "stream=nb_read_frames,r_frame_rate:format=duration");
    let dur = v["format"]["duration"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .unwrap_or(-1.0);
    let rate = v["streams"][0]["r_frame_rate"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    let frames = v["streams"][0]["nb_read_frames"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .unwrap_or(0);
    (dur, rate, frames)
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn wait_port(addr: SocketAddr, timeout: Duration) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// Polls `f` every 100 ms until it returns `Some` or `timeout` passes.
pub async fn wait_for<T, F, Fut>(timeout: Duration, mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let end = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return Some(v);
        }
        if Instant::now() >= end {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `vigil sim` in its own process.
pub struct Sim {
    pub port: u16,
    args: Vec<String>,
    child: Option<Child>,
    /// What the simulator logged (its stderr), kept to 1 MiB.
    log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Sim {
    /// Starts `vigil sim --listen 127.0.0.1:PORT` with the extra arguments, on a fresh port.
    pub fn start(extra: &[&str]) -> Sim {
        let mut sim = Sim {
            port: free_port(),
            args: extra.iter().map(|s| s.to_string()).collect(),
            child: None,
            log: Default::default(),
        };
        sim.restart();
        sim
    }

    /// The tests' usual simulator: `cameras` cameras of 320x240, 25 fps, 300 kbit/s, a keyframe every
    /// `gop` frames, plus `extra` arguments (codec, credentials).
    pub fn small(cameras: u32, gop: u32, extra: &[&str]) -> Sim {
        let args = Sim::small_args(cameras, gop, (320, 240), extra);
        Sim::start(&args.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// The arguments of [`Sim::small`] at another picture size.
    pub fn small_args(cameras: u32, gop: u32, (w, h): (u32, u32), extra: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = [
            "--cameras",
            &cameras.to_string(),
            "--width",
            &w.to_string(),
            "--height",
            &h.to_string(),
            "--fps",
            "25",
            "--bitrate",
            "300",
            "--gop",
            &gop.to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    }

    pub fn url(&self, n: u32) -> String {
        format!("rtsp://127.0.0.1:{}/cam{n}", self.port)
    }

    /// What the simulator has logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Replaces the arguments of the next [`Sim::restart`] (another resolution, codec, ...).
    pub fn set_args(&mut self, args: Vec<String>) {
        self.args = args;
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port.
    pub fn restart(&mut self) {
        self.kill();
        let addr: SocketAddr = format!("127.0.0.1:{}", self.port).parse().expect("addr");
        let child = Command::new(BIN)
            .arg("sim")
            .arg("--listen")
            .arg(addr.to_string())
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn vigil sim");
        self.child = Some(child);
        if !wait_port(addr, Duration::from_secs(20)) {
            let mut err = String::new();
            if let Some(mut c) = self.child.take() {
                let _ = c.kill();
                if let Some(mut e) = c.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
            }
            panic!("simulator did not listen on {addr}: {err}");
        }
        // Drain the simulator's log so that a full pipe never blocks it; keep it for `log()`.
        if let Some(e) = self.child.as_mut().and_then(|c| c.stderr.take()) {
            let log = self.log.clone();
            std::thread::spawn(move || {
                use std::io::BufRead;
                for line in std::io::BufReader::new(e).lines().map_while(Result::ok) {
                    let mut l = log.lock().unwrap_or_else(|e| e.into_inner());
                    if l.len() < 1 << 20 {
                        l.push_str(&line);
                        l.push('\n');
                    }
                }
            });
        }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `vigil serve` in its own process, with an admin user and the region tree 360000 > 360700 > 360702,
/// 360000 > 360100.
pub struct Server {
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    child: Option<Child>,
    log: PathBuf,
    /// Extra environment of the server process (e.g. `VIGIL_CRASH_AT`), for its next start.
    pub env: Vec<(String, String)>,
    /// The server's database: its own SQLite file, or a new database of the PostgreSQL cluster named by
    /// `VIGIL_TEST_POSTGRES` (see [`test_database`]).
    pub database_url: String,
}

/// The PostgreSQL cluster the tests run on instead of SQLite, when `VIGIL_TEST_POSTGRES` names one
/// (`postgres://vigil@127.0.0.1:PORT`, from `scripts/postgres start`; `scripts/test` runs the API tests
/// a second time that way).
pub fn test_postgres() -> Option<String> {
    std::env::var("VIGIL_TEST_POSTGRES")
        .ok()
        .filter(|u| !u.is_empty())
}

/// A database for one server: a new, empty database on the test cluster when there is one, else the
/// SQLite file in the server's data directory.
pub fn test_database(data_dir: &std::path::Path) -> String {
    let Some(base) = test_postgres() else {
        return format!("sqlite://{}", data_dir.join("vigil.db").display());
    };
    create_database(&base)
}

/// A new, empty database on the PostgreSQL cluster at `base`; its URL.
pub fn create_database(base: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let name = format!("vigil_{}_{n}_{}", std::process::id(), rand_suffix());
    let out = Command::new("psql")
        .args(["-q", "-v", "ON_ERROR_STOP=1", "-d"])
        .arg(format!("{base}/postgres"))
        .args(["-c", &format!("CREATE DATABASE {name}")])
        .output()
        .expect("run psql");
    assert!(
        out.status.success(),
        "create database {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    format!("{base}/{name}")
}

/// A few random lowercase letters (database names of concurrent test processes never meet).
fn rand_suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    (0..6)
        .map(|i| (b'a' + ((nanos >> (i * 5)) % 26) as u8) as char)
        .collect()
}

pub const BASE_CONFIG: &str = r#"
[ingest]
backoff_initial_ms = 300
backoff_max_ms = 2000
refused_retry_ms = 60000
stall_timeout_ms = 2000

[[seed.regions]]
code = "360000"
name = "江西省"
level = "province"

[[seed.regions]]
code = "360700"
name = "赣州市"
level = "city"
parent_code = "360000"

[[seed.regions]]
code = "360702"
name = "章贡区"
level = "district"
parent_code = "360700"

[[seed.regions]]
code = "360100"
name = "南昌市"
level = "city"
parent_code = "360000"

[[seed.users]]
username = "admin"
password = "admin-password-1"
role = "admin"
"#;

/// A supervisor of each of two cities (赣州 `sup-ganzhou`, 南昌 `sup-nanchang`), for region checks.
pub const CITY_SUPERVISORS: &str = r#"
[[seed.users]]
username = "sup-ganzhou"
password = "supervisor-pass-1"
role = "supervisor"
region_codes = ["360700"]

[[seed.users]]
username = "sup-nanchang"
password = "supervisor-pass-2"
role = "supervisor"
region_codes = ["360100"]
"#;

impl Server {
    pub fn start() -> Server {
        Self::start_with("")
    }

    /// Starts with the base configuration plus `extra` TOML.
    pub fn start_with(extra: &str) -> Server {
        Self::start_on(extra, None)
    }

    /// Starts on `database_url` (a database another server shares) instead of a new one.
    pub fn start_on(extra: &str, database_url: Option<String>) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        let config = dir.path().join("vigil.toml");
        std::fs::write(&config, format!("{BASE_CONFIG}\n{extra}")).expect("write config");
        let log = dir.path().join("server.log");
        let database_url = database_url.unwrap_or_else(|| test_database(&dir.path().join("data")));
        let mut server = Server {
            addr,
            child: None,
            log,
            dir,
            env: Vec::new(),
            database_url,
        };
        // A port from `free_port` may be taken by another process before the server binds it: then the
        // server exits with a bind error and is started again on another port.
        for _ in 0..5 {
            if server.spawn(&config) {
                return server;
            }
            assert!(
                server.log().contains("listening on"),
                "server exited at start; log:\n{}",
                server.log()
            );
            server.addr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        }
        panic!("server could not bind a port; log:\n{}", server.log());
    }

    /// Starts the server process; false when it exited before serving.
    fn spawn(&mut self, config: &std::path::Path) -> bool {
        let before = self.serving_lines();
        // Appended, so that the log of every run of a restarted server is kept.
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let child = Command::new(BIN)
            .args(["serve", "--config"])
            .arg(config)
            .arg("--listen")
            .arg(self.addr.to_string())
            .arg("--data-dir")
            .arg(self.dir.path().join("data"))
            .arg("--database-url")
            .arg(&self.database_url)
            .env(
                "RUST_LOG",
                "debug,sqlx=warn,hyper=info,tower_http=debug,rsipstack=warn",
            )
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn vigil serve");
        self.child = Some(child);
        // Wait for the server's own word that it serves (an open port could be another process's).
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            if self.serving_lines() > before {
                return true;
            }
            if let Some(Ok(Some(_))) = self.child.as_mut().map(|c| c.try_wait()) {
                self.child = None;
                return false;
            }
            assert!(
                Instant::now() < end,
                "server did not start serving; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Lines of the log in which a run of the server said it serves.
    fn serving_lines(&self) -> usize {
        self.log()
            .lines()
            .filter(|l| l.contains("serving") && l.contains("addr"))
            .count()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn log(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    /// The server's process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Whether the server process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// The server's data directory (database, keys).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Opens the server's own database (SQLite in WAL mode or PostgreSQL: safe beside the running server).
    pub async fn db(&self) -> vigil::db::Pool {
        vigil::db::connect(&self.database_url)
            .await
            .expect("open the database")
    }

    /// The server's configuration file.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("vigil.toml")
    }

    /// `kill -9`: the process dies wherever it is.
    /// Restarts the server with the test hook `VIGIL_CRASH_AT=point:nth` and waits (a minute at most) until
    /// it aborts there; the hook is cleared for the next start.
    pub async fn crash_at(&mut self, point: &str, nth: u32) {
        self.env = vec![("VIGIL_CRASH_AT".into(), format!("{point}:{nth}"))];
        self.restart();
        let start = Instant::now();
        while self.alive() {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "{point}: never reached; log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            self.log().contains(&format!("crash point {point}")),
            "{point}: died elsewhere"
        );
        self.env.clear();
    }

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for a clean exit (segments closed).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let end = Instant::now() + Duration::from_secs(20);
            while Instant::now() < end {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the server again on the same address, configuration and data directory.
    pub fn restart(&mut self) {
        self.kill9();
        let config = self.config_path();
        assert!(
            self.spawn(&config),
            "server exited at restart; log:\n{}",
            self.log()
        );
    }

    /// Runs `vigil <args> --config C --data-dir D` to completion.
    fn run(&self, args: &[&str]) -> std::process::Output {
        Command::new(BIN)
            .args(args)
            .arg("--config")
            .arg(self.config_path())
            .arg("--data-dir")
            .arg(self.data_dir())
            .arg("--database-url")
            .arg(&self.database_url)
            .env("RUST_LOG", "warn")
            .output()
            .expect("run vigil")
    }

    /// Runs `vigil <args> --config C --data-dir D` to completion: (exit success, stdout and stderr).
    pub fn command(&self, args: &[&str]) -> (bool, String) {
        let out = self.run(args);
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }

    /// A client logged in as the seeded admin.
    pub async fn admin(&self) -> Client {
        Client::login(self, "admin", ADMIN_PASSWORD).await
    }

    /// A bearer-token client of the approval system (integrator, whole province), its token made with
    /// `vigil token create` as an operator would.
    pub fn integrator(&self) -> Client {
        let out = self.run(&[
            "token",
            "create",
            "--name",
            "approval-system",
            "--role",
            "integrator",
            "--region",
            "360000",
        ]);
        assert!(out.status.success(), "vigil token create: {out:?}");
        Client::with_token(self, String::from_utf8_lossy(&out.stdout).trim())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        // A failing test shows the server's errors (its log goes with the temporary folder).
        if std::thread::panicking() {
            let log = self.log();
            let errors: Vec<&str> = log
                .lines()
                .filter(|l| l.contains("ERROR") || l.contains("cluster:"))
                .collect();
            for line in &errors[errors.len().saturating_sub(60)..] {
                eprintln!("server: {line}");
            }
        }
    }
}

/// An HTTP client with a cookie session and its CSRF token.
pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
    pub csrf: Option<String>,
    pub bearer: Option<String>,
}

pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub text: String,
}

impl Client {
    pub fn anonymous(server: &Server) -> Client {
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .build()
            .expect("client");
        Client {
            http,
            base: server.url(""),
            csrf: None,
            bearer: None,
        }
    }

    /// A client that sends `Authorization: Bearer TOKEN` and no cookie.
    pub fn with_token(server: &Server, token: &str) -> Client {
        let mut c = Client::anonymous(server);
        c.bearer = Some(token.to_owned());
        c
    }

    pub async fn login(server: &Server, username: &str, password: &str) -> Client {
        let mut c = Client::anonymous(server);
        let body = json!({"username": username, "password": password});
        let r = match c.try_call("POST", "/api/v1/session", Some(body)).await {
            Ok(r) => r,
            Err(e) => panic!("login {username}: {e}\nserver log:\n{}", server.log()),
        };
        assert_eq!(r.status, 200, "login {username}: {}", r.text);
        c.csrf = r.body["csrf_token"].as_str().map(str::to_owned);
        c
    }

    pub async fn try_call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Reply, reqwest::Error> {
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.http.request(m, format!("{}{}", self.base, path));
        if let Some(t) = &self.csrf {
            req = req.header("X-CSRF-Token", t);
        }
        if let Some(t) = &self.bearer {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(Reply { status, body, text })
    }

    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Reply {
        self.try_call(method, path, body).await.expect("request")
    }

    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: &'static str,
    ) -> Reply {
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self
            .http
            .request(m, format!("{}{}", self.base, path))
            .header("Content-Type", content_type)
            .body(body);
        if let Some(t) = &self.csrf {
            req = req.header("X-CSRF-Token", t);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        Reply {
            status,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
            text,
        }
    }

    /// A GET whose body is bytes: (status, body, content type).
    pub async fn download(&self, path: &str) -> (u16, Vec<u8>, String) {
        let mut req = self.http.get(format!("{}{}", self.base, path));
        if let Some(t) = &self.bearer {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.expect("get");
        let status = r.status().as_u16();
        let ct = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        (status, r.bytes().await.expect("body").to_vec(), ct)
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.call("GET", path, None).await
    }
    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.call("POST", path, Some(body)).await
    }
    pub async fn patch(&self, path: &str, body: Value) -> Reply {
        self.call("PATCH", path, Some(body)).await
    }
    pub async fn delete(&self, path: &str) -> Reply {
        self.call("DELETE", path, None).await
    }

    /// Creates a site and returns its id.
    /// Creates an API token (`POST /tokens`) and returns its secret.
    pub async fn token(&self, name: &str, role: &str, regions: &[&str]) -> String {
        let r = self
            .post(
                "/api/v1/tokens",
                json!({"name": name, "role": role, "region_codes": regions}),
            )
            .await;
        assert_eq!(r.status, 201, "create token {name}: {}", r.text);
        r.body["token"].as_str().expect("secret").to_owned()
    }

    pub async fn site(&self, name: &str, kind: &str, region: &str) -> i64 {
        let r = self
            .post(
                "/api/v1/sites",
                json!({"name": name, "kind": kind, "region_code": region}),
            )
            .await;
        assert_eq!(r.status, 201, "create site: {}", r.text);
        r.body["id"].as_i64().expect("site id")
    }

    /// Creates a camera and returns its id.
    pub async fn camera(&self, body: Value) -> i64 {
        let r = self.post("/api/v1/cameras", body).await;
        assert_eq!(r.status, 201, "create camera: {}", r.text);
        r.body["id"].as_i64().expect("camera id")
    }

    pub async fn status(&self, camera: i64) -> Value {
        self.get(&format!("/api/v1/cameras/{camera}/status"))
            .await
            .body
    }

    /// Waits until the camera's main stream is in `state`; returns its status then.
    pub async fn wait_state(&self, camera: i64, state: &str, timeout: Duration) -> Option<Value> {
        wait_for(timeout, || async {
            let s = self.status(camera).await;
            (s["state"] == state).then_some(s)
        })
        .await
    }
}
