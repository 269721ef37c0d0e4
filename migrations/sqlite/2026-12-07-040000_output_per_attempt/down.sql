DROP TABLE live_output;
CREATE TABLE job_output (
    job_seq INTEGER PRIMARY KEY REFERENCES jobs (seq) ON DELETE CASCADE,
    stdout  TEXT NOT NULL,
    stderr  TEXT NOT NULL
);
INSERT INTO job_output (job_seq, stdout, stderr)
    SELECT job_seq, coalesce(stdout, ''), coalesce(stderr, '') FROM job_attempts
    WHERE seq IN (SELECT max(seq) FROM job_attempts GROUP BY job_seq);
ALTER TABLE job_attempts DROP COLUMN stdout;
ALTER TABLE job_attempts DROP COLUMN stderr;
