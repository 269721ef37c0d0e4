-- Pruning and retention delete finished jobs oldest first: this partial index holds only
-- finished rows, in finish order (a finished job's updated_at is when it reached its final
-- state), so a prune reads exactly the rows it deletes however much history is kept, and a
-- retention pass that finds nothing to do costs one index probe. Running and waiting jobs
-- are not in it, so claims and lease renewals do not maintain it. The prune statement
-- repeats the WHERE literally for SQLite to use it (see backends/sql/src/portable/operate.rs).
CREATE INDEX jobs_finished ON jobs (updated_at, seq)
    WHERE state IN ('completed', 'dead', 'cancelled');
