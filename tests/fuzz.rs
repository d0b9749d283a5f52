//! Generated bad input for every JSON input of the API (every POST/PATCH/PUT route of the access table,
//! plus the login), with proptest: arbitrary JSON, valid bodies with one field replaced, dropped or added,
//! and bytes that are not JSON at all. Never a 500, never a panic (the server stays up), and a rejected
//! request changes no row of any table (the audit log aside, which records the attempts, the alarms,
//! which the camera watcher raises on its own for the test's camera that points nowhere, and the cameras'
//! online samples, which the uptime sampler adds on its own).

mod common;
use common::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{json, Map, Value};

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        prop_oneof![
            Just(0i64),
            Just(1),
            Just(-1),
            Just(256),
            Just(65536),
            Just(i64::MAX)
        ]
        .prop_map(|n| json!(n)),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        "\\PC{0,24}".prop_map(Value::String),
        prop_oneof![
            Just(String::new()),
            Just(" ".to_string()),
            Just("\u{0}".to_string()),
            Just("x".repeat(5000)),
            Just("360702".to_string()),
            Just("999999".to_string()),
            Just("rtsp://u:p@127.0.0.1:9/x".to_string()),
            Just("rtsp://".to_string()),
            Just("service_hall".to_string()),
            Just("admin".to_string()),
            Just("2001-01-01T00:00:00Z".to_string()),
            Just("9999-12-31T23:59:59+14:00".to_string()),
            Just("{channel}".to_string()),
            Just("'; DROP TABLE users; --".to_string()),
        ]
        .prop_map(Value::String),
    ]
}

fn json_value(keys: Vec<String>) -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        proptest::sample::select(keys),
        "[a-z_]{1,12}".prop_map(|s| s)
    ];
    leaf().prop_recursive(3, 24, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<String, Value>>())),
        ]
    })
}

/// A body the route accepts (or a plausible one), whose fields the mutations start from.
fn template(method: &str, path: &str, site: i64) -> Value {
    match (method, path) {
        ("POST", "/session") => json!({"username": "admin", "password": "not-the-password"}),
        ("POST", "/regions") => {
            json!({"code": "360799", "name": "x", "level": "district", "parent_code": "360700"})
        }
        ("POST", "/sites") => json!({"name": "x", "kind": "service_hall", "region_code": "360702"}),
        ("PATCH", "/sites/{id}") => {
            json!({"name": "y", "kind": "bid_evaluation", "region_code": "360702"})
        }
        ("POST", "/sites/{id}/positions") => {
            json!({"code": "A1", "kind": "window", "camera_ids": []})
        }
        ("POST", "/cameras") | ("PATCH", "/cameras/{id}") => json!({"name": "c", "site_id": site,
            "main_url": "rtsp://127.0.0.1:9/x", "sub_url": "rtsp://127.0.0.1:9/y", "username": "u",
            "password": "p", "transport": "tcp", "record": true}),
        ("POST", "/nvrs") => {
            json!({"site_id": site, "vendor": "generic", "host": "10.0.0.1", "port": 554,
            "channels": 2, "username": "u", "password": "p", "url_template": "rtsp://{host}:{port}/{channel}",
            "sub_url_template": "rtsp://{host}/{channel}/sub", "name_prefix": "n", "transport": "udp", "record": false})
        }
        ("POST", "/users") | ("PATCH", "/users/{id}") => {
            json!({"username": "someone", "password": "long-enough-1",
            "role": "supervisor", "region_codes": ["360702"]})
        }
        ("POST", "/tokens") => {
            json!({"name": "t", "role": "integrator", "region_codes": ["360702"],
            "expires_at": "2099-01-01T00:00:00Z"})
        }
        _ => json!({}),
    }
}

#[derive(Debug, Clone)]
enum Input {
    Any(Value),
    /// Field `index` of the template replaced by a value (op 0), removed (op 1), or a new field (op 2).
    Mutated(usize, u8, Value),
    Bytes(Vec<u8>),
}

fn apply(t: &Value, input: &Input) -> Vec<u8> {
    match input {
        Input::Any(v) => v.to_string().into_bytes(),
        Input::Bytes(b) => b.clone(),
        Input::Mutated(i, op, v) => {
            let mut obj = t.as_object().cloned().unwrap_or_default();
            let keys: Vec<String> = obj.keys().cloned().collect();
            let key = keys
                .get(i % keys.len().max(1))
                .cloned()
                .unwrap_or_else(|| "k".into());
            match op {
                0 => {
                    obj.insert(key, v.clone());
                }
                1 => {
                    obj.remove(&key);
                }
                _ => {
                    obj.insert(format!("{key}_extra"), v.clone());
                }
            }
            Value::Object(obj).to_string().into_bytes()
        }
    }
}

/// Row counts of every table but the audit log (which records attempts), the tables the server's own
/// watchers write to (alarms, camera_uptime) and sqlx's own.
async fn counts(pool: &vigil::db::Pool) -> Vec<(String, i64)> {
    let tables: Vec<(String,)> = sqlx::query_as(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT IN ('audit', 'alarms', 'camera_uptime', '_sqlx_migrations')
         AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )
    .fetch_all(pool)
    .await
    .expect("tables");
    let mut out = Vec::new();
    for (t,) in tables {
        let (n,): (i64,) = sqlx::query_as(&format!("SELECT COUNT(*) FROM \"{t}\""))
            .fetch_one(pool)
            .await
            .expect("count");
        out.push((t, n));
    }
    out
}

#[test]
fn generated_bad_input_never_breaks_anything() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let mut server = Server::start_with(
        "[auth]\nlogin_max_failures = 1000000\nlogin_address_max_failures = 1000000\n",
    );
    let (admin, pool, site, cam, victim, token) = rt.block_on(async {
        let admin = server.admin().await;
        let site = admin
            .site("章贡区政务服务中心", "service_hall", "360702")
            .await;
        let cam = admin
            .camera(json!({"name": "A区", "site_id": site, "main_url": "rtsp://127.0.0.1:9/x"}))
            .await;
        let r = admin
            .post(
                "/api/v1/users",
                json!({"username": "victim", "password": "victim-password",
            "role": "investigator", "region_codes": ["360702"]}),
            )
            .await;
        let victim = r.body["id"].as_i64().expect("victim");
        let r = admin
            .post(
                "/api/v1/tokens",
                json!({"name": "fuzz", "role": "integrator",
            "region_codes": ["360702"]}),
            )
            .await;
        let token = r.body["id"].as_i64().expect("token");
        (admin, server.db().await, site, cam, victim, token)
    });
    let mut targets: Vec<(String, String)> = vec![("POST".into(), "/session".into())];
    for rule in vigil::api::routes().rules {
        if matches!(rule.method.as_str(), "POST" | "PATCH" | "PUT") && rule.path != "/session" {
            targets.push((rule.method.as_str().to_owned(), rule.path.to_owned()));
        }
    }
    let started = std::time::Instant::now();
    for (method, path) in &targets {
        let t = template(method, path, site);
        let concrete = path
            .replace("/cameras/{id}", &format!("/cameras/{cam}"))
            .replace("/sites/{id}", &format!("/sites/{site}"))
            .replace("/users/{id}", &format!("/users/{victim}"))
            .replace("/tokens/{id}", &format!("/tokens/{token}"))
            .replace("{id}", "1");
        let url = server.url(&format!("/api/v1{concrete}"));
        let keys: Vec<String> = t
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .filter(|k: &Vec<String>| !k.is_empty())
            .unwrap_or_else(|| vec!["k".into()]);
        let strategy = prop_oneof![
            json_value(keys.clone()).prop_map(Input::Any),
            (0..keys.len(), 0u8..3, json_value(keys.clone()))
                .prop_map(|(i, op, v)| Input::Mutated(i, op, v)),
            prop::collection::vec(any::<u8>(), 0..64).prop_map(Input::Bytes),
        ];
        // 100 cases per route in scripts/test; scripts/fuzz sets PROPTEST_CASES for longer runs.
        let cases = std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(100);
        let mut runner = TestRunner::new(Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        });
        let statuses = std::cell::RefCell::new(std::collections::BTreeMap::<u16, usize>::new());
        let result = runner.run(&strategy, |input| {
            let body = apply(&t, &input);
            rt.block_on(async {
                let before = counts(&pool).await;
                let mut req = admin
                    .http
                    .request(method.parse().expect("method"), &url)
                    .header("Content-Type", "application/json")
                    .body(body.clone());
                if let Some(csrf) = &admin.csrf {
                    req = req.header("X-CSRF-Token", csrf);
                }
                let resp = req.send().await.map_err(|e| {
                    TestCaseError::fail(format!("no answer (server panicked?): {e}"))
                })?;
                let status = resp.status().as_u16();
                *statuses.borrow_mut().entry(status).or_default() += 1;
                let text = resp.text().await.unwrap_or_default();
                prop_assert!(
                    status < 500,
                    "{method} {path} {}: {status} {text}",
                    String::from_utf8_lossy(&body)
                );
                if status >= 400 {
                    let parsed: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                    prop_assert!(parsed["error"]["code"].is_string(), "error shape: {text}");
                    let after = counts(&pool).await;
                    prop_assert_eq!(
                        &before,
                        &after,
                        "half-written by {} {}: {}",
                        method,
                        path,
                        String::from_utf8_lossy(&body)
                    );
                }
                Ok(())
            })
        });
        if let Err(e) = result {
            panic!(
                "{method} {path}: {e}\nserver log tail:\n{}",
                tail(&server.log())
            );
        }
        println!("{method} {path}: statuses {:?}", statuses.borrow());
    }
    assert!(server.alive(), "server died:\n{}", tail(&server.log()));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "fuzzing took {:?}",
        started.elapsed()
    );
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}
