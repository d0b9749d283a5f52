//! Camera passwords encrypted at rest (and sealed when an older version left them in plaintext), and the
//! built-in TLS with its Secure cookies: against the real binary, its real SQLite file and `openssl`/`curl`.

mod common;
use common::*;
use serde_json::json;
use std::process::Command;

#[tokio::test]
async fn camera_passwords_are_encrypted_at_rest() {
    const SECRET: &str = "Legacy-Pa55-at-rest";
    let mut server = Server::start();
    let admin = server.admin().await;
    let site = admin
        .site("章贡区政务服务中心", "service_hall", "360702")
        .await;
    let cam = admin
        .camera(json!({"name": "A区", "site_id": site, "main_url": "rtsp://127.0.0.1:9/x", "username": "op", "password": SECRET}))
        .await;
    let pool = server.db().await;
    let (stored,): (String,) = sqlx::query_as("SELECT password FROM cameras WHERE id = $1")
        .bind(cam)
        .fetch_one(&pool)
        .await
        .expect("row");
    assert!(
        stored.starts_with("enc:v1:") && !stored.contains(SECRET),
        "{stored}"
    );
    let key = server.data_dir().join("keys/secrets.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key)
            .expect("key file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // A row left in plaintext by an older version is sealed at the next start.
    sqlx::query("UPDATE cameras SET password = $1 WHERE id = $2")
        .bind(SECRET)
        .bind(cam)
        .execute(&pool)
        .await
        .expect("legacy row");
    pool.close().await;
    server.restart();
    let pool = server.db().await;
    let (stored,): (String,) = sqlx::query_as("SELECT password FROM cameras WHERE id = $1")
        .bind(cam)
        .fetch_one(&pool)
        .await
        .expect("row");
    assert!(stored.starts_with("enc:v1:"), "sealed on start: {stored}");
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&pool)
        .await
        .expect("checkpoint");
    let bytes = std::fs::read(server.data_dir().join("vigil.db")).expect("db file");
    assert!(
        !bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()),
        "plaintext password in the database file"
    );
    let admin = server.admin().await;
    let r = admin.get(&format!("/api/v1/cameras/{cam}")).await;
    assert_eq!(r.status, 200);
    assert!(
        !r.text.contains(SECRET) && !r.text.contains("enc:v1"),
        "{}",
        r.text
    );
    let audit = admin.get("/api/v1/audit").await.text;
    assert!(!audit.contains(SECRET));
    let metrics = admin.get("/metrics").await;
    assert_eq!(metrics.status, 200);
    assert!(!metrics.text.contains(SECRET));
    assert!(!server.log().contains(SECRET), "log holds the password");
}

#[tokio::test]
async fn tls_serves_https_with_secure_cookies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ])
        .args(["-days", "2", "-subj", "/CN=localhost", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let server = Server::start_with(&format!(
        "[tls]\ncert = {:?}\nkey = {:?}\n",
        cert.display().to_string(),
        key.display().to_string()
    ));
    let url = format!("https://{}/api/v1/session", server.addr);
    let out = Command::new("curl")
        .args(["-sk", "-i", "-H", "Content-Type: application/json", "-d"])
        .arg(format!(
            "{{\"username\":\"admin\",\"password\":\"{ADMIN_PASSWORD}\"}}"
        ))
        .arg(&url)
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).to_lowercase();
    assert!(
        text.starts_with("http/"),
        "HTTPS answers: {text}\n{}",
        server.log()
    );
    assert!(text.contains(" 200"), "{text}");
    let cookie = text
        .lines()
        .find(|l| l.starts_with("set-cookie:"))
        .unwrap_or_default();
    assert!(cookie.contains("; secure"), "Secure under TLS: {cookie}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("strict-transport-security: max-age=")),
        "HSTS under TLS: {text}"
    );
    // Plain HTTP on the TLS port is refused.
    let plain = reqwest::Client::new()
        .get(server.url("/healthz"))
        .send()
        .await;
    assert!(plain.map(|r| !r.status().is_success()).unwrap_or(true));
}

/// Two servers in one process (as a node and its test peer will be): each keeps its own key, so neither
/// can open the other's sealed passwords, and neither changes what the other seals with.
#[tokio::test]
async fn two_servers_in_one_process_keep_their_own_keys() {
    let (a_dir, b_dir) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let bind = |dir: &std::path::Path| {
        vigil::server::Server::bind(vigil::config::Config {
            data_dir: dir.to_owned(),
            listen: "127.0.0.1:0".parse().expect("addr"),
            ..Default::default()
        })
    };
    let a = bind(a_dir.path()).await.expect("server a");
    let b = bind(b_dir.path()).await.expect("server b");
    let sealed_by_a = a.state.secrets.seal("Pa55-of-a").expect("seal");
    let sealed_by_b = b.state.secrets.seal("Pa55-of-b").expect("seal");
    assert_eq!(
        a.state.secrets.open(&sealed_by_a).expect("a opens its own"),
        "Pa55-of-a"
    );
    assert_eq!(
        b.state.secrets.open(&sealed_by_b).expect("b opens its own"),
        "Pa55-of-b"
    );
    assert!(
        b.state.secrets.open(&sealed_by_a).is_err(),
        "b cannot open a's"
    );
    assert!(
        a.state.secrets.open(&sealed_by_b).is_err(),
        "a cannot open b's"
    );
}
