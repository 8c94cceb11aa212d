//! The admin API: key checks, enabling and disabling, removal, and analytics over the request log.

use std::time::Duration;

use serde_json::json;

use crate::support::client::{add_custom_key, admin, chat, chat_body, eventually};
use crate::support::gateway::Gateway;
use crate::support::mock::{Mock, Reply};
use crate::support::setup::gateway_on_mock;

#[actix_rt::test]
async fn check_probes_the_key_and_records_its_status() {
    let mock = Mock::start();
    let gw = Gateway::start(&[]);
    let id = add_custom_key(&gw, "k1", &mock.base_url(), json!(["a"])).await;
    let res = admin(&gw, "POST", &format!("/api/keys/{id}/check"), None).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json()["status"], "healthy");
    assert!(res.json()["last_checked_at"].is_string());
    assert_eq!(mock.requests().last().unwrap().path, "/v1/models");
    mock.push(
        "k1",
        Reply::error(401, "invalid_api_key", "Invalid API Key"),
    );
    let res = admin(&gw, "POST", &format!("/api/keys/{id}/check"), None).await;
    assert_eq!(res.json()["status"], "invalid");
    assert_eq!(
        chat(&gw, &chat_body("a")).await.status,
        503,
        "an invalid key is not used"
    );
    let res = admin(&gw, "POST", &format!("/api/keys/{id}/check"), None).await;
    assert_eq!(
        res.json()["status"],
        "healthy",
        "a key that works again is healthy again"
    );
    assert_eq!(chat(&gw, &chat_body("a")).await.status, 200);
    assert_eq!(
        admin(&gw, "POST", "/api/keys/999/check", None).await.status,
        404
    );
}

#[actix_rt::test]
async fn disabled_and_removed_keys_are_not_used() {
    let mock = Mock::start();
    let gw = Gateway::start(&[]);
    let id = add_custom_key(&gw, "k1", &mock.base_url(), json!(["a"])).await;
    let res = admin(
        &gw,
        "PATCH",
        &format!("/api/keys/{id}"),
        Some(&json!({"enabled": false, "label": "spare"})),
    )
    .await;
    assert_eq!(res.status, 200);
    assert_eq!(
        (
            res.json()["enabled"].as_bool(),
            res.json()["label"].as_str()
        ),
        (Some(false), Some("spare"))
    );
    assert_eq!(chat(&gw, &chat_body("a")).await.status, 503);
    admin(
        &gw,
        "PATCH",
        &format!("/api/keys/{id}"),
        Some(&json!({"enabled": true})),
    )
    .await;
    assert_eq!(chat(&gw, &chat_body("a")).await.status, 200);
    assert_eq!(
        admin(&gw, "DELETE", &format!("/api/keys/{id}"), None)
            .await
            .status,
        204
    );
    assert_eq!(admin(&gw, "GET", "/api/keys", None).await.json(), json!([]));
    assert_eq!(
        chat(&gw, &chat_body("a")).await.status,
        404,
        "nobody offers the model any more"
    );
}

#[actix_rt::test]
async fn analytics_summarise_the_request_log() {
    let (mock, gw) = gateway_on_mock(&[("k1", json!(["a"]))]).await;
    for _ in 0..3 {
        assert_eq!(chat(&gw, &chat_body("a")).await.status, 200);
    }
    for _ in 0..2 {
        mock.push("k1", Reply::error(500, "boom", "boom"));
    }
    assert_eq!(chat(&gw, &chat_body("a")).await.status, 502);
    eventually("four logged requests", Duration::from_secs(5), async || {
        admin(&gw, "GET", "/api/analytics?range=24h", None)
            .await
            .json()["totals"]["requests"]
            == 4
    })
    .await;
    let a = admin(&gw, "GET", "/api/analytics?range=7d", None)
        .await
        .json();
    assert_eq!(a["totals"]["successes"], 3);
    assert_eq!(a["totals"]["success_rate"], 0.75);
    assert_eq!(a["totals"]["prompt_tokens"], 33);
    assert!(a["totals"]["latency_p95_ms"].is_number());
    assert_eq!(
        a["series"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["requests"].as_i64().unwrap())
            .sum::<i64>(),
        4
    );
    let by = &a["by_provider"][0];
    assert_eq!(
        (
            by["platform"].as_str(),
            by["model"].as_str(),
            by["requests"].as_i64()
        ),
        (Some("custom"), Some("a"), Some(3))
    );
}
