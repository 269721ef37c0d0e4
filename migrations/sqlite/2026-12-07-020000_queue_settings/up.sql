-- Per-queue controls (`queue pause|resume`, `queue concurrency`). A queue has a row only
-- while its settings differ from the defaults (not paused, no limit), so the claim's look
-- at this table reads nothing at all in the common case.
CREATE TABLE queue_settings (
    queue       TEXT    PRIMARY KEY NOT NULL,
    paused      BOOLEAN NOT NULL DEFAULT FALSE,
    -- At most this many of the queue's jobs `processing` at once; NULL: no limit.
    concurrency INTEGER CHECK (concurrency >= 0),
    updated_at  INTEGER NOT NULL
);
