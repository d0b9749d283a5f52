//! A PostgreSQL cluster for the tests that need one whatever the pass (the cluster test): the one of
//! `VIGIL_TEST_POSTGRES` when set (`scripts/test`'s second pass), else a throw-away one started here by
//! `scripts/postgres` (Debian's `postgresql`; `scripts/bootstrap --services` installs it) and stopped
//! when the guard goes.

use std::path::PathBuf;
use std::process::Command;

pub struct Postgres {
    /// `postgres://vigil@127.0.0.1:PORT` (no database).
    pub base: String,
    /// The cluster's folder when this guard started it.
    own: Option<tempfile::TempDir>,
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/postgres")
}

impl Postgres {
    pub fn start() -> Postgres {
        if let Some(base) = super::test_postgres() {
            return Postgres { base, own: None };
        }
        let dir = tempfile::Builder::new()
            .prefix("vigil-pg.")
            .tempdir_in("/tmp")
            .expect("tempdir");
        let out = Command::new(script())
            .arg("start")
            .arg(dir.path())
            .output()
            .expect("run scripts/postgres");
        assert!(
            out.status.success(),
            "scripts/postgres start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let base = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        Postgres {
            base,
            own: Some(dir),
        }
    }

    /// A new, empty database on the cluster.
    pub fn database(&self) -> String {
        super::create_database(&self.base)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Some(dir) = self.own.take() {
            let _ = Command::new(script()).arg("stop").arg(dir.path()).status();
            // scripts/postgres removed the folder; the guard's own removal finds nothing.
            let _ = dir.keep();
        }
    }
}
