-- Camera online time, as upper levels assess it (在线率 over a period): each camera's main stream is sampled
-- every `cases.uptime_sample_seconds` and counted into the hour of the sample (see src/cases/uptime.rs).
-- The online rate of a period is sum(online) / sum(samples) over its hours. Times in Unix milliseconds.
CREATE TABLE camera_uptime (
    camera_id INTEGER NOT NULL REFERENCES cameras(id) ON DELETE CASCADE,
    hour      BIGINT NOT NULL,                 -- start of the hour (UTC), Unix ms
    samples   INTEGER NOT NULL,
    online    INTEGER NOT NULL,
    PRIMARY KEY (camera_id, hour)
);
CREATE INDEX camera_uptime_hour ON camera_uptime(hour);
