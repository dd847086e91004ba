-- Migration 5 of the payments database: seller payouts through Stripe Connect (payouts.rs).

-- Whom an order's money is paid out to, and the ticket it bought, from `order:created`. NULL in
-- orders replicated before payouts existed: those were paid to the platform alone.
ALTER TABLE orders ADD COLUMN seller_id TEXT;
ALTER TABLE orders ADD COLUMN ticket_id TEXT;

-- Each seller's Stripe Express connected account, made once per user. `enabled`: Stripe lets it
-- take transfers and pay out (kept current by the `account.updated` webhook, applied only when
-- newer than the last one applied: `stripe_updated_s`, the event's time). `requirements_due`: a
-- JSON array of what Stripe still needs from the seller.
CREATE TABLE payout_accounts (
    user_id TEXT PRIMARY KEY,
    stripe_id TEXT NOT NULL UNIQUE,
    enabled INTEGER NOT NULL DEFAULT 0 CHECK (enabled IN (0, 1)),
    payouts_enabled INTEGER NOT NULL DEFAULT 0 CHECK (payouts_enabled IN (0, 1)),
    requirements_due TEXT NOT NULL DEFAULT '[]',
    stripe_updated_s INTEGER NOT NULL DEFAULT 0,
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL
);

-- One payout per order with a seller, planned before its PaymentIntent is made and fixed then:
-- a `destination` charge (the seller's account was enabled: Stripe moves the net to `account_id`
-- itself) or a `platform` charge (paid out later by a Transfer, once the order is complete and
-- the account enabled). `fee_cents` is the platform's fee, `amount_cents` what the buyer pays.
-- `state` only moves forward: planned → waiting_for_account → transferred → reversed, or
-- cancelled (a platform charge refunded before any transfer).
CREATE TABLE payouts (
    order_id TEXT PRIMARY KEY,
    seller_id TEXT NOT NULL,
    charge_type TEXT NOT NULL CHECK (charge_type IN ('destination', 'platform')),
    account_id TEXT,
    amount_cents INTEGER NOT NULL CHECK (amount_cents > 0),
    fee_cents INTEGER NOT NULL CHECK (fee_cents >= 0 AND fee_cents <= amount_cents),
    currency TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('planned', 'waiting_for_account', 'transferred', 'reversed', 'cancelled')),
    transfer_id TEXT UNIQUE,
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    CHECK (charge_type = 'platform' OR account_id IS NOT NULL)
);
CREATE INDEX payouts_by_seller ON payouts (seller_id, created_at_ms);
CREATE INDEX payouts_waiting ON payouts (seller_id) WHERE state = 'waiting_for_account';
