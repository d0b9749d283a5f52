//! Sessions, CSRF, throttling and lockout, tokens, users within regions, and the audit chain: each
//! against the real binary and its real SQLite database.

mod common;
use common::*;
use serde_json::json;
use std::process::Command;
use std::time::Duration;

/// Creates a user through the API and returns its id.
async fn user(admin: &Client, name: &str, role: &str, regions: &[&str]) -> i64 {
    let r = admin
        .post(
            "/api/v1/users",
            json!({"username": name, "password": "user-password-1", "role": role, "region_codes": regions}),
        )
        .await;
    assert_eq!(r.status, 201, "create user {name}: {}", r.text);
    assert!(!r.text.contains("user-password-1") && !r.text.contains("argon2"));
    r.body["id"].as_i64().expect("user id")
}

async fn count(pool: &vigil::db::Pool, table: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(pool)
        .await
        .expect("count");
    n
}

#[tokio::test]
async fn csrf_and_session_expiry() {
    let server = Server::start();
    let mut c = server.admin().await;
    let pool = server.db().await;
    let sites = count(&pool, "sites").await;
    let good = c.csrf.clone();
    for token in [None, Some("wrong".to_string())] {
        c.csrf = token;
        for (method, path, body) in [
            (
                "POST",
                "/api/v1/sites",
                Some(json!({"name": "x", "kind": "service_hall", "region_code": "360702"})),
            ),
            (
                "POST",
                "/api/v1/users",
                Some(json!({"username": "eve", "password": "eve-password", "role": "admin"})),
            ),
            ("DELETE", "/api/v1/session", None),
        ] {
            let r = c.call(method, path, body).await;
            assert_eq!(r.status, 403, "{method} {path} without CSRF: {}", r.text);
        }
    }
    assert_eq!(count(&pool, "sites").await, sites, "nothing written");
    assert_eq!(count(&pool, "users").await, 1, "nothing written");
    c.csrf = good;
    assert_eq!(c.get("/api/v1/me").await.status, 200, "still logged in");

    // The cookie's attributes.
    let resp = reqwest::Client::new()
        .post(server.url("/api/v1/session"))
        .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .expect("login");
    let cookie = resp
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(
        !cookie.contains("Secure"),
        "no Secure without TLS: {cookie}"
    );

    // Idle expiry: a session unused for longer than session_idle_minutes is dead.
    let idle = server.admin().await;
    assert_eq!(idle.get("/api/v1/me").await.status, 200);
    sqlx::query("UPDATE sessions SET last_seen_at = last_seen_at - 61 * 60000")
        .execute(&pool)
        .await
        .expect("age sessions");
    assert_eq!(idle.get("/api/v1/me").await.status, 401, "idle session");
    assert_eq!(c.get("/api/v1/me").await.status, 401, "idle session");
    // Absolute expiry: however busy, a session ends at expires_at.
    let busy = server.admin().await;
    assert_eq!(busy.get("/api/v1/me").await.status, 200);
    sqlx::query("UPDATE sessions SET expires_at = $1")
        .bind(vigil::db::now_ms() - 1)
        .execute(&pool)
        .await
        .expect("expire sessions");
    assert_eq!(busy.get("/api/v1/me").await.status, 401, "expired session");
}

#[tokio::test]
async fn login_throttling_and_lockout() {
    let server = Server::start_with(
        "[auth]\nlogin_max_failures = 3\nlockout_minutes = 0\nlogin_address_max_failures = 6\nlogin_address_window_seconds = 600\n",
    );
    let admin = server.admin().await;
    let clerk = user(&admin, "clerk", "supervisor", &["360700"]).await;
    let anon = Client::anonymous(&server);
    let try_login = |name: &'static str, pw: &'static str| {
        let anon = &anon;
        async move {
            anon.post("/api/v1/session", json!({"username": name, "password": pw}))
                .await
        }
    };
    for _ in 0..3 {
        assert_eq!(try_login("clerk", "wrong-guess").await.status, 401);
    }
    // Locked: even the right password is refused, with a clear 429.
    let r = try_login("clerk", "user-password-1").await;
    assert_eq!(r.status, 429, "{}", r.text);
    assert_eq!(r.body["error"]["code"], "too_many_requests");
    assert!(r.text.contains("locked"), "{}", r.text);
    let raw = reqwest::Client::new()
        .post(server.url("/api/v1/session"))
        .json(&json!({"username": "clerk", "password": "user-password-1"}))
        .send()
        .await
        .expect("login");
    assert_eq!(raw.status(), 429);
    assert!(raw.headers().get("retry-after").is_some(), "Retry-After");
    let listed = admin.get("/api/v1/users").await.body;
    assert!(
        listed
            .as_array()
            .expect("users")
            .iter()
            .any(|u| u["id"] == clerk && u["locked"] == true),
        "{listed}"
    );
    // Only an admin lifts the lock.
    let supervisor = user(&admin, "boss", "supervisor", &["360700"]).await;
    let boss = Client::login(&server, "boss", "user-password-1").await;
    assert_eq!(
        boss.post(&format!("/api/v1/users/{clerk}/unlock"), json!({}))
            .await
            .status,
        403
    );
    let _ = supervisor;
    let r = admin
        .post(&format!("/api/v1/users/{clerk}/unlock"), json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(try_login("clerk", "user-password-1").await.status, 200);

    // Per address: 3 failures so far from this address; 3 more (unknown names) reach the limit of 6.
    for _ in 0..3 {
        assert_eq!(try_login("nobody", "x").await.status, 401);
    }
    let r = try_login("admin", ADMIN_PASSWORD).await;
    assert_eq!(r.status, 429, "address throttled: {}", r.text);
    // Every attempt is in the audit log.
    let log = admin.get("/api/v1/audit?action=login_failed").await;
    assert_eq!(log.status, 200, "{}", log.text);
    assert_eq!(log.body.as_array().map(Vec::len), Some(6), "{}", log.text);
    let locked = admin.get("/api/v1/audit?action=login_locked").await.body;
    assert_eq!(locked.as_array().map(Vec::len), Some(2), "{locked}");
    let throttled = admin.get("/api/v1/audit?action=login_throttled").await.body;
    assert_eq!(throttled.as_array().map(Vec::len), Some(1), "{throttled}");
}

#[tokio::test]
async fn tokens_expire_and_are_revoked() {
    let server = Server::start();
    let admin = server.admin().await;
    let r = admin
        .post(
            "/api/v1/tokens",
            json!({"name": "approval-system", "role": "integrator", "region_codes": ["360700"]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let secret = r.body["token"]
        .as_str()
        .expect("secret shown once")
        .to_owned();
    let id = r.body["id"].as_i64().expect("id");
    let machine = Client::with_token(&server, &secret);
    assert_eq!(machine.get("/api/v1/me").await.status, 200);
    assert_eq!(
        machine.get("/api/v1/cameras").await.status,
        403,
        "integrator"
    );
    // Never shown again, and stored only as a hash.
    let listed = admin.get("/api/v1/tokens").await;
    assert!(listed.text.contains("approval-system") && !listed.text.contains(&secret));
    let pool = server.db().await;
    let (stored,): (String,) = sqlx::query_as("SELECT token_hash FROM api_tokens WHERE id = $1")
        .bind(id)
        .fetch_one(&pool)
        .await
        .expect("token row");
    assert_ne!(stored, secret);
    // Revocation works at once.
    assert_eq!(
        admin.delete(&format!("/api/v1/tokens/{id}")).await.status,
        204
    );
    assert_eq!(machine.get("/api/v1/me").await.status, 401, "revoked");

    // Expiry.
    let soon = chrono::Utc::now() + chrono::Duration::milliseconds(1500);
    let r = admin
        .post(
            "/api/v1/tokens",
            json!({"name": "short", "role": "integrator", "region_codes": ["360700"], "expires_at": soon.to_rfc3339()}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let short = Client::with_token(&server, r.body["token"].as_str().expect("secret"));
    assert_eq!(short.get("/api/v1/me").await.status, 200);
    tokio::time::sleep(Duration::from_millis(1800)).await;
    assert_eq!(short.get("/api/v1/me").await.status, 401, "expired");
    let past = admin
        .post(
            "/api/v1/tokens",
            json!({"name": "old", "role": "integrator", "region_codes": ["360700"], "expires_at": "2001-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(past.status, 422, "{}", past.text);
    // A regional admin can neither make a global token nor one outside their regions.
    user(&admin, "ganzhou-admin", "admin", &["360700"]).await;
    let regional = Client::login(&server, "ganzhou-admin", "user-password-1").await;
    for regions in [json!([]), json!(["360100"]), json!(["360000"])] {
        let r = regional
            .post(
                "/api/v1/tokens",
                json!({"name": "sneaky", "role": "integrator", "region_codes": regions}),
            )
            .await;
        assert_eq!(r.status, 422, "{regions}: {}", r.text);
    }
    assert_eq!(
        regional
            .post(
                "/api/v1/tokens",
                json!({"name": "mine", "role": "integrator", "region_codes": ["360702"]}),
            )
            .await
            .status,
        201
    );
}

fn vigil_check(server: &Server) -> (bool, String) {
    let out = Command::new(BIN)
        .arg("check")
        .arg("--data-dir")
        .arg(server.data_dir())
        .arg("--database-url")
        .arg(&server.database_url)
        .output()
        .expect("vigil check");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// A change whose client hangs up while the server is still at it (slow, as under load) is made whole
/// and audited, never made without its audit row.
#[tokio::test]
async fn a_change_whose_client_hangs_up_is_made_and_audited() {
    let server = Server::start();
    let admin = server.admin().await;
    let token = admin.token("site-tool", "admin", &["360000"]).await;
    let body =
        json!({"name": "于都县政务服务中心", "kind": "service_hall", "region_code": "360700"})
            .to_string();
    let request = format!(
        "POST /api/v1/sites HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        server.addr,
        body.len()
    );
    let db = server.db().await;
    hang_up_while_the_database_is_held(&server, &db, &request).await;
    let done = wait_for(Duration::from_secs(10), || async {
        let sites = admin.get("/api/v1/sites").await.body;
        let made = sites
            .as_array()
            .is_some_and(|s| s.iter().any(|x| x["name"] == "于都县政务服务中心"));
        let rows = admin.get("/api/v1/audit?actor=token:site-tool").await.body;
        let audited = rows.as_array().is_some_and(|r| {
            r.iter()
                .any(|x| x["action"] == "site.create" && x["status"] == 201)
        });
        (made && audited).then_some(())
    })
    .await;
    assert!(
        done.is_some(),
        "the site was made and its creation audited, the caller gone meanwhile"
    );
}

#[tokio::test]
async fn audit_log_is_scoped_and_tampering_is_found() {
    let server = Server::start();
    let admin = server.admin().await;
    let cam_site = admin
        .site("章贡区政务服务中心", "service_hall", "360702")
        .await;
    admin
        .site("南昌市行政服务中心", "service_hall", "360100")
        .await;
    let cam = admin
        .camera(json!({"name": "A区", "site_id": cam_site, "main_url": "rtsp://127.0.0.1:9/x"}))
        .await;
    // A look at footage is audited even when there is no picture.
    let snap = admin
        .get(&format!("/api/v1/cameras/{cam}/snapshot.jpg"))
        .await;
    assert_eq!(snap.status, 503, "{}", snap.text);
    user(&admin, "nanchang-admin", "admin", &["360100"]).await;
    let nanchang = Client::login(&server, "nanchang-admin", "user-password-1").await;
    let outsider = nanchang
        .get(&format!("/api/v1/cameras/{cam}/snapshot.jpg"))
        .await;
    assert_eq!(outsider.status, 404);

    let all = admin.get("/api/v1/audit").await.body;
    let actions: Vec<&str> = all
        .as_array()
        .expect("rows")
        .iter()
        .filter_map(|r| r["action"].as_str())
        .collect();
    for a in [
        "login",
        "site.create",
        "camera.create",
        "camera.snapshot",
        "user.create",
    ] {
        assert!(actions.contains(&a), "{a} missing from {actions:?}");
    }
    let snaps = admin.get("/api/v1/audit?action=camera.snapshot").await.body;
    let snaps = snaps.as_array().expect("rows");
    assert_eq!(snaps.len(), 2, "{snaps:?}");
    assert!(snaps
        .iter()
        .any(|r| r["actor"] == "nanchang-admin" && r["status"] == 404));
    assert!(snaps.iter().all(|r| r["region_code"] == "360702"));
    assert!(
        snaps.iter().all(|r| r["client"] == "127.0.0.1"),
        "{snaps:?}"
    );
    // The regional admin sees only rows of their regions.
    let theirs = nanchang.get("/api/v1/audit").await.body;
    let theirs = theirs.as_array().expect("rows");
    assert!(!theirs.is_empty());
    assert!(
        theirs.iter().all(|r| r["region_code"] == "360100"),
        "{theirs:?}"
    );
    let r = admin
        .get("/api/v1/audit?actor=nanchang-admin&from=2000-01-01T00:00:00Z")
        .await;
    assert!(
        r.body.as_array().is_some_and(|a| !a.is_empty()),
        "{}",
        r.text
    );
    assert_eq!(admin.get("/api/v1/audit?from=yesterday").await.status, 422);

    let (ok, out) = vigil_check(&server);
    assert!(ok, "intact chain: {out}");
    assert!(out.contains("intact"), "{out}");
    // Edit a row behind the server's back.
    let pool = server.db().await;
    sqlx::query("UPDATE audit SET actor = 'someone-else' WHERE id = 3")
        .execute(&pool)
        .await
        .expect("tamper");
    let (ok, out) = vigil_check(&server);
    assert!(!ok, "edited row found: {out}");
    assert!(out.contains("row 3"), "{out}");
    // Delete one instead.
    sqlx::query("DELETE FROM audit WHERE id = 3")
        .execute(&pool)
        .await
        .expect("tamper");
    let (ok, out) = vigil_check(&server);
    assert!(!ok && out.contains("row 4"), "deleted row found: {out}");
}

#[tokio::test]
async fn users_are_managed_within_regions() {
    let server = Server::start();
    let admin = server.admin().await;
    let officer = user(&admin, "officer", "supervisor", &["360702"]).await;
    user(&admin, "ganzhou", "admin", &["360700"]).await;
    let ganzhou = Client::login(&server, "ganzhou", "user-password-1").await;
    let seen = ganzhou.get("/api/v1/users").await.text;
    assert!(
        seen.contains("officer") && !seen.contains("\"username\":\"admin\""),
        "{seen}"
    );
    // The global admin (id 1) is not theirs to see, change or delete.
    assert_eq!(
        ganzhou
            .patch("/api/v1/users/1", json!({"role": "supervisor"}))
            .await
            .status,
        404
    );
    assert_eq!(ganzhou.delete("/api/v1/users/1").await.status, 404);
    // They cannot grant more than they have, nor global rights.
    for regions in [json!(["360000"]), json!(["360100"]), json!([])] {
        let r = ganzhou
            .patch(
                &format!("/api/v1/users/{officer}"),
                json!({"region_codes": regions}),
            )
            .await;
        assert_eq!(r.status, 422, "{regions}: {}", r.text);
    }
    // A new password ends the user's sessions; the password is never echoed.
    let session = Client::login(&server, "officer", "user-password-1").await;
    assert_eq!(session.get("/api/v1/sites").await.status, 200);
    let r = ganzhou
        .patch(
            &format!("/api/v1/users/{officer}"),
            json!({"password": "new-password-2"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(
        !r.text.contains("new-password-2") && !r.text.contains("password"),
        "{}",
        r.text
    );
    assert_eq!(session.get("/api/v1/sites").await.status, 401);
    Client::login(&server, "officer", "new-password-2").await;
    // Nobody deletes themselves; deleting another works and is audited.
    let me = ganzhou.get("/api/v1/me").await.body["id"]
        .as_i64()
        .expect("id");
    assert_eq!(
        ganzhou.delete(&format!("/api/v1/users/{me}")).await.status,
        409
    );
    assert_eq!(
        ganzhou
            .delete(&format!("/api/v1/users/{officer}"))
            .await
            .status,
        204
    );
    let log = ganzhou.get("/api/v1/audit?action=user.delete").await.body;
    assert_eq!(log.as_array().map(Vec::len), Some(2), "{log}");
    assert!(log
        .as_array()
        .expect("rows")
        .iter()
        .any(|r| r["status"] == 204 && r["region_code"] == "360702"));
}
