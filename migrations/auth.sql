-- The auth service's schema, run at every start with `--sqlite @migrations/auth.sql:auth`.
-- Emails are stored lower-cased (identity is case-insensitive); the UNIQUE constraint is what
-- makes concurrent sign-ups of one address create exactly one account.

-- Write-ahead logging: a commit is one append and one fsync, and readers never wait for a
-- writer. The setting is stored in the database file, so it is made once.
PRAGMA journal_mode = WAL;
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
