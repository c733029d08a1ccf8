-- Failed password attempts in a row, per user (Casdoor's signinWrongTimes and
-- lastSigninWrongTime): the lockout's count, shared by every node (SPEC §12). Apart from the
-- users row, which is read on every sign-in and cached, while this one is written on attack.
CREATE TABLE password_failures (
    user_id TEXT PRIMARY KEY NOT NULL,
    wrong_times INTEGER NOT NULL,
    last_wrong_time TEXT NOT NULL
);
