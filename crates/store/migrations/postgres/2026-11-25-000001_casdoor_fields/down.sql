ALTER TABLE certs DROP COLUMN extra;
ALTER TABLE providers DROP COLUMN extra;
ALTER TABLE applications DROP COLUMN extra;
ALTER TABLE organizations DROP COLUMN extra;
