//! The OpenAI Responses front door (`/v1/responses`) through the real binary: OpenAI-compatible, Gemini and
//! Cohere upstreams, whole and streamed; function calls continued with `previous_response_id` (checking exactly
//! what the upstream received); images; errors; faults before and after the first byte; kept responses read,
//! deleted, not kept with `store: false`, and kept across a restart.

use serde_json::{json, Value};

use crate::support::client::{add_custom_key, add_platform_key, send, Reply as Answer};
use crate::support::gateway::{Gateway, TOKEN};
use crate::support::mock::{Mock, Reply, StreamPlan};
use crate::support::setup::gateway_on_mock;

pub(crate) const WEATHER: &str = "get_weather";

/// POSTs a Responses request.
async fn create(gw: &Gateway, body: &Value) -> Answer {
    send("POST", &gw.url("/v1/responses"), Some(TOKEN), Some(body)).await
}

/// `GET` or `DELETE /v1/responses/{id}`.
async fn on_kept(gw: &Gateway, method: &str, id: &str) -> Answer {
    send(
        method,
        &gw.url(&format!("/v1/responses/{id}")),
        Some(TOKEN),
        None,
    )
    .await
}

/// The events of a Responses stream, checked to be framed with their type and numbered 0, 1, 2, ...
fn read_events(res: &Answer) -> Vec<Value> {
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(
        res.header("content-type").as_deref(),
        Some("text/event-stream")
    );
    let events: Vec<Value> = res
        .text()
        .split_terminator("\n\n")
        .filter(|frame| !frame.starts_with(':'))
        .map(|frame| {
            let (name, data) = frame.split_once('\n').unwrap();
            let event: Value = serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
            assert_eq!(
                Some(name),
                event["type"]
                    .as_str()
                    .map(|t| format!("event: {t}"))
                    .as_deref()
            );
            event
        })
        .collect();
    for (n, event) in events.iter().enumerate() {
        assert_eq!(event["sequence_number"], n, "{event}");
    }
    events
}

fn kinds(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect()
}

/// The text the `response.output_text.delta` events carry, joined.
fn streamed_text(events: &[Value]) -> String {
    events
        .iter()
        .filter(|e| e["type"] == "response.output_text.delta")
        .map(|e| e["delta"].as_str().unwrap())
        .collect()
}

/// An OpenAI-compatible stream of these chunk deltas (with a finish and a usage chunk) and `[DONE]`.
pub(crate) fn sse(deltas: &[Value], finish: &str) -> Reply {
    let chunk = |delta: &Value, finish: Value| {
        json!({"id": "chatcmpl-s", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    };
    let mut body: String = deltas
        .iter()
        .map(|d| format!("data: {}\n\n", chunk(d, Value::Null)))
        .collect();
    body += &format!("data: {}\n\n", chunk(&json!({}), json!(finish)));
    body += &format!(
        "data: {}\n\n",
        json!({"id": "chatcmpl-s", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [], "usage": {"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25}})
    );
    Reply::RawSse(body + "data: [DONE]\n\n")
}

/// A whole OpenAI-compatible answer of `message`, ended for `finish`.
fn completion(message: Value, finish: &str) -> Reply {
    Reply::body(
        200,
        json!({"id": "chatcmpl-w", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25}})
        .to_string(),
    )
}

/// The upstream's whole answer: one call of the weather tool for Paris, `call_1`.
pub(crate) fn paris_call() -> Reply {
    completion(
        json!({"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
            "function": {"name": WEATHER, "arguments": "{\"city\":\"Paris\"}"}}]}),
        "tool_calls",
    )
}

/// The upstream's whole answer once the weather is known.
pub(crate) fn warm_answer() -> Reply {
    completion(
        json!({"role": "assistant", "content": "It is 21°C."}),
        "stop",
    )
}

pub(crate) fn weather_tool() -> Value {
    json!({"type": "function", "name": WEATHER, "description": "Weather of a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}})
}

/// What the `n`th request the mock saw for `key` carried.
pub(crate) fn upstream_body(mock: &Mock, key: &str, n: usize) -> Value {
    mock.requests()
        .into_iter()
        .filter(|r| r.key == key)
        .nth(n)
        .unwrap_or_else(|| panic!("no request {n} for {key}"))
        .body
}

#[actix_rt::test]
async fn a_plain_answer_is_a_response_object_and_only_chat_fields_go_upstream() {
    let (mock, gw) = gateway_on_mock(&[("k", json!(["m"]))]).await;
    let res = create(
        &gw,
        &json!({"model": "m", "input": "hello", "instructions": "Be brief.", "max_output_tokens": 64,
            "temperature": 0.5, "reasoning": {"effort": "low"}, "include": [], "prompt_cache_key": "c",
            "client_metadata": {"a": 1}, "truncation": "auto", "service_tier": "auto", "metadata": {"t": "1"}}),
    )
    .await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.header("x-routed-via").as_deref(), Some("custom/m"));
    let body = res.json();
    assert!(body["id"].as_str().unwrap().starts_with("resp_"), "{body}");
    assert_eq!(
        (&body["object"], &body["status"], &body["model"]),
        (&json!("response"), &json!("completed"), &json!("m"))
    );
    assert_eq!(body["output_text"], "Hello from k");
    let message = &body["output"][0];
    assert_eq!(
        (&message["type"], &message["role"], &message["status"]),
        (&json!("message"), &json!("assistant"), &json!("completed"))
    );
    assert!(message["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(
        message["content"],
        json!([{"type": "output_text", "text": "Hello from k", "annotations": [], "logprobs": []}])
    );
    assert_eq!(
        (
            &body["usage"]["input_tokens"],
            &body["usage"]["output_tokens"],
            &body["usage"]["total_tokens"]
        ),
        (&json!(11), &json!(7), &json!(18))
    );
    assert_eq!(
        (
            &body["instructions"],
            &body["max_output_tokens"],
            &body["metadata"],
            &body["store"]
        ),
        (
            &json!("Be brief."),
            &json!(64),
            &json!({"t": "1"}),
            &json!(true)
        )
    );
    assert_eq!(
        upstream_body(&mock, "k", 0),
        json!({"model": "m", "max_tokens": 64, "temperature": 0.5,
            "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello"}]}),
        "nothing Responses-only reaches a chat upstream"
    );
}

#[actix_rt::test]
async fn a_stream_sends_the_event_sequence_and_ends_as_the_kept_response() {
    let (mock, gw) = gateway_on_mock(&[("k", json!(["m"]))]).await;
    mock.push("k", Reply::Stream(StreamPlan::of(&["Hel", "lo"])));
    let res = create(&gw, &json!({"model": "m", "input": "hi", "stream": true})).await;
    let events = read_events(&res);
    assert_eq!(
        kinds(&events),
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed"
        ]
    );
    assert_eq!(streamed_text(&events), "Hello");
    let id = events[0]["response"]["id"].as_str().unwrap().to_owned();
    let item = &events[2];
    assert_eq!(
        (&item["output_index"], &item["item"]["status"]),
        (&json!(0), &json!("in_progress"))
    );
    for delta in events
        .iter()
        .filter(|e| e["type"] == "response.output_text.delta")
    {
        assert_eq!(delta["item_id"], item["item"]["id"]);
        assert_eq!(
            (&delta["output_index"], &delta["content_index"]),
            (&json!(0), &json!(0))
        );
    }
    let completed = &events[9]["response"];
    assert_eq!(completed["status"], "completed");
    assert_eq!(completed["output_text"], "Hello");
    assert_eq!(
        completed["usage"]["input_tokens"], 11,
        "the upstream's usage"
    );
    assert_eq!(
        upstream_body(&mock, "k", 0)["stream_options"],
        json!({"include_usage": true})
    );
    let kept = on_kept(&gw, "GET", &id).await;
    assert_eq!(kept.status, 200);
    assert_eq!(&kept.json(), completed);

    let whole = create(&gw, &json!({"model": "m", "input": "hi"}))
        .await
        .json();
    let streamed = create(&gw, &json!({"model": "m", "input": "hi", "stream": true})).await;
    let streamed = read_events(&streamed).last().unwrap()["response"].clone();
    let shape = |r: &Value| {
        let mut r = r.clone();
        for field in ["id", "created_at", "usage"] {
            r[field] = Value::Null;
        }
        r["output"][0]["id"] = Value::Null;
        r
    };
    assert_eq!(
        shape(&streamed),
        shape(&whole),
        "streamed and whole responses agree"
    );
}

#[actix_rt::test]
async fn a_function_call_round_trip_continues_with_previous_response_id() {
    let (mock, gw) = gateway_on_mock(&[("k", json!(["m"]))]).await;
    mock.push("k", paris_call());
    let first = create(
        &gw,
        &json!({"model": "m", "input": "Weather in Paris?", "tools": [weather_tool()], "tool_choice": "auto"}),
    )
    .await;
    assert_eq!(first.status, 200, "{}", first.text());
    let first = first.json();
    let call = &first["output"][0];
    assert_eq!(
        (
            &call["type"],
            &call["call_id"],
            &call["name"],
            &call["arguments"],
            &call["status"]
        ),
        (
            &json!("function_call"),
            &json!("call_1"),
            &json!(WEATHER),
            &json!("{\"city\":\"Paris\"}"),
            &json!("completed")
        )
    );
    assert!(call["id"].as_str().unwrap().starts_with("fc_"));
    assert_eq!(first["tools"][0]["name"], WEATHER);
    let offered = upstream_body(&mock, "k", 0);
    assert_eq!(
        (
            &offered["tools"][0]["function"]["name"],
            &offered["tool_choice"]
        ),
        (&json!(WEATHER), &json!("auto"))
    );

    mock.push("k", warm_answer());
    let second = create(
        &gw,
        &json!({"model": "m", "previous_response_id": first["id"], "tools": [weather_tool()],
            "input": [{"type": "function_call_output", "call_id": "call_1", "output": "{\"temp_c\":21}"}]}),
    )
    .await;
    assert_eq!(second.status, 200, "{}", second.text());
    assert_eq!(second.json()["output_text"], "It is 21°C.");
    assert_eq!(second.json()["previous_response_id"], first["id"]);
    assert_eq!(
        upstream_body(&mock, "k", 1)["messages"],
        json!([
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
                "function": {"name": WEATHER, "arguments": "{\"city\":\"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "{\"temp_c\":21}"}
        ])
    );
}

#[actix_rt::test]
async fn streamed_calls_of_namespace_tools_come_back_as_declared_and_continue_at_once() {
    let (mock, gw) = gateway_on_mock(&[("k", json!(["m"]))]).await;
    mock.push(
        "k",
        sse(
            &[
                json!({"role": "assistant", "content": "Looking."}),
                json!({"tool_calls": [{"index": 0, "id": "call_a", "type": "function",
                    "function": {"name": "crm__lookup", "arguments": "{\"id\":"}}]}),
                json!({"tool_calls": [{"index": 0, "function": {"arguments": "7}"}}]}),
                json!({"tool_calls": [{"index": 1, "id": "call_b", "type": "function",
                    "function": {"name": WEATHER, "arguments": "{\"city\":\"Oslo\"}"}}]}),
            ],
            "tool_calls",
        ),
    );
    let tools = json!([weather_tool(), {"type": "namespace", "name": "crm", "description": "The CRM",
        "tools": [{"type": "function", "name": "lookup", "parameters": {"type": "object"}}]}]);
    let res = create(
        &gw,
        &json!({"model": "m", "input": "go", "tools": tools, "stream": true}),
    )
    .await;
    let seen = read_events(&res);
    let added: Vec<&Value> = seen
        .iter()
        .filter(|e| e["type"] == "response.output_item.added")
        .map(|e| &e["item"]["type"])
        .collect();
    assert_eq!(added, ["message", "function_call", "function_call"]);
    let done: Vec<&Value> = seen
        .iter()
        .filter(|e| e["type"] == "response.function_call_arguments.done")
        .map(|e| &e["arguments"])
        .collect();
    assert_eq!(done, ["{\"id\":7}", "{\"city\":\"Oslo\"}"]);
    let completed = &seen.last().unwrap()["response"];
    assert_eq!(
        completed["output"][1],
        json!({"type": "function_call", "id": completed["output"][1]["id"], "call_id": "call_a", "name": "lookup",
            "namespace": "crm", "arguments": "{\"id\":7}", "status": "completed"})
    );
    assert_eq!(
        upstream_body(&mock, "k", 0)["tools"][1]["function"]["name"],
        "crm__lookup"
    );

    mock.push("k", Reply::Stream(StreamPlan::of(&["Done."])));
    let next = create(
        &gw,
        &json!({"model": "m", "previous_response_id": completed["id"], "tools": tools, "stream": true,
            "input": [{"type": "function_call_output", "call_id": "call_a", "output": "Ada"},
                      {"type": "function_call_output", "call_id": "call_b", "output": "cold"}]}),
    )
    .await;
    assert_eq!(streamed_text(&read_events(&next)), "Done.");
    let sent = upstream_body(&mock, "k", 1)["messages"].clone();
    assert_eq!(
        sent[1],
        json!({"role": "assistant", "content": "Looking.", "tool_calls": [
            {"id": "call_a", "type": "function", "function": {"name": "crm__lookup", "arguments": "{\"id\":7}"}},
            {"id": "call_b", "type": "function", "function": {"name": WEATHER, "arguments": "{\"city\":\"Oslo\"}"}}]})
    );
    assert_eq!(sent.as_array().unwrap().len(), 4, "{sent}");
}

#[actix_rt::test]
async fn a_custom_tool_call_comes_back_free_form_and_goes_up_as_its_function() {
    let (mock, gw) = gateway_on_mock(&[("k", json!(["m"]))]).await;
    let patch = "*** Begin Patch\n*** Add File: a.txt\n+hi\n*** End Patch";
    mock.push(
        "k",
        sse(
            &[json!({"tool_calls": [{"index": 0, "id": "call_p", "type": "function",
                "function": {"name": "apply_patch", "arguments": json!({"input": patch}).to_string()}}]})],
            "tool_calls",
        ),
    );
    let tools = json!([{"type": "custom", "name": "apply_patch", "description": "Edit files.",
        "format": {"type": "grammar", "syntax": "lark", "definition": "start: begin_patch"}}]);
    let res = create(
        &gw,
        &json!({"model": "m", "input": "add a.txt", "tools": tools, "stream": true}),
    )
    .await;
    let events = read_events(&res);
    let done = events
        .iter()
        .find(|e| e["type"] == "response.custom_tool_call_input.done")
        .unwrap();
    assert_eq!(done["input"], patch);
    let call = &events.last().unwrap()["response"]["output"][0];
    assert_eq!(
        (
            &call["type"],
            &call["call_id"],
            &call["name"],
            &call["input"]
        ),
        (
            &json!("custom_tool_call"),
            &json!("call_p"),
            &json!("apply_patch"),
            &json!(patch)
        )
    );
    let offered = &upstream_body(&mock, "k", 0)["tools"][0]["function"];
    assert_eq!(offered["parameters"]["required"], json!(["input"]));
    assert!(offered["description"]
        .as_str()
        .unwrap()
        .contains("start: begin_patch"));

    let next = create(
        &gw,
        &json!({"model": "m", "previous_response_id": events[0]["response"]["id"], "tools": tools,
            "input": [{"type": "custom_tool_call_output", "call_id": "call_p", "output": "Done!"}]}),
    )
    .await;
    assert_eq!(next.status, 200, "{}", next.text());
    let sent = upstream_body(&mock, "k", 1)["messages"].clone();
    assert_eq!(
        sent[1]["tool_calls"][0]["function"],
        json!({"name": "apply_patch", "arguments": json!({"input": patch}).to_string()})
    );
    assert_eq!(
        sent[2],
        json!({"role": "tool", "tool_call_id": "call_p", "content": "Done!"})
    );
}

#[actix_rt::test]
async fn an_image_reaches_the_upstream_as_an_image_part() {
    let (mock, gw) = gateway_on_mock(&[("k", json!(["m"]))]).await;
    let image = "data:image/png;base64,iVBORw0KGgo=";
    let res = create(
        &gw,
        &json!({"model": "m", "input": [{"role": "user", "content": [
            {"type": "input_text", "text": "What is this?"},
            {"type": "input_image", "image_url": image, "detail": "auto"}]}]}),
    )
    .await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(
        upstream_body(&mock, "k", 0)["messages"][0]["content"],
        json!([{"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": image, "detail": "auto"}}])
    );
}

#[actix_rt::test]
async fn errors_keep_the_openai_shape_and_chat_statuses() {
    let (mock, gw) = gateway_on_mock(&[("k", json!(["m"]))]).await;
    let expect = |res: &Answer, status: u16, code: &str| {
        assert_eq!(res.status, status, "{}", res.text());
        assert_eq!(res.json()["error"]["code"], code, "{}", res.text());
        assert!(res.json()["error"]["message"].is_string());
    };
    let bad_json = send("POST", &gw.url("/v1/responses"), Some(TOKEN), None).await;
    assert_eq!(bad_json.status, 400);
    assert_eq!(bad_json.json()["error"]["type"], "invalid_request_error");
    let hosted = create(
        &gw,
        &json!({"model": "m", "input": "x", "tools": [{"type": "web_search"}, {"type": "file_search"}]}),
    )
    .await;
    expect(&hosted, 400, "unsupported_tool");
    let message = hosted.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains("web_search, file_search"), "{message}");
    let unknown = create(
        &gw,
        &json!({"model": "m", "input": "x", "previous_response_id": "resp_nope"}),
    )
    .await;
    expect(&unknown, 404, "previous_response_not_found");
    expect(
        &create(&gw, &json!({"model": "nope", "input": "x"})).await,
        404,
        "model_not_found",
    );
    mock.push("k", Reply::rate_limited(30));
    let limited = create(&gw, &json!({"model": "m", "input": "x"})).await;
    expect(&limited, 429, "rate_limit_exceeded");
    assert!(limited.header("retry-after").is_some());
    let missing = on_kept(&gw, "GET", "resp_nope").await;
    expect(&missing, 404, "response_not_found");
    assert_eq!(
        mock.requests().len(),
        1,
        "only the rate-limited request went upstream"
    );
}

#[actix_rt::test]
async fn a_fault_before_the_first_byte_fails_over_unseen() {
    let mock = Mock::start();
    let gw = Gateway::start(&[]);
    add_custom_key(&gw, "k1", &mock.base_url(), json!(["a"])).await;
    add_custom_key(&gw, "k2", &mock.base_url(), json!(["b"])).await;
    mock.push("k1", Reply::error(500, "server_error", "boom"));
    let res = create(
        &gw,
        &json!({"model": "auto", "input": "hi", "stream": true}),
    )
    .await;
    assert_eq!(res.header("x-fallback-attempts").as_deref(), Some("1"));
    assert_eq!(res.header("x-routed-via").as_deref(), Some("custom/b"));
    let events = read_events(&res);
    assert_eq!(streamed_text(&events), "Hello from k2");
    assert_eq!(
        kinds(&events)
            .iter()
            .filter(|k| *k == "response.created")
            .count(),
        1
    );
    assert_eq!(events.last().unwrap()["type"], "response.completed");
}

#[actix_rt::test]
async fn a_fault_after_the_first_byte_is_continued_or_ends_with_response_failed() {
    let cut = || {
        Reply::Stream(StreamPlan {
            pieces: vec!["The quick ".into(), "brown ".into(), "never sent".into()],
            chunk_delay: std::time::Duration::from_millis(20),
            drop_after: Some(2),
            done: true,
        })
    };
    let mock = Mock::start();
    let gw = Gateway::start(&[]);
    add_custom_key(&gw, "p", &mock.base_url(), json!(["a"])).await;
    add_custom_key(&gw, "f", &mock.base_url(), json!(["b"])).await;
    mock.push("p", cut());
    mock.push("f", Reply::Stream(StreamPlan::of(&["fox."])));
    let events = stream_of(&gw, "auto").await;
    assert_eq!(streamed_text(&events), "The quick brown fox.");
    let last = events.last().unwrap();
    assert_eq!(
        (&last["type"], &last["response"]["output_text"]),
        (&json!("response.completed"), &json!("The quick brown fox."))
    );

    let mock = Mock::start();
    let gw = Gateway::start(&[("STREAM_RESUME", "off")]);
    add_custom_key(&gw, "p", &mock.base_url(), json!(["a"])).await;
    mock.push("p", cut());
    let events = stream_of(&gw, "auto").await;
    assert_eq!(streamed_text(&events), "The quick brown ");
    let failed = events.last().unwrap();
    assert_eq!(failed["type"], "response.failed");
    assert_eq!(failed["response"]["status"], "failed");
    assert_eq!(failed["response"]["error"]["code"], "server_error");
    assert!(!kinds(&events).contains(&"response.completed".to_owned()));
    let id = failed["response"]["id"].as_str().unwrap();
    let kept = on_kept(&gw, "GET", id).await;
    assert_eq!(kept.status, 404, "a failed response is not kept");
}

#[actix_rt::test]
async fn the_output_cap_makes_an_incomplete_response() {
    let (mock, gw) = gateway_on_mock(&[("k", json!(["m"]))]).await;
    mock.push(
        "k",
        completion(json!({"role": "assistant", "content": "Once"}), "length"),
    );
    let whole = create(
        &gw,
        &json!({"model": "m", "input": "story", "max_output_tokens": 1}),
    )
    .await
    .json();
    assert_eq!(
        (&whole["status"], &whole["incomplete_details"]),
        (
            &json!("incomplete"),
            &json!({"reason": "max_output_tokens"})
        )
    );
    mock.push("k", sse(&[json!({"content": "Once"})], "length"));
    let res = create(
        &gw,
        &json!({"model": "m", "input": "story", "stream": true}),
    )
    .await;
    let last = read_events(&res).last().unwrap().clone();
    assert_eq!(last["type"], "response.incomplete");
    assert_eq!(
        last["response"]["incomplete_details"]["reason"],
        "max_output_tokens"
    );
}

#[actix_rt::test]
async fn kept_responses_are_read_deleted_and_not_kept_with_store_false() {
    let (_mock, gw) = gateway_on_mock(&[("k", json!(["m"]))]).await;
    let made = create(&gw, &json!({"model": "m", "input": "hi"}))
        .await
        .json();
    let id = made["id"].as_str().unwrap();
    let read = on_kept(&gw, "GET", id).await;
    assert_eq!((read.status, read.json()), (200, made.clone()));
    let deleted = on_kept(&gw, "DELETE", id).await;
    assert_eq!(
        (deleted.status, deleted.json()),
        (
            200,
            json!({"id": made["id"], "object": "response", "deleted": true})
        )
    );
    assert_eq!(on_kept(&gw, "GET", id).await.status, 404);
    assert_eq!(on_kept(&gw, "DELETE", id).await.status, 404);
    let continued = create(
        &gw,
        &json!({"model": "m", "input": "x", "previous_response_id": made["id"]}),
    )
    .await;
    assert_eq!(continued.status, 404);

    let unkept = create(&gw, &json!({"model": "m", "input": "hi", "store": false}))
        .await
        .json();
    assert_eq!(unkept["store"], false);
    let id = unkept["id"].as_str().unwrap();
    assert_eq!(on_kept(&gw, "GET", id).await.status, 404);
    let continued = create(
        &gw,
        &json!({"model": "m", "input": "x", "previous_response_id": unkept["id"]}),
    )
    .await;
    assert_eq!(
        continued.json()["error"]["code"],
        "previous_response_not_found"
    );
}

#[actix_rt::test]
async fn kept_responses_survive_a_restart_and_conversations_go_on() {
    let (mock, mut gw) = gateway_on_mock(&[("k", json!(["m"]))]).await;
    let first = create(&gw, &json!({"model": "m", "input": "one"}))
        .await
        .json();
    gw.restart_with(&[]).unwrap();
    let read = on_kept(&gw, "GET", first["id"].as_str().unwrap()).await;
    assert_eq!((read.status, read.json()), (200, first.clone()));
    let second = create(
        &gw,
        &json!({"model": "m", "input": "two", "previous_response_id": first["id"]}),
    )
    .await;
    assert_eq!(second.status, 200, "{}", second.text());
    assert_eq!(
        upstream_body(&mock, "k", 1)["messages"],
        json!([{"role": "user", "content": "one"}, {"role": "assistant", "content": "Hello from k"},
            {"role": "user", "content": "two"}])
    );
}

#[actix_rt::test]
async fn codex_style_requests_with_items_it_replays_are_served() {
    let (mock, gw) = gateway_on_mock(&[("k", json!(["m"]))]).await;
    let body = json!({"model": "m", "instructions": "You are Codex.", "store": false, "stream": true,
        "parallel_tool_calls": false, "tool_choice": "auto", "prompt_cache_key": "conv-1",
        "reasoning": {"effort": "medium", "summary": "auto"}, "include": ["reasoning.encrypted_content"],
        "text": {"verbosity": "medium"}, "client_metadata": {"x-codex": "1"},
        "tools": [{"type": "function", "name": "shell", "description": "run", "strict": false,
            "parameters": {"type": "object", "properties": {"command": {"type": "array"}}}}],
        "input": [
            {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "<permissions/>"}]},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "list files"}]},
            {"type": "reasoning", "summary": [], "encrypted_content": "gAAA"},
            {"type": "function_call", "call_id": "c1", "name": "shell", "arguments": "{\"command\":[\"ls\"]}"},
            {"type": "function_call_output", "call_id": "c1", "output": "a.txt"}]});
    let res = create(&gw, &body).await;
    assert_eq!(
        read_events(&res).last().unwrap()["type"],
        "response.completed"
    );
    let sent = upstream_body(&mock, "k", 0);
    assert_eq!(
        sent["messages"],
        json!([{"role": "system", "content": "You are Codex."}, {"role": "system", "content": "<permissions/>"},
            {"role": "user", "content": "list files"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function",
                "function": {"name": "shell", "arguments": "{\"command\":[\"ls\"]}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "a.txt"}])
    );
    assert_eq!(sent["parallel_tool_calls"], false);
}

/// The events of a streamed answer of `model` to "hi".
async fn stream_of(gw: &Gateway, model: &str) -> Vec<Value> {
    read_events(&create(gw, &json!({"model": model, "input": "hi", "stream": true})).await)
}

/// Asks `model` for the weather in `city` with the weather tool offered; checks that the answer is one call of
/// it for that city and answers the response.
async fn weather_call(gw: &Gateway, model: &str, city: &str) -> Value {
    let res = create(
        gw,
        &json!({"model": model, "input": format!("Weather in {city}?"), "tools": [weather_tool()]}),
    )
    .await;
    assert_eq!(res.status, 200, "{}", res.text());
    let response = res.json();
    let call = &response["output"][0];
    assert_eq!(
        (&call["type"], &call["name"], &call["arguments"]),
        (
            &json!("function_call"),
            &json!(WEATHER),
            &json!(json!({"city": city}).to_string())
        )
    );
    response
}

/// Gemini behind the Responses door: a whole answer with a call, and a stream.
#[actix_rt::test]
async fn gemini_serves_responses_whole_and_streamed() {
    let mock = Mock::start();
    let gw = Gateway::start(&[(
        "FREELLMAPI_BASE_URL_GOOGLE",
        &format!("{}beta", mock.base_url()),
    )]);
    add_platform_key(&gw, "google", "AIza-resp-1").await;
    mock.push(
        "AIza-resp-1",
        Reply::body(
            200,
            json!({"candidates": [{"content": {"role": "model", "parts": [
        {"functionCall": {"name": WEATHER, "args": {"city": "Rome"}}}]}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 8, "candidatesTokenCount": 3, "totalTokenCount": 11}})
            .to_string(),
        ),
    );
    let response = weather_call(&gw, "gemini-2.5-flash", "Rome").await;
    assert_eq!(response["usage"]["total_tokens"], 11);
    let sent = &mock.requests()[0].body;
    assert_eq!(sent["tools"][0]["functionDeclarations"][0]["name"], WEATHER);

    let stream = [
        json!({"candidates": [{"content": {"parts": [{"text": "Ciao"}]}}]}),
        json!({"candidates": [{"content": {"parts": [{"text": " Roma"}]}, "finishReason": "STOP"}],
               "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2}}),
    ];
    let raw: String = stream
        .iter()
        .map(|e| format!("data: {e}\r\n\r\n"))
        .collect();
    mock.push("AIza-resp-1", Reply::RawSse(raw));
    let events = stream_of(&gw, "gemini-2.5-flash").await;
    assert_eq!(streamed_text(&events), "Ciao Roma");
    let completed = &events.last().unwrap()["response"];
    assert_eq!(
        (&completed["status"], &completed["usage"]["total_tokens"]),
        (&json!("completed"), &json!(5))
    );
}

/// Cohere behind the Responses door: a whole answer with a call, and a stream of named events.
#[actix_rt::test]
async fn cohere_serves_responses_whole_and_streamed() {
    let mock = Mock::start();
    let base = mock.base_url().trim_end_matches("/v1").to_owned();
    let gw = Gateway::start(&[("FREELLMAPI_BASE_URL_COHERE", &base)]);
    add_platform_key(&gw, "cohere", "co-resp-1").await;
    mock.push(
        "co-resp-1",
        Reply::body(
            200,
            json!({"id": "c-1", "finish_reason": "TOOL_CALL",
        "message": {"role": "assistant", "tool_calls": [{"id": "call_9", "type": "function",
            "function": {"name": WEATHER, "arguments": "{\"city\":\"Lima\"}"}}]},
        "usage": {"tokens": {"input_tokens": 12, "output_tokens": 4}}})
            .to_string(),
        ),
    );
    let response = weather_call(&gw, "command-a-03-2025", "Lima").await;
    assert_eq!(response["output"][0]["call_id"], "call_9");
    assert_eq!(mock.requests()[0].path, "/v2/chat");

    let named = [
        (
            "message-start",
            json!({"type": "message-start", "id": "s1", "delta": {"message": {"role": "assistant"}}}),
        ),
        (
            "content-delta",
            json!({"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": "Hola"}}}}),
        ),
        (
            "message-end",
            json!({"type": "message-end", "delta": {"finish_reason": "COMPLETE",
            "usage": {"tokens": {"input_tokens": 3, "output_tokens": 1}}}}),
        ),
    ];
    let raw: String = named
        .iter()
        .map(|(name, data)| format!("event: {name}\ndata: {data}\n\n"))
        .collect();
    mock.push("co-resp-1", Reply::RawSse(raw));
    let seen = stream_of(&gw, "command-a-03-2025").await;
    assert_eq!(streamed_text(&seen), "Hola");
    assert_eq!(seen.last().unwrap()["response"]["usage"]["total_tokens"], 4);
}
