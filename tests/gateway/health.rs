//! Background and on-add key probes record each key's status; a transport failure never marks a key invalid.

use std::time::Duration;

use serde_json::json;

use crate::support::client::{add_custom_key, admin, eventually};
use crate::support::gateway::Gateway;
use crate::support::mock::{Mock, Reply};

async fn status_of(gw: &Gateway, id: i64) -> String {
    let keys = admin(gw, "GET", "/api/keys", None).await.json();
    let key = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == id)
        .unwrap()
        .clone();
    key["status"].as_str().unwrap().to_owned()
}

#[actix_rt::test]
async fn background_probes_record_healthy_and_invalid_keys() {
    let mock = Mock::start();
    let gw = Gateway::start(&[("HEALTH_CHECK_INTERVAL_SECS", "1")]);
    for _ in 0..20 {
        mock.push(
            "bad",
            Reply::error(401, "invalid_api_key", "Invalid API Key"),
        );
    }
    let good = add_custom_key(&gw, "good", &mock.base_url(), json!(["a"])).await;
    let bad = add_custom_key(&gw, "bad", &mock.base_url(), json!(["b"])).await;
    eventually("both keys probed", Duration::from_secs(8), async || {
        status_of(&gw, good).await == "healthy" && status_of(&gw, bad).await == "invalid"
    })
    .await;
    assert!(
        mock.requests().iter().all(|r| r.path == "/v1/models"),
        "probes cost no completions"
    );
    let keys = admin(&gw, "GET", "/api/keys", None).await.json();
    assert!(keys.to_string().contains("Invalid API Key"));
    for _ in 0..20 {
        mock.push("good", Reply::error(401, "invalid_api_key", "Key revoked"));
    }
    eventually(
        "the next round notices the revoked key",
        Duration::from_secs(8),
        async || status_of(&gw, good).await == "invalid",
    )
    .await;
}

#[actix_rt::test]
async fn a_new_key_is_probed_at_once_and_a_transport_failure_is_not_invalid() {
    let mock = Mock::start();
    let gw = Gateway::start(&[("HEALTH_CHECK_INTERVAL_SECS", "3600")]);
    let id = add_custom_key(&gw, "k1", &mock.base_url(), json!(["a"])).await;
    eventually("the new key probed", Duration::from_secs(5), async || {
        status_of(&gw, id).await == "healthy"
    })
    .await;
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let unreachable = add_custom_key(
        &gw,
        "k2",
        &format!("http://127.0.0.1:{closed}/v1"),
        json!(["b"]),
    )
    .await;
    eventually(
        "the unreachable key probed",
        Duration::from_secs(5),
        async || status_of(&gw, unreachable).await == "error",
    )
    .await;
}
