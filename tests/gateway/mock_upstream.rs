//! The mock upstream itself, driven directly: every other test trusts what it sends and what it records.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{json, Value};

use crate::support::client::{eventually, send, sse_payloads};
use crate::support::mock::{chunk_payloads, completion, Mock, Reply, StreamPlan};

/// POSTs a chat body to the mock with `key`.
async fn post(mock: &Mock, key: &str, body: &Value) -> crate::support::client::Reply {
    let url = format!("{}/chat/completions", mock.base_url());
    send("POST", &url, Some(key), Some(body)).await
}

fn streaming(model: &str, include_usage: bool) -> Value {
    json!({"model": model, "stream": true, "stream_options": {"include_usage": include_usage},
           "messages": [{"role": "user", "content": "hi"}]})
}

#[actix_rt::test]
async fn scripts_are_per_key_first_in_first_out_then_the_default_answer() {
    let mock = Mock::start();
    let body = json!({"model": "m1", "messages": [{"role": "user", "content": "hi"}]});
    mock.push("k1", Reply::rate_limited(30));
    mock.push("k1", Reply::Answer("second".into()));
    let limited = post(&mock, "k1", &body).await;
    assert_eq!(limited.status, 429);
    assert_eq!(limited.header("retry-after").as_deref(), Some("30"));
    assert_eq!(limited.json()["error"]["code"], "rate_limit_exceeded");
    assert_eq!(
        post(&mock, "k2", &body).await.json(),
        completion("m1", "Hello from k2"),
        "another key's script is not consumed"
    );
    assert_eq!(
        post(&mock, "k1", &body).await.json(),
        completion("m1", "second")
    );
    assert_eq!(
        post(&mock, "k1", &body).await.json(),
        completion("m1", "Hello from k1")
    );
    assert_eq!((mock.count_for("k1"), mock.count_for("k2")), (3, 1));
    let seen = &mock.requests()[0];
    assert_eq!(
        (seen.method.as_str(), seen.path.as_str(), seen.key.as_str()),
        ("POST", "/v1/chat/completions", "k1")
    );
    assert_eq!(seen.header("authorization"), Some("Bearer k1"));
    assert_eq!(seen.body, body);
    let models = send(
        "GET",
        &format!("{}/models", mock.base_url()),
        Some("k1"),
        None,
    )
    .await;
    assert_eq!(models.json(), json!({"object": "list", "data": []}));
}

#[actix_rt::test]
async fn status_replies_keep_their_headers_and_body() {
    let mock = Mock::start();
    mock.push(
        "k1",
        Reply::Status {
            status: 503,
            headers: vec![("content-type".into(), "text/html".into())],
            body: "<h1>down</h1>".into(),
        },
    );
    mock.push(
        "k1",
        Reply::error(400, "context_length_exceeded", "too long"),
    );
    let html = post(&mock, "k1", &json!({})).await;
    assert_eq!(
        (html.status, html.header("content-type"), html.text()),
        (503, Some("text/html".into()), "<h1>down</h1>".into())
    );
    let bad = post(&mock, "k1", &json!({})).await;
    assert_eq!(bad.status, 400);
    assert_eq!(
        bad.header("content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(
        bad.json(),
        json!({"error": {"message": "too long", "type": "invalid_request_error", "code": "context_length_exceeded"}})
    );
}

#[actix_rt::test]
async fn streams_are_wire_accurate_with_optional_usage() {
    let mock = Mock::start();
    mock.push("k1", Reply::stream(&["a", "b"], Duration::ZERO));
    let res = post(&mock, "k1", &streaming("m1", true)).await;
    assert_eq!(
        res.header("content-type").as_deref(),
        Some("text/event-stream")
    );
    let text = res.text();
    assert!(text.starts_with("data: {") && text.ends_with("}\n\ndata: [DONE]\n\n"));
    let mut expected = chunk_payloads("m1", &["a".into(), "b".into()], true);
    expected.push("[DONE]".into());
    assert_eq!(sse_payloads(&res.body), expected);
    let usage: Value = serde_json::from_str(&expected[expected.len() - 2]).unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["total_tokens"], 13);

    let plain = post(&mock, "k1", &streaming("m1", false)).await;
    let mut expected = chunk_payloads("m1", &["Hello from k1".into()], false);
    expected.push("[DONE]".into());
    assert_eq!(
        sse_payloads(&plain.body),
        expected,
        "an unscripted stream is the default answer in one piece"
    );
    assert_eq!(mock.dropped_streams(), 0);
}

#[actix_rt::test]
async fn streams_can_end_without_done_or_break_mid_way() {
    let mock = Mock::start();
    mock.push("k1", Reply::Stream(StreamPlan::of(&["x"]).without_done()));
    let res = post(&mock, "k1", &streaming("m1", false)).await;
    assert_eq!(
        sse_payloads(&res.body),
        chunk_payloads("m1", &["x".into()], false)
    );

    mock.push(
        "k1",
        Reply::Stream(StreamPlan::of(&["one", "two", "three"]).cut_after(1)),
    );
    let wire = raw_post(&mock, "k1", &streaming("m1", false));
    let sent = chunk_payloads("m1", &["one".into()], false);
    assert!(wire.contains("transfer-encoding: chunked"), "{wire}");
    assert!(
        wire.contains(&sent[1]),
        "chunks before the break arrive: {wire}"
    );
    assert!(!wire.contains("two"), "{wire}");
    assert!(
        wire.ends_with("\n\n\r\n"),
        "the connection closes inside the chunked body, without its terminating zero chunk: {wire:?}"
    );
    eventually(
        "a broken stream counts as unfinished",
        Duration::from_secs(5),
        async || mock.dropped_streams() == 1,
    )
    .await;
}

/// POSTs over a bare TCP connection and returns every byte the mock wrote before closing, since an HTTP
/// client would hide how the body ended (awc, like the gateway's client, reads a cut chunked body as complete).
fn raw_post(mock: &Mock, key: &str, body: &Value) -> String {
    use std::io::{Read, Write};
    let addr = mock
        .base_url()
        .trim_start_matches("http://")
        .trim_end_matches("/v1")
        .to_owned();
    let body = body.to_string();
    let mut conn = std::net::TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        conn,
        "POST /v1/chat/completions HTTP/1.1\r\nhost: mock\r\nauthorization: Bearer {key}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut wire = Vec::new();
    conn.read_to_end(&mut wire).unwrap();
    String::from_utf8_lossy(&wire).into_owned()
}

#[actix_rt::test]
async fn delays_hold_the_head_and_abandoned_streams_are_noticed() {
    let mock = Mock::start();
    mock.push(
        "k1",
        Reply::Delayed(
            Duration::from_millis(300),
            Box::new(Reply::Answer("late".into())),
        ),
    );
    let started = Instant::now();
    let res = post(&mock, "k1", &json!({"model": "m1"})).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(res.json(), completion("m1", "late"));

    mock.push("k1", Reply::stream(&["tick"; 100], Duration::from_secs(3)));
    {
        let mut res = awc::Client::new()
            .post(format!("{}/chat/completions", mock.base_url()))
            .insert_header(("authorization", "Bearer k1"))
            .send_body(streaming("m1", false).to_string())
            .await
            .unwrap();
        assert!(res.next().await.unwrap().is_ok());
    }
    eventually(
        "the abandoned stream noticed between chunks",
        Duration::from_secs(2),
        async || mock.dropped_streams() == 1,
    )
    .await;
}
