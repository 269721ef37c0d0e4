DROP TABLE queue_settings;
