-- Casdoor's fields this server has no column for, kept as a JSON object so a client that
-- sends them gets them back (nothing it sent is silently dropped).
ALTER TABLE organizations ADD COLUMN extra TEXT NOT NULL DEFAULT '{}';
ALTER TABLE applications ADD COLUMN extra TEXT NOT NULL DEFAULT '{}';
ALTER TABLE providers ADD COLUMN extra TEXT NOT NULL DEFAULT '{}';
ALTER TABLE certs ADD COLUMN extra TEXT NOT NULL DEFAULT '{}';
