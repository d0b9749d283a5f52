-- The console: each user's live wall (layouts, tours, the current choice), one JSON document per user,
-- checked by the API before it is stored (see src/api/wall.rs). Portable SQL; times in Unix milliseconds.
CREATE TABLE user_walls (
    user_id    INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    doc        TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- A camera's events for playback (next / previous event): events by the position they happened at.
CREATE INDEX case_events_position ON case_events(site_id, position, at);
