-- The whole queuectl schema for SQLite. Timestamps are INTEGER milliseconds since the Unix
-- epoch (UTC); states are the lowercase names used everywhere else.

CREATE TABLE jobs (
    -- Insertion order, and the key children refer to (an alias of the rowid).
    seq          INTEGER PRIMARY KEY,
    id           TEXT    NOT NULL UNIQUE,
    command      TEXT    NOT NULL,
    kind         TEXT    NOT NULL,
    state        TEXT    NOT NULL CHECK (state IN
                     ('pending', 'processing', 'completed', 'failed', 'dead', 'cancelled')),
    attempts     INTEGER NOT NULL CHECK (attempts >= 0),
    max_retries  INTEGER NOT NULL CHECK (max_retries >= 0),
    priority     INTEGER NOT NULL,
    queue        TEXT    NOT NULL,
    interrupts   INTEGER NOT NULL CHECK (interrupts >= 0),
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    run_at       INTEGER NOT NULL,
    next_run_at  INTEGER,
    timeout_secs INTEGER CHECK (timeout_secs >= 0),
    exit_code    INTEGER,
    last_error   TEXT,
    worker_id    TEXT,
    started_at   INTEGER,
    finished_at  INTEGER,
    lease_until  INTEGER,
    claim_token  INTEGER
);

-- The claim scans this in exactly its ORDER BY and stops after LIMIT due rows. It holds only
-- claimable jobs, so its size (and the claim's cost) does not grow with finished history.
-- The claim query must repeat the WHERE literally for SQLite to use it (see claim.rs).
CREATE INDEX jobs_claim ON jobs (priority DESC, next_run_at, seq)
    WHERE state IN ('pending', 'failed');

-- Expired leases: state = 'processing' AND lease_until < ?, oldest lease first.
CREATE INDEX jobs_lease ON jobs (state, lease_until);

-- list --state and counts; the rowid (seq) is implicitly last, so a state filter reads in
-- insertion order without sorting.
CREATE INDEX jobs_state ON jobs (state);

-- Output of the last finished attempt; kept apart so claims and lists never read it.
CREATE TABLE job_output (
    job_seq INTEGER PRIMARY KEY REFERENCES jobs (seq) ON DELETE CASCADE,
    stdout  TEXT NOT NULL,
    stderr  TEXT NOT NULL
);

-- One row per finished attempt. Attempt numbers repeat after `dlq retry` resets attempts,
-- so the row's own seq is the history order.
CREATE TABLE job_attempts (
    seq         INTEGER PRIMARY KEY,
    job_seq     INTEGER NOT NULL REFERENCES jobs (seq) ON DELETE CASCADE,
    attempt     INTEGER NOT NULL,
    started_at  INTEGER NOT NULL,
    finished_at INTEGER NOT NULL,
    exit_code   INTEGER,
    error       TEXT
);

CREATE INDEX job_attempts_job ON job_attempts (job_seq);

CREATE TABLE settings (
    key        TEXT PRIMARY KEY NOT NULL,
    value      TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE workers (
    -- Registration order.
    seq            INTEGER PRIMARY KEY,
    id             TEXT    NOT NULL UNIQUE,
    host           TEXT    NOT NULL,
    pid            INTEGER NOT NULL,
    slots          INTEGER NOT NULL,
    -- A JSON array of queue names; [] means every queue.
    queues         TEXT    NOT NULL,
    started_at     INTEGER NOT NULL,
    heartbeat_at   INTEGER NOT NULL,
    stop_requested BOOLEAN NOT NULL DEFAULT FALSE
);
