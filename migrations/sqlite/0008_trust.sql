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

-- The recordings' disk use as a running figure, kept by the database itself with every segment row that
-- is added, grows or goes: retention and the health page read one row instead of summing the whole index.
CREATE TABLE segment_totals (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    bytes          BIGINT NOT NULL,                -- all indexed bytes
    open_count     BIGINT NOT NULL,                -- segments being written
    complete_count BIGINT NOT NULL,
    complete_bytes BIGINT NOT NULL
);
INSERT INTO segment_totals (id, bytes, open_count, complete_count, complete_bytes)
SELECT 1, COALESCE(SUM(bytes), 0),
       COALESCE(SUM(CASE WHEN state = 'open' THEN 1 ELSE 0 END), 0),
       COALESCE(SUM(CASE WHEN state = 'complete' THEN 1 ELSE 0 END), 0),
       COALESCE(SUM(CASE WHEN state = 'complete' THEN bytes ELSE 0 END), 0)
FROM segments;

CREATE TRIGGER segment_totals_insert AFTER INSERT ON segments BEGIN
    UPDATE segment_totals SET
        bytes = bytes + NEW.bytes,
        open_count = open_count + (NEW.state = 'open'),
        complete_count = complete_count + (NEW.state = 'complete'),
        complete_bytes = complete_bytes + CASE WHEN NEW.state = 'complete' THEN NEW.bytes ELSE 0 END
    WHERE id = 1;
END;

CREATE TRIGGER segment_totals_update AFTER UPDATE OF bytes, state ON segments BEGIN
    UPDATE segment_totals SET
        bytes = bytes + NEW.bytes - OLD.bytes,
        open_count = open_count + (NEW.state = 'open') - (OLD.state = 'open'),
        complete_count = complete_count + (NEW.state = 'complete') - (OLD.state = 'complete'),
        complete_bytes = complete_bytes
            + CASE WHEN NEW.state = 'complete' THEN NEW.bytes ELSE 0 END
            - CASE WHEN OLD.state = 'complete' THEN OLD.bytes ELSE 0 END
    WHERE id = 1;
END;

CREATE TRIGGER segment_totals_delete AFTER DELETE ON segments BEGIN
    UPDATE segment_totals SET
        bytes = bytes - OLD.bytes,
        open_count = open_count - (OLD.state = 'open'),
        complete_count = complete_count - (OLD.state = 'complete'),
        complete_bytes = complete_bytes - CASE WHEN OLD.state = 'complete' THEN OLD.bytes ELSE 0 END
    WHERE id = 1;
END;

-- Holds are released, not deleted (who and when stay on record); a released hold keeps nothing.
ALTER TABLE holds ADD COLUMN released_at BIGINT;
ALTER TABLE holds ADD COLUMN released_by TEXT;

-- Exports expire (their file removed) after cases.export_days unless their case is held.
ALTER TABLE exports ADD COLUMN expired_at BIGINT;
CREATE INDEX exports_by ON exports(created_by, created_at);
