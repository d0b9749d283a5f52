//! Start-up seeding: the regions, sites, cameras, positions and users listed in the configuration are
//! created when missing. Existing objects are left as they are (the database is the source of truth once
//! it has them), so a restart never undoes a change made through the API.
//!
//! Each seeded object is made at most once in the life of a database (table `seeded`): one that an admin
//! deleted stays deleted, and a seeded user's password that an admin changed is never set back. A demo
//! configuration's well-known passwords therefore cannot come back after an admin removed them.

use crate::auth::{self, Role};
use crate::config::Seed;
use crate::db::{self, DbError, Pool};
use anyhow::{anyhow, Context};

pub async fn apply(pool: &Pool, seed: &Seed) -> anyhow::Result<()> {
    for r in &seed.regions {
        let region = db::regions::Region {
            code: r.code.clone(),
            name: r.name.clone(),
            level: r.level.clone(),
            parent_code: r.parent_code.clone(),
        };
        if !first_time(pool, "region", &r.code).await? {
            continue;
        }
        match db::regions::insert(pool, &region).await {
            Ok(()) | Err(DbError::Conflict(_)) => {}
            Err(e) => return Err(e).with_context(|| format!("seeding region {}", r.code)),
        }
    }
    for s in &seed.sites {
        // Whatever existed before is taken as seeded: deleting it later keeps it deleted.
        let fresh = first_time(pool, "site", &format!("{}/{}", s.region_code, s.name)).await?;
        let site = match db::sites::find_by_name(pool, &s.region_code, &s.name).await? {
            Some(site) => site,
            None if fresh => db::sites::insert(pool, &s.name, &s.kind, &s.region_code)
                .await
                .with_context(|| format!("seeding site {}", s.name))?,
            None => continue,
        };
        for c in &s.cameras {
            let exists = db::cameras::find_by_name(pool, site.id, &c.name)
                .await?
                .is_some();
            if !first_time(pool, "camera", &format!("{}/{}", site.id, c.name)).await? || exists {
                continue;
            }
            let input = db::cameras::CameraInput {
                site_id: site.id,
                nvr_id: None,
                channel: None,
                name: c.name.clone(),
                main_url: c.main_url.clone(),
                sub_url: c.sub_url.clone(),
                username: None,
                password: None,
                transport: "tcp".into(),
                record: c.record,
                record_sub: c.record_sub && c.sub_url.is_some(),
            };
            db::cameras::insert(pool, &input)
                .await
                .with_context(|| format!("seeding camera {}", c.name))?;
        }
        let existing = db::sites::positions(pool, site.id).await?;
        for p in &s.positions {
            let exists = existing.iter().any(|e| e.code == p.code);
            if !first_time(pool, "position", &format!("{}/{}", site.id, p.code)).await? || exists {
                continue;
            }
            let mut ids = Vec::new();
            for name in &p.cameras {
                let cam = db::cameras::find_by_name(pool, site.id, name)
                    .await?
                    .ok_or_else(|| anyhow!("position {} names unknown camera {name}", p.code))?;
                ids.push(cam.id);
            }
            db::sites::insert_position(pool, site.id, &p.code, &p.kind, &ids).await?;
        }
    }
    for u in &seed.users {
        let exists = db::users::credentials(pool, &u.username).await?.is_some();
        if !first_time(pool, "user", &u.username).await? || exists {
            continue;
        }
        let role = Role::parse(&u.role)
            .ok_or_else(|| anyhow!("user {}: unknown role {}", u.username, u.role))?;
        auth::create_user(pool, &u.username, &u.password, role, &u.region_codes).await?;
    }
    Ok(())
}

/// Records that the seed has had its one chance to make this object; true the first time only.
async fn first_time(pool: &Pool, kind: &str, key: &str) -> Result<bool, DbError> {
    let done = sqlx::query(
        "INSERT INTO seeded (kind, key, at) VALUES ($1, $2, $3) ON CONFLICT (kind, key) DO NOTHING",
    )
    .bind(kind)
    .bind(key)
    .bind(db::now_ms())
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}
