//! Tests of the Gemini adapter as a whole: requests, answers, streams and errors translated both ways.

use super::*;
use std::time::Duration;

/// A translated answer with its body as JSON, to assert on.
struct Translated {
    body: Value,
    calls: Vec<Call>,
}

fn translate_response_in_test(response: &Value) -> Result<Translated, Failure> {
    let answer = translate_response(response, "gemini-2.5-flash")?;
    Ok(Translated {
        body: serde_json::to_value(&answer.body).unwrap(),
        calls: answer.calls,
    })
}

fn request(body: Value) -> ChatRequest {
    ChatRequest::parse(body.to_string().as_bytes()).unwrap()
}

fn translate(body: Value) -> Value {
    translate_request(&request(body), "gemini-2.5-flash", |_| None).unwrap()
}

#[test]
fn system_roles_and_consecutive_turns() {
    let out = translate(json!({"messages": [
        {"role": "system", "content": "be brief"},
        {"role": "developer", "content": "and kind"},
        {"role": "user", "content": "hi"},
        {"role": "user", "content": [{"type": "text", "text": "there"}]},
        {"role": "assistant", "content": "hello"},
    ]}));
    assert_eq!(
        out["systemInstruction"],
        json!({"parts": [{"text": "be brief"}, {"text": "and kind"}]})
    );
    assert_eq!(
        out["contents"],
        json!([
            {"role": "user", "parts": [{"text": "hi"}, {"text": "there"}]},
            {"role": "model", "parts": [{"text": "hello"}]},
        ])
    );
}

#[test]
fn gemma_folds_the_system_prompt_into_the_first_user_turn() {
    let req = request(
        json!({"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]}),
    );
    let out = translate_request(&req, "gemma-4-31b-it", |_| None).unwrap();
    assert!(out.get("systemInstruction").is_none());
    assert_eq!(
        out["contents"][0]["parts"],
        json!([{"text": "s"}, {"text": "u"}])
    );
}

#[test]
fn generation_config_fields() {
    let out = translate(json!({"messages": [{"role": "user", "content": "x"}],
        "temperature": 0.3, "top_p": 0.9, "max_tokens": 50, "max_completion_tokens": 70, "stop": "END", "seed": 5,
        "response_format": {"type": "json_schema", "json_schema": {"name": "n", "schema": {"type": "object"}}},
        "reasoning_effort": "low"}));
    assert_eq!(
        out["generationConfig"],
        json!({
            "temperature": 0.3, "topP": 0.9, "seed": 5, "maxOutputTokens": 70, "stopSequences": ["END"],
            "responseMimeType": "application/json", "responseJsonSchema": {"type": "object"},
            "thinkingConfig": {"thinkingBudget": 1024},
        })
    );
    let json_mode = translate(
        json!({"messages": [{"role": "user", "content": "x"}], "response_format": {"type": "json_object"}}),
    );
    assert_eq!(
        json_mode["generationConfig"]["responseMimeType"],
        "application/json"
    );
}

#[test]
fn tools_choice_and_schema_cleaning() {
    let out = translate(json!({
        "messages": [{"role": "user", "content": "weather?"}],
        "tools": [{"type": "function", "function": {"name": "get_weather", "description": "d", "parameters": {
            "$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "additionalProperties": false,
            "properties": {
                "city": {"type": ["string", "null"], "const": "x"},
                "unit": {"$ref": "#/$defs/Unit"},
                "days": {"anyOf": [{"type": "integer"}, {"type": "null"}]}
            },
            "required": ["city"], "$defs": {"Unit": {"type": "string", "enum": ["c", "f"]}}
        }}}],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "response_format": {"type": "json_object"}
    }));
    assert_eq!(
        out["tools"][0]["functionDeclarations"][0]["parameters"],
        json!({
            "type": "object", "required": ["city"],
            "properties": {
                "city": {"type": "string", "nullable": true},
                "unit": {"type": "string", "enum": ["c", "f"]},
                "days": {"type": "integer", "nullable": true}
            }
        })
    );
    assert_eq!(
        out["toolConfig"],
        json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}})
    );
    assert!(
        out["generationConfig"].get("responseMimeType").is_none(),
        "JSON mode and tools cannot be combined"
    );
    for (choice, mode) in [("none", "NONE"), ("auto", "AUTO"), ("required", "ANY")] {
        let out = translate(
            json!({"messages": [{"role": "user", "content": "x"}], "tool_choice": choice}),
        );
        assert_eq!(out["toolConfig"]["functionCallingConfig"]["mode"], mode);
    }
}

#[test]
fn tool_calls_and_results_round_trip_with_signatures() {
    let req = request(json!({"messages": [
        {"role": "user", "content": "weather in Paris and Rome?"},
        {"role": "assistant", "content": null, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
            {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Rome\"}"}}
        ]},
        {"role": "tool", "tool_call_id": "call_1", "content": "{\"temp\":21}"},
        {"role": "tool", "tool_call_id": "call_2", "content": "sunny"}
    ]}));
    let out = translate_request(&req, "gemini-3-flash-preview", |id| {
        (id == "call_1").then(|| "sig-1".to_owned())
    })
    .unwrap();
    assert_eq!(
        out["contents"][1],
        json!({"role": "model", "parts": [
            {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "sig-1"},
            {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}}, "thoughtSignature": SIGNATURE_SENTINEL}
        ]})
    );
    assert_eq!(
        out["contents"][2],
        json!({"role": "user", "parts": [
            {"functionResponse": {"name": "get_weather", "response": {"temp": 21}}},
            {"functionResponse": {"name": "get_weather", "response": {"content": "sunny"}}}
        ]}),
        "parallel results merge into one turn, names recovered from call ids"
    );
}

#[test]
fn images_must_be_inline() {
    let inline = translate(json!({"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}]}));
    assert_eq!(
        inline["contents"][0]["parts"][0],
        json!({"inlineData": {"mimeType": "image/png", "data": "AAAA"}})
    );
    let remote = request(json!({"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]}));
    assert!(translate_request(&remote, "gemini-2.5-flash", |_| None).is_err());
}

#[test]
fn responses_translate_text_calls_finish_and_usage() {
    let text = translate_response_in_test(&json!({
        "candidates": [{"content": {"role": "model", "parts": [{"text": "thinking…", "thought": true}, {"text": "Hi"}, {"text": "!"}]}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 2, "thoughtsTokenCount": 3, "totalTokenCount": 9},
        "modelVersion": "gemini-2.5-flash", "responseId": "abc"
    }))
    .unwrap();
    assert_eq!(text.body["id"], "chatcmpl-abc");
    assert_eq!(text.body["choices"][0]["message"]["content"], "Hi!");
    assert_eq!(
        text.body["choices"][0]["message"]["reasoning_content"],
        "thinking…"
    );
    assert_eq!(text.body["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        text.body["usage"],
        json!({"prompt_tokens": 4, "completion_tokens": 5, "total_tokens": 9})
    );

    let call = translate_response_in_test(&json!({"candidates": [{"content": {"parts": [
        {"functionCall": {"name": "f", "args": {"a": 1}}, "thoughtSignature": "s"}]}, "finishReason": "STOP"}]}))
    .unwrap();
    let message = &call.body["choices"][0]["message"];
    assert_eq!(call.body["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(message["content"], Value::Null);
    assert_eq!(
        message["tool_calls"][0]["function"],
        json!({"name": "f", "arguments": "{\"a\":1}"})
    );
    assert_eq!(
        message["tool_calls"][0]["id"],
        super::calls::synthesized_id("f", "{\"a\":1}", 0)
    );
    assert_eq!(call.calls[0].3.as_deref(), Some("s"));

    for (reason, finish) in [
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("OTHER", "stop"),
    ] {
        let r = translate_response_in_test(&json!({"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": reason}]})).unwrap();
        assert_eq!(r.body["choices"][0]["finish_reason"], finish, "{reason}");
    }
    let blocked =
        translate_response_in_test(&json!({"promptFeedback": {"blockReason": "SAFETY"}})).unwrap();
    assert_eq!(
        blocked.body["choices"][0]["finish_reason"],
        "content_filter"
    );
    assert_eq!(
        blocked.body["choices"][0]["message"]["content"],
        Value::Null
    );
    let malformed = translate_response_in_test(
        &json!({"candidates": [{"finishReason": "MALFORMED_FUNCTION_CALL"}]}),
    );
    assert!(
        malformed.is_err(),
        "a malformed call is an error, not an empty success"
    );
}

fn event(v: Value) -> SseEvent {
    SseEvent {
        event: None,
        data: v.to_string().into_bytes(),
    }
}

#[test]
fn stream_becomes_openai_chunks_with_tool_calls_and_usage() {
    let mut d = GeminiStream::new("gemini-2.5-flash", true, SignatureCache::default());
    let mut out = Vec::new();
    d.event(event(json!({"candidates": [{"content": {"parts": [{"text": "Let me"}]}}], "responseId": "r1"})), &mut out).unwrap();
    d.event(
        event(json!({"candidates": [{"content": {"parts": [{"text": " check."}]}}]})),
        &mut out,
    )
    .unwrap();
    let call = json!({"candidates": [{"content": {"parts": [{"functionCall": {"name": "f", "args": {"x": 1}}}]}, "finishReason": "STOP"}],
                      "usageMetadata": {"promptTokenCount": 7, "candidatesTokenCount": 3}});
    d.event(event(call.clone()), &mut out).unwrap();
    d.event(event(call), &mut out).unwrap();
    d.finish(&mut out).unwrap();
    let chunks: Vec<Value> = out
        .iter()
        .map(|b| serde_json::from_slice(b).unwrap())
        .collect();
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": "Let me"})
    );
    assert_eq!(chunks[0]["id"], "chatcmpl-r1");
    assert_eq!(
        chunks[1]["choices"][0]["delta"],
        json!({"content": " check."})
    );
    assert_eq!(
        chunks[2]["choices"][0]["delta"]["tool_calls"],
        json!([
            {"index": 0, "id": super::calls::synthesized_id("f", "{\"x\":1}", 0), "type": "function", "function": {"name": "f", "arguments": "{\"x\":1}"}}
        ])
    );
    assert_eq!(
        chunks.len(),
        5,
        "the repeated call is deduplicated: {chunks:?}"
    );
    assert_eq!(chunks[3]["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(chunks[4]["choices"], json!([]));
    assert_eq!(
        chunks[4]["usage"],
        json!({"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10})
    );
}

#[test]
fn stream_cut_before_a_finish_reason_is_an_error() {
    let mut d = GeminiStream::new("gemini-2.5-flash", false, SignatureCache::default());
    let mut out = Vec::new();
    d.event(
        event(json!({"candidates": [{"content": {"parts": [{"text": "par"}]}}]})),
        &mut out,
    )
    .unwrap();
    assert!(d.finish(&mut out).is_err());
}

#[test]
fn refusals_name_the_violated_window_and_its_limit() {
    let body = br#"{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaMetric":"generativelanguage.googleapis.com/generate_content_free_tier_requests","quotaId":"GenerateRequestsPerDayPerProjectPerModel-FreeTier","quotaValue":"20"}]},{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"35s"}]}}"#;
    let news = Gemini::default().quota_news(429, &HeaderMap::new(), body);
    assert_eq!(news.exceeded, [Window::Rpd]);
    assert_eq!(news.report(Window::Rpd).unwrap().limit, Some(20));
    let tokens = br#"{"error":{"code":429,"details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaId":"GenerateContentInputTokensPerModelPerMinute-FreeTier","quotaValue":"250000"}]}]}}"#;
    let news = Gemini::default().quota_news(429, &HeaderMap::new(), tokens);
    assert_eq!(news.exceeded, [Window::Tpm]);
    assert!(Gemini::default()
        .quota_news(200, &HeaderMap::new(), b"")
        .is_empty());
}

#[test]
fn errors_are_classified_from_rpc_details() {
    let none = HeaderMap::new();
    let invalid = br#"{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com"}]}}"#;
    assert_eq!(
        classify_gemini(400, &none, invalid).kind,
        FailureKind::InvalidKey
    );
    let per_minute = br#"{"error":{"code":429,"message":"quota","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaId":"GenerateRequestsPerMinutePerProjectPerModel-FreeTier"}]},{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"17s"}]}}"#;
    assert_eq!(
        classify_gemini(429, &none, per_minute).kind,
        FailureKind::RateLimited {
            retry_after: Some(Duration::from_secs(17))
        }
    );
    let per_day = br#"[{"error":{"code":429,"message":"quota","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaId":"GenerateRequestsPerDayPerProjectPerModel-FreeTier"}]}]}}]"#;
    let FailureKind::QuotaExhausted {
        retry_after: Some(wait),
    } = classify_gemini(429, &none, per_day).kind
    else {
        panic!()
    };
    assert!(wait <= Duration::from_secs(86_400));
    let region = br#"{"error":{"code":400,"message":"User location is not supported for the API use.","status":"FAILED_PRECONDITION"}}"#;
    assert_eq!(
        classify_gemini(400, &none, region).kind,
        FailureKind::ModelUnavailable,
        "a region block never invalidates a key"
    );
    let too_long = br#"{"error":{"code":400,"message":"The input token count exceeds the maximum","status":"INVALID_ARGUMENT"}}"#;
    assert_eq!(
        classify_gemini(400, &none, too_long).kind,
        FailureKind::BadRequest
    );
    let overloaded =
        br#"{"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}"#;
    assert_eq!(
        classify_gemini(503, &none, overloaded).kind,
        FailureKind::Transient
    );
}

#[test]
fn requests_go_to_the_native_paths_with_the_key_header() {
    let g = Gemini::default();
    let target = Target {
        base_url: "http://x/v1beta",
        model: "models/gemini-2.5-flash",
        secret: "AIza-key",
    };
    let mut req = request(json!({"messages": [{"role": "user", "content": "x"}]}));
    let up = g.chat_request(&target, &req).unwrap();
    assert_eq!(
        up.url,
        "http://x/v1beta/models/gemini-2.5-flash:generateContent"
    );
    assert!(up
        .headers
        .iter()
        .any(|(k, v)| k == "x-goog-api-key" && v == "AIza-key"));
    req.stream = true;
    assert_eq!(
        g.chat_request(&target, &req).unwrap().url,
        "http://x/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    );
    assert_eq!(
        g.probe_request(&target).url,
        "http://x/v1beta/models?pageSize=1"
    );
}
