//! Live WebSocket clients for the tests: a session cookie, the upgrade request of
//! `/cameras/{id}/live`, and a connected socket.

use super::Server;
use serde_json::json;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A fresh login: the `vigil_session` cookie (`name=value`) and the session's CSRF token.
pub async fn session(server: &Server, user: &str, password: &str) -> (String, String) {
    let r = reqwest::Client::new()
        .post(server.url("/api/v1/session"))
        .json(&json!({"username": user, "password": password}))
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), 200, "login {user}");
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("vigil_session="))
        .and_then(|v| v.split(';').next())
        .expect("session cookie")
        .to_owned();
    let body: serde_json::Value = r.json().await.expect("login answer");
    let csrf = body["csrf_token"].as_str().unwrap_or_default().to_owned();
    (cookie, csrf)
}

/// The `vigil_session` cookie of a fresh login.
pub async fn cookie(server: &Server, user: &str, password: &str) -> String {
    session(server, user, password).await.0
}

/// The notification stream (`/notifications`) of a session, from the server's own origin.
pub async fn notifications(server: &Server, cookie: &str) -> Ws {
    let mut req = format!("ws://{}/api/v1/notifications", server.addr)
        .into_client_request()
        .expect("request");
    req.headers_mut()
        .insert("cookie", cookie.parse().expect("cookie"));
    req.headers_mut().insert(
        "origin",
        format!("http://{}", server.addr).parse().expect("origin"),
    );
    tokio_tungstenite::connect_async(req)
        .await
        .expect("notifications socket")
        .0
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

/// A WebRTC receiver's offer for WHEP (one video track, receive only, a host candidate on loopback):
/// the peer, its pending offer, its socket, and the SDP to post.
pub async fn whep_offer() -> (
    str0m::Rtc,
    str0m::change::SdpPendingOffer,
    tokio::net::UdpSocket,
    String,
) {
    use str0m::media::{Direction, MediaKind};
    use str0m::{Candidate, Rtc};
    str0m::crypto::from_feature_flags().install_process_default();
    let mut rtc = Rtc::builder()
        .set_rtp_mode(true)
        .build(std::time::Instant::now());
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("udp");
    let local = sock.local_addr().expect("addr");
    rtc.add_local_candidate(Candidate::host(local, "udp").expect("candidate"));
    let mut api = rtc.sdp_api();
    api.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
    let (offer, pending) = api.apply().expect("offer");
    (rtc, pending, sock, offer.to_sdp_string())
}
