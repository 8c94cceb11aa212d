//! Cohere through its native v2 chat API: request shape, answer translation and named stream events.

use serde_json::json;

use crate::support::client::{add_platform_key, chat, stream_chunks, streamed_text};
use crate::support::gateway::Gateway;
use crate::support::mock::{Mock, Reply};

const KEY: &str = "co-test-key-0001";

async fn cohere_gateway(mock: &Mock) -> Gateway {
    let base = mock.base_url().trim_end_matches("/v1").to_owned();
    let gw = Gateway::start(&[("FREELLMAPI_BASE_URL_COHERE", &base)]);
    add_platform_key(&gw, "cohere", KEY).await;
    gw
}

#[actix_rt::test]
async fn answer_with_tool_calls_is_translated() {
    let mock = Mock::start();
    let gw = cohere_gateway(&mock).await;
    let answer = json!({"id": "c-1", "finish_reason": "TOOL_CALL", "message": {"role": "assistant", "tool_plan": "look it up",
        "tool_calls": [{"id": "call_9", "type": "function", "function": {"name": "lookup", "arguments": "{\"q\":\"x\"}"}}]},
        "usage": {"tokens": {"input_tokens": 12, "output_tokens": 4}}});
    mock.push(KEY, Reply::body(200, answer.to_string()));
    let tools = json!([{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]);
    let res = chat(&gw, &json!({"model": "command-a-03-2025", "tools": tools,
        "messages": [{"role": "user", "content": "find x"}, {"role": "system", "content": "be useful"}]})).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let body = res.json();
    assert_eq!(body["model"], "command-a-03-2025");
    assert_eq!(body["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(
        body["choices"][0]["message"]["tool_calls"][0]["id"],
        "call_9"
    );
    assert_eq!(body["usage"]["total_tokens"], 16);
    let seen = &mock.requests()[0];
    assert_eq!(seen.path, "/v2/chat");
    assert_eq!(seen.key, KEY);
    assert_eq!(
        seen.body["messages"][0],
        json!({"role": "system", "content": "be useful"})
    );
    assert_eq!(seen.body["tools"], tools);
}

#[actix_rt::test]
async fn named_stream_events_become_openai_chunks() {
    let mock = Mock::start();
    let gw = cohere_gateway(&mock).await;
    let events = [
        (
            "message-start",
            json!({"type": "message-start", "id": "s1", "delta": {"message": {"role": "assistant"}}}),
        ),
        (
            "content-delta",
            json!({"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": "Hi"}}}}),
        ),
        (
            "content-delta",
            json!({"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": " there"}}}}),
        ),
        (
            "message-end",
            json!({"type": "message-end", "delta": {"finish_reason": "COMPLETE", "usage": {"tokens": {"input_tokens": 3, "output_tokens": 2}}}}),
        ),
    ];
    let raw: String = events
        .iter()
        .map(|(name, data)| format!("event: {name}\ndata: {data}\n\n"))
        .collect::<String>()
        + "data: [DONE]\n\n";
    mock.push(KEY, Reply::RawSse(raw));
    let res = chat(
        &gw,
        &json!({"model": "cohere/command-a-03-2025", "stream": true,
        "messages": [{"role": "user", "content": "hello"}]}),
    )
    .await;
    assert_eq!(res.status, 200);
    assert_eq!(mock.requests()[0].body["stream"], true);
    let chunks = stream_chunks(&res.body);
    let text = streamed_text(&chunks);
    assert_eq!(text, "Hi there");
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "stop"
    );
    assert!(chunks.iter().all(|c| c["model"] == "command-a-03-2025"));
}
