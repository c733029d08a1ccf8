-- The console's users page filters an organization's users by forbidden, newest first.
CREATE INDEX users_owner_forbidden_created ON users (owner, is_forbidden, created_time, name);
