-- `cancel ID` on a processing job records the request here; the worker that holds the job
-- kills it, and the guarded finish of a job with the flag set ends it `cancelled` whatever
-- the outcome it reports. Always false outside `processing`.
ALTER TABLE jobs ADD COLUMN cancel_requested BOOLEAN NOT NULL DEFAULT FALSE;
