-- SPEC §10: finding a user among a million. Prefix searches are range scans
-- (v <= col < v || U+10FFFF) in bytewise ("C") order, whatever the database's collation, so
-- the indexes are in that order too; a bound parameter keeps them usable in generic plans,
-- which LIKE with a parameter is not. An openid is looked up exactly.
CREATE INDEX users_owner_name_prefix ON users (owner, name COLLATE "C");
CREATE INDEX users_owner_display_name ON users (owner, display_name COLLATE "C");
CREATE INDEX users_owner_phone ON users (owner, phone COLLATE "C");
CREATE INDEX users_owner_phone_e164 ON users (owner, phone_e164 COLLATE "C");
CREATE INDEX users_owner_email ON users (owner, email COLLATE "C");
CREATE INDEX users_owner_union ON users (owner, wechat_union_id COLLATE "C");
CREATE INDEX users_owner_created ON users (owner, created_time, name);
CREATE INDEX users_owner_wechat ON users (owner, wechat);
CREATE INDEX wechat_identities_openid ON wechat_identities (openid);
