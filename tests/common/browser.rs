//! Runs a script of `tests/browser/` (Node + playwright-core driving `/usr/bin/chromium`) against a test
//! server. Without Chromium or `tests/browser/node_modules` the browser tests say so and pass, unless
//! `VIGIL_BROWSER_TESTS=1` (set by `scripts/test`) demands them.

use super::Server;
use std::path::{Path, PathBuf};

pub fn browser_available() -> bool {
    let ok = Path::new("/usr/bin/chromium").exists()
        && Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/browser/node_modules/playwright-core"
        ))
        .exists();
    if !ok && std::env::var("VIGIL_BROWSER_TESTS").as_deref() == Ok("1") {
        panic!("browser tests required but chromium or tests/browser/node_modules is missing (scripts/bootstrap --browser)");
    }
    if !ok {
        eprintln!("SKIPPED: chromium or tests/browser/node_modules missing; run scripts/bootstrap --browser");
    }
    ok
}

/// Where browser tests keep their screenshots (`tests/artifacts/`, ignored by git).
pub fn artifacts_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/artifacts");
    std::fs::create_dir_all(&dir).expect("create tests/artifacts");
    dir
}

/// Runs `tests/browser/{script}` with `VIGIL_URL` (the server), `VIGIL_ARTIFACTS` and `env`; panics with
/// the script's output and the server's log tail when it exits non-zero. Returns its standard output.
pub fn run_script(script: &str, server: &Server, env: &[(&str, String)]) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/browser")
        .join(script);
    let out = std::process::Command::new("node")
        .arg(&path)
        .env("VIGIL_URL", server.url(""))
        .env("VIGIL_ARTIFACTS", artifacts_dir())
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        out.status.success(),
        "{script} failed:\n{stdout}\n{stderr}\nserver log tail:\n{}",
        server
            .log()
            .lines()
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .join("\n")
    );
    stdout
}
