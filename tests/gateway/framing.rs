//! Upstream framings an HTTP framework rarely produces, read to their end for every wire format, streamed and
//! not: HTTP/1.1 bodies that end when the connection closes (no length, not chunked) and HTTP/1.0 answers.

use serde_json::{json, Value};

use crate::support::client::{
    add_custom_key, add_platform_key, chat, stream_chunks, streamed_text, Reply,
};
use crate::support::gateway::Gateway;
use crate::support::raw::{RawAnswer, RawUpstream};

/// A custom key for model `m` on `raw`.
async fn add_raw_key(gw: &Gateway, raw: &RawUpstream) {
    add_custom_key(gw, "raw-key", &format!("{}/v1", raw.origin()), json!(["m"])).await;
}

/// One gateway whose custom key, Google key and Cohere key all lead to `raw`.
async fn gateway_on(raw: &RawUpstream) -> Gateway {
    let gw = Gateway::start(&[
        (
            "FREELLMAPI_BASE_URL_GOOGLE",
            &format!("{}/v1beta", raw.origin()),
        ),
        ("FREELLMAPI_BASE_URL_COHERE", &raw.origin()),
    ]);
    add_raw_key(&gw, raw).await;
    add_platform_key(&gw, "google", "AIza-raw-0001").await;
    add_platform_key(&gw, "cohere", "co-raw-0001").await;
    gw
}

/// The text a streamed answer carries, checking it ends with exactly one `[DONE]` after a finish reason.
fn finished_text(res: &Reply) -> String {
    assert_eq!(res.status, 200, "{}", res.text());
    let chunks = stream_chunks(&res.body);
    assert!(
        chunks
            .iter()
            .any(|c| c["choices"][0]["finish_reason"] == "stop"),
        "{}",
        res.text()
    );
    streamed_text(&chunks)
}

/// An SSE body of `events` (`event:` name, if any, and data), with `eol` line endings.
fn sse(events: &[(Option<&str>, Value)], eol: &str) -> String {
    events
        .iter()
        .map(|(name, data)| match name {
            Some(name) => format!("event: {name}{eol}data: {data}{eol}{eol}"),
            None => format!("data: {data}{eol}{eol}"),
        })
        .collect()
}

fn openai_stream(eol: &str) -> String {
    let chunk = |content: &str, finish: Value| {
        (
            None,
            json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": finish}]}),
        )
    };
    sse(
        &[
            chunk("Hel", Value::Null),
            chunk("lo, ", Value::Null),
            chunk("world", json!("stop")),
        ],
        eol,
    ) + &format!("data: [DONE]{eol}{eol}")
}

fn gemini_stream() -> String {
    let part = |text: &str, last: bool| {
        let mut candidate = json!({"content": {"role": "model", "parts": [{"text": text}]}});
        if last {
            candidate["finishReason"] = json!("STOP");
        }
        (
            None,
            json!({"candidates": [candidate],
            "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 3, "totalTokenCount": 6}}),
        )
    };
    sse(
        &[part("Hel", false), part("lo, ", false), part("world", true)],
        "\r\n",
    )
}

fn cohere_stream() -> String {
    let delta = |text: &str| {
        (
            Some("content-delta"),
            json!({"type": "content-delta", "index": 0,
            "delta": {"message": {"content": {"text": text}}}}),
        )
    };
    sse(
        &[
            (
                Some("message-start"),
                json!({"type": "message-start", "id": "s1",
                "delta": {"message": {"role": "assistant"}}}),
            ),
            delta("Hel"),
            delta("lo, "),
            delta("world"),
            (
                Some("message-end"),
                json!({"type": "message-end", "delta": {"finish_reason": "COMPLETE",
                "usage": {"tokens": {"input_tokens": 3, "output_tokens": 3}}}}),
            ),
        ],
        "\n",
    )
}

fn request(model: &str, stream: bool) -> Value {
    json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": "hi"}]})
}

#[actix_rt::test]
async fn streams_that_end_when_the_connection_closes_arrive_whole() {
    let raw = RawUpstream::start();
    let gw = gateway_on(&raw).await;
    let cases = [
        ("m", "HTTP/1.1", openai_stream("\n")),
        ("m", "HTTP/1.1", openai_stream("\r\n")),
        ("m", "HTTP/1.0", openai_stream("\n")),
        ("google/gemini-2.5-flash", "HTTP/1.1", gemini_stream()),
        ("google/gemini-2.5-flash", "HTTP/1.0", gemini_stream()),
        ("cohere/command-a-03-2025", "HTTP/1.1", cohere_stream()),
        ("cohere/command-a-03-2025", "HTTP/1.0", cohere_stream()),
    ];
    for (model, version, body) in cases {
        raw.push(RawAnswer::until_close(
            version,
            "text/event-stream",
            &body,
            7,
        ));
        let res = chat(&gw, &request(model, true)).await;
        assert_eq!(
            finished_text(&res),
            "Hello, world",
            "{model} over {version}"
        );
    }
}

#[actix_rt::test]
async fn answers_that_end_when_the_connection_closes_arrive_whole() {
    let raw = RawUpstream::start();
    let gw = gateway_on(&raw).await;
    let openai = json!({"id": "c1", "object": "chat.completion", "created": 1, "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello, world"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6}});
    let gemini = json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "Hello, world"}]},
        "finishReason": "STOP"}], "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 3}});
    let cohere = json!({"id": "c-1", "finish_reason": "COMPLETE",
        "message": {"role": "assistant", "content": [{"type": "text", "text": "Hello, world"}]},
        "usage": {"tokens": {"input_tokens": 3, "output_tokens": 3}}});
    for version in ["HTTP/1.1", "HTTP/1.0"] {
        for (model, body) in [
            ("m", &openai),
            ("google/gemini-2.5-flash", &gemini),
            ("cohere/command-a-03-2025", &cohere),
        ] {
            raw.push(RawAnswer::until_close(
                version,
                "application/json",
                &body.to_string(),
                16,
            ));
            let res = chat(&gw, &request(model, false)).await;
            assert_eq!(res.status, 200, "{model} over {version}: {}", res.text());
            assert_eq!(
                res.json()["choices"][0]["message"]["content"],
                "Hello, world",
                "{model} over {version}: {}",
                res.text()
            );
        }
    }
    assert_eq!(raw.paths().len(), 6);
}

#[actix_rt::test]
async fn over_tls_the_same_bodies_arrive_whole_and_an_unknown_ca_is_refused() {
    let dir = crate::support::gateway::TempDir::new();
    let ca_file = dir.0.join("upstream-ca.pem");
    let raw = RawUpstream::start_tls(&ca_file);
    let gw = Gateway::start(&[("UPSTREAM_CA_FILE", &ca_file.display().to_string())]);
    add_raw_key(&gw, &raw).await;
    raw.push(RawAnswer::until_close(
        "HTTP/1.1",
        "text/event-stream",
        &openai_stream("\n"),
        7,
    ));
    assert_eq!(
        finished_text(&chat(&gw, &request("m", true)).await),
        "Hello, world"
    );
    let answer = json!({"id": "c1", "object": "chat.completion", "created": 1, "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello, world"}, "finish_reason": "stop"}]});
    raw.push(RawAnswer::until_close(
        "HTTP/1.1",
        "application/json",
        &answer.to_string(),
        9,
    ));
    let res = chat(&gw, &request("m", false)).await;
    assert_eq!(
        res.json()["choices"][0]["message"]["content"],
        "Hello, world",
        "{}",
        res.text()
    );

    let untrusting = Gateway::start(&[]);
    add_raw_key(&untrusting, &raw).await;
    let refused = chat(&untrusting, &request("m", false)).await;
    assert_eq!(refused.status, 502, "{}", refused.text());
    assert!(refused.text().contains("certificate"), "{}", refused.text());
}

#[actix_rt::test]
async fn a_body_cut_before_its_declared_end_is_a_transport_failure_not_a_short_answer() {
    let cut = |head: &str| RawAnswer {
        pieces: vec![
            format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{head}\r\n").into_bytes(),
            br#"{"id":"c1","choices":[{"#.to_vec(),
        ],
        pause: std::time::Duration::from_millis(5),
    };
    for head in ["Content-Length: 500\r\n", "Transfer-Encoding: chunked\r\n"] {
        let framed = if head.starts_with("Transfer") {
            let mut answer = cut(head);
            answer.pieces[1] = b"1f4\r\n{\"id\":\"c1\",\"choices\":[{".to_vec();
            answer
        } else {
            cut(head)
        };
        // A gateway each: two failures bench the route for a moment.
        let raw = RawUpstream::start();
        let gw = Gateway::start(&[]);
        add_raw_key(&gw, &raw).await;
        raw.push(framed.clone());
        raw.push(framed);
        let res = chat(&gw, &request("m", false)).await;
        assert_eq!(res.status, 502, "{head}: {}", res.text());
        let message = res.json()["error"]["message"].as_str().unwrap().to_owned();
        assert!(
            message.contains("before the end of its answer"),
            "{head}: {message}"
        );
        assert!(!message.contains("malformed"), "{message}");
    }
}
