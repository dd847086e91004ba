-- The auth service's schema, run at every start with `--sqlite @migrations/auth.sql:auth`.
-- Emails are stored lower-cased (identity is case-insensitive); the UNIQUE constraint is what
-- makes concurrent sign-ups of one address create exactly one account.
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
