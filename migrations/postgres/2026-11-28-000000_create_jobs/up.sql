-- queuectl schema for PostgreSQL. Timestamps are BIGINT milliseconds since the Unix epoch
-- (the SQLite store uses the same encoding); u32 counters are BIGINT so every u32 fits.

CREATE TABLE jobs (
    -- Insertion order: the last tie-breaker of claim and the order of `list`.
    seq          BIGSERIAL PRIMARY KEY,
    id           TEXT    NOT NULL UNIQUE,
    command      TEXT    NOT NULL,
    kind         TEXT    NOT NULL,
    state        TEXT    NOT NULL CHECK (state IN
                     ('pending', 'processing', 'completed', 'failed', 'dead', 'cancelled')),
    attempts     BIGINT  NOT NULL,
    max_retries  BIGINT  NOT NULL,
    priority     INTEGER NOT NULL,
    queue        TEXT    NOT NULL,
    interrupts   BIGINT  NOT NULL,
    created_at   BIGINT  NOT NULL,
    updated_at   BIGINT  NOT NULL,
    run_at       BIGINT  NOT NULL,
    next_run_at  BIGINT,
    timeout_secs BIGINT,
    exit_code    INTEGER,
    last_error   TEXT,
    worker_id    TEXT,
    started_at   BIGINT,
    finished_at  BIGINT,
    lease_until  BIGINT,
    claim_token  BIGINT
);

-- Matches the claim query's WHERE and ORDER BY exactly, and holds only claimable rows, so
-- claim cost stays flat however much finished history the table keeps.
CREATE INDEX jobs_claim_idx ON jobs (priority DESC, next_run_at, seq)
    WHERE state IN ('pending', 'failed');

-- `expired_leases`: only processing rows.
CREATE INDEX jobs_lease_idx ON jobs (lease_until, seq) WHERE state = 'processing';

-- `list --state`, `counts`.
CREATE INDEX jobs_state_idx ON jobs (state, seq);

-- `prune`: only terminal rows.
CREATE INDEX jobs_prune_idx ON jobs (updated_at, seq)
    WHERE state IN ('completed', 'dead', 'cancelled');

-- Output of the last finished attempt, kept out of `jobs` so claim and lease updates do not
-- rewrite it.
CREATE TABLE job_output (
    job_seq BIGINT PRIMARY KEY REFERENCES jobs (seq) ON DELETE CASCADE,
    stdout  TEXT NOT NULL,
    stderr  TEXT NOT NULL
);

-- One row per finished attempt.
CREATE TABLE job_attempts (
    seq         BIGSERIAL PRIMARY KEY,
    job_seq     BIGINT  NOT NULL REFERENCES jobs (seq) ON DELETE CASCADE,
    attempt     BIGINT  NOT NULL,
    started_at  BIGINT  NOT NULL,
    finished_at BIGINT  NOT NULL,
    exit_code   INTEGER,
    error       TEXT
);

CREATE INDEX job_attempts_job_idx ON job_attempts (job_seq, seq);

CREATE TABLE settings (
    key        TEXT   PRIMARY KEY,
    value      TEXT   NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE workers (
    -- Registration order.
    seq            BIGSERIAL PRIMARY KEY,
    id             TEXT    NOT NULL UNIQUE,
    host           TEXT    NOT NULL,
    pid            BIGINT  NOT NULL,
    slots          BIGINT  NOT NULL,
    queues         TEXT[]  NOT NULL,
    started_at     BIGINT  NOT NULL,
    heartbeat_at   BIGINT  NOT NULL,
    stop_requested BOOLEAN NOT NULL
);
