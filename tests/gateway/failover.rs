//! Failover: 429s, invalid keys and upstream errors stay invisible when another candidate can answer; budgets
//! and cooldowns are honoured; client-caused 400s are neither retried nor punished.

use std::time::Duration;

use serde_json::json;

use crate::support::client::{
    add_custom_key, add_platform_key, admin, chat, chat_body, eventually, new_conversation,
};
use crate::support::gateway::Gateway;
use crate::support::mock::{Mock, Reply};
use crate::support::setup::gateway_on_mock;

/// A gateway with two keys on one mock: k1 serves model a, k2 serves model b; the chain tries a first.
async fn two_candidates(mock: &Mock) -> Gateway {
    let gw = Gateway::start(&[]);
    add_custom_key(&gw, "k1", &mock.base_url(), json!(["a"])).await;
    add_custom_key(&gw, "k2", &mock.base_url(), json!(["b"])).await;
    gw
}

#[actix_rt::test]
async fn rate_limited_key_fails_over_with_headers() {
    let mock = Mock::start();
    let gw = two_candidates(&mock).await;
    mock.push("k1", Reply::rate_limited(30));
    let res = chat(&gw, &chat_body("auto")).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.header("x-routed-via").as_deref(), Some("custom/b"));
    assert_eq!(res.header("x-fallback-attempts").as_deref(), Some("1"));
    assert_eq!(
        res.json()["choices"][0]["message"]["content"],
        "Hello from k2"
    );
}

#[actix_rt::test]
async fn invalid_key_is_marked_and_skipped() {
    let mock = Mock::start();
    let gw = two_candidates(&mock).await;
    mock.push(
        "k1",
        Reply::error(401, "invalid_api_key", "Invalid API Key"),
    );
    let first = chat(&gw, &chat_body("auto")).await;
    assert_eq!(first.status, 200);
    assert_eq!(first.header("x-fallback-attempts").as_deref(), Some("1"));
    eventually("key 1 marked invalid", Duration::from_secs(5), async || {
        admin(&gw, "GET", "/api/keys", None).await.json()[0]["status"] == "invalid"
    })
    .await;
    let keys = admin(&gw, "GET", "/api/keys", None).await.json();
    assert!(keys[0]["last_error"]
        .as_str()
        .unwrap()
        .contains("Invalid API Key"));
    for _ in 0..3 {
        let res = chat(&gw, &new_conversation("auto")).await;
        assert_eq!(res.status, 200);
        assert_eq!(res.header("x-routed-via").as_deref(), Some("custom/b"));
        assert_eq!(res.header("x-fallback-attempts"), None);
    }
    assert_eq!(mock.count_for("k1"), 1);
}

#[actix_rt::test]
async fn context_length_400_is_not_retried_and_benches_nothing() {
    let (mock, gw) = gateway_on_mock(&[("k1", json!(["a"])), ("k2", json!(["a"]))]).await;
    let reason =
        "This model's maximum context length is 8192 tokens. However, you requested 9000 tokens.";
    mock.push("k1", Reply::error(400, "context_length_exceeded", reason));
    mock.push("k2", Reply::error(400, "context_length_exceeded", reason));
    let res = chat(&gw, &chat_body("custom/a")).await;
    assert_eq!(res.status, 400, "{}", res.text());
    assert_eq!(res.json()["error"]["type"], "invalid_request_error");
    assert!(res.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("maximum context length"));
    assert_eq!(
        mock.requests().len(),
        1,
        "the same model is not asked again, not even with another key"
    );
    let used = mock.requests()[0].key.clone();
    mock.clear_scripts();
    let budgets = admin(&gw, "GET", "/api/budgets", None).await.json();
    assert!(
        budgets
            .as_array()
            .unwrap()
            .iter()
            .all(|b| b["cooldown_until"].is_null()),
        "a client-caused 400 cools nothing: {budgets}"
    );
    let keys = admin(&gw, "GET", "/api/keys", None).await.json();
    assert!(
        keys.as_array()
            .unwrap()
            .iter()
            .all(|k| k["status"] != "invalid" && k["status"] != "rate_limited"),
        "{keys}"
    );
    for _ in 0..2 {
        let next = chat(&gw, &new_conversation("custom/a")).await;
        assert_eq!(next.status, 200, "{}", next.text());
        assert_eq!(next.header("x-fallback-attempts"), None);
    }
    assert!(
        mock.count_for(&used) >= 2,
        "the key that relayed the 400 still serves"
    );
}

#[actix_rt::test]
async fn all_candidates_rate_limited_gives_429_with_retry_after() {
    let (mock, gw) = gateway_on_mock(&[("k1", json!(["a"]))]).await;
    mock.push("k1", Reply::rate_limited(30));
    let res = chat(&gw, &chat_body("auto")).await;
    assert_eq!(res.status, 429, "{}", res.text());
    assert_eq!(res.json()["error"]["type"], "rate_limit_error");
    assert_eq!(res.json()["error"]["code"], "rate_limit_exceeded");
    let retry: u64 = res.header("retry-after").unwrap().parse().unwrap();
    assert!((25..=30).contains(&retry), "retry-after {retry}");
    let again = chat(&gw, &new_conversation("auto")).await;
    assert_eq!(again.status, 429);
    assert_eq!(mock.count_for("k1"), 1, "a cooling key is not asked again");
}

#[actix_rt::test]
async fn server_errors_fail_over_and_exhaustion_is_a_502_listing_attempts() {
    let mock = Mock::start();
    let gw = two_candidates(&mock).await;
    mock.push("k1", Reply::error(500, "server_error", "boom"));
    let res = chat(&gw, &chat_body("auto")).await;
    assert_eq!(
        (res.status, res.header("x-fallback-attempts").as_deref()),
        (200, Some("1"))
    );
    for _ in 0..2 {
        mock.push("k1", Reply::error(503, "overloaded", "busy"));
        mock.push("k2", Reply::error(502, "bad_gateway", "down"));
    }
    let res = chat(&gw, &new_conversation("auto")).await;
    assert_eq!(res.status, 502, "{}", res.text());
    assert_eq!(res.json()["error"]["type"], "upstream_error");
    let message = res.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains("custom/a: 503") && message.contains("custom/b: 502"),
        "{message}"
    );
}

#[actix_rt::test]
async fn a_slow_answer_within_the_first_byte_timeout_is_not_failed_over() {
    let mock = Mock::start();
    let gw = two_candidates(&mock).await;
    mock.push(
        "k1",
        Reply::Delayed(
            Duration::from_millis(1500),
            Box::new(Reply::Answer("late but fine".into())),
        ),
    );
    let res = chat(&gw, &chat_body("auto")).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.header("x-routed-via").as_deref(), Some("custom/a"));
    assert_eq!(res.header("x-fallback-attempts"), None);
    assert_eq!(mock.count_for("k2"), 0);
}

#[actix_rt::test]
async fn attempts_stop_at_twenty() {
    let mock = Mock::start();
    let gw = Gateway::start(&[]);
    for i in 0..25 {
        let key = format!("k{i}");
        add_custom_key(&gw, &key, &mock.base_url(), json!([format!("m{i}")])).await;
        mock.push(&key, Reply::error(500, "server_error", "boom"));
    }
    let res = chat(&gw, &chat_body("auto")).await;
    assert_eq!(res.status, 502, "{}", res.text());
    let completions = mock
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/chat/completions"))
        .count();
    assert_eq!(completions, 20);
    let message = res.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains("custom/m0: 500") && message.contains("custom/m19: 500"),
        "{message}"
    );
    assert!(!message.contains("custom/m20"), "{message}");
}

#[actix_rt::test]
async fn rpm_budget_is_enforced_without_an_upstream_429() {
    let (mock, gw) = gateway_on_mock(&[("k1", json!([{"id": "a", "rpm": 2}]))]).await;
    assert_eq!(chat(&gw, &chat_body("a")).await.status, 200);
    assert_eq!(chat(&gw, &chat_body("a")).await.status, 200);
    let third = chat(&gw, &chat_body("a")).await;
    assert_eq!(third.status, 429, "{}", third.text());
    assert!(third.header("retry-after").is_some());
    assert_eq!(mock.count_for("k1"), 2);
    let budgets = admin(&gw, "GET", "/api/budgets", None).await.json();
    assert_eq!(budgets[0]["rpm"], json!({"used": 2, "limit": 2}));
}

#[actix_rt::test]
async fn no_keys_is_503_and_unknown_model_is_404() {
    let gw = Gateway::start(&[]);
    let res = chat(&gw, &chat_body("auto")).await;
    assert_eq!(res.status, 503);
    assert_eq!(res.json()["error"]["code"], "no_healthy_keys");
    assert!(res.json()["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("No healthy keys available"));
    let res = chat(&gw, &chat_body("llama-3.3-70b-versatile")).await;
    assert_eq!(
        res.status,
        503,
        "a catalog model without keys: {}",
        res.text()
    );
    let res = chat(&gw, &chat_body("no-such-model")).await;
    assert_eq!(res.status, 404);
    assert_eq!(res.json()["error"]["code"], "model_not_found");
}

#[actix_rt::test]
async fn provider_base_url_override_routes_a_real_platform_to_the_mock() {
    let mock = Mock::start();
    let base = format!("{}/openai/v1", mock.base_url().trim_end_matches("/v1"));
    let gw = Gateway::start(&[("FREELLMAPI_BASE_URL_GROQ", &base)]);
    add_platform_key(&gw, "groq", "gsk_test_key_1").await;
    let res = chat(&gw, &chat_body("groq/llama-3.3-70b-versatile")).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(
        res.header("x-routed-via").as_deref(),
        Some("groq/llama-3.3-70b-versatile")
    );
    assert_eq!(mock.requests()[0].path, "/openai/v1/chat/completions");
    assert_eq!(mock.requests()[0].key, "gsk_test_key_1");
}

#[actix_rt::test]
async fn an_error_inside_an_http_200_fails_over_and_marks_the_key() {
    let mock = Mock::start();
    let base = mock.base_url();
    let gw = Gateway::start(&[("FREELLMAPI_BASE_URL_MINIMAX", &base)]);
    add_platform_key(&gw, "minimax", "mm-key-1").await;
    add_custom_key(&gw, "k2", &base, json!(["b"])).await;
    let body = r#"{"base_resp":{"status_code":1004,"status_msg":"login fail: Please carry the API secret key"}}"#;
    mock.push("mm-key-1", Reply::body(200, body));
    let res = chat(&gw, &chat_body("auto")).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.header("x-routed-via").as_deref(), Some("custom/b"));
    assert_eq!(res.header("x-fallback-attempts").as_deref(), Some("1"));
    eventually(
        "the MiniMax key marked invalid",
        Duration::from_secs(5),
        async || admin(&gw, "GET", "/api/keys", None).await.json()[0]["status"] == "invalid",
    )
    .await;
}
