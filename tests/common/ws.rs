//! Live WebSocket clients for the tests: a session cookie, the upgrade request of
//! `/cameras/{id}/live`, and a connected socket.

use super::Server;
use serde_json::json;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The `vigil_session` cookie of a fresh login.
pub async fn cookie(server: &Server, user: &str, password: &str) -> String {
    let r = reqwest::Client::new()
        .post(server.url("/api/v1/session"))
        .json(&json!({"username": user, "password": password}))
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), 200, "login {user}");
    let set = r
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("set-cookie")
        .to_owned();
    set.split(';').next().unwrap_or("").to_owned()
}

pub fn request(
    server: &Server,
    camera: i64,
    cookie: &str,
    origin: Option<&str>,
) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    let url = format!(
        "ws://{}/api/v1/cameras/{camera}/live?stream=main",
        server.addr
    );
    let mut req = url.into_client_request().expect("request");
    req.headers_mut()
        .insert("cookie", cookie.parse().expect("cookie header"));
    if let Some(o) = origin {
        req.headers_mut()
            .insert("origin", o.parse().expect("origin header"));
    }
    req
}

pub async fn connect(server: &Server, camera: i64, cookie: &str) -> Ws {
    let origin = format!("http://{}", server.addr);
    let (ws, _) = tokio_tungstenite::connect_async(request(server, camera, cookie, Some(&origin)))
        .await
        .expect("websocket connects");
    ws
}
