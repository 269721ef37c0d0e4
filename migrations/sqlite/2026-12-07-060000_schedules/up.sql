-- Periodic jobs (`queuectl cron`): one row per name. `schedule`, `tz` and `job` are the
-- user's text, validated by queuectl before it is stored; times are epoch milliseconds.
-- Workers fire a due row by advancing `next_run_at` guarded by the value they read, in the
-- same transaction as the insert-if-absent of the job `NAME@<time>`.
CREATE TABLE schedules (
    name        TEXT    PRIMARY KEY NOT NULL,
    schedule    TEXT    NOT NULL,
    tz          TEXT    NOT NULL,
    job         TEXT    NOT NULL,
    next_run_at INTEGER NOT NULL,
    last_run_at INTEGER,
    paused      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at  INTEGER NOT NULL
);
