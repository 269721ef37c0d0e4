-- A worker's queues become the JSON text the SQLite store keeps (`["a","b"]`; `[]` means
-- every queue), so one Diesel schema (backends/sql) serves both dialects. array_to_json
-- writes exactly that encoding for the rows already there.
ALTER TABLE workers ALTER COLUMN queues TYPE TEXT USING array_to_json(queues)::text;
