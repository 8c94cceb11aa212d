//! Bad input gets the OpenAI-shaped error of interface.md, never a panic or actix's plain text.

use serde_json::json;

use crate::support::client::{add_custom_key, admin, chat, send_raw, send_raw_as};
use crate::support::gateway::Gateway;
use crate::support::mock::Mock;

fn assert_invalid(res: &crate::support::client::Reply, status: u16) {
    assert_eq!(res.status, status, "{}", res.text());
    let error = &res.json()["error"];
    assert_eq!(error["type"], "invalid_request_error", "{}", res.text());
    assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(error["code"].is_string());
}

#[actix_rt::test]
async fn malformed_and_invalid_chat_requests_get_400s() {
    let gw = Gateway::start(&[]);
    let url = gw.url("/v1/chat/completions");
    assert_invalid(&send_raw(&url, b"{not json".to_vec()).await, 400);
    assert_invalid(&chat(&gw, &json!({"model": "auto"})).await, 400);
    assert_invalid(
        &chat(&gw, &json!({"model": "auto", "messages": []})).await,
        400,
    );
    assert_invalid(
        &chat(&gw, &json!({"model": "auto", "messages": "hi"})).await,
        400,
    );
    assert_invalid(
        &chat(
            &gw,
            &json!({"model": "auto", "messages": [{"role": "user", "content": "x"}], "n": 2}),
        )
        .await,
        400,
    );
    assert_invalid(
        &chat(
            &gw,
            &json!({"model": 7, "messages": [{"role": "user", "content": "x"}]}),
        )
        .await,
        400,
    );
}

#[actix_rt::test]
async fn hostile_bodies_get_clear_answers_and_the_server_keeps_serving() {
    let mock = Mock::start();
    let gw = Gateway::start(&[]);
    add_custom_key(&gw, "k1", &mock.base_url(), json!(["a"])).await;
    let url = gw.url("/v1/chat/completions");
    let expect_400 = |res: &crate::support::client::Reply, mentions: &str| {
        assert_invalid(res, 400);
        let message = res.json()["error"]["message"].as_str().unwrap().to_owned();
        assert!(message.contains(mentions), "{mentions}: {message}");
    };

    let deep = format!(
        r#"{{"model":"a","extra":{}{}}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    expect_400(&send_raw(&url, deep.into_bytes()).await, "recursion limit");
    let deep_content = format!(
        r#"{{"model":"a","messages":[{{"role":"user","content":{}"x"{}}}]}}"#,
        "[".repeat(200),
        "]".repeat(200)
    );
    expect_400(
        &send_raw(&url, deep_content.into_bytes()).await,
        "recursion limit",
    );
    let mut invalid_utf8 = br#"{"model":"a","messages":[{"role":"user","content":""#.to_vec();
    invalid_utf8.extend_from_slice(&[0xff, 0xfe, 0xc3]);
    invalid_utf8.extend_from_slice(br#""}]}"#);
    expect_400(&send_raw(&url, invalid_utf8).await, "unicode");
    let duplicated = r#"{"model":"a","model":"b","messages":[{"role":"user","content":"x"}]}"#;
    expect_400(
        &send_raw(&url, duplicated.into()).await,
        "duplicate field `model`",
    );
    for (max_tokens, mentions) in [
        ("-1", "max_tokens"),
        ("99999999999999999999", "max_tokens"),
        (r#""many""#, "max_tokens"),
        ("1e400", "number out of range"),
    ] {
        let body = format!(
            r#"{{"model":"a","max_tokens":{max_tokens},"messages":[{{"role":"user","content":"x"}}]}}"#
        );
        expect_400(&send_raw(&url, body.into_bytes()).await, mentions);
    }
    assert_eq!(
        mock.requests().len(),
        0,
        "nothing rejected reached the upstream"
    );

    let huge = "many words ".repeat(400_000);
    let body = json!({"model": "a", "messages": [{"role": "user", "content": huge}],
                      "unknown_knob": {"nested": [1, 2]}, "max_tokens": 4_000_000_000u32});
    let res = send_raw_as(&url, "text/plain", body.to_string().into_bytes()).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let seen = &mock.requests()[0].body;
    assert_eq!(
        seen["messages"][0]["content"].as_str().map(str::len),
        Some(huge.len())
    );
    assert_eq!(
        seen["unknown_knob"],
        json!({"nested": [1, 2]}),
        "unknown fields pass through"
    );
    assert_eq!(
        chat(
            &gw,
            &json!({"model": "a", "messages": [{"role": "user", "content": "ok?"}]})
        )
        .await
        .status,
        200
    );
}

#[actix_rt::test]
async fn oversized_body_gets_413() {
    let gw = Gateway::start(&[]);
    let big = format!(
        r#"{{"model":"auto","messages":[{{"role":"user","content":"{}"}}]}}"#,
        "a".repeat(10 * 1024 * 1024)
    );
    let res = send_raw(&gw.url("/v1/chat/completions"), big.into_bytes()).await;
    assert_invalid(&res, 413);
    assert_eq!(res.json()["error"]["code"], "request_too_large");
}

#[actix_rt::test]
async fn admin_input_errors_are_openai_shaped() {
    let gw = Gateway::start(&[]);
    assert_invalid(
        &admin(
            &gw,
            "POST",
            "/api/keys",
            Some(&json!({"platform": "nope", "key": "k"})),
        )
        .await,
        400,
    );
    assert_invalid(
        &admin(
            &gw,
            "POST",
            "/api/keys",
            Some(&json!({"platform": "groq", "key": ""})),
        )
        .await,
        400,
    );
    let custom =
        json!({"platform": "custom", "key": "k", "base_url": "not a url", "models": ["m"]});
    assert_invalid(&admin(&gw, "POST", "/api/keys", Some(&custom)).await, 400);
    let ok = json!({"platform": "groq", "key": "gsk_duplicate_1234"});
    assert_eq!(admin(&gw, "POST", "/api/keys", Some(&ok)).await.status, 201);
    assert_eq!(admin(&gw, "POST", "/api/keys", Some(&ok)).await.status, 409);
    assert_invalid(&admin(&gw, "DELETE", "/api/keys/999", None).await, 404);
    assert_invalid(
        &admin(&gw, "PATCH", "/api/keys/abc", Some(&json!({}))).await,
        400,
    );
    assert_invalid(
        &admin(&gw, "GET", "/api/analytics?range=1y", None).await,
        400,
    );
}
