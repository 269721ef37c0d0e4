DROP INDEX jobs_claim;
CREATE INDEX jobs_claim ON jobs (priority DESC, next_run_at, seq)
    WHERE state IN ('pending', 'failed');
DROP TABLE job_deps;
ALTER TABLE jobs DROP COLUMN unmet_parents;
