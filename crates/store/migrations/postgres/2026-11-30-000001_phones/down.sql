DROP INDEX users_owner_phone_e164_key;
ALTER TABLE users DROP COLUMN phone_e164;
