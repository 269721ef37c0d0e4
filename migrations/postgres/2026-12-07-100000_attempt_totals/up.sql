-- The finished attempts of deleted jobs, counted per queue and minute, so that the
-- figures built from history (the dashboard's throughput, the metrics' completed and
-- failed counters, top's rates) do not go down when jobs are pruned or deleted: every
-- statement that deletes jobs first adds their attempts here, in the same transaction.
-- minute: the attempts' finished_at floored to the minute, epoch milliseconds.
CREATE TABLE attempt_totals (
    queue     TEXT    NOT NULL,
    minute    BIGINT  NOT NULL,
    completed BIGINT  NOT NULL,
    failed    BIGINT  NOT NULL,
    PRIMARY KEY (queue, minute)
);
-- The dashboard's and top's windows read the recent minutes of every queue.
CREATE INDEX attempt_totals_minute ON attempt_totals (minute);
