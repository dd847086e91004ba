-- Migration 1 of the tickets database: its schema as the service first shipped it. The service
-- applies it, once, on first use (storage::migrate), inside one transaction. Statements end with
-- `;` at the end of a line; they are idempotent, so a database made before migrations were
-- tracked (by the old `--sqlite` start-up flags) adopts this as version 1 unchanged.

-- Tickets. `seq` is the insertion order: listings show the newest first and page on it. A ticket
-- is `available` (for sale, no order_id), `reserved` (held by order_id) or `sold` (bought by
-- order_id, never for sale again). `version` grows by exactly one on every change and is the
-- version the change's event carries. Prices are integer cents.
CREATE TABLE IF NOT EXISTS tickets (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    price_cents INTEGER NOT NULL CHECK (price_cents > 0),
    user_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    order_id TEXT,
    status TEXT NOT NULL CHECK (status IN ('available', 'reserved', 'sold')),
    created_at_ms INTEGER NOT NULL
);

-- The listing: available tickets, newest first, from a cursor.
CREATE INDEX IF NOT EXISTS tickets_by_status_newest ON tickets (status, seq DESC);

-- A seller's own tickets, newest first, from a cursor.
CREATE INDEX IF NOT EXISTS tickets_by_seller_newest ON tickets (user_id, seq DESC);

-- Searching titles: a full-text index of every ticket's title, its rowid the ticket's seq, kept
-- in step with `tickets` by the code that writes both (in one transaction). Words match
-- case-insensitively and without their accents.
CREATE VIRTUAL TABLE IF NOT EXISTS tickets_search USING fts5(title, tokenize = 'unicode61 remove_diacritics 2');
-- Tickets written before the index existed.
INSERT INTO tickets_search (rowid, title) SELECT seq, title FROM tickets WHERE seq NOT IN (SELECT rowid FROM tickets_search);

-- Event delivery (the outbox, processed event ids, replica versions): `delivery::SCHEMA`,
-- verbatim; a test keeps the two the same.
CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL UNIQUE, stream TEXT NOT NULL, envelope TEXT NOT NULL, created_at_ms INTEGER NOT NULL, claimed_until_ms INTEGER, sent_at_ms INTEGER);
CREATE INDEX IF NOT EXISTS outbox_unsent ON outbox (seq) WHERE sent_at_ms IS NULL;
CREATE INDEX IF NOT EXISTS outbox_sent ON outbox (sent_at_ms) WHERE sent_at_ms IS NOT NULL;
CREATE TABLE IF NOT EXISTS processed_events (event_id TEXT PRIMARY KEY, grp TEXT NOT NULL, processed_at_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS processed_events_age ON processed_events (processed_at_ms);
CREATE TABLE IF NOT EXISTS replica_versions (aggregate TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL, PRIMARY KEY (aggregate, id));
