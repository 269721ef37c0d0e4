DROP INDEX jobs_unique_key_idx;
ALTER TABLE jobs DROP COLUMN depends_on;
ALTER TABLE jobs DROP COLUMN unique_key;
ALTER TABLE jobs DROP COLUMN limits;
ALTER TABLE jobs DROP COLUMN env;
ALTER TABLE jobs DROP COLUMN cwd;
