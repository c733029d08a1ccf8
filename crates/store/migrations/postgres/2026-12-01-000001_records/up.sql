-- SPEC §10: audit records in Casdoor's Record shape. Times are RFC 3339 text of one width, so
-- they sort as they read; every query is by organization, user or action over a time range.
CREATE TABLE records (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL,
    created_time TEXT NOT NULL,
    organization TEXT NOT NULL,
    client_ip TEXT NOT NULL DEFAULT '',
    user_name TEXT NOT NULL DEFAULT '',
    user_id TEXT NOT NULL DEFAULT '',
    method TEXT NOT NULL DEFAULT '',
    request_uri TEXT NOT NULL DEFAULT '',
    action TEXT NOT NULL,
    language TEXT NOT NULL DEFAULT '',
    object TEXT NOT NULL DEFAULT '',
    response TEXT NOT NULL,
    status_code INTEGER NOT NULL DEFAULT 0,
    -- WeChat's errcode when WeChat refused (0: none), for the dashboard's errors by errcode.
    errcode BIGINT NOT NULL DEFAULT 0,
    detail TEXT NOT NULL DEFAULT '',
    user_agent TEXT NOT NULL DEFAULT '',
    is_triggered BOOLEAN NOT NULL DEFAULT false,
    added_by TEXT NOT NULL DEFAULT ''
);
-- Covering the dashboard's counts: a day of records is read from the index alone.
CREATE INDEX records_org_time ON records (organization, created_time, action, response, errcode);
CREATE INDEX records_user_time ON records (organization, user_name, created_time);
CREATE INDEX records_action_time ON records (organization, action, created_time);
CREATE INDEX records_time ON records (created_time);

-- The dashboard's days (SPEC §10): what the records of each finished day add up to, per
-- organization, action, response and errcode (and 'new-user' from the users table), so 30 days
-- are read from 30 × a few rows, not from millions of records. Filled once per day by the purge.
CREATE TABLE record_rollups (
    organization TEXT NOT NULL,
    day TEXT NOT NULL,
    action TEXT NOT NULL,
    response TEXT NOT NULL,
    errcode BIGINT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (organization, day, action, response, errcode)
);
-- The days already rolled up (for every organization at once).
CREATE TABLE rollup_days (
    day TEXT PRIMARY KEY NOT NULL,
    done_time TEXT NOT NULL
);
