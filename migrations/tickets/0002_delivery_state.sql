-- Migration 2 of the tickets database: the delivery machinery's small facts, first of all the
-- epoch of the Redis this database last published to, which tells the relay when Redis lost its
-- data and the outbox must be sent again (delivery::republish_after_data_loss).
CREATE TABLE IF NOT EXISTS delivery_state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
