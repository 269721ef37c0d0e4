DROP INDEX jobs_id_bytes_idx;
