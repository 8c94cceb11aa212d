-- The rest of what a budget keeps across restarts, as JSON: the use still counting in its minute and day windows
-- (each entry [expires_ms, requests, tokens]), the limits it learned from the provider, and its prediction misses.
ALTER TABLE budget_state ADD COLUMN detail TEXT NOT NULL DEFAULT '{}';
