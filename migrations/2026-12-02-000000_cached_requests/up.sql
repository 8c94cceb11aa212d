-- Requests the response cache answered: no upstream asked, no quota spent.
ALTER TABLE request_log ADD COLUMN cached BOOLEAN NOT NULL DEFAULT 0;
