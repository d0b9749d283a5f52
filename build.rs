//! Embeds every file of `web/` into the binary: writes `$OUT_DIR/web_files.rs`, a table of
//! (name, content type, bytes). The console has no build step; adding a file to `web/` is enough.

use std::fmt::Write as _;
use std::path::Path;

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js") | Some("mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
    println!("cargo:rerun-if-changed=web");
    // `sqlx::migrate!` embeds `migrations/` at compile time; naming any path above turns off Cargo's
    // default of rebuilding on every change, so a new migration must be named too.
    println!("cargo:rerun-if-changed=migrations");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("read web/")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    let mut out = String::from("pub static FILES: &[(&str, &str, &[u8])] = &[\n");
    for n in &names {
        let path = dir.join(n);
        writeln!(
            out,
            "    ({n:?}, {:?}, include_bytes!({:?})),",
            content_type(n),
            path.display().to_string()
        )
        .expect("write");
    }
    out.push_str("];\n");
    // Written aside and renamed into place: a new file, never an edit of one that another build tree may
    // share by a hard link.
    let out_dir = Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).to_path_buf();
    let tmp = out_dir.join("web_files.rs.tmp");
    std::fs::write(&tmp, out).expect("write web_files.rs");
    std::fs::rename(&tmp, out_dir.join("web_files.rs")).expect("rename web_files.rs");
}
