//! Every route but /healthz and the dashboard's files needs the unified key; rotation replaces it at once.

use serde_json::json;

use crate::support::client::{admin, send};
use crate::support::gateway::{Gateway, TOKEN};

const PROTECTED: &[(&str, &str)] = &[
    ("POST", "/v1/chat/completions"),
    ("GET", "/v1/models"),
    ("GET", "/api/keys"),
    ("POST", "/api/keys"),
    ("PATCH", "/api/keys/1"),
    ("DELETE", "/api/keys/1"),
    ("POST", "/api/keys/1/check"),
    ("GET", "/api/chain"),
    ("PUT", "/api/chain"),
    ("GET", "/api/analytics?range=24h"),
    ("GET", "/api/requests?limit=5"),
    ("GET", "/api/budgets"),
    ("POST", "/api/token/rotate"),
    ("GET", "/v1/unknown"),
    ("GET", "/api/unknown"),
];

#[actix_rt::test]
async fn every_route_needs_the_unified_key() {
    let gw = Gateway::start(&[("AUTH_FAILURES_PER_MINUTE", "1000")]);
    for (method, path) in PROTECTED {
        for token in [None, Some("freellmapi-wrong"), Some("")] {
            let res = send(method, &gw.url(path), token, Some(&json!({}))).await;
            assert_eq!(res.status, 401, "{method} {path} with {token:?}");
            assert_eq!(
                res.json()["error"]["type"],
                "authentication_error",
                "{method} {path}"
            );
            assert_eq!(res.json()["error"]["code"], "invalid_api_key");
        }
    }
    let health = send("GET", &gw.url("/healthz"), None, None).await;
    assert_eq!(
        (health.status, health.json()),
        (200, json!({"status": "ok"}))
    );
    let page = send("GET", &gw.url("/"), None, None).await;
    assert_eq!(page.status, 200);
    assert!(page.text().contains("freellmapi"));
}

#[actix_rt::test]
async fn rotation_replaces_the_key_at_once() {
    let gw = Gateway::start(&[]);
    let res = admin(&gw, "POST", "/api/token/rotate", None).await;
    assert_eq!(res.status, 200);
    let new = res.json()["token"].as_str().unwrap().to_owned();
    assert!(new.starts_with("freellmapi-") && new.len() == "freellmapi-".len() + 48);
    assert_eq!(
        send("GET", &gw.url("/api/keys"), Some(TOKEN), None)
            .await
            .status,
        401
    );
    assert_eq!(
        send("GET", &gw.url("/api/keys"), Some(&new), None)
            .await
            .status,
        200
    );
}

#[actix_rt::test]
async fn repeated_wrong_keys_block_the_address_for_a_while() {
    let gw = Gateway::start(&[("AUTH_FAILURES_PER_MINUTE", "3")]);
    for _ in 0..3 {
        assert_eq!(
            send("GET", &gw.url("/api/keys"), Some("freellmapi-guess"), None)
                .await
                .status,
            401
        );
    }
    let blocked = send("GET", &gw.url("/api/keys"), Some("freellmapi-guess"), None).await;
    assert_eq!(blocked.status, 429, "{}", blocked.text());
    assert_eq!(blocked.json()["error"]["type"], "rate_limit_error");
    let wait: u64 = blocked.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    let right = send("GET", &gw.url("/api/keys"), Some(TOKEN), None).await;
    assert_eq!(
        right.status, 429,
        "a blocked address cannot try even the right key"
    );
    assert_eq!(
        send("GET", &gw.url("/healthz"), None, None).await.status,
        200
    );
}
