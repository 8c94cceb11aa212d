CREATE INDEX request_log_platform_model_ts ON request_log (platform, model, ts);
