-- Migration 1 of the payments database: its schema as the service first shipped it. The service
-- applies it, once, on first use (storage::migrate), inside one transaction. Statements end with
-- `;` at the end of a line; they are idempotent, so a database made before migrations were
-- tracked (by the old `--sqlite` start-up flags) adopts this as version 1 unchanged.

-- The replica of the orders service's orders, from `order:created`, `order:cancelled` and
-- `order:completed`, applied in version order: `version` is the last version applied.
-- `price_cents` is what the buyer pays.
CREATE TABLE IF NOT EXISTS orders (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('created', 'awaiting:payment', 'cancelled', 'complete')),
    price_cents INTEGER NOT NULL CHECK (price_cents > 0),
    expires_at_ms INTEGER NOT NULL,
    version INTEGER NOT NULL
);

-- Payments: at most one per order (UNIQUE order_id), tied to one Stripe PaymentIntent. `status`
-- follows the intent (Stripe's names) until it succeeds, then `succeeded`; a payment that
-- succeeded for an order that was cancelled meanwhile is `refund_pending` until Stripe has
-- refunded it, then `refunded`.
CREATE TABLE IF NOT EXISTS payments (
    id TEXT PRIMARY KEY,
    order_id TEXT NOT NULL UNIQUE,
    stripe_id TEXT NOT NULL UNIQUE,
    client_secret TEXT NOT NULL,
    amount_cents INTEGER NOT NULL CHECK (amount_cents > 0),
    currency TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('requires_payment_method', 'requires_confirmation', 'requires_action', 'processing', 'requires_capture', 'canceled', 'succeeded', 'refund_pending', 'refunded')),
    refund_id TEXT,
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL
);

-- The refunds still to make, for the housekeeping retry.
CREATE INDEX IF NOT EXISTS payments_refund_pending ON payments (status) WHERE status = 'refund_pending';

-- Event delivery (the outbox, processed event ids, replica versions): `delivery::SCHEMA`,
-- verbatim; a test keeps the two the same.
CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL UNIQUE, stream TEXT NOT NULL, envelope TEXT NOT NULL, created_at_ms INTEGER NOT NULL, claimed_until_ms INTEGER, sent_at_ms INTEGER);
CREATE INDEX IF NOT EXISTS outbox_unsent ON outbox (seq) WHERE sent_at_ms IS NULL;
CREATE INDEX IF NOT EXISTS outbox_sent ON outbox (sent_at_ms) WHERE sent_at_ms IS NOT NULL;
CREATE TABLE IF NOT EXISTS processed_events (event_id TEXT PRIMARY KEY, grp TEXT NOT NULL, processed_at_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS processed_events_age ON processed_events (processed_at_ms);
CREATE TABLE IF NOT EXISTS replica_versions (aggregate TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL, PRIMARY KEY (aggregate, id));
