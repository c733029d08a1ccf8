-- One WeChat access token per appid for the whole cluster (SPEC §12): sealed, versioned (each
-- refresh adds one, so a refusal expires only the version it was seen with), refreshed under
-- a lease one node holds at a time. Times are Unix milliseconds.
CREATE TABLE wechat_access_tokens (
    appid TEXT PRIMARY KEY NOT NULL,
    sealed BYTEA,
    version BIGINT NOT NULL DEFAULT 0,
    refresh_at BIGINT NOT NULL DEFAULT 0,
    expires_at BIGINT NOT NULL DEFAULT 0,
    lease_holder TEXT NOT NULL DEFAULT '',
    lease_until BIGINT NOT NULL DEFAULT 0
);
