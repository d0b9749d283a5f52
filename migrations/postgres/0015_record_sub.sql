-- A camera may record its sub stream as well as its main stream (for timeline thumbnails that decode a small
-- picture, and for footage kept longer than the main stream's at a fraction of the bytes: `[record] sub_days`).
ALTER TABLE cameras ADD COLUMN record_sub BIGINT NOT NULL DEFAULT 0 CHECK (record_sub IN (0, 1));
