-- Cases: case events from the approval and bid-trading systems, the cases they make, clip and card rules
-- per site, alarms, and evidence exports (see docs/cases.md).
-- Portable SQL as in 0001: integer Unix milliseconds (UTC) for times, TEXT enums guarded by CHECK.
-- Events and cases keep their site id and position code without a foreign key to positions: a case is
-- evidence and outlives a change of the site's layout.

CREATE TABLE cases (
    case_no           TEXT PRIMARY KEY,            -- 办件编号 / 项目编号
    case_type         TEXT NOT NULL CHECK (case_type IN ('approval', 'bid')),
    site_id           INTEGER NOT NULL,
    region_code       TEXT NOT NULL,               -- the site's region when the case was made (scoping)
    status            TEXT NOT NULL CHECK (status IN ('open', 'completed')),
    first_at          BIGINT NOT NULL,             -- earliest event
    last_at           BIGINT NOT NULL,             -- latest event
    completed_at      BIGINT,                      -- the completing event (completed, evaluation_end)
    deadline          BIGINT,                      -- yellow card when reached unfinished
    followup_deadline BIGINT,                      -- red card when reached unfinished
    card              TEXT NOT NULL DEFAULT 'none' CHECK (card IN ('none', 'yellow', 'red')),
    events            INTEGER NOT NULL,
    updated_at        BIGINT NOT NULL
);
CREATE INDEX cases_first ON cases(first_at);
CREATE INDEX cases_site_first ON cases(site_id, first_at);
CREATE INDEX cases_open_deadline ON cases(status, deadline);
CREATE INDEX cases_card ON cases(card, case_no);

CREATE TABLE case_events (
    id           INTEGER PRIMARY KEY,
    event_id     TEXT NOT NULL UNIQUE,             -- the sender's id: retries are duplicates, not doubles
    content_hash TEXT NOT NULL,                    -- SHA-256 of the canonical item: a reused id is a conflict
    case_no      TEXT NOT NULL REFERENCES cases(case_no),
    case_type    TEXT NOT NULL CHECK (case_type IN ('approval', 'bid')),
    kind         TEXT NOT NULL,
    at           BIGINT NOT NULL,
    site_id      INTEGER NOT NULL,
    position     TEXT NOT NULL,
    operator     TEXT,
    deadline     BIGINT,
    attributes   TEXT NOT NULL,                    -- JSON object
    received_at  BIGINT NOT NULL,
    received_by  TEXT NOT NULL
);
CREATE INDEX case_events_case ON case_events(case_no, at);

-- Clip and card rules of a site; a site without a row uses the [cases] defaults of the configuration.
CREATE TABLE case_rules (
    site_id          INTEGER PRIMARY KEY REFERENCES sites(id) ON DELETE CASCADE,
    pre_roll_s       INTEGER NOT NULL CHECK (pre_roll_s >= 0),
    post_roll_s      INTEGER NOT NULL CHECK (post_roll_s > 0),
    deadline_hours   INTEGER CHECK (deadline_hours > 0), -- deadline after the first event when no event names one
    followup_hours   INTEGER NOT NULL CHECK (followup_hours > 0),
    updated_at       BIGINT NOT NULL
);

CREATE TABLE alarms (
    id          INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL,                     -- case_yellow, case_red (others may add kinds)
    subject     TEXT NOT NULL,                     -- what it is about: a case number, a camera id
    region_code TEXT NOT NULL,
    site_id     INTEGER,
    case_no     TEXT,
    camera_ids  TEXT NOT NULL,                     -- JSON array: the cameras to look at
    message     TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('active', 'cleared')),
    raised_at   BIGINT NOT NULL,
    cleared_at  BIGINT,
    UNIQUE (kind, subject)
);
CREATE INDEX alarms_state ON alarms(state, raised_at);

CREATE TABLE exports (
    id          TEXT PRIMARY KEY,                  -- random, unguessable
    case_no     TEXT NOT NULL,
    region_code TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('running', 'done', 'failed')),
    progress    REAL NOT NULL,
    path        TEXT,                              -- relative to the data directory, when done
    bytes       BIGINT,
    sha256      TEXT,                              -- of the whole package
    error       TEXT,
    created_by  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    finished_at BIGINT
);
CREATE INDEX exports_case ON exports(case_no);
