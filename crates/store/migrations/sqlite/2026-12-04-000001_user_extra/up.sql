-- Casdoor's user fields without a column of their own (tag, score, karma, …), kept as a JSON
-- object and given back, as organizations, applications, providers and certs keep theirs.
ALTER TABLE users ADD COLUMN extra TEXT NOT NULL DEFAULT '{}';
