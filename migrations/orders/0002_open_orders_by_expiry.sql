-- Migration 2 of the orders database: the open orders by the end of their window, for the
-- housekeeping backstop that cancels overdue orders itself when the expiration timer's schedule
-- (kept in Redis alone) was lost (orders_service::cancel_overdue).
CREATE INDEX IF NOT EXISTS orders_open_by_expiry ON orders (expires_at_ms) WHERE status IN ('created', 'awaiting:payment');
