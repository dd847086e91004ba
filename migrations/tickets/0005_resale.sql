-- Migration 5 of the tickets database: resale. A sold ticket's holder may list it again, under
-- a price capped at a share of its face value; a check-in at the door ends that for good.

-- The face value: the price of the ticket's first listing, which caps every resale.
ALTER TABLE tickets ADD COLUMN face_value_cents INTEGER;
UPDATE tickets SET face_value_cents = price_cents WHERE face_value_cents IS NULL;
-- Which listing the ticket is in: 1 for its first, one more for each resale.
ALTER TABLE tickets ADD COLUMN listing INTEGER NOT NULL DEFAULT 1;
-- The last completed sale: who bought it (the holder), by which order, from whom and at what
-- price, in which listing. A resale listing makes the holder the seller; withdrawing it
-- restores the sale. Sales before this migration have no holder recorded and cannot be resold.
ALTER TABLE tickets ADD COLUMN holder_id TEXT;
ALTER TABLE tickets ADD COLUMN sold_order_id TEXT;
ALTER TABLE tickets ADD COLUMN sold_by TEXT;
ALTER TABLE tickets ADD COLUMN sold_price_cents INTEGER;
ALTER TABLE tickets ADD COLUMN sold_listing INTEGER;
UPDATE tickets SET sold_order_id = order_id, sold_by = user_id, sold_price_cents = price_cents,
    sold_listing = 1
    WHERE status = 'sold' AND sold_order_id IS NULL;
-- When its pass was first checked in at the door; a checked-in ticket is never resold.
ALTER TABLE tickets ADD COLUMN checked_in_at_ms INTEGER;
