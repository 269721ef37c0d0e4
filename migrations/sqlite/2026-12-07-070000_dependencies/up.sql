-- Dependencies (`depends_on`, `--after`). A job waiting on parents that have not completed
-- counts them in `unmet_parents`, one `job_deps` row each; a parent's completion deletes its
-- rows and decrements its children in the same transaction, and a parent that ends dead or
-- cancelled (or is deleted unfinished) cancels its waiting children, transitively.
ALTER TABLE jobs ADD COLUMN unmet_parents INTEGER NOT NULL DEFAULT 0;

CREATE TABLE job_deps (
    parent_id TEXT    NOT NULL,
    child_seq INTEGER NOT NULL REFERENCES jobs (seq) ON DELETE CASCADE,
    PRIMARY KEY (parent_id, child_seq)
) WITHOUT ROWID;
-- A child's parents (retry recounts them) and the foreign key's cascade on delete.
CREATE INDEX job_deps_child ON job_deps (child_seq);

-- The claim index leaves blocked jobs out, so 100k jobs waiting on a parent cost the claim
-- nothing. The claim repeats this WHERE literally (see claim.rs).
DROP INDEX jobs_claim;
CREATE INDEX jobs_claim ON jobs (priority DESC, next_run_at, seq)
    WHERE state IN ('pending', 'failed') AND unmet_parents = 0;
