DROP TABLE request_rollup;
