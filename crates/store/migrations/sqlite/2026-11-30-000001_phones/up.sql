-- SPEC §8.1: a user's phone in E.164 form, unique among the users of an organization. Existing
-- phones are filled in by the store when it opens the database (parsing needs libphonenumber's
-- rules, which SQL does not have); NULLs do not collide.
ALTER TABLE users ADD COLUMN phone_e164 TEXT;
CREATE UNIQUE INDEX users_owner_phone_e164_key ON users (owner, phone_e164);
