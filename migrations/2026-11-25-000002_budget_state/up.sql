-- What of each (platform, model, key) budget outlives a restart: the current day's use and an active bench.
-- Written in the background every few seconds and at shutdown; read once at start.
CREATE TABLE budget_state (
    platform TEXT NOT NULL,
    model TEXT NOT NULL,
    key_id BIGINT NOT NULL REFERENCES provider_keys(id) ON DELETE CASCADE,
    day BIGINT NOT NULL,
    day_requests BIGINT NOT NULL,
    day_tokens BIGINT NOT NULL,
    cooldown_until_ms BIGINT,
    cooldown_outage BOOLEAN NOT NULL DEFAULT 0,
    PRIMARY KEY (platform, model, key_id)
);
