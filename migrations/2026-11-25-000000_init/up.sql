CREATE TABLE provider_keys (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    platform TEXT NOT NULL,
    label TEXT NOT NULL DEFAULT '',
    ciphertext BLOB NOT NULL,
    nonce BLOB NOT NULL,
    key_hint TEXT NOT NULL,
    base_url TEXT,
    models TEXT,
    status TEXT NOT NULL DEFAULT 'unknown'
        CHECK (status IN ('unknown', 'healthy', 'rate_limited', 'invalid', 'error')),
    last_error TEXT,
    last_checked_at BIGINT,
    enabled BOOLEAN NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE INDEX provider_keys_platform ON provider_keys (platform);

CREATE TABLE fallback_chain (
    position INTEGER PRIMARY KEY NOT NULL,
    platform TEXT NOT NULL,
    model TEXT NOT NULL,
    enabled BOOLEAN NOT NULL DEFAULT 1,
    UNIQUE (platform, model)
);

CREATE TABLE settings (
    name TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);

CREATE TABLE request_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    ts BIGINT NOT NULL,
    requested_model TEXT NOT NULL,
    platform TEXT,
    model TEXT,
    status INTEGER NOT NULL,
    latency_ms INTEGER NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    stream BOOLEAN NOT NULL,
    error TEXT,
    attempt_log TEXT
);

CREATE INDEX request_log_ts ON request_log (ts);
CREATE INDEX request_log_platform_model_ts ON request_log (platform, model, ts);
