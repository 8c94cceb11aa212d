//! The official anthropic Python SDK (pinned in `.ci/run`) against `/v1/messages` of the real binary: a plain
//! message, a stream read with `messages.stream(...)` and `get_final_message()`, a tool use round trip,
//! `count_tokens`, errors raised as the SDK's own exception classes, and a stream that breaks after its first
//! byte, as a client of Anthropic's API really sees them.

use serde_json::{json, Value};

use crate::messages::streamed_call;
use crate::support::gateway::{Gateway, TOKEN};
use crate::support::mock::{Mock, Reply, StreamPlan};
use crate::support::python::SdkScript;
use crate::support::setup::gateway_on_mock;

fn run(sdk: &mut SdkScript, gw: &Gateway, flow: &str, api_key: &str) -> Value {
    let seen = sdk.ask(&json!({"flow": flow, "base_url": gw.url(""), "api_key": api_key}));
    assert!(seen.get("exception").is_none(), "{flow}: {seen}");
    seen
}

#[actix_rt::test]
async fn the_official_anthropic_sdk_talks_to_the_door() {
    let (mock, gw) = gateway_on_mock(&[("k", json!(["m1"]))]).await;
    let mut sdk = SdkScript::start("anthropic_flows.py");

    let plain = run(&mut sdk, &gw, "plain", TOKEN);
    assert!(plain["id"].as_str().unwrap().starts_with("msg_"), "{plain}");
    assert_eq!(
        (&plain["type"], &plain["role"], &plain["model"]),
        (&json!("message"), &json!("assistant"), &json!("m1"))
    );
    assert_eq!(
        plain["content"],
        json!([{"type": "text", "text": "Hello from k"}])
    );
    assert_eq!(
        (&plain["stop_reason"], &plain["usage"]),
        (&json!("end_turn"), &json!([11, 7]))
    );
    assert_eq!(
        mock.requests()[0].body["messages"][0]["content"],
        "Be brief."
    );

    mock.push("k", Reply::Stream(StreamPlan::of(&["Hel", "lo", " there"])));
    let streamed = run(&mut sdk, &gw, "stream", TOKEN);
    assert_eq!(
        streamed["deltas"],
        json!(["Hel", "lo", " there"]),
        "{streamed}"
    );
    assert_eq!(
        streamed["final"]["content"],
        json!([{"type": "text", "text": "Hello there"}])
    );
    assert_eq!(streamed["final"]["stop_reason"], "end_turn");
    assert_eq!(streamed["final"]["usage"], json!([11, 3]));

    mock.push("k", streamed_call());
    let tools = run(&mut sdk, &gw, "tools", TOKEN);
    assert_eq!(
        tools["first"]["content"],
        json!([{"type": "text", "text": "Let me check."},
            {"type": "tool_use", "id": "call_7", "name": "get_weather", "input": {"city": "Paris"}}]),
        "{tools}"
    );
    assert_eq!(tools["first"]["stop_reason"], "tool_use");
    assert_eq!(
        tools["second"]["content"],
        json!([{"type": "text", "text": "Hello from k"}])
    );
    let replayed = mock.requests().last().unwrap().body["messages"].clone();
    assert_eq!(
        replayed[1]["tool_calls"][0]["function"],
        json!({"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"})
    );
    assert_eq!(
        replayed[2],
        json!({"role": "tool", "tool_call_id": "call_7", "content": "21 degrees, sunny"})
    );

    let asked = mock.requests().len();
    let counted = run(&mut sdk, &gw, "count", TOKEN);
    assert!(counted["input_tokens"].as_u64().unwrap() > 0, "{counted}");
    assert_eq!(mock.requests().len(), asked, "counting calls no upstream");

    let wrong_key = run(&mut sdk, &gw, "error", "freellmapi-wrong");
    assert_eq!(
        (
            &wrong_key["raised"],
            &wrong_key["status"],
            &wrong_key["error_type"]
        ),
        (
            &json!("AuthenticationError"),
            &json!(401),
            &json!("authentication_error")
        )
    );

    mock.push("k", Reply::rate_limited(20));
    let limited = run(&mut sdk, &gw, "error", TOKEN);
    assert_eq!(
        (
            &limited["raised"],
            &limited["status"],
            &limited["error_type"]
        ),
        (
            &json!("RateLimitError"),
            &json!(429),
            &json!("rate_limit_error")
        ),
        "{limited}"
    );
    assert!(limited["retry_after"].is_string(), "{limited}");
}

#[actix_rt::test]
async fn a_broken_stream_reaches_the_sdk_as_an_error_after_the_text() {
    let mock = Mock::start();
    let gw = Gateway::start(&[("STREAM_RESUME", "off")]);
    crate::support::client::add_custom_key(&gw, "k", &mock.base_url(), json!(["m1"])).await;
    let mut sdk = SdkScript::start("anthropic_flows.py");
    let cut = StreamPlan::of(&["Partial ", "answer ", "never sent"]).cut_after(2);
    mock.push("k", Reply::Stream(cut));
    let broken = run(&mut sdk, &gw, "broken_stream", TOKEN);
    assert_eq!(
        (&broken["text"], &broken["error_type"]),
        (&json!("Partial answer "), &json!("overloaded_error")),
        "{broken}"
    );
    assert_eq!(broken["raised"], "APIStatusError", "{broken}");
}
