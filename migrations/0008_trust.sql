-- Trust (issue 14). The cameras whose footage an export holds (JSON array of ids): reading the export
-- checks each against the reader's regions at the time of the read.
ALTER TABLE exports ADD COLUMN camera_ids TEXT NOT NULL DEFAULT '[]';

-- What the configuration's seed has made once (src/seed.rs): a seeded object an admin deleted is never made
-- again, and a seeded user's changed password is never set back.
CREATE TABLE seeded (
    kind TEXT NOT NULL,
    key  TEXT NOT NULL,
    at   BIGINT NOT NULL,
    PRIMARY KEY (kind, key)
);
