-- Hourly aggregates of the request log, so analytics over a month read hundreds of rows, not millions.
-- latency_histogram: comma-separated request counts per latency bucket, upper bounds (ms)
-- 50, 100, 200, 300, 500, 750, 1000, 1500, 2000, 3000, 5000, 7500, 10000, 20000, 60000, then everything above.
CREATE TABLE request_rollup (
    hour BIGINT NOT NULL,
    platform TEXT NOT NULL,
    model TEXT NOT NULL,
    requests BIGINT NOT NULL,
    successes BIGINT NOT NULL,
    prompt_tokens BIGINT NOT NULL,
    completion_tokens BIGINT NOT NULL,
    latency_sum BIGINT NOT NULL,
    latency_histogram TEXT NOT NULL,
    PRIMARY KEY (hour, platform, model)
);

INSERT INTO request_rollup
SELECT (ts / 3600000) * 3600000, COALESCE(platform, ''), COALESCE(model, ''), COUNT(*), SUM(status = 200),
       SUM(prompt_tokens), SUM(completion_tokens), SUM(latency_ms),
       SUM(latency_ms < 50) || ',' ||
       SUM(latency_ms < 100 AND latency_ms >= 50) || ',' ||
       SUM(latency_ms < 200 AND latency_ms >= 100) || ',' ||
       SUM(latency_ms < 300 AND latency_ms >= 200) || ',' ||
       SUM(latency_ms < 500 AND latency_ms >= 300) || ',' ||
       SUM(latency_ms < 750 AND latency_ms >= 500) || ',' ||
       SUM(latency_ms < 1000 AND latency_ms >= 750) || ',' ||
       SUM(latency_ms < 1500 AND latency_ms >= 1000) || ',' ||
       SUM(latency_ms < 2000 AND latency_ms >= 1500) || ',' ||
       SUM(latency_ms < 3000 AND latency_ms >= 2000) || ',' ||
       SUM(latency_ms < 5000 AND latency_ms >= 3000) || ',' ||
       SUM(latency_ms < 7500 AND latency_ms >= 5000) || ',' ||
       SUM(latency_ms < 10000 AND latency_ms >= 7500) || ',' ||
       SUM(latency_ms < 20000 AND latency_ms >= 10000) || ',' ||
       SUM(latency_ms < 60000 AND latency_ms >= 20000) || ',' ||
       SUM(latency_ms >= 60000)
FROM request_log
GROUP BY 1, 2, 3;
