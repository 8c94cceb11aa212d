-- wrk script for a quick throughput/latency check: POSTs one small chat request for model m1 with the unified key
-- the README's Development section uses. Run: wrk -t2 -c64 -d10s --latency -s examples/wrk-chat.lua http://127.0.0.1:3001/v1/chat/completions
wrk.method = "POST"
wrk.body = '{"model":"m1","messages":[{"role":"user","content":"Say hello in one short sentence."}]}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer freellmapi-0123456789abcdef0123456789abcdef"
