ALTER TABLE request_log DROP COLUMN client;
DROP TABLE client_usage;
DROP TABLE clients;
