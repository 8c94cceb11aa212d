//! The Anthropic front door, `/v1/messages`, through the real binary: Anthropic's request and answer shapes and
//! event stream over an OpenAI-compatible upstream, Gemini and Cohere; tool round trips and images as the
//! upstream receives them; failover before the first byte and the end of a stream that breaks after it; the
//! estimate of `count_tokens`. Errors are `messages_errors.rs`'s.

use serde_json::{json, Value};

use crate::support::client::{add_custom_key, add_platform_key, send_with, Reply as Answer};
use crate::support::gateway::{Gateway, TOKEN};
use crate::support::mock::{Mock, Reply, StreamPlan};
use crate::support::setup::gateway_on_mock;

/// The headers an Anthropic client sends: its key as `x-api-key`, and the version and beta headers, ignored.
pub(crate) const ANTHROPIC_HEADERS: [(&str, &str); 3] = [
    ("x-api-key", TOKEN),
    ("anthropic-version", "2023-06-01"),
    (
        "anthropic-beta",
        "claude-code-20250219,interleaved-thinking-2025-05-14",
    ),
];

/// POSTs `body` to `path` as an Anthropic client does.
pub(crate) async fn post(gw: &Gateway, path: &str, body: &Value) -> Answer {
    send_with("POST", &gw.url(path), None, &ANTHROPIC_HEADERS, Some(body)).await
}

/// POSTs a message request the way Claude Code does (`?beta=true`).
pub(crate) async fn message(gw: &Gateway, body: &Value) -> Answer {
    post(gw, "/v1/messages?beta=true", body).await
}

/// A small request for `model`.
fn ask(model: &str, stream: bool) -> Value {
    json!({"model": model, "max_tokens": 256, "stream": stream,
        "messages": [{"role": "user", "content": "Hello"}]})
}

/// The events of an Anthropic stream as (name, data), checking each frame's name is its data's `type`.
pub(crate) fn read_events(body: &[u8]) -> Vec<(String, Value)> {
    String::from_utf8_lossy(body)
        .split("\n\n")
        .filter(|frame| !frame.trim().is_empty())
        .map(|frame| {
            let name = frame
                .lines()
                .find_map(|l| l.strip_prefix("event: "))
                .unwrap_or_else(|| panic!("no event name: {frame:?}"));
            let data = frame
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .unwrap_or_else(|| panic!("no data: {frame:?}"));
            let data: Value = serde_json::from_str(data).unwrap();
            assert_eq!(data["type"], name, "{frame}");
            (name.to_owned(), data)
        })
        .collect()
}

fn names(events: &[(String, Value)]) -> Vec<&str> {
    events.iter().map(|(n, _)| n.as_str()).collect()
}

/// The text of a stream's `text_delta`s.
fn streamed_text(events: &[(String, Value)]) -> String {
    events
        .iter()
        .filter(|(_, d)| d["delta"]["type"] == "text_delta")
        .filter_map(|(_, d)| d["delta"]["text"].as_str())
        .collect()
}

/// Asserts a stream went in Anthropic's order: `message_start`, blocks each opened, filled and closed, then
/// `message_delta` and `message_stop`.
fn assert_well_formed(events: &[(String, Value)]) {
    let names = names(events);
    assert_eq!(names.first(), Some(&"message_start"), "{names:?}");
    assert_eq!(
        &names[names.len() - 2..],
        ["message_delta", "message_stop"],
        "{names:?}"
    );
    let mut open: Option<u64> = None;
    let mut next = 0;
    for (name, data) in &events[1..events.len() - 2] {
        let index = data["index"].as_u64();
        match name.as_str() {
            "content_block_start" => {
                assert_eq!((open, index), (None, Some(next)), "{names:?}");
                open = index;
                next += 1;
            }
            "content_block_delta" => assert_eq!(open, index, "{names:?}"),
            "content_block_stop" => {
                assert_eq!(open, index, "{names:?}");
                open = None;
            }
            "ping" => {}
            other => panic!("unexpected {other} in {names:?}"),
        }
    }
    assert_eq!(open, None, "every block is closed: {names:?}");
}

#[actix_rt::test]
async fn a_claude_code_request_gets_a_message_from_an_openai_compatible_upstream() {
    let (mock, gw) = gateway_on_mock(&[("k", json!(["m1"]))]).await;
    let body = json!({
        "model": "claude-sonnet-4-5-20250929", "max_tokens": 32000, "temperature": 1,
        "system": [{"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Hello", "cache_control": {"type": "ephemeral"}}]}
        ],
        "metadata": {"user_id": "user_1_account_2_session_3"},
        "thinking": {"type": "enabled", "budget_tokens": 2000},
        "context_management": {"edits": [{"type": "clear_thinking_20251015"}]},
        "output_config": {"effort": "medium"}, "service_tier": "auto"
    });
    let res = message(&gw, &body).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.header("x-routed-via").as_deref(), Some("custom/m1"));
    let answer = res.json();
    assert!(
        answer["id"].as_str().unwrap().starts_with("msg_"),
        "{answer}"
    );
    assert_eq!(
        answer,
        json!({"id": answer["id"], "type": "message", "role": "assistant", "model": "m1",
            "content": [{"type": "text", "text": "Hello from k"}],
            "stop_reason": "end_turn", "stop_sequence": null,
            "usage": {"input_tokens": 11, "output_tokens": 7}})
    );
    let seen = &mock.requests()[0];
    assert_eq!(seen.path, "/v1/chat/completions");
    assert_eq!(
        seen.body,
        json!({"model": "m1", "max_tokens": 32000, "temperature": 1.0, "messages": [
            {"role": "system", "content": "You are Claude Code."},
            {"role": "user", "content": "Hello"}]})
    );
}

#[actix_rt::test]
async fn a_streamed_message_is_anthropics_event_stream() {
    let (mock, gw) = gateway_on_mock(&[("k", json!(["m1"]))]).await;
    mock.push("k", Reply::Stream(StreamPlan::of(&["Hel", "lo", "!"])));
    let res = message(&gw, &ask("m1", true)).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.header("x-routed-via").as_deref(), Some("custom/m1"));
    assert_eq!(
        res.header("content-type").as_deref(),
        Some("text/event-stream")
    );
    let events = read_events(&res.body);
    assert_well_formed(&events);
    assert_eq!(streamed_text(&events), "Hello!");
    assert_eq!(events[0].1["message"]["content"], json!([]));
    assert_eq!(events[0].1["message"]["model"], "m1");
    let end = &events[events.len() - 2].1;
    assert_eq!(
        end,
        &json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null},
            "usage": {"input_tokens": 11, "output_tokens": 3}})
    );
    assert_eq!(
        mock.requests()[0].body["stream_options"],
        json!({"include_usage": true}),
        "usage is asked for, so the stream's end can report it"
    );
}

/// An OpenAI stream whose answer is one tool call, its arguments in two pieces.
pub(crate) fn streamed_call() -> Reply {
    let chunk = |delta: Value, finish: Value| {
        json!({"id": "chatcmpl-t", "object": "chat.completion.chunk", "model": "m1",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    };
    let chunks = [
        chunk(
            json!({"role": "assistant", "content": "Let me check."}),
            Value::Null,
        ),
        chunk(
            json!({"tool_calls": [{"index": 0, "id": "call_7", "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"city\":"}}]}),
            Value::Null,
        ),
        chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "\"Paris\"}"}}]}),
            Value::Null,
        ),
        chunk(json!({}), json!("tool_calls")),
    ];
    let body: String = chunks.iter().map(|c| format!("data: {c}\n\n")).collect();
    Reply::RawSse(body + "data: [DONE]\n\n")
}

fn weather_tool() -> Value {
    json!([{"name": "get_weather", "description": "Weather of a city",
        "input_schema": {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
            "properties": {"city": {"type": "string"}}, "required": ["city"]}}])
}

#[actix_rt::test]
async fn a_tool_round_trip_reaches_the_upstream_in_openai_form() {
    let (mock, gw) = gateway_on_mock(&[("k", json!(["m1"]))]).await;
    mock.push("k", streamed_call());
    let mut first = ask("claude-haiku-4-5", true);
    first["tools"] = weather_tool();
    first["tool_choice"] = json!({"type": "auto", "disable_parallel_tool_use": true});
    let res = message(&gw, &first).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let events = read_events(&res.body);
    assert_well_formed(&events);
    assert_eq!(
        events[4].1["content_block"],
        json!({"type": "tool_use", "id": "call_7", "name": "get_weather", "input": {}})
    );
    let arguments: String = events
        .iter()
        .filter_map(|(_, d)| d["delta"]["partial_json"].as_str())
        .collect();
    assert_eq!(arguments, r#"{"city":"Paris"}"#);
    assert_eq!(
        events[events.len() - 2].1["delta"]["stop_reason"],
        "tool_use"
    );
    let sent = &mock.requests()[0].body;
    assert_eq!(
        sent["tools"],
        json!([{"type": "function", "function": {"name": "get_weather", "description": "Weather of a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}])
    );
    assert_eq!(
        (&sent["tool_choice"], &sent["parallel_tool_calls"]),
        (&json!("auto"), &json!(false))
    );

    let second = json!({"model": "claude-haiku-4-5", "max_tokens": 256, "tools": weather_tool(), "messages": [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "I should call the tool.", "signature": "sig"},
            {"type": "text", "text": "Let me check."},
            {"type": "tool_use", "id": "call_7", "name": "get_weather", "input": {"city": "Paris"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "call_7", "content": [{"type": "text", "text": "21°C, sunny"}]},
            {"type": "text", "text": "Answer briefly."}]}
    ]});
    let res = message(&gw, &second).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json()["content"][0]["text"], "Hello from k");
    assert_eq!(
        mock.requests()[1].body["messages"],
        json!([
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": "Let me check.", "tool_calls": [{"id": "call_7", "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "call_7", "content": "21°C, sunny"},
            {"role": "user", "content": "Answer briefly."}
        ])
    );
}

#[actix_rt::test]
async fn a_whole_answer_with_tool_calls_becomes_tool_use_blocks() {
    let (mock, gw) = gateway_on_mock(&[("k", json!(["m1"]))]).await;
    let completion = json!({"id": "chatcmpl-w", "object": "chat.completion", "model": "m1",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": null,
            "reasoning_content": "Two lookups.",
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Rome\"}"}}]}}],
        "usage": {"prompt_tokens": 30, "completion_tokens": 12, "total_tokens": 42}});
    mock.push("k", Reply::body(200, completion.to_string()));
    let mut body = ask("m1", false);
    body["tools"] = weather_tool();
    let res = message(&gw, &body).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let answer = res.json();
    assert_eq!(
        answer["content"],
        json!([
            {"type": "thinking", "thinking": "Two lookups.", "signature": ""},
            {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "call_2", "name": "get_weather", "input": {"city": "Rome"}}
        ])
    );
    assert_eq!(answer["stop_reason"], "tool_use");
    assert_eq!(
        answer["usage"],
        json!({"input_tokens": 30, "output_tokens": 12})
    );
}

#[actix_rt::test]
async fn images_reach_the_upstream_as_image_url_parts() {
    let (mock, gw) = gateway_on_mock(&[("k", json!(["m1"]))]).await;
    let body = json!({"model": "m1", "max_tokens": 64, "messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgoAAAANSUhEUg=="}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
        {"type": "text", "text": "What are these?"}]}]});
    let res = message(&gw, &body).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(
        mock.requests()[0].body["messages"],
        json!([{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgoAAAANSUhEUg=="}},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
            {"type": "text", "text": "What are these?"}]}])
    );
}

#[actix_rt::test]
async fn a_fault_before_the_first_byte_fails_over_unseen() {
    let (mock, gw) = gateway_on_mock(&[("a", json!(["m1"])), ("b", json!(["m2"]))]).await;
    mock.push("a", Reply::body(500, r#"{"error":{"message":"boom"}}"#));
    mock.push("b", Reply::Stream(StreamPlan::of(&["Fine", " here."])));
    let res = message(&gw, &ask("auto", true)).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.header("x-routed-via").as_deref(), Some("custom/m2"));
    assert_eq!(res.header("x-fallback-attempts").as_deref(), Some("1"));
    let events = read_events(&res.body);
    assert_well_formed(&events);
    assert_eq!(streamed_text(&events), "Fine here.");
}

#[actix_rt::test]
async fn a_stream_broken_after_the_first_byte_is_continued_or_ends_with_an_error_event() {
    let broken =
        || Reply::Stream(StreamPlan::of(&["The quick ", "brown ", "never sent"]).cut_after(2));
    let (mock, gw) = gateway_on_mock(&[("a", json!(["m1"])), ("b", json!(["m2"]))]).await;
    mock.push("a", broken());
    mock.push("b", Reply::Stream(StreamPlan::of(&["fox."])));
    let res = message(&gw, &ask("auto", true)).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let events = read_events(&res.body);
    assert_well_formed(&events);
    assert_eq!(streamed_text(&events), "The quick brown fox.");
    assert_eq!(
        names(&events)
            .iter()
            .filter(|n| **n == "message_start")
            .count(),
        1,
        "the continuation is the same message"
    );

    let (mock, gw) = gateway_on_mock(&[("a", json!(["m1"]))]).await;
    mock.push("a", broken());
    let res = message(&gw, &ask("auto", true)).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let cut = read_events(&res.body);
    assert_eq!(streamed_text(&cut), "The quick brown ");
    let (last, error) = cut.last().unwrap();
    assert_eq!(last, "error", "{:?}", names(&cut));
    assert_eq!(error["error"]["type"], "overloaded_error");
    assert!(!names(&cut).contains(&"message_stop"), "{:?}", names(&cut));
}

#[actix_rt::test]
async fn count_tokens_estimates_without_calling_an_upstream() {
    let (mock, gw) = gateway_on_mock(&[("k", json!(["m1"]))]).await;
    let body = json!({"model": "claude-sonnet-4-5", "system": "Be brief.", "tools": weather_tool(),
        "messages": [{"role": "user", "content": "a".repeat(4000)}]});
    let res = post(&gw, "/v1/messages/count_tokens?beta=true", &body).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let counted = res.json()["input_tokens"].as_u64().unwrap();
    assert!((1000..1200).contains(&counted), "{counted}");
    assert_eq!(res.json().as_object().map(|o| o.len()), Some(1));
    assert!(mock.requests().is_empty());
}

#[actix_rt::test]
async fn gemini_answers_through_the_door_with_tool_calls_and_streams() {
    const KEY: &str = "AIza-messages-0001";
    let mock = Mock::start();
    let base = format!("{}beta", mock.base_url());
    let gw = Gateway::start(&[("FREELLMAPI_BASE_URL_GOOGLE", &base)]);
    add_platform_key(&gw, "google", KEY).await;
    let call = json!({"candidates": [{"content": {"role": "model", "parts": [
        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}]}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 9, "candidatesTokenCount": 4}});
    mock.push(KEY, Reply::body(200, call.to_string()));
    let mut body = ask("gemini-2.5-flash", false);
    body["tools"] = weather_tool();
    let res = message(&gw, &body).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(
        res.header("x-routed-via").as_deref(),
        Some("google/gemini-2.5-flash")
    );
    let answer = res.json();
    assert_eq!(answer["stop_reason"], "tool_use", "{answer}");
    assert_eq!(answer["content"][0]["type"], "tool_use");
    assert_eq!(answer["content"][0]["input"], json!({"city": "Paris"}));
    assert_eq!(
        answer["usage"],
        json!({"input_tokens": 9, "output_tokens": 4})
    );
    let seen = &mock.requests()[0];
    assert_eq!(seen.path, "/v1beta/models/gemini-2.5-flash:generateContent");
    assert_eq!(
        seen.body["tools"][0]["functionDeclarations"][0]["name"],
        "get_weather"
    );

    let events_sent = [
        json!({"candidates": [{"content": {"parts": [{"thought": true, "text": "Hm."}]}}], "responseId": "g1"}),
        json!({"candidates": [{"content": {"parts": [{"text": "Bonjour"}]}, "finishReason": "STOP"}],
            "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2}}),
    ];
    let sse: String = events_sent
        .iter()
        .map(|e| format!("data: {e}\r\n\r\n"))
        .collect();
    mock.push(KEY, Reply::RawSse(sse));
    let res = message(&gw, &ask("gemini-2.5-flash", true)).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let events = read_events(&res.body);
    assert_well_formed(&events);
    assert_eq!(events[1].1["content_block"]["type"], "thinking");
    assert_eq!(streamed_text(&events), "Bonjour");
    assert_eq!(
        events[events.len() - 2].1["usage"],
        json!({"input_tokens": 3, "output_tokens": 2})
    );
}

#[actix_rt::test]
async fn cohere_named_events_become_anthropic_events() {
    const KEY: &str = "co-messages-0001";
    let mock = Mock::start();
    let base = mock.base_url().trim_end_matches("/v1").to_owned();
    let gw = Gateway::start(&[("FREELLMAPI_BASE_URL_COHERE", &base)]);
    add_platform_key(&gw, "cohere", KEY).await;
    let events_sent = [
        (
            "message-start",
            json!({"type": "message-start", "id": "c1", "delta": {"message": {"role": "assistant"}}}),
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
            json!({"type": "message-end", "delta": {"finish_reason": "MAX_TOKENS",
            "usage": {"tokens": {"input_tokens": 3, "output_tokens": 2}}}}),
        ),
    ];
    let raw: String = events_sent
        .iter()
        .map(|(name, data)| format!("event: {name}\ndata: {data}\n\n"))
        .collect();
    mock.push(KEY, Reply::RawSse(raw));
    let mut body = ask("cohere/command-a-03-2025", true);
    body["system"] = json!("Be useful.");
    let res = message(&gw, &body).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(
        res.header("x-routed-via").as_deref(),
        Some("cohere/command-a-03-2025")
    );
    let events = read_events(&res.body);
    assert_well_formed(&events);
    assert_eq!(streamed_text(&events), "Hi there");
    assert_eq!(
        events[events.len() - 2].1["delta"]["stop_reason"],
        "max_tokens"
    );
    let seen = &mock.requests()[0];
    assert_eq!(seen.path, "/v2/chat");
    assert_eq!(
        seen.body["messages"],
        json!([{"role": "system", "content": "Be useful."}, {"role": "user", "content": "Hello"}])
    );
}

#[actix_rt::test]
async fn bearer_auth_works_too_and_model_ids_pass_through() {
    let mock = Mock::start();
    let gw = Gateway::start(&[]);
    add_custom_key(&gw, "k", &mock.base_url(), json!(["m1", "m2"])).await;
    let res = send_with(
        "POST",
        &gw.url("/v1/messages"),
        Some(TOKEN),
        &[],
        Some(&ask("custom/m2", false)),
    )
    .await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.header("x-routed-via").as_deref(), Some("custom/m2"));
    assert_eq!(mock.requests()[0].body["model"], "m2");
}
