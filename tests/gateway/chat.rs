//! Plain answers relayed byte for byte, routing headers, model listing and the request log.

use serde_json::json;

use crate::support::client::{
    add_custom_key, chat, chat_body, logged_requests, send, sse_payloads, stream_body,
};
use crate::support::gateway::{Gateway, TOKEN};
use crate::support::mock::{chunk_payloads, completion, Mock, Reply};
use crate::support::setup::gateway_on_mock;

#[actix_rt::test]
async fn non_stream_answer_is_relayed_byte_for_byte() {
    let (mock, gw) = gateway_on_mock(&[("k1", json!(["m1"]))]).await;
    let res = chat(&gw, &chat_body("m1")).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json(), completion("m1", "Hello from k1"));
    assert_eq!(
        res.body,
        serde_json::to_vec(&completion("m1", "Hello from k1")).unwrap()
    );
    assert_eq!(res.header("x-routed-via").as_deref(), Some("custom/m1"));
    assert_eq!(res.header("x-fallback-attempts"), None);
    let seen = &mock.requests()[0];
    assert_eq!(seen.path, "/v1/chat/completions");
    assert_eq!(seen.body["model"], "m1");
    assert_eq!(seen.body["messages"], chat_body("m1")["messages"]);
}

#[actix_rt::test]
async fn stream_chunks_are_relayed_unchanged_and_end_with_one_done() {
    let (mock, gw) = gateway_on_mock(&[("k1", json!(["m1"]))]).await;
    mock.push(
        "k1",
        Reply::stream(
            &["Hel", "lo", " world"],
            std::time::Duration::from_millis(5),
        ),
    );
    let mut body = stream_body("custom/m1");
    body["stream_options"] = json!({"include_usage": true});
    let res = chat(&gw, &body).await;
    assert_eq!(res.status, 200);
    assert_eq!(
        res.header("content-type").as_deref(),
        Some("text/event-stream")
    );
    assert_eq!(res.header("cache-control").as_deref(), Some("no-cache"));
    assert_eq!(res.header("x-accel-buffering").as_deref(), Some("no"));
    assert_eq!(res.header("x-routed-via").as_deref(), Some("custom/m1"));
    let mut expected = chunk_payloads("m1", &["Hel".into(), "lo".into(), " world".into()], true);
    expected.push("[DONE]".into());
    assert_eq!(sse_payloads(&res.body), expected);
}

#[actix_rt::test]
async fn models_lists_auto_and_models_with_keys() {
    let mock = Mock::start();
    let gw = Gateway::start(&[]);
    let before = send("GET", &gw.url("/v1/models"), Some(TOKEN), None)
        .await
        .json();
    assert_eq!(before["object"], "list");
    assert_eq!(
        before["data"].as_array().unwrap().len(),
        1,
        "only auto without keys: {before}"
    );
    add_custom_key(&gw, "k1", &mock.base_url(), json!(["m1", "m2"])).await;
    let after = send("GET", &gw.url("/v1/models"), Some(TOKEN), None)
        .await
        .json();
    let ids: Vec<&str> = after["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["auto", "m1", "m2"]);
}

#[actix_rt::test]
async fn every_request_is_logged() {
    let (_mock, gw) = gateway_on_mock(&[("k1", json!(["m1"]))]).await;
    assert_eq!(chat(&gw, &chat_body("m1")).await.status, 200);
    assert_eq!(chat(&gw, &chat_body("nope")).await.status, 404);
    let rows = logged_requests(&gw, 2).await;
    let ok = &rows[1];
    assert_eq!(
        (
            ok["status"].as_i64(),
            ok["platform"].as_str(),
            ok["model"].as_str()
        ),
        (Some(200), Some("custom"), Some("m1"))
    );
    assert_eq!(
        (
            ok["prompt_tokens"].as_i64(),
            ok["completion_tokens"].as_i64(),
            ok["attempts"].as_i64()
        ),
        (Some(11), Some(7), Some(1))
    );
    assert_eq!(ok["stream"], false);
    assert_eq!(rows[0]["status"], 404);
    assert!(rows[0]["error"].as_str().unwrap().contains("nope"));
}
