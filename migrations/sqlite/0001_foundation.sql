-- Foundation schema: regions, sites, positions, cameras, NVRs, users, tokens, sessions.
-- Portable SQL: integer keys, TEXT enums guarded by CHECK, times as integer Unix milliseconds (UTC).

CREATE TABLE regions (
    code        TEXT PRIMARY KEY,                -- GB/T 2260, e.g. 360000, 360700, 360702
    name        TEXT NOT NULL,
    level       TEXT NOT NULL CHECK (level IN ('province', 'city', 'district')),
    parent_code TEXT REFERENCES regions(code),
    created_at  BIGINT NOT NULL
);
CREATE INDEX regions_parent ON regions(parent_code);

CREATE TABLE sites (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('service_hall', 'bid_evaluation')),
    region_code TEXT NOT NULL REFERENCES regions(code),
    created_at  BIGINT NOT NULL,
    UNIQUE (region_code, name)
);

CREATE TABLE nvrs (
    id           INTEGER PRIMARY KEY,
    site_id      INTEGER NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
    vendor       TEXT NOT NULL CHECK (vendor IN ('hikvision', 'dahua', 'generic')),
    host         TEXT NOT NULL,
    port         INTEGER NOT NULL,
    url_template TEXT NOT NULL,
    username     TEXT,
    created_at   BIGINT NOT NULL
);

CREATE TABLE cameras (
    id         INTEGER PRIMARY KEY,
    site_id    INTEGER NOT NULL REFERENCES sites(id) ON DELETE RESTRICT,
    nvr_id     INTEGER REFERENCES nvrs(id) ON DELETE SET NULL,
    channel    INTEGER,
    name       TEXT NOT NULL,
    main_url   TEXT NOT NULL,                    -- never holds credentials: they live in username/password
    sub_url    TEXT,
    username   TEXT,
    password   TEXT,                             -- write-only through the API
    transport  TEXT NOT NULL DEFAULT 'tcp' CHECK (transport IN ('tcp', 'udp')),
    record     BOOLEAN NOT NULL DEFAULT TRUE,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (site_id, name)
);
CREATE INDEX cameras_site ON cameras(site_id);

CREATE TABLE positions (
    id         INTEGER PRIMARY KEY,
    site_id    INTEGER NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
    code       TEXT NOT NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('window', 'room', 'seat')),
    created_at BIGINT NOT NULL,
    UNIQUE (site_id, code)
);

CREATE TABLE position_cameras (
    position_id INTEGER NOT NULL REFERENCES positions(id) ON DELETE CASCADE,
    camera_id   INTEGER NOT NULL REFERENCES cameras(id) ON DELETE CASCADE,
    PRIMARY KEY (position_id, camera_id)
);
CREATE INDEX position_cameras_camera ON position_cameras(camera_id);

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,                 -- argon2id PHC string
    role          TEXT NOT NULL CHECK (role IN ('admin', 'supervisor', 'investigator', 'integrator')),
    created_at    BIGINT NOT NULL
);

CREATE TABLE user_regions (
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    region_code TEXT NOT NULL REFERENCES regions(code),
    PRIMARY KEY (user_id, region_code)
);

CREATE TABLE api_tokens (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    token_hash  TEXT NOT NULL UNIQUE,            -- SHA-256 of the secret; the secret is shown once
    role        TEXT NOT NULL CHECK (role IN ('admin', 'supervisor', 'investigator', 'integrator')),
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT,
    revoked_at  BIGINT
);

CREATE TABLE token_regions (
    token_id    INTEGER NOT NULL REFERENCES api_tokens(id) ON DELETE CASCADE,
    region_code TEXT NOT NULL REFERENCES regions(code),
    PRIMARY KEY (token_id, region_code)
);

CREATE TABLE sessions (
    id           INTEGER PRIMARY KEY,
    token_hash   TEXT NOT NULL UNIQUE,           -- SHA-256 of the cookie value
    csrf_token   TEXT NOT NULL,
    user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions(user_id);
