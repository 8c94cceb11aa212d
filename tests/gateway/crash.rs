//! Crash safety and graceful shutdown: acknowledged changes survive kill -9; SIGTERM lets streams finish.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::json;

use crate::support::client::{add_custom_key, admin, chat, chat_body, open_stream};
use crate::support::gateway::Gateway;
use crate::support::mock::{Mock, Reply};

#[actix_rt::test]
async fn acknowledged_changes_survive_kill_dash_nine() {
    let mock = Mock::start();
    let mut gw = Gateway::start(&[]);
    add_custom_key(&gw, "k1", &mock.base_url(), json!(["a"])).await;
    add_custom_key(&gw, "k2", &mock.base_url(), json!(["b"])).await;
    let mut chain = admin(&gw, "GET", "/api/chain", None)
        .await
        .json()
        .as_array()
        .unwrap()
        .clone();
    chain.reverse();
    assert_eq!(
        admin(&gw, "PUT", "/api/chain", Some(&json!(chain)))
            .await
            .status,
        200
    );
    assert_eq!(chat(&gw, &chat_body("a")).await.status, 200);
    actix_rt::time::sleep(Duration::from_millis(1500)).await;
    gw.crash();
    gw.restart_with(&[]).unwrap();
    let keys = admin(&gw, "GET", "/api/keys", None).await.json();
    assert_eq!(keys.as_array().map(Vec::len), Some(2), "{keys}");
    assert_eq!(
        admin(&gw, "GET", "/api/chain", None).await.json(),
        json!(chain)
    );
    let logged = admin(&gw, "GET", "/api/requests?limit=5", None)
        .await
        .json();
    assert_eq!(
        logged.as_array().map(Vec::len),
        Some(1),
        "a request older than the 1 s flush window survives: {logged}"
    );
    assert_eq!(chat(&gw, &chat_body("b")).await.status, 200);
}

#[actix_rt::test]
async fn sigterm_lets_an_in_flight_stream_finish() {
    let mock = Mock::start();
    let mut gw = Gateway::start(&[]);
    add_custom_key(&gw, "k1", &mock.base_url(), json!(["a"])).await;
    let pieces: Vec<&str> = vec!["tick "; 20];
    mock.push("k1", Reply::stream(&pieces, Duration::from_millis(50)));
    let mut body = chat_body("a");
    body["stream"] = json!(true);
    let mut res = open_stream(&gw, &body).await;
    let mut received = Vec::new();
    received.extend_from_slice(&res.next().await.unwrap().unwrap());
    gw.signal_stop();
    while let Some(chunk) = res.next().await {
        received.extend_from_slice(&chunk.unwrap());
    }
    let text = String::from_utf8_lossy(&received);
    assert_eq!(text.matches("tick").count(), 20, "{text}");
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    assert!(gw.stop().is_none_or(|s| s.success()));
}
