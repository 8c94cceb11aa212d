-- Analytics read the hourly rollup since 000001; no query filters the raw log by platform and model any more,
-- and keeping this index cost about a third of every request-log insert.
DROP INDEX IF EXISTS request_log_platform_model_ts;
