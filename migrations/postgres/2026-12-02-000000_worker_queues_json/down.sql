-- Back to TEXT[]: the JSON array's elements, in order. ALTER … USING takes no subquery,
-- hence a new column filled by UPDATE.
ALTER TABLE workers ADD COLUMN queues_array TEXT[];
UPDATE workers SET queues_array = ARRAY(
    SELECT e FROM json_array_elements_text(queues::json) WITH ORDINALITY AS t(e, n) ORDER BY n);
ALTER TABLE workers DROP COLUMN queues;
ALTER TABLE workers RENAME COLUMN queues_array TO queues;
ALTER TABLE workers ALTER COLUMN queues SET NOT NULL;
