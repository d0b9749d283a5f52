//! What a city shares over a link (`GET /api/v1/link/tree`), as it travels and as the province keeps it,
//! and how a remote camera is named at the province.
//!
//! Invariants:
//! - Nothing of a camera's source travels: no URL, no user name, no password; only what a console shows.
//! - A remote camera's id at the province is negative and names its link and its id at the city
//!   ([`remote_id`]), so the province's routes can tell it from a local camera without a table of copies.

use serde::{Deserialize, Serialize};

/// Camera ids at a city stay below this for their province id to be unique.
pub const MAX_REMOTE_CAMERA: i64 = 1_000_000_000;

/// The id a province gives camera `camera` of link `link`: negative, never a local camera's.
pub fn remote_id(link: i64, camera: i64) -> Option<i64> {
    (camera > 0 && camera < MAX_REMOTE_CAMERA && link > 0)
        .then(|| {
            link.checked_mul(MAX_REMOTE_CAMERA)?
                .checked_add(camera)
                .map(|v| -v)
        })
        .flatten()
}

/// The link and the city's camera id of a province id, when it names a remote camera.
pub fn split_remote_id(id: i64) -> Option<(i64, i64)> {
    if id >= 0 {
        return None;
    }
    let v = id.checked_neg()?;
    let (link, camera) = (v / MAX_REMOTE_CAMERA, v % MAX_REMOTE_CAMERA);
    (link > 0 && camera > 0).then_some((link, camera))
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedRegion {
    pub code: String,
    pub name: String,
    pub level: String,
    pub parent_code: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedSite {
    pub id: i64,
    pub name: String,
    pub kind: String,
    pub region_code: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedCamera {
    pub id: i64,
    pub name: String,
    pub site_id: i64,
    pub region_code: String,
    /// The camera's stream state at the city (`online`, `offline`, ...).
    pub state: String,
    pub recording: bool,
}

/// The city's answer: everything under the regions the link shares.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedTree {
    /// The regions shared, each with its subtree; the roots keep their parent code (the province's
    /// region above them).
    pub regions: Vec<SharedRegion>,
    pub sites: Vec<SharedSite>,
    pub cameras: Vec<SharedCamera>,
}

impl SharedTree {
    /// Whether every site and camera lies in one of the tree's regions, and every camera in one of its
    /// sites (a city that sends more than it shares, or garbage, is refused whole).
    pub fn consistent(&self) -> bool {
        let regions: std::collections::HashSet<&str> =
            self.regions.iter().map(|r| r.code.as_str()).collect();
        let sites: std::collections::HashMap<i64, &str> = self
            .sites
            .iter()
            .map(|s| (s.id, s.region_code.as_str()))
            .collect();
        self.sites
            .iter()
            .all(|s| regions.contains(s.region_code.as_str()))
            && self.cameras.iter().all(|c| {
                sites.get(&c.site_id) == Some(&c.region_code.as_str())
                    && c.id > 0
                    && c.id < MAX_REMOTE_CAMERA
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_ids_are_negative_and_round_trip() {
        let id = remote_id(3, 42).expect("id");
        assert!(id < 0);
        assert_eq!(split_remote_id(id), Some((3, 42)));
        assert_eq!(split_remote_id(42), None);
        assert_eq!(split_remote_id(0), None);
        assert_eq!(split_remote_id(i64::MIN), None);
        assert_eq!(split_remote_id(-MAX_REMOTE_CAMERA), None);
        assert_eq!(remote_id(3, MAX_REMOTE_CAMERA), None);
        assert_eq!(remote_id(i64::MAX, 1), None);
    }

    #[test]
    fn a_tree_naming_what_it_does_not_share_is_inconsistent() {
        let mut t = SharedTree {
            regions: vec![SharedRegion {
                code: "360700".into(),
                name: "赣州市".into(),
                level: "city".into(),
                parent_code: Some("360000".into()),
            }],
            sites: vec![SharedSite {
                id: 1,
                name: "章贡区政务服务中心".into(),
                kind: "service_hall".into(),
                region_code: "360700".into(),
            }],
            cameras: vec![SharedCamera {
                id: 5,
                name: "窗口1".into(),
                site_id: 1,
                region_code: "360700".into(),
                state: "online".into(),
                recording: true,
            }],
        };
        assert!(t.consistent());
        t.sites[0].region_code = "360100".into();
        assert!(!t.consistent());
    }
}
