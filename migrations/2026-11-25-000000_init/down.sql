DROP TABLE request_log;
DROP TABLE settings;
DROP TABLE fallback_chain;
DROP TABLE provider_keys;
