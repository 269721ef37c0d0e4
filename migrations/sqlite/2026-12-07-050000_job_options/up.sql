-- Job JSON v2: where and how a job's command runs, and its unique key. Existing jobs keep
-- NULL everywhere, which reads as version 1 behaviour (the worker's cwd, no extra env, no
-- limits, no key, no dependencies).
ALTER TABLE jobs ADD COLUMN cwd TEXT;
-- A JSON object of strings; NULL is {}.
ALTER TABLE jobs ADD COLUMN env TEXT;
-- A JSON object ({"memory_mb": …, …}); NULL is no limits.
ALTER TABLE jobs ADD COLUMN limits TEXT;
ALTER TABLE jobs ADD COLUMN unique_key TEXT;
-- A JSON array of job ids; NULL is [].
ALTER TABLE jobs ADD COLUMN depends_on TEXT;

-- At most one job per key among those that may still run. The insert's ON CONFLICT DO
-- NOTHING meets this index, so the check and the insert are one step under the write lock.
CREATE UNIQUE INDEX jobs_unique_key ON jobs (unique_key)
    WHERE unique_key IS NOT NULL AND state IN ('pending', 'failed', 'processing');
