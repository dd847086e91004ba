-- Migration 1 of the auth database: its schema as the service first shipped it. The service
-- applies it, once, on first use (storage::migrate), inside one transaction. Statements end with
-- `;` at the end of a line; they are idempotent, so a database made before migrations were
-- tracked (by the old `--sqlite` start-up flags) adopts this as version 1 unchanged.

-- Emails are stored lower-cased (identity is case-insensitive); the UNIQUE constraint is what
-- makes concurrent sign-ups of one address create exactly one account.

CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
