//! The official openai Python SDK (pinned in `.ci/run`) on the gateway's Responses API, through
//! `tests/sdk/responses.py`: `responses.create` plain, with tools and with `previous_response_id`; streaming
//! with the SDK's stream helper (typed events and the final response) and with `create(stream=True)`;
//! `retrieve`, `delete` and an error, as a client really sees them.

use serde_json::{json, Value};

use crate::responses::{paris_call, sse, upstream_body, warm_answer, weather_tool, WEATHER};
use crate::support::gateway::{Gateway, TOKEN};
use crate::support::mock::{Reply, StreamPlan};
use crate::support::python::SdkScript;
use crate::support::setup::gateway_on_mock;

/// One SDK step against `gw`; fails on anything the SDK raised that was not an API error.
fn step(sdk: &mut SdkScript, gw: &Gateway, step: &str, args: Value) -> Value {
    let seen =
        sdk.ask(&json!({"base_url": gw.url("/v1"), "api_key": TOKEN, "step": step, "args": args}));
    assert!(seen.get("exception").is_none(), "{step}: {seen}");
    seen
}

#[actix_rt::test]
async fn the_official_sdk_speaks_the_responses_api() {
    let (mock, gw) = gateway_on_mock(&[("k", json!(["m"]))]).await;
    let mut sdk = SdkScript::start("responses.py");

    let plain = step(
        &mut sdk,
        &gw,
        "create",
        json!({"model": "m", "input": "hello", "instructions": "Be brief."}),
    );
    let plain = &plain["response"];
    assert_eq!(
        (&plain["object"], &plain["status"], &plain["output_text"]),
        (
            &json!("response"),
            &json!("completed"),
            &json!("Hello from k")
        )
    );
    assert_eq!(plain["usage"]["total_tokens"], 18, "{plain}");

    mock.push("k", paris_call());
    let tools = json!([weather_tool()]);
    let called = step(
        &mut sdk,
        &gw,
        "create",
        json!({"model": "m", "input": "Weather in Paris?", "tools": tools}),
    );
    let call = &called["response"]["output"][0];
    assert_eq!(
        (
            &call["type"],
            &call["call_id"],
            &call["name"],
            &call["arguments"]
        ),
        (
            &json!("function_call"),
            &json!("call_1"),
            &json!(WEATHER),
            &json!("{\"city\":\"Paris\"}")
        )
    );

    mock.push("k", warm_answer());
    let answered = step(
        &mut sdk,
        &gw,
        "create",
        json!({"model": "m", "previous_response_id": called["response"]["id"], "tools": tools,
            "input": [{"type": "function_call_output", "call_id": "call_1", "output": "21"}]}),
    );
    assert_eq!(answered["response"]["output_text"], "It is 21°C.");
    assert_eq!(
        answered["response"]["previous_response_id"],
        called["response"]["id"]
    );
    assert_eq!(
        upstream_body(&mock, "k", 2)["messages"][2],
        json!({"role": "tool", "tool_call_id": "call_1", "content": "21"})
    );

    mock.push("k", Reply::Stream(StreamPlan::of(&["Hel", "lo"])));
    let streamed = step(
        &mut sdk,
        &gw,
        "stream",
        json!({"model": "m", "input": "hi"}),
    );
    let kinds = streamed["events"].as_array().unwrap();
    assert_eq!(kinds.first(), Some(&json!("response.created")));
    assert_eq!(kinds.last(), Some(&json!("response.completed")));
    assert!(
        kinds.contains(&json!("response.output_text.delta")),
        "{streamed}"
    );
    assert_eq!(streamed["response"]["output_text"], "Hello");

    mock.push(
        "k",
        sse(
            &[
                json!({"tool_calls": [{"index": 0, "id": "call_n", "type": "function",
                "function": {"name": "crm__lookup", "arguments": "{\"id\":1}"}}]}),
            ],
            "tool_calls",
        ),
    );
    let namespaced = json!([{"type": "namespace", "name": "crm", "description": "CRM",
        "tools": [{"type": "function", "name": "lookup", "parameters": {"type": "object"}}]}]);
    let raw = step(
        &mut sdk,
        &gw,
        "create_stream",
        json!({"model": "m", "input": "find 1", "tools": namespaced}),
    );
    let numbers: Vec<u64> = raw["sequence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_u64().unwrap())
        .collect();
    assert_eq!(numbers, (0..numbers.len() as u64).collect::<Vec<_>>());
    let call = &raw["response"]["output"][0];
    assert_eq!(
        (&call["name"], &call["namespace"], &call["arguments"]),
        (&json!("lookup"), &json!("crm"), &json!("{\"id\":1}"))
    );

    mock.push(
        "k",
        sse(
            &[json!({"tool_calls": [{"index": 0, "id": "call_p", "type": "function",
                "function": {"name": "apply_patch", "arguments": "{\"input\":\"*** Begin Patch\"}"}}]})],
            "tool_calls",
        ),
    );
    let custom = json!([{"type": "custom", "name": "apply_patch", "description": "Edit files."}]);
    let patched = step(
        &mut sdk,
        &gw,
        "stream",
        json!({"model": "m", "input": "patch", "tools": custom}),
    );
    let call = &patched["response"]["output"][0];
    assert_eq!(
        (&call["type"], &call["input"]),
        (&json!("custom_tool_call"), &json!("*** Begin Patch"))
    );

    let id = plain["id"].clone();
    let read = step(&mut sdk, &gw, "retrieve", json!({"id": id}));
    assert_eq!(&read["response"], plain);
    assert_eq!(
        step(&mut sdk, &gw, "delete", json!({"id": id})),
        json!({"deleted": true})
    );
    let gone = step(&mut sdk, &gw, "retrieve", json!({"id": id}));
    assert_eq!(
        (&gone["status"], &gone["error_code"]),
        (&json!(404), &json!("response_not_found"))
    );

    let refused = step(
        &mut sdk,
        &gw,
        "create",
        json!({"model": "m", "input": "search", "tools": [{"type": "web_search"}]}),
    );
    assert_eq!(
        (
            &refused["status"],
            &refused["error_type"],
            &refused["error_code"]
        ),
        (
            &json!(400),
            &json!("invalid_request_error"),
            &json!("unsupported_tool")
        )
    );
}
