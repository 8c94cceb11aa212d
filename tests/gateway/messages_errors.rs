//! Errors on the Anthropic front door are Anthropic-shaped, `{"type":"error","error":{"type","message"}}`, with
//! chat's statuses and headers: the guard's 401s and 429s (with `x-api-key` or Bearer), body limits, bad
//! requests, unknown models, rate limits, outages and failed upstreams. Every other route keeps OpenAI's shape.

use serde_json::{json, Value};

use crate::errors::stall_body;
use crate::messages::{message, post, ANTHROPIC_HEADERS};
use crate::support::client::{chat, send_with, Reply as Answer};
use crate::support::gateway::{Gateway, TOKEN};
use crate::support::mock::Reply;
use crate::support::setup::gateway_on_mock;

/// Asserts `res` is an Anthropic error of `status` and `kind`; answers its message.
fn assert_anthropic(res: &Answer, status: u16, kind: &str) -> String {
    assert_eq!(res.status, status, "{}", res.text());
    let body = res.json();
    assert_eq!(body["type"], "error", "{body}");
    assert_eq!(body["error"]["type"], kind, "{body}");
    assert_eq!(
        body["error"].as_object().map(|e| e.len()),
        Some(2),
        "only type and message: {body}"
    );
    body["error"]["message"].as_str().unwrap().to_owned()
}

fn hello(model: &str) -> Value {
    json!({"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": "Hello"}]})
}

#[actix_rt::test]
async fn a_missing_or_wrong_key_is_an_anthropic_401_and_repeated_failures_a_429() {
    let gw = Gateway::start(&[("AUTH_FAILURES_PER_MINUTE", "9")]);
    for path in [
        "/v1/messages",
        "/v1/messages/count_tokens",
        "/v1/%6Dessages?beta=true",
    ] {
        for headers in [
            vec![],
            vec![("x-api-key", "freellmapi-wrong")],
            vec![("authorization", "Bearer freellmapi-wrong")],
        ] {
            let res = send_with("POST", &gw.url(path), None, &headers, Some(&hello("auto"))).await;
            let said = assert_anthropic(&res, 401, "authentication_error");
            assert!(said.contains("x-api-key"), "{said}");
        }
    }
    let wrong = [("x-api-key", "freellmapi-wrong")];
    let tenth = send_with(
        "POST",
        &gw.url("/v1/messages"),
        None,
        &wrong,
        Some(&hello("auto")),
    )
    .await;
    assert_anthropic(&tenth, 429, "rate_limit_error");
    let blocked = message(&gw, &hello("auto")).await;
    assert_anthropic(&blocked, 429, "rate_limit_error");
    assert!(blocked.header("retry-after").is_some());
}

#[actix_rt::test]
async fn x_api_key_opens_the_api_but_not_the_admin_api() {
    let (_mock, gw) = gateway_on_mock(&[("k", json!(["m1"]))]).await;
    let headers = [("x-api-key", TOKEN)];
    let body = json!({"model": "m1", "messages": [{"role": "user", "content": "hi"}]});
    let chat_res = send_with(
        "POST",
        &gw.url("/v1/chat/completions"),
        None,
        &headers,
        Some(&body),
    )
    .await;
    assert_eq!(chat_res.status, 200, "{}", chat_res.text());
    let admin = send_with("GET", &gw.url("/api/keys"), None, &headers, None).await;
    assert_eq!(admin.status, 401);
    assert_eq!(admin.json()["error"]["code"], "invalid_api_key");
}

#[actix_rt::test]
async fn bad_requests_are_anthropic_400s() {
    let gw = Gateway::start(&[]);
    let cases = [
        (json!("not an object"), "Invalid request body"),
        (json!({"model": "auto"}), "messages"),
        (json!({"messages": []}), "at least one message"),
        (
            json!({"messages": [{"role": "user", "content": 7}]}),
            "messages[0].content",
        ),
        (
            json!({"messages": [{"role": "user", "content": "x"}],
                "tools": [{"type": "web_search_20250305", "name": "web_search"}]}),
            "web_search (web_search_20250305)",
        ),
    ];
    for (body, expected) in cases {
        let said = assert_anthropic(&message(&gw, &body).await, 400, "invalid_request_error");
        assert!(said.contains(expected), "{body}: {said}");
    }
    let res = send_with(
        "POST",
        &gw.url("/v1/messages"),
        None,
        &ANTHROPIC_HEADERS,
        None,
    )
    .await;
    assert!(assert_anthropic(&res, 400, "invalid_request_error").contains("not valid JSON"));
    let counted = post(&gw, "/v1/messages/count_tokens", &json!({"model": "x"})).await;
    assert_anthropic(&counted, 400, "invalid_request_error");
    let wrong_method = send_with(
        "GET",
        &gw.url("/v1/messages"),
        None,
        &ANTHROPIC_HEADERS,
        None,
    )
    .await;
    assert_anthropic(&wrong_method, 404, "not_found_error");
    let chat_res = chat(&gw, &json!({"messages": []})).await;
    assert_eq!(chat_res.status, 400);
    assert_eq!(
        chat_res.json()["error"]["code"],
        "invalid_request",
        "chat keeps OpenAI's shape"
    );
}

#[actix_rt::test]
async fn routing_failures_keep_chats_statuses_in_anthropics_shape() {
    let empty = Gateway::start(&[]);
    assert!(assert_anthropic(
        &message(&empty, &hello("auto")).await,
        503,
        "overloaded_error"
    )
    .starts_with("No healthy keys available"));

    let (mock, gw) = gateway_on_mock(&[("k", json!(["m1"]))]).await;
    assert_anthropic(
        &message(&gw, &hello("no-such-model")).await,
        404,
        "not_found_error",
    );
    mock.push("k", Reply::rate_limited(30));
    let limited = message(&gw, &hello("m1")).await;
    assert_anthropic(&limited, 429, "rate_limit_error");
    let retry: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=30).contains(&retry), "{retry}");

    let (mock, gw) = gateway_on_mock(&[("k", json!(["m1"]))]).await;
    let boom = Reply::body(500, r#"{"error":{"message":"boom"}}"#);
    mock.outage("k", std::time::Duration::from_secs(30), boom);
    let failed = message(&gw, &hello("m1")).await;
    let said = assert_anthropic(&failed, 502, "overloaded_error");
    assert!(said.contains("custom/m1: 500"), "{said}");
}

#[actix_rt::test]
async fn body_limits_are_anthropic_413s_and_408s() {
    let gw = Gateway::start(&[("MAX_BODY_BYTES", "4096"), ("BODY_READ_TIMEOUT_SECS", "1")]);
    let mut big = hello("auto");
    big["messages"][0]["content"] = json!("a".repeat(8192));
    assert_anthropic(&message(&gw, &big).await, 413, "request_too_large");
    let (answer, _) = stall_body(&gw, "POST", "/v1/messages", 100, 10);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.contains(r#"{"type":"error","error":{"type":"timeout_error""#),
        "{answer}"
    );
}
