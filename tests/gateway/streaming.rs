//! Streaming failures: a stream cut after the first byte ends with one in-band error and `[DONE]`; a client
//! that goes away cancels the upstream request.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::json;

use crate::support::client::{chat, eventually, open_stream, sse_payloads, stream_body};
use crate::support::mock::{chunk_payloads, Reply, StreamPlan};
use crate::support::setup::gateway_on_mock;

#[actix_rt::test]
async fn mid_stream_drop_ends_with_an_in_band_error_and_done() {
    let (mock, gw) = gateway_on_mock(&[("k1", json!(["a"]))]).await;
    mock.push(
        "k1",
        Reply::Stream(
            StreamPlan::of(&["one", "two", "three", "four"])
                .paced(Duration::from_millis(5))
                .cut_after(2),
        ),
    );
    let body = stream_body("a");
    let res = chat(&gw, &body).await;
    assert_eq!(res.status, 200);
    let payloads = sse_payloads(&res.body);
    assert_eq!(payloads.len(), 5, "{payloads:?}");
    let sent = chunk_payloads("a", &["one".into(), "two".into()], false);
    assert_eq!(
        payloads[..3],
        sent[..3],
        "what arrived before the cut is relayed unchanged"
    );
    let error: serde_json::Value = serde_json::from_str(&payloads[3]).unwrap();
    assert_eq!(error["error"]["type"], "upstream_error");
    assert!(error["error"]["message"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));
    assert_eq!(payloads[4], "[DONE]");
}

#[actix_rt::test]
async fn chunks_reach_the_client_as_the_upstream_sends_them() {
    let (mock, gw) = gateway_on_mock(&[("k1", json!(["a"]))]).await;
    mock.push(
        "k1",
        Reply::stream(&["one", "two", "three", "four"], Duration::from_millis(400)),
    );
    let body = stream_body("a");
    let started = Instant::now();
    let mut res = open_stream(&gw, &body).await;
    let mut arrivals = Vec::new();
    let mut received = Vec::new();
    while let Some(chunk) = res.next().await {
        let chunk = chunk.unwrap();
        if String::from_utf8_lossy(&chunk).contains("\"content\":\"") {
            arrivals.push(started.elapsed());
        }
        received.extend_from_slice(&chunk);
    }
    let text = String::from_utf8_lossy(&received);
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    assert!(arrivals.len() >= 3, "chunks were batched: {arrivals:?}");
    assert!(
        arrivals[0] < Duration::from_millis(1000),
        "the first piece waits for nothing: {arrivals:?}"
    );
    assert!(
        *arrivals.last().unwrap() - arrivals[0] >= Duration::from_millis(800),
        "pieces arrive spread out as sent, not buffered: {arrivals:?}"
    );
}

#[actix_rt::test]
async fn stream_without_done_after_finish_is_complete() {
    let (mock, gw) = gateway_on_mock(&[("k1", json!(["a"]))]).await;
    mock.push("k1", Reply::Stream(StreamPlan::of(&["x"]).without_done()));
    let body = stream_body("a");
    let payloads = sse_payloads(&chat(&gw, &body).await.body);
    assert_eq!(payloads.last().map(String::as_str), Some("[DONE]"));
    assert!(
        !payloads.iter().any(|p| p.contains("\"error\"")),
        "{payloads:?}"
    );
}

#[actix_rt::test]
async fn last_event_without_a_blank_line_is_not_lost() {
    let (mock, gw) = gateway_on_mock(&[("k1", json!(["a"]))]).await;
    let first = r#"{"choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}"#;
    let last = r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#;
    mock.push(
        "k1",
        Reply::RawSse(format!("data: {first}\r\n\r\ndata: {last}")),
    );
    let body = stream_body("a");
    let payloads = sse_payloads(&chat(&gw, &body).await.body);
    assert_eq!(payloads, [first, last, "[DONE]"]);
}

#[actix_rt::test]
async fn failure_before_the_first_chunk_fails_over_even_when_streaming() {
    let (mock, gw) = gateway_on_mock(&[("k1", json!(["a"])), ("k2", json!(["b"]))]).await;
    mock.push("k1", Reply::rate_limited(10));
    let body = stream_body("auto");
    let res = chat(&gw, &body).await;
    assert_eq!(res.status, 200);
    assert_eq!(res.header("x-routed-via").as_deref(), Some("custom/b"));
    assert_eq!(res.header("x-fallback-attempts").as_deref(), Some("1"));
    assert_eq!(
        sse_payloads(&res.body).last().map(String::as_str),
        Some("[DONE]")
    );
}

#[actix_rt::test]
async fn client_disconnect_cancels_the_upstream_stream() {
    let (mock, gw) = gateway_on_mock(&[("k1", json!(["a"]))]).await;
    let pieces: Vec<&str> = vec!["tick"; 200];
    mock.push("k1", Reply::stream(&pieces, Duration::from_millis(50)));
    let body = stream_body("a");
    {
        let mut res = open_stream(&gw, &body).await;
        let first = res.next().await.unwrap().unwrap();
        assert!(first.starts_with(b"data: "));
    }
    eventually(
        "the mock sees its stream abandoned",
        Duration::from_secs(5),
        async || mock.dropped_streams() == 1,
    )
    .await;
}
