-- Migration 1 of the passes database. The passes service learns everything here from events:
-- each ticket's title and issuer (its first seller) from the tickets service, who holds it from
-- the orders service's `order:completed`.

-- The tickets replica: `issuer_id` is the seller of the first listing and never changes;
-- `version` is the ticket's version this replica holds.
CREATE TABLE IF NOT EXISTS tickets (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    issuer_id TEXT NOT NULL,
    version INTEGER NOT NULL
);

-- Each sold ticket's current pass: its holder, the order that made them the holder, and the
-- generation and seed (hex) its secret signs. A later sale of the ticket raises the generation.
CREATE TABLE IF NOT EXISTS passes (
    ticket_id TEXT PRIMARY KEY,
    holder_id TEXT NOT NULL,
    order_id TEXT NOT NULL,
    generation INTEGER NOT NULL CHECK (generation >= 1),
    seed TEXT NOT NULL CHECK (length(seed) = 32),
    issued_at_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS passes_by_holder ON passes (holder_id);

-- Every generation older than a ticket's current one, in the order they were revoked: the
-- revocation list scanners fetch from a cursor (`seq`).
CREATE TABLE IF NOT EXISTS revocations (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id TEXT NOT NULL,
    generation INTEGER NOT NULL,
    revoked_at_ms INTEGER NOT NULL,
    UNIQUE (ticket_id, generation)
);

-- The first scan of each pass: one row per generation, so of concurrent scans exactly one
-- inserts it.
CREATE TABLE IF NOT EXISTS checkins (
    ticket_id TEXT NOT NULL,
    generation INTEGER NOT NULL,
    checked_in_at_ms INTEGER NOT NULL,
    PRIMARY KEY (ticket_id, generation)
);

-- Each scan's answer under the nonce the scanner gave it, so a scan sent twice (a retry, an
-- offline queue uploaded again) is one check-in with one answer.
CREATE TABLE IF NOT EXISTS scans (
    nonce TEXT PRIMARY KEY,
    ticket_id TEXT NOT NULL,
    result TEXT NOT NULL CHECK (result IN ('ok', 'already_redeemed', 'revoked', 'invalid')),
    at_ms INTEGER NOT NULL
);

-- Event delivery (the outbox, processed event ids, replica versions): `delivery::SCHEMA`,
-- verbatim; a test keeps the two the same.
CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL UNIQUE, stream TEXT NOT NULL, envelope TEXT NOT NULL, created_at_ms INTEGER NOT NULL, claimed_until_ms INTEGER, sent_at_ms INTEGER);
CREATE INDEX IF NOT EXISTS outbox_unsent ON outbox (seq) WHERE sent_at_ms IS NULL;
CREATE INDEX IF NOT EXISTS outbox_sent ON outbox (sent_at_ms) WHERE sent_at_ms IS NOT NULL;
CREATE TABLE IF NOT EXISTS processed_events (event_id TEXT PRIMARY KEY, grp TEXT NOT NULL, processed_at_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS processed_events_age ON processed_events (processed_at_ms);
CREATE TABLE IF NOT EXISTS replica_versions (aggregate TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL, PRIMARY KEY (aggregate, id));
CREATE TABLE IF NOT EXISTS delivery_state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outbox_unverified (seq INTEGER PRIMARY KEY, stream TEXT NOT NULL, entry_ms INTEGER NOT NULL, entry_seq INTEGER NOT NULL, sent_at_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS outbox_unverified_by_entry ON outbox_unverified (stream, entry_ms, entry_seq);
