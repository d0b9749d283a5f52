-- GB/T 28181 devices that registered to this platform (docs/gb28181.md), and the channels their
-- catalogs list. A device is pending until an admin binds it to a site; its channels then become cameras
-- (`cameras.main_url` = gb28181://DEVICE/CHANNEL). Same on SQLite and PostgreSQL.
CREATE TABLE gb_devices (
    id            TEXT PRIMARY KEY,            -- the 20-digit device id (From user of REGISTER)
    name          TEXT NOT NULL DEFAULT '',
    manufacturer  TEXT NOT NULL DEFAULT '',
    model         TEXT NOT NULL DEFAULT '',
    firmware      TEXT NOT NULL DEFAULT '',
    transport     TEXT NOT NULL DEFAULT 'udp', -- of its SIP signalling
    address       TEXT NOT NULL DEFAULT '',    -- where its packets come from (behind NAT: the NAT's)
    site_id       BIGINT REFERENCES sites(id) ON DELETE SET NULL,
    registered_at BIGINT NOT NULL,             -- Unix ms of the last accepted REGISTER
    expires_at    BIGINT NOT NULL,             -- Unix ms; the registration lapses then
    keepalive_at  BIGINT NOT NULL,             -- Unix ms of the last keepalive (or REGISTER)
    online        BIGINT NOT NULL DEFAULT 1 CHECK (online IN (0, 1)),
    created_at    BIGINT NOT NULL
);

CREATE TABLE gb_channels (
    device_id   TEXT NOT NULL REFERENCES gb_devices(id) ON DELETE CASCADE,
    channel_id  TEXT NOT NULL,
    name        TEXT NOT NULL DEFAULT '',
    civil_code  TEXT NOT NULL DEFAULT '',
    status      TEXT NOT NULL DEFAULT '',      -- ON / OFF as the catalog says
    camera_id   BIGINT REFERENCES cameras(id) ON DELETE SET NULL,
    PRIMARY KEY (device_id, channel_id)
);
