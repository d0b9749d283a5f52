-- Roles, jurisdictions and audit: the hash-chained audit log, login lockout state, token authorship.
-- Portable SQL: integer keys, times as integer Unix milliseconds (UTC).

-- Append-only: the server only ever INSERTs here. Each row's `hash` is
-- SHA-256(previous row's hash || canonical content of this row), so a row edited or deleted behind the
-- server's back breaks the chain, which `vigil check` reports.
CREATE TABLE audit (
    id          INTEGER PRIMARY KEY,
    at          BIGINT NOT NULL,
    actor       TEXT NOT NULL,                   -- username, `token:NAME`, or the name tried at login
    role        TEXT,                            -- the actor's role, when known
    action      TEXT NOT NULL,                   -- e.g. login, login_failed, camera.snapshot, site.update
    target      TEXT,                            -- what was touched, e.g. /cameras/12
    region_code TEXT,                            -- region of the target (NULL: visible to global admins only)
    status      INTEGER NOT NULL,                -- HTTP status of the answer
    client      TEXT,                            -- client address
    detail      TEXT,                            -- free text, never a secret
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL UNIQUE
);
CREATE INDEX audit_at ON audit(at);
CREATE INDEX audit_actor ON audit(actor);
CREATE INDEX audit_region ON audit(region_code);

-- Login throttling per account: consecutive failures, and the lock they lead to (lifted by an admin with
-- POST /users/{id}/unlock, or when it expires).
ALTER TABLE users ADD COLUMN failed_logins INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN locked_until BIGINT;

-- Who made a token (an admin can only see and revoke tokens within their regions).
ALTER TABLE api_tokens ADD COLUMN created_by TEXT;
