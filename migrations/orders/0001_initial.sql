-- Migration 1 of the orders database: its schema as the service first shipped it. The service
-- applies it, once, on first use (storage::migrate), inside one transaction. Statements end with
-- `;` at the end of a line; they are idempotent, so a database made before migrations were
-- tracked (by the old `--sqlite` start-up flags) adopts this as version 1 unchanged.

-- The replica of the tickets service's tickets, from `ticket:created` and `ticket:updated`,
-- applied in version order: `version` is the last version applied. Rows are never deleted.
CREATE TABLE IF NOT EXISTS tickets (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    price_cents INTEGER NOT NULL CHECK (price_cents > 0),
    user_id TEXT NOT NULL,
    version INTEGER NOT NULL
);

-- Orders. `seq` is the insertion order: a buyer's orders are listed oldest first and paged on
-- it. `price_cents` is the ticket's price when the order was placed, which is what the buyer
-- pays. `expires_at_ms` ends the hold unless the order is paid first. `version` grows by exactly
-- one on every change and is the version the change's event carries.
CREATE TABLE IF NOT EXISTS orders (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL,
    ticket_id TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('created', 'awaiting:payment', 'cancelled', 'complete')),
    price_cents INTEGER NOT NULL CHECK (price_cents > 0),
    expires_at_ms INTEGER NOT NULL,
    version INTEGER NOT NULL,
    created_at_ms INTEGER NOT NULL
);

-- No double booking, enforced by the database: a ticket has at most one order that is not
-- cancelled (created, awaiting payment or complete). A second order for it fails to insert.
CREATE UNIQUE INDEX IF NOT EXISTS orders_one_live_per_ticket ON orders (ticket_id) WHERE status <> 'cancelled';

-- A buyer's orders, oldest first, from a cursor.
CREATE INDEX IF NOT EXISTS orders_by_user ON orders (user_id, seq);

-- Event delivery (the outbox, processed event ids, replica versions): `delivery::SCHEMA`,
-- verbatim; a test keeps the two the same.
CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL UNIQUE, stream TEXT NOT NULL, envelope TEXT NOT NULL, created_at_ms INTEGER NOT NULL, claimed_until_ms INTEGER, sent_at_ms INTEGER);
CREATE INDEX IF NOT EXISTS outbox_unsent ON outbox (seq) WHERE sent_at_ms IS NULL;
CREATE INDEX IF NOT EXISTS outbox_sent ON outbox (sent_at_ms) WHERE sent_at_ms IS NOT NULL;
CREATE TABLE IF NOT EXISTS processed_events (event_id TEXT PRIMARY KEY, grp TEXT NOT NULL, processed_at_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS processed_events_age ON processed_events (processed_at_ms);
CREATE TABLE IF NOT EXISTS replica_versions (aggregate TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL, PRIMARY KEY (aggregate, id));
