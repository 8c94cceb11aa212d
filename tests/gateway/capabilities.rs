//! Capability routing through the real server: a request that needs tools, image input, structured output or a
//! large context only goes to models that have them (under `auto` and under a model id), a pinned
//! `platform/model` is always tried, and when nothing fits the client gets a 400 `no_capable_model` naming what
//! was needed.

use serde_json::{json, Value};

use crate::support::client::{chat, Reply};
use crate::support::mock::Reply as Upstream;
use crate::support::setup::gateway_on_mock;

fn tool() -> Value {
    json!([{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}])
}

fn image_message() -> Value {
    json!([{"role": "user", "content": [
        {"type": "text", "text": "What is in this picture?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}])
}

fn routed(res: &Reply) -> String {
    assert_eq!(res.status, 200, "{}", res.text());
    res.header("x-routed-via").unwrap_or_default()
}

#[actix_rt::test]
async fn auto_sends_each_request_only_to_models_that_can_serve_it() {
    let (mock, gw) = gateway_on_mock(&[
        (
            "plain",
            json!([{"id": "plain", "tools": false, "vision": false, "json": false, "context": 2048}]),
        ),
        ("tools", json!([{"id": "tools", "vision": false, "json": false}])),
        ("eyes", json!([{"id": "eyes", "tools": false}])),
    ])
    .await;
    for key in ["plain", "tools", "eyes"] {
        for _ in 0..4 {
            mock.push(key, Upstream::Answer(format!("from {key}")));
        }
    }
    let hello = json!({"model": "auto", "messages": [{"role": "user", "content": "hi"}]});
    assert_eq!(
        routed(&chat(&gw, &hello).await),
        "custom/plain",
        "the chain's first"
    );
    let with_tools = json!({"model": "auto", "messages": [{"role": "user", "content": "hi there"}], "tools": tool()});
    assert_eq!(routed(&chat(&gw, &with_tools).await), "custom/tools");
    let tools_off = json!({"model": "auto", "messages": [{"role": "user", "content": "hi again"}],
        "tools": tool(), "tool_choice": "none"});
    assert_eq!(
        routed(&chat(&gw, &tools_off).await),
        "custom/plain",
        "tool_choice none needs no tools"
    );
    let picture = json!({"model": "auto", "messages": image_message()});
    assert_eq!(routed(&chat(&gw, &picture).await), "custom/eyes");
    let structured = json!({"model": "auto", "messages": [{"role": "user", "content": "as json"}],
        "response_format": {"type": "json_object"}});
    assert_eq!(routed(&chat(&gw, &structured).await), "custom/eyes");
    let long = "word ".repeat(4000);
    let big = json!({"model": "auto", "messages": [{"role": "user", "content": long}]});
    assert_ne!(
        routed(&chat(&gw, &big).await),
        "custom/plain",
        "a prompt over 2,048 tokens skips the small window"
    );
}

#[actix_rt::test]
async fn nothing_capable_is_a_400_naming_the_need_and_a_pinned_model_is_always_tried() {
    let (mock, gw) = gateway_on_mock(&[(
        "plain",
        json!([{"id": "plain", "tools": false, "vision": false}]),
    )])
    .await;
    let both = json!({"model": "auto", "messages": image_message(), "tools": tool()});
    let res = chat(&gw, &both).await;
    assert_eq!(res.status, 400, "{}", res.text());
    let error = res.json()["error"].clone();
    assert_eq!(error["code"], "no_capable_model");
    assert_eq!(error["type"], "invalid_request_error");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("tools") && message.contains("image input"),
        "{message}"
    );
    let by_id = json!({"model": "plain", "messages": image_message()});
    assert_eq!(
        chat(&gw, &by_id).await.status,
        400,
        "a model id is filtered too"
    );
    assert_eq!(mock.requests().len(), 0, "nothing was sent");
    mock.push("plain", Upstream::Answer("I try my best".into()));
    let pinned = json!({"model": "custom/plain", "messages": image_message(), "tools": tool()});
    assert_eq!(routed(&chat(&gw, &pinned).await), "custom/plain");
    assert_eq!(
        mock.requests().len(),
        1,
        "the pinned model got the request as sent"
    );
    assert_eq!(mock.requests()[0].body["tools"], tool());
}

#[actix_rt::test]
async fn an_output_cap_over_the_models_maximum_is_lowered_for_that_model() {
    let mock = crate::support::mock::Mock::start();
    let gw =
        crate::support::gateway::Gateway::start(&[("FREELLMAPI_BASE_URL_GROQ", &mock.base_url())]);
    crate::support::client::add_platform_key(&gw, "groq", "gsk-cap-0001").await;
    mock.push("gsk-cap-0001", Upstream::Answer("short".into()));
    let asked = json!({"model": "groq/llama-3.3-70b-versatile", "max_tokens": 128000,
        "messages": [{"role": "user", "content": "hi"}]});
    assert_eq!(
        routed(&chat(&gw, &asked).await),
        "groq/llama-3.3-70b-versatile"
    );
    assert_eq!(
        mock.requests()[0].body["max_tokens"],
        32768,
        "the catalog's maximum output for the model, not a 400 from the provider"
    );
}
