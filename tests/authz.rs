//! The authorization matrix, generated from the router's own access table (`api::routes().rules`), so a
//! route added later is covered without touching this file: every route x every role x callers bound to
//! their own city, another city and the parent province (each as a cookie session and as a bearer token) x
//! objects in each of those regions: sites, cameras, users, tokens, and cases with their clips, thumbnails,
//! exports and holds, one of whose cameras moved to another city after it was tied to the case.
//!
//! Expectations: a role the route does not admit gets 403; an object outside the caller's regions gets
//! 404 or 403 (never 2xx); an admitted caller within scope never gets 401/403; nothing answers 500; and no
//! answer to anyone ever contains the name of an object outside their regions (every object made here is
//! named `canary-<region>-...`).

mod common;
use common::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use vigil::auth::Role;

const OWN: &str = "360700";
const OTHER: &str = "360100";
const PROVINCE: &str = "360000";
const REGIONS: [&str; 3] = [OWN, OTHER, PROVINCE];

/// Whether a caller bound to `home` sees objects of `region` (the test's region tree).
fn sees(home: &str, region: &str) -> bool {
    home == PROVINCE || home == region || (home == OWN && region == "360702")
}

/// The objects of one region.
#[derive(Default, Clone)]
struct Objects {
    site: i64,
    camera: i64,
    user: i64,
    token: i64,
    case_no: String,
    export: String,
    hold: i64,
}

struct Caller {
    role: Role,
    home: &'static str,
    client: Client,
}

async fn created(c: &Client, path: &str, body: Value) -> i64 {
    let r = c.post(path, body.clone()).await;
    assert_eq!(r.status, 201, "{path} {body}: {}", r.text);
    r.body["id"].as_i64().expect("id")
}

/// Fills the path's parameters with the object of `region` that the segment before each names; unknown
/// kinds get a plain value (their region cannot be chosen, but the role check and the leak check still run).
fn fill(path: &str, region: &str, o: &Objects) -> String {
    let segs: Vec<&str> = path.split('/').collect();
    let mut out = Vec::with_capacity(segs.len());
    for (i, seg) in segs.iter().enumerate() {
        if seg.starts_with('{') {
            let kind = if i > 0 { segs[i - 1] } else { "" };
            let v = match kind {
                "cameras" => o.camera.to_string(),
                "sites" => o.site.to_string(),
                "users" => o.user.to_string(),
                "tokens" => o.token.to_string(),
                "regions" => region.to_string(),
                "cases" => o.case_no.clone(),
                "exports" => o.export.clone(),
                "holds" => o.hold.to_string(),
                _ if *seg == "{id}" => "1".to_string(),
                _ if *seg == "{index}" => "0".to_string(),
                _ => "canary-unknown".to_string(),
            };
            out.push(v);
        } else {
            out.push(seg.to_string());
        }
    }
    let path = out.join("/");
    // Routes of a time range get one around the objects' case events.
    if ["/recordings", "/events", "/video.mp4"]
        .iter()
        .any(|e| path.ends_with(e))
    {
        let (a, b) = (rfc_ms(now_ms() - 3_600_000), rfc_ms(now_ms() + 3_600_000));
        let q = |t: String| t.replace(':', "%3A").replace('+', "%2B");
        return format!("{path}?start={}&end={}", q(a), q(b));
    }
    path
}

/// A body aimed at `region` for the routes that take one; `{}` for routes this test does not know.
fn body(method: &str, path: &str, region: &str, o: &Objects, n: usize) -> Option<Value> {
    if method == "GET" || method == "DELETE" {
        return None;
    }
    let name = format!("canary-{region}-{n}");
    Some(match (method, path) {
        ("POST", "/regions") => json!({"code": format!("{}{:02}", &region[..4], 10 + n % 90),
            "name": name, "level": "district", "parent_code": region}),
        // Not a canary name: the regions above one's own are shown to everyone below them.
        ("PATCH", "/regions/{code}") => json!({"name": format!("区划{n}")}),
        ("POST", "/sites") => json!({"name": name, "kind": "service_hall", "region_code": region}),
        ("PATCH", "/sites/{id}") => json!({"kind": "service_hall"}),
        ("POST", "/sites/{id}/positions") => json!({"code": name, "kind": "window"}),
        ("POST", "/cameras") => {
            json!({"name": name, "site_id": o.site, "main_url": "rtsp://127.0.0.1:9/x"})
        }
        ("PATCH", "/cameras/{id}") => json!({"record": true}),
        ("POST", "/nvrs") => json!({"site_id": o.site, "vendor": "hikvision", "host": "10.9.9.9",
            "channels": 1, "name_prefix": name}),
        ("POST", "/users") => json!({"username": name, "password": "canary-password",
            "role": "supervisor", "region_codes": [region]}),
        ("PATCH", "/users/{id}") => json!({"region_codes": [region]}),
        ("POST", "/tokens") => {
            json!({"name": name, "role": "integrator", "region_codes": [region]})
        }
        // A device id that does not exist: a foreign site is refused before the device is looked up.
        ("POST", "/gb/devices/{id}/bind") => json!({"site_id": o.site}),
        ("POST", "/onvif/discover") => json!({"site_id": o.site, "timeout_ms": 500}),
        ("POST", "/holds") => json!({"camera_id": o.camera, "start": rfc_ms(now_ms() - 60_000),
            "end": rfc_ms(now_ms()), "reason": name}),
        _ => json!({}),
    })
}

/// Cases, exports and holds in each region, made of real objects; and a camera that moved: 南昌市's
/// camera was first a camera of 赣州市's site, tied to the position of 赣州市's case, and keeps that tie.
/// 赣州市's case must then show none of it, and 南昌市's callers none of 赣州市's case through it.
async fn case_objects(server: &Server, admin: &Client, objects: &mut BTreeMap<&str, Objects>) {
    let moved = objects[OTHER].camera;
    let r = admin
        .patch(
            &format!("/api/v1/cameras/{moved}"),
            json!({"site_id": objects[OWN].site}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let mut events = Vec::new();
    for region in [OWN, OTHER, PROVINCE] {
        let o = &objects[region];
        let cams = if region == OWN {
            vec![o.camera, moved]
        } else {
            vec![o.camera]
        };
        let r = admin
            .post(
                &format!("/api/v1/sites/{}/positions", o.site),
                json!({"code": "P1", "kind": "window", "camera_ids": cams}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        events.push(json!({"event_id": format!("canary-{region}-event"),
            "case_no": format!("canary-{region}-case"), "case_type": "approval", "kind": "accepted",
            "at": rfc_ms(now_ms() - 60_000), "site_id": o.site, "position": "P1"}));
        if region == OWN {
            // Tied to 赣州市's case, the camera goes (back) to 南昌市.
            let r = admin
                .patch(
                    &format!("/api/v1/cameras/{moved}"),
                    json!({"site_id": objects[OTHER].site}),
                )
                .await;
            assert_eq!(r.status, 200, "{}", r.text);
        }
    }
    let r = admin
        .post("/api/v1/events", json!({"events": events}))
        .await;
    assert_eq!(r.body["accepted"], 3, "{}", r.text);
    for region in REGIONS {
        let case_no = format!("canary-{region}-case");
        let r = admin
            .post(&format!("/api/v1/cases/{case_no}/export"), json!({}))
            .await;
        assert_eq!(r.status, 202, "{}", r.text);
        let export = r.body["export_id"].as_str().expect("export").to_owned();
        let camera = objects[region].camera;
        let hold = created(
            admin,
            "/api/v1/holds",
            json!({"camera_id": camera, "start": rfc_ms(now_ms() - 60_000), "end": rfc_ms(now_ms()),
                   "reason": format!("canary-{region}-hold")}),
        )
        .await;
        let o = objects.get_mut(region).expect("objects");
        (o.case_no, o.export, o.hold) = (case_no, export, hold);
    }
    let _ = server;
}

#[tokio::test]
async fn every_route_every_role_every_region() {
    let server = Server::start();
    let admin = server.admin().await;
    // Objects in the own city, the other city and the province itself.
    let mut objects: BTreeMap<&str, Objects> = BTreeMap::new();
    for region in REGIONS {
        let site = created(
            &admin,
            "/api/v1/sites",
            json!({"name": format!("canary-{region}-site"), "kind": "service_hall", "region_code": region}),
        )
        .await;
        let camera = created(
            &admin,
            "/api/v1/cameras",
            json!({"name": format!("canary-{region}-camera"),
            "site_id": site, "main_url": "rtsp://127.0.0.1:9/x"}),
        )
        .await;
        let user = created(
            &admin,
            "/api/v1/users",
            json!({"username": format!("canary-{region}-user"),
            "password": "canary-password", "role": "investigator", "region_codes": [region]}),
        )
        .await;
        let token = created(
            &admin,
            "/api/v1/tokens",
            json!({"name": format!("canary-{region}-token"),
            "role": "integrator", "region_codes": [region]}),
        )
        .await;
        objects.insert(
            region,
            Objects {
                site,
                camera,
                user,
                token,
                ..Objects::default()
            },
        );
    }
    case_objects(&server, &admin, &mut objects).await;
    // Callers: every role, bound to each region.
    let mut callers = Vec::new();
    for role in Role::ALL {
        for home in REGIONS {
            let name = format!("caller-{}-{home}", role.as_str());
            created(
                &admin,
                "/api/v1/users",
                json!({"username": name, "password": "caller-password",
                "role": role.as_str(), "region_codes": [home]}),
            )
            .await;
            let client = Client::login(&server, &name, "caller-password").await;
            callers.push(Caller { role, home, client });
            // The same rights through a bearer token (machine clients).
            let r = admin
                .post(
                    "/api/v1/tokens",
                    json!({"name": format!("{name}-token"), "role": role.as_str(), "region_codes": [home]}),
                )
                .await;
            assert_eq!(r.status, 201, "{}", r.text);
            let client = Client::with_token(&server, r.body["token"].as_str().expect("secret"));
            callers.push(Caller { role, home, client });
        }
    }

    let mut rules = vigil::api::routes().rules;
    // Deletions last, so that the other checks still find their objects.
    rules.sort_by_key(|r| r.method.as_str() == "DELETE");
    let mut checks = 0usize;
    let mut n = 0usize;
    let mut failures = Vec::new();
    for rule in &rules {
        if rule.path == "/session" {
            continue; // logging out would end the caller's session; tested in tests/api.rs
        }
        let method = rule.method.as_str();
        for region in REGIONS {
            let o = &objects[region];
            let path = fill(rule.path, region, o);
            // Callers who must not see the object go first, before an admitted one may delete it.
            let mut order: Vec<&Caller> = callers.iter().collect();
            order.sort_by_key(|c| sees(c.home, region));
            for c in order {
                n += 1;
                let r = c
                    .client
                    .call(
                        method,
                        &format!("/api/v1{path}"),
                        body(method, rule.path, region, o, n),
                    )
                    .await;
                checks += 1;
                let admitted = rule.roles.contains(&c.role);
                let visible = sees(c.home, region);
                let has_object = rule.path.contains('{');
                let what = format!(
                    "{method} {} as {} of {} on {region}: {} {}",
                    rule.path,
                    c.role.as_str(),
                    c.home,
                    r.status,
                    r.text.chars().take(200).collect::<String>()
                );
                let ok = if r.status == 500 || r.status == 401 {
                    false
                } else if !admitted {
                    r.status == 403
                } else if !visible {
                    if rule.path.starts_with("/me") {
                        // The caller's own things (their wall): no region is involved.
                        r.status != 403
                    } else if has_object {
                        r.status == 403 || r.status == 404
                    } else {
                        // No object in the path: a body aimed at a foreign region must be refused; a
                        // read is checked by the leak check below.
                        method == "GET" || !(200..300).contains(&r.status)
                    }
                } else {
                    r.status != 403
                };
                if !ok {
                    failures.push(what.clone());
                }
                for foreign in REGIONS.iter().filter(|f| !sees(c.home, f)) {
                    if r.text.contains(&format!("canary-{foreign}-")) {
                        failures.push(format!("LEAK of {foreign}: {what}"));
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checks} checks failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(checks >= rules.len() * 60, "only {checks} checks");
}
