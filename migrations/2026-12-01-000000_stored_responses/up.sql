-- Responses of POST /v1/responses kept for GET /v1/responses/{id} and previous_response_id, LOG_RETENTION_DAYS long.
-- Each row holds its own turn only (its input items and the response object with its output); a conversation is
-- the chain of previous_id links. Written in the background; deleting a row ends its chain there.
CREATE TABLE stored_responses (
    id TEXT PRIMARY KEY NOT NULL,
    created_ms BIGINT NOT NULL,
    previous_id TEXT,
    input TEXT NOT NULL,
    response TEXT NOT NULL
);

CREATE INDEX stored_responses_created ON stored_responses (created_ms);
