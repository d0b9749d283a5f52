//! The data directory is private: it holds evidence, the database (users, sessions, sealed camera
//! passwords) and the keys. Everything a Vigil process creates is readable by its own user only: the
//! process runs with umask 077 (files 0600, folders 0700), and at start the data directory and the
//! database files that an earlier version or an operator made with wider modes are narrowed.
//!
//! It is also where the one durability step every writer needs lives: [`fsync_dir`], which makes a
//! created, renamed or removed name survive a power cut (see docs/storage.md).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Makes the names in `dir` durable: what was created, renamed or removed in it survives a crash.
pub fn fsync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// From now on, files and folders this process creates are its user's alone.
pub fn restrict_new_files() {
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
}

/// Creates the data directory when missing, private, and narrows it and the database files in it that
/// exist with wider modes (0700 for the directory, 0600 for the files).
pub fn prepare_data_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    narrow(dir, 0o700)?;
    for name in ["vigil.db", "vigil.db-wal", "vigil.db-shm"] {
        let f = dir.join(name);
        if f.exists() {
            narrow(&f, 0o600)?;
        }
    }
    Ok(())
}

/// Clears the group and other bits of `path` when any are set.
fn narrow(path: &Path, mode: u32) -> std::io::Result<()> {
    let now = std::fs::metadata(path)?.permissions().mode() & 0o777;
    if now & 0o077 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

/// The contents of a key file: read when it exists, else made by `make` and written (0600, fsynced, its
/// folder fsynced) in one step that a concurrent start cannot interleave: the file is written under a
/// temporary name and linked into place, and when another process won that race its contents are the
/// ones returned.
pub fn load_or_create(path: &Path, make: impl FnOnce() -> Vec<u8>) -> std::io::Result<Vec<u8>> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::read(path) {
        Ok(bytes) => return Ok(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    narrow(dir, 0o700)?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("key");
    let tmp = dir.join(format!("{name}.{}.tmp", std::process::id()));
    let bytes = make();
    {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
    }
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            fsync_dir(dir)?;
            Ok(bytes)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => std::fs::read(path),
        Err(e) => Err(e),
    }
}
