//! `[cluster]`: this server as one node of several sharing a database (docs/cluster.md).

use serde::Deserialize;

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// This node's name (`--node-name`); unset = a single server, which records every camera itself.
    pub node_name: Option<String>,
    /// How other nodes and consoles reach this one (`--advertise`), e.g. `http://10.0.0.5:8080`.
    pub advertise: Option<String>,
    /// This node's share of the cameras, against the other live nodes' capacities.
    pub capacity: u32,
    /// A lease not renewed for this long may be taken by another node; a node silent this long is dead.
    pub lease_seconds: u64,
    /// The key node-to-node calls carry; unset = one made by the first node, kept in the database.
    pub key: Option<String>,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            node_name: None,
            advertise: None,
            capacity: 100,
            lease_seconds: 10,
            key: None,
        }
    }
}

impl std::fmt::Debug for ClusterConfig {
    // Hand-written: the key must never reach a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterConfig")
            .field("node_name", &self.node_name)
            .field("advertise", &self.advertise)
            .field("capacity", &self.capacity)
            .field("lease_seconds", &self.lease_seconds)
            .finish_non_exhaustive()
    }
}

impl ClusterConfig {
    /// Checks the node's settings: a name of letters, digits, `-`, `_` and `.`, a capacity, a lease of
    /// at least three seconds (it is renewed every third of it).
    pub fn validate(&self) -> Result<(), String> {
        if let Some(name) = &self.node_name {
            let ok = !name.is_empty()
                && name.len() <= 64
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
            if !ok {
                return Err(format!(
                    "cluster.node_name {name:?}: 1 to 64 letters, digits, '-', '_' or '.'"
                ));
            }
        }
        if self.capacity == 0 {
            return Err("cluster.capacity must be at least 1".into());
        }
        if self.lease_seconds < 3 {
            return Err("cluster.lease_seconds must be at least 3".into());
        }
        Ok(())
    }
}
