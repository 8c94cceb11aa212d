//! Conversations stay on the model that served their first turn, even after the chain changes, until that
//! model becomes unusable; the conversation's id never reaches the upstream.

use serde_json::{json, Value};

use crate::support::client::{
    add_custom_key, admin, chat, chat_body, new_conversation, Reply as ClientReply,
};
use crate::support::gateway::{Gateway, TOKEN};
use crate::support::mock::{Mock, Reply};

/// A gateway with k1 serving model a and k2 serving model b, the chain trying a first.
async fn two_models(mock: &Mock) -> Gateway {
    let gw = Gateway::start(&[]);
    add_custom_key(&gw, "k1", &mock.base_url(), json!(["a"])).await;
    add_custom_key(&gw, "k2", &mock.base_url(), json!(["b"])).await;
    gw
}

/// Moves model b to the front of the chain.
async fn put_b_first(gw: &Gateway) {
    let chain = admin(gw, "GET", "/api/chain", None).await.json();
    let mut entries: Vec<Value> = chain.as_array().unwrap().clone();
    let b = entries.iter().position(|e| e["model"] == "b").unwrap();
    let moved = entries.remove(b);
    entries.insert(0, moved);
    let put = admin(gw, "PUT", "/api/chain", Some(&json!(entries))).await;
    assert_eq!(put.status, 200, "{}", put.text());
}

/// One turn with `X-Session-Id: session`; returns the route.
async fn turn(gw: &Gateway, session: &str) -> String {
    let res = awc::Client::new()
        .post(gw.url("/v1/chat/completions"))
        .insert_header(("authorization", format!("Bearer {TOKEN}")))
        .insert_header(("x-session-id", session))
        .insert_header(("content-type", "application/json"))
        .send_body(chat_body("auto").to_string())
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    res.headers()
        .get("x-routed-via")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned()
}

/// The route a finished chat request took.
fn route(res: &ClientReply) -> String {
    assert_eq!(res.status, 200, "{}", res.text());
    res.header("x-routed-via").unwrap()
}

#[actix_rt::test]
async fn session_stays_on_its_model_after_the_chain_is_reordered() {
    let mock = Mock::start();
    let gw = two_models(&mock).await;
    assert_eq!(turn(&gw, "s1").await, "custom/a");
    put_b_first(&gw).await;
    assert_eq!(
        turn(&gw, "s1").await,
        "custom/a",
        "the conversation keeps its model"
    );
    assert_eq!(
        turn(&gw, "s2").await,
        "custom/b",
        "a new conversation follows the new order"
    );
    assert!(
        mock.requests()
            .iter()
            .all(|r| r.header("x-session-id").is_none()),
        "the session header stays with the gateway"
    );
}

#[actix_rt::test]
async fn body_session_id_is_honoured_and_never_forwarded() {
    let mock = Mock::start();
    let gw = two_models(&mock).await;
    let mut body = new_conversation("auto");
    body["session_id"] = json!("conversation-42");
    assert_eq!(route(&chat(&gw, &body).await), "custom/a");
    put_b_first(&gw).await;
    body["messages"] = new_conversation("auto")["messages"].clone();
    assert_eq!(
        route(&chat(&gw, &body).await),
        "custom/a",
        "the body's session id, not the messages, names the conversation"
    );
    body["session_id"] = json!("conversation-43");
    assert_eq!(route(&chat(&gw, &body).await), "custom/b");
    for seen in mock.requests() {
        assert!(seen.body.get("session_id").is_none(), "{}", seen.body);
    }
}

#[actix_rt::test]
async fn a_conversation_without_an_id_is_recognised_by_its_opening() {
    let mock = Mock::start();
    let gw = two_models(&mock).await;
    let first = json!({"model": "auto", "messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Name a prime."}]});
    let answer = chat(&gw, &first).await;
    assert_eq!(route(&answer), "custom/a");
    put_b_first(&gw).await;
    let mut second = first.clone();
    let messages = second["messages"].as_array_mut().unwrap();
    messages.push(answer.json()["choices"][0]["message"].clone());
    messages.push(json!({"role": "user", "content": "Another one."}));
    assert_eq!(
        route(&chat(&gw, &second).await),
        "custom/a",
        "the second turn of the same conversation"
    );
    assert_eq!(
        route(&chat(&gw, &new_conversation("auto")).await),
        "custom/b",
        "another conversation follows the new order"
    );
}

#[actix_rt::test]
async fn a_session_moves_when_its_model_becomes_unusable() {
    let mock = Mock::start();
    let gw = two_models(&mock).await;
    assert_eq!(turn(&gw, "s1").await, "custom/a");
    mock.push(
        "k1",
        Reply::error(401, "invalid_api_key", "Invalid API Key"),
    );
    assert_eq!(turn(&gw, "s1").await, "custom/b");
    assert_eq!(
        turn(&gw, "s1").await,
        "custom/b",
        "the session now lives on b"
    );
    assert_eq!(mock.count_for("k1"), 2);
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
