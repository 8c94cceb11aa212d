DROP TABLE budget_state;
