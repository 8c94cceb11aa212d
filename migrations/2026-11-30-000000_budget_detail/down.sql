ALTER TABLE budget_state DROP COLUMN detail;
