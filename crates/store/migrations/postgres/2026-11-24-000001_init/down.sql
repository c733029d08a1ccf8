DROP TABLE tokens;
DROP TABLE wechat_sessions;
DROP TABLE wechat_identities;
DROP TABLE users;
DROP TABLE applications;
DROP TABLE providers;
DROP TABLE certs;
DROP TABLE organizations;
