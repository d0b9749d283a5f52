//! The console's files, embedded in the binary (no build step, no files to deploy). They carry no data:
//! everything they show comes from the authenticated API.

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

fn file(content_type: &'static str, body: &'static str) -> impl IntoResponse + Clone {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
}

pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(
            "/",
            get(|| async {
                file(
                    "text/html; charset=utf-8",
                    include_str!("../../web/index.html"),
                )
            }),
        )
        .route(
            "/app.js",
            get(|| async {
                file(
                    "text/javascript; charset=utf-8",
                    include_str!("../../web/app.js"),
                )
            }),
        )
        .route(
            "/live-player.js",
            get(|| async {
                file(
                    "text/javascript; charset=utf-8",
                    include_str!("../../web/live-player.js"),
                )
            }),
        )
        .route(
            "/app.css",
            get(|| async { file("text/css; charset=utf-8", include_str!("../../web/app.css")) }),
        )
}
