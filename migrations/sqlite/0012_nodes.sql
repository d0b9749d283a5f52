-- Cluster (docs/cluster.md): the nodes sharing this database, and which node records which camera.
-- A single server (no node name) writes none of these and leaves `segments.node` NULL.
CREATE TABLE nodes (
    name         TEXT PRIMARY KEY,
    address      TEXT NOT NULL,                -- how other nodes and consoles reach it (--advertise)
    capacity     BIGINT NOT NULL CHECK (capacity > 0),
    started_at   BIGINT NOT NULL,              -- Unix ms of the running process's start
    heartbeat_at BIGINT NOT NULL,              -- Unix ms; a node silent for a lease period is dead
    draining     BIGINT NOT NULL DEFAULT 0 CHECK (draining IN (0, 1)),
    -- Its object tier's upload backlog and alarm, as of its last heartbeat.
    backlog_segments BIGINT NOT NULL DEFAULT 0,
    backlog_bytes    BIGINT NOT NULL DEFAULT 0,
    storage_alarm    BIGINT NOT NULL DEFAULT 0 CHECK (storage_alarm IN (0, 1))
);

-- One row per camera recorded by a node. `epoch` grows by one at every change of owner; every segment
-- row a node writes is conditioned on its lease's epoch (fencing), so a node that lost a lease while
-- paused cannot write over its successor.
CREATE TABLE leases (
    camera_id  BIGINT PRIMARY KEY,
    node       TEXT NOT NULL,
    epoch      BIGINT NOT NULL,
    expires_at BIGINT NOT NULL                 -- Unix ms; renewed by the owner, free to take after
);
CREATE INDEX leases_node ON leases(node);

-- The node whose disk holds a segment's local file (NULL: a single server's own).
ALTER TABLE segments ADD COLUMN node TEXT;
ALTER TABLE garbage ADD COLUMN node TEXT;

-- Settings every node shares: the cluster key that node-to-node calls carry (made by the first node
-- unless `[cluster] key` sets one).
CREATE TABLE cluster_settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
