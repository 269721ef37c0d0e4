DROP TABLE workers;
DROP TABLE settings;
DROP TABLE job_attempts;
DROP TABLE job_output;
DROP TABLE jobs;
