-- Migration 3 of the payments database.
--
-- Each buyer's Stripe Customer: the card form's SetupIntent attaches the buyer's card to it and
-- every PaymentIntent names it, so a card can be used again (a retry after a decline, another
-- order); Stripe refuses a second use of a card that belongs to no Customer.
CREATE TABLE customers (
    user_id TEXT PRIMARY KEY,
    stripe_id TEXT NOT NULL UNIQUE,
    created_at_ms INTEGER NOT NULL
);

-- Where this service stands on an order's time to pay once it ran out: NULL (not run out, or not
-- seen yet), `closing` (its PaymentIntent is to be cancelled at Stripe before deciding) or
-- `lapsed` (no payment came in time: payment:expired was published). settlement.rs decides.
ALTER TABLE orders ADD COLUMN window_state TEXT CHECK (window_state IN ('closing', 'lapsed'));

-- Open orders by the end of their window, for the housekeeping backstop that closes windows the
-- expiration timer's event never came for; and the windows still closing.
CREATE INDEX orders_open_by_expiry ON orders (expires_at_ms) WHERE status IN ('created', 'awaiting:payment') AND window_state IS NULL;
CREATE INDEX orders_windows_closing ON orders (id) WHERE window_state = 'closing';

-- Payments gain `refunding` (a refund Stripe has not finished) and `refund_failed` (one Stripe
-- could not make): SQLite cannot change a CHECK constraint, so the table is rebuilt.
CREATE TABLE payments_new (
    id TEXT PRIMARY KEY,
    order_id TEXT NOT NULL UNIQUE,
    stripe_id TEXT NOT NULL UNIQUE,
    client_secret TEXT NOT NULL,
    amount_cents INTEGER NOT NULL CHECK (amount_cents > 0),
    currency TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('requires_payment_method', 'requires_confirmation', 'requires_action', 'processing', 'requires_capture', 'canceled', 'succeeded', 'refund_pending', 'refunding', 'refunded', 'refund_failed')),
    refund_id TEXT,
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL
);
INSERT INTO payments_new (id, order_id, stripe_id, client_secret, amount_cents, currency, status, refund_id, created_at_ms, updated_at_ms) SELECT id, order_id, stripe_id, client_secret, amount_cents, currency, status, refund_id, created_at_ms, updated_at_ms FROM payments;
DROP TABLE payments;
ALTER TABLE payments_new RENAME TO payments;
CREATE INDEX payments_refund_pending ON payments (status) WHERE status = 'refund_pending';
CREATE INDEX payments_refunding ON payments (status) WHERE status = 'refunding';
CREATE INDEX payments_refund_failed ON payments (status) WHERE status = 'refund_failed';
