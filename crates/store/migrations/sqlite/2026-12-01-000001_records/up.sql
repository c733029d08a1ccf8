-- SPEC §10: audit records in Casdoor's Record shape. Times are RFC 3339 text of one width, so
-- they sort as they read; every query is by organization, user or action over a time range.
CREATE TABLE records (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
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
    detail TEXT NOT NULL DEFAULT '',
    user_agent TEXT NOT NULL DEFAULT '',
    is_triggered BOOLEAN NOT NULL DEFAULT 0,
    added_by TEXT NOT NULL DEFAULT ''
);
CREATE INDEX records_org_time ON records (organization, created_time);
CREATE INDEX records_user_time ON records (user_id, created_time);
CREATE INDEX records_action_time ON records (organization, action, created_time);
CREATE INDEX records_time ON records (created_time);
