-- Migration 5 of the orders database: resale. A sold ticket may be listed again by its holder;
-- each listing (1 for the first, one more per resale) is sold at most once.

-- The replica's listing of each ticket, and whether the tickets service last said it was sold
-- (NULL: available or reserved, or not said yet). A sold ticket takes no order until a resale
-- lists it again.
ALTER TABLE tickets ADD COLUMN listing INTEGER NOT NULL DEFAULT 1;
ALTER TABLE tickets ADD COLUMN sold INTEGER;
-- The listing each order was placed in.
ALTER TABLE orders ADD COLUMN listing INTEGER NOT NULL DEFAULT 1;

-- No double booking, per listing: a listing has at most one order that is not cancelled
-- (created, awaiting payment or complete), so a listing is sold once, and a resale starts anew.
DROP INDEX IF EXISTS orders_one_live_per_ticket;
CREATE UNIQUE INDEX IF NOT EXISTS orders_one_live_per_listing ON orders (ticket_id, listing) WHERE status <> 'cancelled';
