-- Migration 4 of the orders database: the stream entries of sent outbox rows still to be
-- checked (event-delivery's SCHEMA). Redis fsyncs its append-only file once a second, so a crash
-- can lose the last entries it acknowledged; housekeeping re-sends the rows whose entry is gone.
CREATE TABLE IF NOT EXISTS outbox_unverified (seq INTEGER PRIMARY KEY, stream TEXT NOT NULL, entry_ms INTEGER NOT NULL, entry_seq INTEGER NOT NULL, sent_at_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS outbox_unverified_by_entry ON outbox_unverified (stream, entry_ms, entry_seq);
