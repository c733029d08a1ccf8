-- Sessions (SPEC §9): one per sign-in, carried as `sid` in its tokens. Access tokens are no
-- longer stored; refresh tokens live in their session.
ALTER TABLE applications ADD COLUMN max_sessions_per_user INTEGER NOT NULL DEFAULT 0;

CREATE TABLE sessions (
    id TEXT PRIMARY KEY NOT NULL,
    organization TEXT NOT NULL,
    application TEXT NOT NULL,
    user_id TEXT NOT NULL,
    user_name TEXT NOT NULL DEFAULT '',
    created_time TEXT NOT NULL,
    last_active_time TEXT NOT NULL,
    expires_time TEXT NOT NULL,
    client_ip TEXT NOT NULL DEFAULT '',
    user_agent TEXT NOT NULL DEFAULT '',
    revoked_time TEXT,
    revoked_reason TEXT NOT NULL DEFAULT ''
);
CREATE INDEX sessions_user ON sessions (user_id, application, created_time);
CREATE INDEX sessions_organization ON sessions (organization, created_time);
CREATE INDEX sessions_expires ON sessions (expires_time);

CREATE TABLE refresh_tokens (
    hash TEXT PRIMARY KEY NOT NULL,
    session_id TEXT NOT NULL,
    application TEXT NOT NULL,
    organization TEXT NOT NULL,
    user_id TEXT NOT NULL,
    scope TEXT NOT NULL DEFAULT '',
    created_time TEXT NOT NULL,
    expires_time TEXT NOT NULL,
    used BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);
CREATE INDEX refresh_tokens_expires ON refresh_tokens (expires_time);
-- What every node polls to learn of revocations made elsewhere (a session, or a session-less
-- token by its jti), read by creation time.
CREATE TABLE revocations (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    expires_time TEXT NOT NULL,
    created_time TEXT NOT NULL
);
CREATE INDEX revocations_created ON revocations (created_time);
CREATE INDEX revocations_expires ON revocations (expires_time);

-- Every refresh chain of a user becomes a session whose id is the chain's family, so a refresh
-- token issued before the upgrade still refreshes, and reuse still ends its chain. A chain is
-- live while its latest refresh token is neither used nor revoked.
INSERT INTO sessions (id, organization, application, user_id, user_name, created_time,
                      last_active_time, expires_time, revoked_time, revoked_reason)
SELECT t.family, MIN(t.organization), MIN(t.application), t.user_id,
       COALESCE((SELECT u.name FROM users u WHERE u.id = t.user_id), ''),
       MIN(t.created_time), MAX(t.created_time),
       MAX(MAX(t.expires_at), MAX(COALESCE(t.refresh_expires_at, t.expires_at))),
       CASE WHEN SUM(CASE WHEN t.refresh_token_hash IS NOT NULL AND NOT t.revoked
                           AND NOT t.refresh_used THEN 1 ELSE 0 END) = 0
            THEN MAX(t.created_time) END,
       CASE WHEN SUM(CASE WHEN t.refresh_token_hash IS NOT NULL AND NOT t.revoked
                           AND NOT t.refresh_used THEN 1 ELSE 0 END) = 0
            THEN 'ended before the upgrade' ELSE '' END
FROM tokens t
WHERE t.user_id <> ''
GROUP BY t.family, t.user_id;

INSERT INTO refresh_tokens (hash, session_id, application, organization, user_id, scope,
                            created_time, expires_time, used)
SELECT refresh_token_hash, family, application, organization, user_id, scope, created_time,
       COALESCE(refresh_expires_at, expires_at), (refresh_used OR revoked)
FROM tokens
WHERE refresh_token_hash IS NOT NULL AND user_id <> '';
