//! Conversations stay on the model that served their first turn, even after the chain changes.

use serde_json::json;

use crate::support::client::{add_custom_key, admin, chat, chat_body, send};
use crate::support::gateway::{Gateway, TOKEN};
use crate::support::mock::Mock;

#[actix_rt::test]
async fn session_stays_on_its_model_after_the_chain_is_reordered() {
    let mock = Mock::start();
    let gw = Gateway::start(&[]);
    add_custom_key(&gw, "k1", &mock.base_url(), json!(["a"])).await;
    add_custom_key(&gw, "k2", &mock.base_url(), json!(["b"])).await;
    let turn = |session: &'static str| {
        let gw = &gw;
        async move {
            let mut req = awc::Client::new()
                .post(gw.url("/v1/chat/completions"))
                .insert_header(("authorization", format!("Bearer {TOKEN}")))
                .insert_header(("x-session-id", session));
            req = req.insert_header(("content-type", "application/json"));
            let res = req.send_body(chat_body("auto").to_string()).await.unwrap();
            res.headers()
                .get("x-routed-via")
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned()
        }
    };
    assert_eq!(turn("s1").await, "custom/a");
    let chain = admin(&gw, "GET", "/api/chain", None).await.json();
    let mut entries: Vec<serde_json::Value> = chain.as_array().unwrap().clone();
    let b = entries.iter().position(|e| e["model"] == "b").unwrap();
    let moved = entries.remove(b);
    entries.insert(0, moved);
    let put = admin(&gw, "PUT", "/api/chain", Some(&json!(entries))).await;
    assert_eq!(put.status, 200, "{}", put.text());
    assert_eq!(
        turn("s1").await,
        "custom/a",
        "the conversation keeps its model"
    );
    assert_eq!(
        turn("s2").await,
        "custom/b",
        "a new conversation follows the new order"
    );
}

#[actix_rt::test]
async fn body_session_id_is_honoured_and_never_forwarded() {
    let mock = Mock::start();
    let gw = Gateway::start(&[]);
    add_custom_key(&gw, "k1", &mock.base_url(), json!(["a"])).await;
    let mut body = chat_body("auto");
    body["session_id"] = json!("conversation-42");
    let res = send(
        "POST",
        &gw.url("/v1/chat/completions"),
        Some(TOKEN),
        Some(&body),
    )
    .await;
    assert_eq!(res.status, 200);
    assert!(mock.requests()[0].body.get("session_id").is_none());
    let res = chat(&gw, &body).await;
    assert_eq!(res.status, 200);
}

#[actix_rt::test]
async fn chain_put_rejects_unknown_entries_and_changes_nothing() {
    let gw = Gateway::start(&[]);
    let before = admin(&gw, "GET", "/api/chain", None).await.json();
    let bad = json!([{"platform": "groq", "model": "no-such-model", "enabled": true}]);
    let res = admin(&gw, "PUT", "/api/chain", Some(&bad)).await;
    assert_eq!(res.status, 400);
    let bad = json!([{"platform": "openai", "model": "gpt-4o", "enabled": true}]);
    assert_eq!(
        admin(&gw, "PUT", "/api/chain", Some(&bad)).await.status,
        400
    );
    assert_eq!(admin(&gw, "GET", "/api/chain", None).await.json(), before);
}
