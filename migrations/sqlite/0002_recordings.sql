-- Recordings: the segment index, holds and the garbage list (see docs/storage.md).
-- Portable SQL. Times of footage are integer Unix microseconds (UTC, columns named *_us); media time is in
-- 90 kHz units (*_90k); bookkeeping times are Unix milliseconds (*_at) as in 0001.
-- No foreign key to cameras: footage (and its holds) outlives a deleted camera until retention removes it.

CREATE TABLE segments (
    id           INTEGER PRIMARY KEY,
    camera_id    BIGINT NOT NULL,
    stream       TEXT NOT NULL CHECK (stream IN ('main', 'sub')),
    run          BIGINT NOT NULL,                -- one connection of the camera; media time restarts per run
    site_kind    TEXT NOT NULL CHECK (site_kind IN ('service_hall', 'bid_evaluation')),
    start_us     BIGINT NOT NULL,                -- wall time of the first frame
    end_us       BIGINT NOT NULL,                -- wall time of the end of the last indexed frame
    duration_90k BIGINT NOT NULL,                -- media duration (sum of frame durations from RTP)
    frames       BIGINT NOT NULL,
    bytes        BIGINT NOT NULL,                -- file bytes covered by the index (complete fragments)
    codec        TEXT NOT NULL,                  -- RFC 6381
    width        INTEGER NOT NULL,
    height       INTEGER NOT NULL,
    keyframes    BLOB NOT NULL,                  -- per fragment: varint deltas of (media offset, byte offset)
    path         TEXT NOT NULL UNIQUE,           -- relative to the data directory
    state        TEXT NOT NULL CHECK (state IN ('open', 'complete'))
);
CREATE INDEX segments_camera_time ON segments(camera_id, stream, start_us);
CREATE INDEX segments_end ON segments(end_us);
CREATE INDEX segments_state ON segments(state);

CREATE TABLE holds (
    id         INTEGER PRIMARY KEY,
    camera_id  BIGINT,                           -- a camera's range ...
    case_no    TEXT,                             -- ... or a whole case (cases issue)
    start_us   BIGINT NOT NULL,
    end_us     BIGINT NOT NULL,
    reason     TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    CHECK (camera_id IS NOT NULL OR case_no IS NOT NULL),
    CHECK (end_us > start_us)
);
CREATE INDEX holds_camera ON holds(camera_id, start_us);

-- Files to delete: a row is added in the transaction that removes the segment row, the file is unlinked,
-- its directory fsynced, then the row is removed. Start-up finishes what a crash interrupted.
CREATE TABLE garbage (
    id         INTEGER PRIMARY KEY,
    path       TEXT NOT NULL,
    reason     TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
