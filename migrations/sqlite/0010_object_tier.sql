-- Object storage tier (docs/storage.md, "Object storage"): a complete segment may move from the local disk
-- to the bucket. Its row keeps its path, which is also its object key; `stored` says where its bytes are.
ALTER TABLE segments ADD COLUMN stored TEXT NOT NULL DEFAULT 'local' CHECK (stored IN ('local', 'bucket'));
-- What the garbage list deletes: a local file or the bucket's object (and the object's skeleton).
ALTER TABLE garbage ADD COLUMN stored TEXT NOT NULL DEFAULT 'local' CHECK (stored IN ('local', 'bucket'));

-- The segments waiting to move, oldest first.
CREATE INDEX segments_local_complete ON segments(end_us) WHERE stored = 'local' AND state = 'complete';

-- The running totals describe the local disk (what the disk budget limits); the bucket has its own.
ALTER TABLE segment_totals ADD COLUMN bucket_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE segment_totals ADD COLUMN bucket_bytes BIGINT NOT NULL DEFAULT 0;

DROP TRIGGER segment_totals_insert;
DROP TRIGGER segment_totals_update;
DROP TRIGGER segment_totals_delete;

-- A row counts for the local disk while stored = 'local', for the bucket after. New rows are local.
CREATE TRIGGER segment_totals_insert AFTER INSERT ON segments BEGIN
    UPDATE segment_totals SET
        bytes = bytes + NEW.bytes,
        open_count = open_count + (NEW.state = 'open'),
        complete_count = complete_count + (NEW.state = 'complete'),
        complete_bytes = complete_bytes + CASE WHEN NEW.state = 'complete' THEN NEW.bytes ELSE 0 END
    WHERE id = 1 AND NEW.stored = 'local';
    UPDATE segment_totals SET
        bucket_count = bucket_count + 1,
        bucket_bytes = bucket_bytes + NEW.bytes
    WHERE id = 1 AND NEW.stored = 'bucket';
END;

CREATE TRIGGER segment_totals_update AFTER UPDATE OF bytes, state, stored ON segments BEGIN
    UPDATE segment_totals SET
        bytes = bytes - OLD.bytes,
        open_count = open_count - (OLD.state = 'open'),
        complete_count = complete_count - (OLD.state = 'complete'),
        complete_bytes = complete_bytes - CASE WHEN OLD.state = 'complete' THEN OLD.bytes ELSE 0 END
    WHERE id = 1 AND OLD.stored = 'local';
    UPDATE segment_totals SET
        bucket_count = bucket_count - 1,
        bucket_bytes = bucket_bytes - OLD.bytes
    WHERE id = 1 AND OLD.stored = 'bucket';
    UPDATE segment_totals SET
        bytes = bytes + NEW.bytes,
        open_count = open_count + (NEW.state = 'open'),
        complete_count = complete_count + (NEW.state = 'complete'),
        complete_bytes = complete_bytes + CASE WHEN NEW.state = 'complete' THEN NEW.bytes ELSE 0 END
    WHERE id = 1 AND NEW.stored = 'local';
    UPDATE segment_totals SET
        bucket_count = bucket_count + 1,
        bucket_bytes = bucket_bytes + NEW.bytes
    WHERE id = 1 AND NEW.stored = 'bucket';
END;

CREATE TRIGGER segment_totals_delete AFTER DELETE ON segments BEGIN
    UPDATE segment_totals SET
        bytes = bytes - OLD.bytes,
        open_count = open_count - (OLD.state = 'open'),
        complete_count = complete_count - (OLD.state = 'complete'),
        complete_bytes = complete_bytes - CASE WHEN OLD.state = 'complete' THEN OLD.bytes ELSE 0 END
    WHERE id = 1 AND OLD.stored = 'local';
    UPDATE segment_totals SET
        bucket_count = bucket_count - 1,
        bucket_bytes = bucket_bytes - OLD.bytes
    WHERE id = 1 AND OLD.stored = 'bucket';
END;
