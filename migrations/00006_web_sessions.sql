-- +goose Up

-- Local users sign in to the web pages with a password. Only its argon2id
-- hash is kept, as a PHC string that names its parameters
-- ($argon2id$v=19$m=…,t=…,p=…$salt$hash), so they can be raised later
-- without invalidating existing hashes. Users made before passwords
-- existed have none and cannot sign in until they are given one.
ALTER TABLE users ADD COLUMN password_hash text;

-- Browser sessions, in the table layout github.com/alexedwards/scs's
-- postgresstore reads and writes: every server process sees the same
-- sessions, and signing out ends a session on all of them.
CREATE TABLE sessions (
    token   text PRIMARY KEY,
    data    bytea NOT NULL,
    expiry  timestamptz NOT NULL
);
CREATE INDEX sessions_expiry_idx ON sessions (expiry);

-- Failed sign-in attempts in the current window, per account and per
-- client address, shared by every server process. The key is the SHA-256
-- of "account:<email>" or "address:<ip>", so what people typed into the
-- email field is not kept.
CREATE TABLE sign_in_attempts (
    key           text PRIMARY KEY,
    window_start  timestamptz NOT NULL,
    attempts      integer NOT NULL
);
CREATE INDEX sign_in_attempts_window_idx ON sign_in_attempts (window_start);

-- +goose Down
DROP TABLE sign_in_attempts;
DROP TABLE sessions;
ALTER TABLE users DROP COLUMN password_hash;
