-- Migration 3 of the passes database: the rows some consumer group may not have acknowledged yet,
-- so that a Redis that lost its data is healed by sending again only what a consumer may not
-- have applied, not the whole outbox (delivery's acknowledged.rs; event-delivery's SCHEMA).
CREATE TABLE IF NOT EXISTS outbox_unacked (seq INTEGER PRIMARY KEY, stream TEXT NOT NULL, entry_ms INTEGER NOT NULL, entry_seq INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS outbox_unacked_by_entry ON outbox_unacked (stream, entry_ms, entry_seq);

-- Rows sent before this migration, already checked durable, kept no entry id: their send time
-- stands in for it (a stream entry's id is Redis's clock at the append), so they count as
-- acknowledged once every group has acknowledged an entry at least as late.
INSERT OR IGNORE INTO outbox_unacked (seq, stream, entry_ms, entry_seq) SELECT seq, stream, sent_at_ms, 0 FROM outbox WHERE sent_at_ms IS NOT NULL AND seq NOT IN (SELECT seq FROM outbox_unverified);
