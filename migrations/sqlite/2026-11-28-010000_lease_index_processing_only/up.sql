-- Expired leases concern `processing` jobs only, so index only those: enqueues, claims and
-- finishes then maintain one entry per running job instead of one per job ever stored, and
-- the index stays as small as the number of running jobs. The query must repeat the WHERE
-- literally for SQLite to use it (see expired_leases_query in lib.rs).
DROP INDEX jobs_lease;
CREATE INDEX jobs_lease ON jobs (lease_until) WHERE state = 'processing';
