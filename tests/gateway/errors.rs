//! Bad input gets the OpenAI-shaped error of interface.md, never a panic or actix's plain text.

use serde_json::json;

use crate::support::client::{admin, chat, send_raw};
use crate::support::gateway::Gateway;

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
