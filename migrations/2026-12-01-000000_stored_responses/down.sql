DROP TABLE stored_responses;
