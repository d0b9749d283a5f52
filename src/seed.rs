//! Start-up seeding: the regions, sites, cameras, positions and users listed in the configuration are
//! created when missing. Existing objects are left as they are (the database is the source of truth once
//! it has them), so a restart never undoes a change made through the API.

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
        match db::regions::insert(pool, &region).await {
            Ok(()) | Err(DbError::Conflict(_)) => {}
            Err(e) => return Err(e).with_context(|| format!("seeding region {}", r.code)),
        }
    }
    for s in &seed.sites {
        let site = match db::sites::find_by_name(pool, &s.region_code, &s.name).await? {
            Some(site) => site,
            None => db::sites::insert(pool, &s.name, &s.kind, &s.region_code)
                .await
                .with_context(|| format!("seeding site {}", s.name))?,
        };
        for c in &s.cameras {
            if db::cameras::find_by_name(pool, site.id, &c.name)
                .await?
                .is_some()
            {
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
            };
            db::cameras::insert(pool, &input)
                .await
                .with_context(|| format!("seeding camera {}", c.name))?;
        }
        let existing = db::sites::positions(pool, site.id).await?;
        for p in &s.positions {
            if existing.iter().any(|e| e.code == p.code) {
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
        if db::users::credentials(pool, &u.username).await?.is_some() {
            continue;
        }
        let role = Role::parse(&u.role)
            .ok_or_else(|| anyhow!("user {}: unknown role {}", u.username, u.role))?;
        auth::create_user(pool, &u.username, &u.password, role, &u.region_codes).await?;
    }
    Ok(())
}
