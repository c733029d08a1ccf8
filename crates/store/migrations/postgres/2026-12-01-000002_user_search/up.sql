-- SPEC §10: finding a user among a million. Prefix searches are LIKE 'v%' on text_pattern_ops
-- indexes (whatever the database's collation); an openid is looked up exactly.
CREATE INDEX users_owner_name_prefix ON users (owner, name text_pattern_ops);
CREATE INDEX users_owner_display_name ON users (owner, display_name text_pattern_ops);
CREATE INDEX users_owner_phone ON users (owner, phone text_pattern_ops);
CREATE INDEX users_owner_email ON users (owner, email text_pattern_ops);
CREATE INDEX users_owner_union ON users (owner, wechat_union_id text_pattern_ops);
CREATE INDEX users_owner_created ON users (owner, created_time, name);
CREATE INDEX users_owner_wechat ON users (owner, wechat);
CREATE INDEX wechat_identities_openid ON wechat_identities (openid);
