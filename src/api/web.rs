//! The console's files (`web/`), embedded in the binary by `build.rs`: no build step, no files to deploy.
//! They carry no data: everything they show comes from the authenticated API.
//!
//! For work on the console, `VIGIL_WEB_DIR=/path/to/web` serves the files from that directory instead, read
//! at each request, so that a page can be changed without rebuilding the server. Only names of the embedded
//! table are served either way, so the variable cannot expose other files.

use axum::extract::Path;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/web_files.rs"));
}

fn serve(name: &str) -> Response {
    let Some(&(name, content_type, bytes)) = embedded::FILES.iter().find(|f| f.0 == name) else {
        return super::error::ApiError::not_found().into_response();
    };
    let body = match std::env::var_os("VIGIL_WEB_DIR") {
        Some(dir) => match std::fs::read(std::path::Path::new(&dir).join(name)) {
            Ok(b) => b,
            Err(_) => bytes.to_vec(),
        },
        None => bytes.to_vec(),
    };
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|| async { serve("index.html") }))
        .route(
            "/{file}",
            get(|Path(file): Path<String>| async move { serve(&file) }),
        )
}
