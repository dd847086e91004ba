-- Migration 2 of the auth database: the rate limits' attempt counters, one row per key (an
-- email, a client address) holding the current window. A hit is one UPSERT ... RETURNING, so
-- parallel attempts are counted exactly; rows whose window ended are deleted as hits go by, so
-- the table holds at most the keys seen within one window. (They lived in a key-value store
-- before, counted by a read then a write, and were never removed.)

CREATE TABLE attempt_windows (
    key TEXT PRIMARY KEY,
    window_start INTEGER NOT NULL,
    count INTEGER NOT NULL
);
CREATE INDEX attempt_windows_by_start ON attempt_windows (window_start);
