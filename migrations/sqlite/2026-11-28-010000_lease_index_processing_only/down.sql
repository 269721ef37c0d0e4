DROP INDEX jobs_lease;
CREATE INDEX jobs_lease ON jobs (state, lease_until);
