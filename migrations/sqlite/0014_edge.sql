-- Edge retrieval and ONVIF (docs/edge.md).
-- Backfills: one row per gap in a camera's recording that Vigil fetches back from the device or NVR that
-- kept recording while the link was down. Segments written from it name it
-- (`segments.backfill_id`): who (the source), when (the row's times) and from where are kept with the footage.
CREATE TABLE backfills (
    id           INTEGER PRIMARY KEY,
    camera_id    BIGINT NOT NULL REFERENCES cameras(id) ON DELETE CASCADE,
    start_us     BIGINT NOT NULL,              -- the gap as found, Unix µs
    end_us       BIGINT NOT NULL CHECK (end_us > start_us),
    source       TEXT NOT NULL,                -- where it is fetched from (gb28181://DEVICE/CHANNEL, rtsp://HOST/...)
    state        TEXT NOT NULL CHECK (state IN ('pending', 'pulling', 'retry', 'done', 'nothing', 'failed')),
    attempts     BIGINT NOT NULL DEFAULT 0,
    fetched_us   BIGINT NOT NULL DEFAULT 0,    -- footage of the gap recorded from it so far
    detail       TEXT NOT NULL DEFAULT '',     -- the last failure, or why nothing was fetched
    created_at   BIGINT NOT NULL,              -- Unix ms
    updated_at   BIGINT NOT NULL,
    next_try_at  BIGINT NOT NULL,
    UNIQUE (camera_id, start_us)
);
CREATE INDEX backfills_due ON backfills(state, next_try_at);

-- No foreign key: the id is also written into the segment file's metadata, and an index rebuilt from the
-- files keeps it even after the backfill's row went with its camera.
ALTER TABLE segments ADD COLUMN backfill_id BIGINT;

-- Cameras added from ONVIF discovery: their device service and the media profile their main stream is,
-- what ONVIF PTZ commands are sent with (docs/edge.md).
CREATE TABLE camera_onvif (
    camera_id     BIGINT PRIMARY KEY REFERENCES cameras(id) ON DELETE CASCADE,
    device_url    TEXT NOT NULL,
    profile_token TEXT NOT NULL
);
