-- Migration 3 of the tickets database: the `placedSeq` of the last order that reserved each
-- ticket. Order events of one ticket can arrive out of placement order; a reservation by an order
-- placed before this one is stale (that order ended before the later one was placed), and one by
-- an order placed after it waits for the holder's release (tickets_service::OrderEvents).
ALTER TABLE tickets ADD COLUMN last_order_placed INTEGER;
