DROP TABLE attempt_totals;
