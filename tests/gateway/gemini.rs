//! Google Gemini through the real server against a mock speaking Gemini's native wire format.

use serde_json::{json, Value};

use crate::support::client::{
    add_custom_key, add_platform_key, admin, chat, chat_body, new_conversation, stream_body,
    stream_chunks, streamed_text,
};
use crate::support::gateway::Gateway;
use crate::support::mock::{Mock, Reply};

const KEY: &str = "AIza-test-key-0001";

async fn gemini_gateway(mock: &Mock) -> Gateway {
    let base = format!("{}beta", mock.base_url());
    let gw = Gateway::start(&[("FREELLMAPI_BASE_URL_GOOGLE", &base)]);
    add_platform_key(&gw, "google", KEY).await;
    gw
}

fn ok(body: Value) -> Reply {
    Reply::body(200, body.to_string())
}

#[actix_rt::test]
async fn text_answer_is_translated_both_ways() {
    let mock = Mock::start();
    let gw = gemini_gateway(&mock).await;
    mock.push(KEY, ok(json!({
        "candidates": [{"content": {"role": "model", "parts": [{"text": "Bonjour"}]}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 2, "totalTokenCount": 7},
        "modelVersion": "gemini-2.5-flash", "responseId": "resp-1"
    })));
    let body = json!({"model": "google/gemini-2.5-flash", "temperature": 0.2, "max_tokens": 64,
        "messages": [{"role": "system", "content": "Answer in French."}, {"role": "user", "content": "Hello"}]});
    let res = chat(&gw, &body).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(
        res.header("x-routed-via").as_deref(),
        Some("google/gemini-2.5-flash")
    );
    let answer = res.json();
    assert_eq!(answer["object"], "chat.completion");
    assert_eq!(
        answer["choices"][0]["message"],
        json!({"role": "assistant", "content": "Bonjour"})
    );
    assert_eq!(
        answer["usage"],
        json!({"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7})
    );
    let seen = &mock.requests()[0];
    assert_eq!(seen.path, "/v1beta/models/gemini-2.5-flash:generateContent");
    assert_eq!(seen.key, KEY);
    assert_eq!(
        seen.body,
        json!({
            "contents": [{"role": "user", "parts": [{"text": "Hello"}]}],
            "systemInstruction": {"parts": [{"text": "Answer in French."}]},
            "generationConfig": {"temperature": 0.2, "maxOutputTokens": 64}
        })
    );
}

#[actix_rt::test]
async fn crlf_stream_becomes_openai_chunks_and_one_done() {
    let mock = Mock::start();
    let gw = gemini_gateway(&mock).await;
    let events = [
        json!({"candidates": [{"content": {"parts": [{"text": "Hel"}]}}], "responseId": "s1"}),
        json!({"candidates": [{"content": {"parts": [{"text": "lo"}]}, "finishReason": "STOP"}],
               "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2}}),
    ];
    mock.push(
        KEY,
        Reply::RawSse(
            events
                .iter()
                .map(|e| format!("data: {e}\r\n\r\n"))
                .collect(),
        ),
    );
    let mut body = stream_body("gemini-2.5-flash");
    body["stream_options"] = json!({"include_usage": true});
    let res = chat(&gw, &body).await;
    assert_eq!(res.status, 200);
    assert_eq!(
        mock.requests()[0].path,
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    );
    let chunks = stream_chunks(&res.body);
    let text = streamed_text(&chunks);
    assert_eq!(text, "Hello");
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(
        chunks[chunks.len() - 2]["choices"][0]["finish_reason"],
        "stop"
    );
    assert_eq!(chunks[chunks.len() - 1]["usage"]["total_tokens"], 5);
}

#[actix_rt::test]
async fn multi_turn_tool_use_replays_calls_signatures_and_results() {
    let mock = Mock::start();
    let gw = gemini_gateway(&mock).await;
    mock.push(KEY, ok(json!({"candidates": [{"content": {"role": "model", "parts": [
        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "sig-A"}]},
        "finishReason": "STOP"}]})));
    let tools = json!([{"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"], "additionalProperties": false}}}]);
    let first = chat(
        &gw,
        &json!({"model": "gemini-3-flash-preview", "tools": tools,
        "messages": [{"role": "user", "content": "Weather in Paris?"}]}),
    )
    .await;
    assert_eq!(first.status, 200, "{}", first.text());
    let message = first.json()["choices"][0]["message"].clone();
    assert_eq!(first.json()["choices"][0]["finish_reason"], "tool_calls");
    let call = &message["tool_calls"][0];
    assert_eq!(
        call["function"],
        json!({"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"})
    );
    let sent = &mock.requests()[0].body;
    assert_eq!(
        sent["tools"][0]["functionDeclarations"][0]["parameters"],
        json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
    );

    mock.push(KEY, ok(json!({"candidates": [{"content": {"parts": [{"text": "It is 21°C."}]}, "finishReason": "STOP"}]})));
    let second = chat(
        &gw,
        &json!({"model": "gemini-3-flash-preview", "tools": tools, "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            message,
            {"role": "tool", "tool_call_id": call["id"], "content": "{\"temp_c\":21}"}
        ]}),
    )
    .await;
    assert_eq!(second.status, 200, "{}", second.text());
    assert_eq!(
        second.json()["choices"][0]["message"]["content"],
        "It is 21°C."
    );
    let replay = &mock.requests()[1].body["contents"];
    assert_eq!(
        replay[1],
        json!({"role": "model", "parts": [
        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "sig-A"}]})
    );
    assert_eq!(
        replay[2],
        json!({"role": "user", "parts": [
        {"functionResponse": {"name": "get_weather", "response": {"temp_c": 21}}}]})
    );
}

#[actix_rt::test]
async fn resource_exhausted_cools_the_key_for_the_retry_delay_and_fails_over() {
    let mock = Mock::start();
    let gw = gemini_gateway(&mock).await;
    add_custom_key(
        &gw,
        "fallback",
        &mock.base_url(),
        json!(["gemini-2.5-flash"]),
    )
    .await;
    let exhausted = json!({"error": {"code": 429, "message": "You exceeded your current quota.", "status": "RESOURCE_EXHAUSTED",
        "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "40s"}]}});
    mock.push(KEY, Reply::body(429, exhausted.to_string()));
    let res = chat(&gw, &chat_body("gemini-2.5-flash")).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(
        res.header("x-routed-via").as_deref(),
        Some("custom/gemini-2.5-flash")
    );
    assert_eq!(res.header("x-fallback-attempts").as_deref(), Some("1"));
    let budgets = admin(&gw, "GET", "/api/budgets", None).await.json();
    let google = budgets
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["platform"] == "google" && b["model"] == "gemini-2.5-flash")
        .unwrap();
    assert!(google["cooldown_until"].is_string(), "{google}");
    let again = chat(&gw, &new_conversation("gemini-2.5-flash")).await;
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(again.header("x-fallback-attempts"), None);
    assert_eq!(mock.count_for(KEY), 1);
}
