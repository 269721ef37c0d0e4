-- Id-prefix lookups (`show 3f2a` for `3f2a9c…`) are a range on the id in byte order,
-- `id COLLATE "C" >= $prefix AND id COLLATE "C" < $successor`: the UNIQUE index on id sorts
-- by the database's collation, which may be a locale where that range means something else,
-- so the range reads this index instead. (Pruning's index, jobs_prune_idx, exists already.)
CREATE INDEX jobs_id_bytes_idx ON jobs (id COLLATE "C");
