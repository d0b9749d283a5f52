-- Cost (issue 16). Case coverage and the playback lookup read the (start, end) of one camera's recorded
-- segments in time order. A recording server appends segment rows in time order across all its cameras,
-- so one camera's consecutive rows lie hundreds of rows apart in the table, and reading them through
-- segments_camera_time fetched a table page per segment (a day-long clip of one-minute segments: 1,440
-- pages). This index covers those lookups: they are answered from the index alone.
CREATE INDEX segments_recorded_span ON segments(camera_id, stream, start_us, end_us) WHERE frames > 0;
