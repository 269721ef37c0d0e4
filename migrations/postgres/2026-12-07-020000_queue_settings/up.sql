-- Per-queue controls (`queue pause|resume`, `queue concurrency`). A queue has a row only
-- while its settings differ from the defaults (not paused, no limit), so the claim's look
-- at this table reads nothing at all in the common case. A claim of a limited queue locks
-- its row (FOR UPDATE) to count and claim that queue's jobs one claimer at a time.
CREATE TABLE queue_settings (
    queue       TEXT    PRIMARY KEY,
    paused      BOOLEAN NOT NULL DEFAULT FALSE,
    -- At most this many of the queue's jobs `processing` at once; NULL: no limit.
    concurrency BIGINT  CHECK (concurrency >= 0),
    updated_at  BIGINT  NOT NULL
);
