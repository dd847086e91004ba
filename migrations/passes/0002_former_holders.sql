-- Migration 2 of the passes database: who held each revoked generation, so that a former
-- holder's pass page can say the ticket was resold rather than that it was never theirs.
ALTER TABLE revocations ADD COLUMN holder_id TEXT;
CREATE INDEX IF NOT EXISTS revocations_by_holder ON revocations (holder_id, ticket_id);
