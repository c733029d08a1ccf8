CREATE TABLE organizations (
    name TEXT PRIMARY KEY NOT NULL,
    owner TEXT NOT NULL DEFAULT 'admin',
    display_name TEXT NOT NULL DEFAULT '',
    default_avatar TEXT NOT NULL DEFAULT '',
    created_time TEXT NOT NULL
);

CREATE TABLE certs (
    name TEXT PRIMARY KEY NOT NULL,
    owner TEXT NOT NULL DEFAULT 'admin',
    display_name TEXT NOT NULL DEFAULT '',
    cert_type TEXT NOT NULL,
    crypto_algorithm TEXT NOT NULL,
    bit_size INTEGER NOT NULL,
    certificate TEXT NOT NULL,
    private_key TEXT NOT NULL,
    created_time TEXT NOT NULL
);

CREATE TABLE providers (
    owner TEXT NOT NULL,
    name TEXT NOT NULL,
    display_name TEXT NOT NULL DEFAULT '',
    category TEXT NOT NULL,
    provider_type TEXT NOT NULL,
    sub_type TEXT NOT NULL DEFAULT '',
    client_id TEXT NOT NULL DEFAULT '',
    client_secret TEXT NOT NULL DEFAULT '',
    created_time TEXT NOT NULL,
    PRIMARY KEY (owner, name)
);

CREATE TABLE applications (
    name TEXT PRIMARY KEY NOT NULL,
    owner TEXT NOT NULL DEFAULT 'admin',
    display_name TEXT NOT NULL DEFAULT '',
    organization TEXT NOT NULL REFERENCES organizations (name) ON DELETE RESTRICT,
    client_id TEXT NOT NULL,
    client_secret TEXT NOT NULL,
    cert TEXT NOT NULL DEFAULT '',
    enable_sign_up BOOLEAN NOT NULL DEFAULT FALSE,
    providers TEXT NOT NULL DEFAULT '[]',
    grant_types TEXT NOT NULL DEFAULT '[]',
    token_format TEXT NOT NULL DEFAULT 'JWT',
    expire_in_hours BIGINT NOT NULL,
    refresh_expire_in_hours BIGINT NOT NULL,
    created_time TEXT NOT NULL,
    CONSTRAINT applications_client_id_key UNIQUE (client_id)
);

CREATE TABLE users (
    id TEXT PRIMARY KEY NOT NULL,
    owner TEXT NOT NULL REFERENCES organizations (name) ON DELETE RESTRICT,
    name TEXT NOT NULL,
    user_type TEXT NOT NULL DEFAULT 'normal-user',
    display_name TEXT NOT NULL DEFAULT '',
    avatar TEXT NOT NULL DEFAULT '',
    email TEXT NOT NULL DEFAULT '',
    phone TEXT NOT NULL DEFAULT '',
    country_code TEXT NOT NULL DEFAULT '',
    is_admin BOOLEAN NOT NULL DEFAULT FALSE,
    is_forbidden BOOLEAN NOT NULL DEFAULT FALSE,
    is_deleted BOOLEAN NOT NULL DEFAULT FALSE,
    signup_application TEXT NOT NULL DEFAULT '',
    wechat TEXT NOT NULL DEFAULT '',
    wechat_open_id TEXT NOT NULL DEFAULT '',
    wechat_union_id TEXT NOT NULL DEFAULT '',
    password_hash TEXT,
    first_name TEXT NOT NULL DEFAULT '',
    last_name TEXT NOT NULL DEFAULT '',
    bio TEXT NOT NULL DEFAULT '',
    gender TEXT NOT NULL DEFAULT '',
    language TEXT NOT NULL DEFAULT '',
    location TEXT NOT NULL DEFAULT '',
    region TEXT NOT NULL DEFAULT '',
    homepage TEXT NOT NULL DEFAULT '',
    title TEXT NOT NULL DEFAULT '',
    affiliation TEXT NOT NULL DEFAULT '',
    birthday TEXT NOT NULL DEFAULT '',
    created_time TEXT NOT NULL,
    updated_time TEXT NOT NULL,
    last_signin_time TEXT,
    CONSTRAINT users_owner_name_key UNIQUE (owner, name)
);

CREATE TABLE wechat_identities (
    appid TEXT NOT NULL,
    openid TEXT NOT NULL,
    unionid TEXT NOT NULL DEFAULT '',
    organization TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_time TEXT NOT NULL,
    PRIMARY KEY (appid, openid)
);
CREATE INDEX wechat_identities_unionid ON wechat_identities (organization, unionid);
CREATE INDEX wechat_identities_user ON wechat_identities (user_id);

CREATE TABLE wechat_sessions (
    appid TEXT NOT NULL,
    openid TEXT NOT NULL,
    sealed_key BYTEA NOT NULL,
    updated_time TEXT NOT NULL,
    PRIMARY KEY (appid, openid)
);

CREATE TABLE tokens (
    id TEXT PRIMARY KEY NOT NULL,
    application TEXT NOT NULL,
    organization TEXT NOT NULL,
    user_id TEXT NOT NULL DEFAULT '',
    access_token_hash TEXT NOT NULL,
    refresh_token_hash TEXT,
    family TEXT NOT NULL,
    scope TEXT NOT NULL DEFAULT '',
    token_type TEXT NOT NULL DEFAULT 'Bearer',
    expires_at TEXT NOT NULL,
    refresh_expires_at TEXT,
    created_time TEXT NOT NULL,
    revoked BOOLEAN NOT NULL DEFAULT FALSE,
    refresh_used BOOLEAN NOT NULL DEFAULT FALSE,
    CONSTRAINT tokens_access_token_hash_key UNIQUE (access_token_hash),
    CONSTRAINT tokens_refresh_token_hash_key UNIQUE (refresh_token_hash)
);
CREATE INDEX tokens_family ON tokens (family);
