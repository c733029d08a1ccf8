DROP TABLE revocations;
DROP TABLE refresh_tokens;
DROP TABLE sessions;
ALTER TABLE applications DROP COLUMN max_sessions_per_user;
