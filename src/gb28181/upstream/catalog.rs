//! The catalog a superior is answered with: the regions, sites and cameras a link shares, as of the
//! moment it asks, with their 20-digit ids.

use super::{Link, Upstreams, PAGE};
use crate::db;
use crate::gb28181::xml::Body;

impl Upstreams {
    /// The catalog answer's MESSAGE bodies, [`PAGE`] items each.
    pub(super) async fn catalog_pages(
        &self,
        link: &Link,
        sn: &str,
    ) -> Result<Vec<Vec<u8>>, db::DbError> {
        let items = self.catalog(link).await?;
        let sum = items.len().to_string();
        let pages = items
            .chunks(PAGE)
            .map(|page| {
                let mut b = Body::new("Response");
                b.field("CmdType", "Catalog")
                    .field("SN", sn)
                    .field("DeviceID", &link.cfg.local_id)
                    .field("SumNum", &sum);
                b.open("DeviceList", &[("Num", &page.len().to_string())]);
                for item in page {
                    item.write(&mut b);
                }
                b.close("DeviceList");
                b.finish("Response")
            })
            .collect();
        Ok(pages)
    }

    /// The regions, sites and cameras the link shares, as of now.
    async fn catalog(&self, link: &Link) -> Result<Vec<Item>, db::DbError> {
        let scope: std::collections::BTreeSet<String> = if link.cfg.region_codes.is_empty() {
            Default::default()
        } else {
            db::regions::subtree(&self.pool, &link.cfg.region_codes)
                .await?
                .into_iter()
                .collect()
        };
        let mut items = Vec::new();
        for r in db::regions::list(&self.pool)
            .await?
            .into_iter()
            .filter(|r| scope.contains(&r.code))
        {
            let parent = r
                .parent_code
                .filter(|p| scope.contains(p))
                .unwrap_or_else(|| link.cfg.local_id.clone());
            items.push(Item {
                id: r.code.clone(),
                name: r.name,
                civil: r.code,
                parent,
                status: None,
            });
        }
        let sites = db::sites::list(&self.pool).await?;
        for s in sites.iter().filter(|s| scope.contains(&s.region_code)) {
            let id = site_id(&s.region_code, s.id);
            items.push(Item {
                id,
                name: s.name.clone(),
                civil: s.region_code.clone(),
                parent: s.region_code.clone(),
                status: None,
            });
        }
        for c in db::cameras::list(&self.pool)
            .await?
            .into_iter()
            .filter(|c| scope.contains(&c.region_code))
        {
            let on = (self.online)(c.id);
            items.push(Item {
                id: camera_id(&c.region_code, c.id),
                parent: site_id(&c.region_code, c.site_id),
                civil: c.region_code,
                name: c.name,
                status: Some(if on { "ON" } else { "OFF" }),
            });
        }
        Ok(items)
    }
}

/// One catalog item.
struct Item {
    id: String,
    name: String,
    civil: String,
    parent: String,
    /// Cameras only: ON or OFF.
    status: Option<&'static str>,
}

impl Item {
    fn write(&self, b: &mut Body) {
        b.open("Item", &[])
            .field("DeviceID", &self.id)
            .field("Name", &self.name);
        if let Some(status) = self.status {
            b.field("Manufacturer", "Vigil")
                .field("Model", "camera")
                .field("Owner", "Vigil");
            b.field("CivilCode", &self.civil)
                .field("Parental", "0")
                .field("ParentID", &self.parent);
            b.field("SafetyWay", "0")
                .field("RegisterWay", "1")
                .field("Secrecy", "0")
                .field("Status", status);
        } else {
            b.field("CivilCode", &self.civil)
                .field("ParentID", &self.parent)
                .field("Parental", "1");
        }
        b.close("Item");
    }
}

/// Six digits of a region code (GB/T 2260), padded or cut.
fn civil6(region: &str) -> String {
    format!(
        "{:0<6}",
        region
            .chars()
            .filter(char::is_ascii_digit)
            .take(6)
            .collect::<String>()
    )
}

/// A site's 20-digit id: its region, 0000, type 216 (virtual organisation), the site id.
pub fn site_id(region: &str, site: i64) -> String {
    format!(
        "{}0000216{:07}",
        civil6(region),
        site.rem_euclid(10_000_000)
    )
}

/// A camera's 20-digit id: its region, 0000, type 131 (camera), the camera id.
pub fn camera_id(region: &str, camera: i64) -> String {
    format!(
        "{}0000131{:07}",
        civil6(region),
        camera.rem_euclid(10_000_000)
    )
}

/// The camera id in a camera's 20-digit id.
pub(super) fn camera_of(channel: &str) -> Option<i64> {
    if channel.len() != 20 || channel.get(10..13)? != "131" {
        return None;
    }
    channel.get(13..)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_of_sites_and_cameras() {
        assert_eq!(camera_id("360702", 42), "36070200001310000042");
        assert_eq!(site_id("3607", 3), "36070000002160000003");
        assert_eq!(camera_of("36070200001310000042"), Some(42));
        assert_eq!(camera_of("36070200002160000042"), None);
        assert_eq!(camera_of("3607"), None);
    }
}
