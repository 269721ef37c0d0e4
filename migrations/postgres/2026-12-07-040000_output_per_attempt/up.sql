-- Every attempt keeps its own output, in its history row (NULL: the stream was empty, so a
-- job that prints nothing stores no text). The output of each job's last finished attempt,
-- kept until now in job_output, moves to that job's last history row.
ALTER TABLE job_attempts ADD COLUMN stdout TEXT;
ALTER TABLE job_attempts ADD COLUMN stderr TEXT;
UPDATE job_attempts SET
    stdout = (SELECT NULLIF(o.stdout, '') FROM job_output o WHERE o.job_seq = job_attempts.job_seq),
    stderr = (SELECT NULLIF(o.stderr, '') FROM job_output o WHERE o.job_seq = job_attempts.job_seq)
WHERE seq IN (SELECT max(seq) FROM job_attempts GROUP BY job_seq);
DROP TABLE job_output;

-- What a running attempt has written so far, published by its worker about once a second
-- while it writes (never for an attempt that writes nothing) under its claim token, and
-- deleted when the attempt ends. Each stream is its tail (64 KiB at most) plus the number
-- of bytes cut before it. Apart from jobs so that these writes never touch its indexes.
CREATE TABLE live_output (
    job_seq     BIGINT PRIMARY KEY REFERENCES jobs (seq) ON DELETE CASCADE,
    claim_token BIGINT NOT NULL,
    stdout      TEXT   NOT NULL,
    stderr      TEXT   NOT NULL,
    stdout_cut  BIGINT NOT NULL,
    stderr_cut  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
