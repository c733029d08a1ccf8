-- SPEC §10: finding a user among a million. Prefix searches are range scans on these (SQLite
-- compares text bytewise); an openid is looked up exactly.
CREATE INDEX users_owner_display_name ON users (owner, display_name);
CREATE INDEX users_owner_phone ON users (owner, phone);
CREATE INDEX users_owner_email ON users (owner, email);
CREATE INDEX users_owner_union ON users (owner, wechat_union_id);
CREATE INDEX users_owner_created ON users (owner, created_time, name);
CREATE INDEX users_owner_wechat ON users (owner, wechat);
CREATE INDEX wechat_identities_openid ON wechat_identities (openid);
