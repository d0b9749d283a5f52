-- Federation (docs/federation.md): a city server shares regions with its province through a link.
-- City side: the credentials it issued. The secret is sealed with the server's key (as camera passwords);
-- it signs the province's requests (HMAC-SHA256), it never travels in a URL.
CREATE TABLE link_grants (
    id           INTEGER PRIMARY KEY,
    name         TEXT NOT NULL,                 -- the province as the city calls it (the audit's actor prefix)
    region_codes TEXT NOT NULL,                 -- JSON array of the regions shared (each with its subtree)
    secret       TEXT NOT NULL,
    paused       BIGINT NOT NULL DEFAULT 0 CHECK (paused IN (0, 1)),
    created_at   BIGINT NOT NULL,               -- Unix ms
    created_by   TEXT NOT NULL,
    revoked_at   BIGINT,                        -- Unix ms; a revoked grant answers nothing, ever
    last_used_at BIGINT
);

-- Province side: the links it holds to city servers.
CREATE TABLE links (
    id           INTEGER PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,          -- the city as the province calls it (shown on each camera)
    url          TEXT NOT NULL,                 -- the city server's base URL
    grant_id     BIGINT NOT NULL,               -- the city's credential id
    secret       TEXT NOT NULL,                 -- sealed
    paused       BIGINT NOT NULL DEFAULT 0 CHECK (paused IN (0, 1)),
    created_at   BIGINT NOT NULL,
    created_by   TEXT NOT NULL,
    last_contact BIGINT,                        -- Unix ms of the last signed answer from the city
    last_error   TEXT
);
