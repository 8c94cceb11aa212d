-- Client keys: a key per app or person sharing the gateway, stored only as its SHA-256, with its own limits.
CREATE TABLE clients (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    name TEXT NOT NULL UNIQUE,
    key_hash TEXT NOT NULL UNIQUE,
    masked TEXT NOT NULL,
    models TEXT,
    rpm BIGINT,
    rpd BIGINT,
    tpm BIGINT,
    tpd BIGINT,
    enabled BOOLEAN NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL
);
-- A client's window counters, written in the background so its use survives a restart.
CREATE TABLE client_usage (
    client_id INTEGER PRIMARY KEY NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    minute_start BIGINT NOT NULL,
    minute_requests BIGINT NOT NULL,
    minute_tokens BIGINT NOT NULL,
    day_start BIGINT NOT NULL,
    day_requests BIGINT NOT NULL,
    day_tokens BIGINT NOT NULL
);
ALTER TABLE request_log ADD COLUMN client TEXT;
