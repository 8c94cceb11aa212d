//! Streams that break after their first byte (a cut, a stall, a malformed event) are continued on another
//! candidate that continues a partial answer, OpenAI-compatible or Gemini: the client receives exactly the full
//! answer once, with one finish and one `[DONE]`. A fallback that refuses the prefill or starts over ends the
//! stream cleanly instead, never with text twice.

use std::collections::HashSet;

use serde_json::{json, Value};

use crate::support::client::{
    add_custom_key, add_platform_key, admin, chat, logged_requests, new_conversation, send,
    sse_payloads,
};
use crate::support::gateway::{Gateway, TOKEN};
use crate::support::mock::{chunk_payloads, Mock, Reply, StreamPlan};

const PARTIAL: [&str; 2] = ["The quick ", "brown "];
const REST: [&str; 3] = ["fox jumps ", "over the lazy", " dog."];
const FULL: &str = "The quick brown fox jumps over the lazy dog.";
const GEMINI_KEY: &str = "AIza-resume-0001";

/// What a client read from a stream.
#[derive(Debug)]
struct Read {
    text: String,
    errors: usize,
    done: usize,
    finishes: usize,
    ids: HashSet<String>,
}

fn read(body: &[u8]) -> Read {
    let mut out = Read {
        text: String::new(),
        errors: 0,
        done: 0,
        finishes: 0,
        ids: HashSet::new(),
    };
    for payload in sse_payloads(body) {
        if payload == "[DONE]" {
            out.done += 1;
            continue;
        }
        let chunk: Value = serde_json::from_str(&payload).unwrap();
        if chunk["error"].is_object() {
            out.errors += 1;
            continue;
        }
        out.ids
            .insert(chunk["id"].as_str().unwrap_or_default().to_owned());
        let choice = &chunk["choices"][0];
        out.text
            .push_str(choice["delta"]["content"].as_str().unwrap_or_default());
        if choice["finish_reason"].is_string() {
            out.finishes += 1;
        }
    }
    out
}

/// The primary's reply for `fault`: the partial answer, then a cut, a stall or a malformed event.
fn broken(fault: &str) -> Reply {
    let pieces: Vec<String> = PARTIAL.iter().map(|p| p.to_string()).collect();
    match fault {
        "cut" => Reply::Stream(StreamPlan {
            pieces: [pieces, vec!["never sent".into()]].concat(),
            chunk_delay: std::time::Duration::from_millis(20),
            drop_after: Some(2),
            done: true,
        }),
        "stall" => Reply::StallAfter(pieces),
        _ => {
            let mut payloads = chunk_payloads("a", &pieces, false);
            payloads.pop();
            let body: String = payloads.iter().map(|p| format!("data: {p}\n\n")).collect();
            Reply::RawSse(body + "data: {\"choices\":[{\"delta\":{\"content\n\n")
        }
    }
}

/// The outcome label the broken attempt gets in the request log.
fn label(fault: &str) -> &'static str {
    match fault {
        "cut" => "interrupted",
        "stall" => "timeout",
        _ => "undecodable",
    }
}

/// Gemini's stream of the rest of the answer.
fn gemini_rest() -> Reply {
    let events: String = REST
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let mut candidate = json!({"content": {"role": "model", "parts": [{"text": text}]}});
            if i == REST.len() - 1 {
                candidate["finishReason"] = json!("STOP");
            }
            format!("data: {}\r\n\r\n", json!({"candidates": [candidate]}))
        })
        .collect();
    Reply::RawSse(events)
}

/// The last message (or content) of a request the mock saw.
fn last_of(list: &Value) -> Value {
    list.as_array()
        .and_then(|l| l.last())
        .cloned()
        .unwrap_or_default()
}

/// Asserts the client read exactly the full answer, once: no error, one finish, one `[DONE]`.
fn assert_whole(answer: &Read, fault: &str) {
    assert_eq!(answer.text, FULL, "{fault}: {answer:?}");
    assert_eq!(
        (answer.errors, answer.done, answer.finishes),
        (0, 1, 1),
        "{fault}: {answer:?}"
    );
}

async fn ask(gw: &Gateway) -> Read {
    let mut body = new_conversation("auto");
    body["stream"] = json!(true);
    let res = chat(gw, &body).await;
    assert_eq!(res.status, 200, "{}", res.text());
    read(&res.body)
}

#[actix_rt::test]
async fn a_broken_stream_is_continued_by_an_openai_compatible_fallback() {
    for fault in ["cut", "stall", "malformed"] {
        let mock = Mock::start();
        let gw = Gateway::start(&[("UPSTREAM_TIMEOUT_SECS", "1")]);
        add_custom_key(&gw, "p", &mock.base_url(), json!(["a"])).await;
        add_custom_key(&gw, "f", &mock.base_url(), json!(["b"])).await;
        mock.push("p", broken(fault));
        mock.push("f", Reply::stream(&REST, std::time::Duration::ZERO));
        let answer = ask(&gw).await;
        assert_whole(&answer, fault);
        assert_eq!(answer.ids.len(), 1, "{fault}: one answer's id: {answer:?}");
        let asked = mock.requests().into_iter().find(|r| r.key == "f").unwrap();
        assert_eq!(
            last_of(&asked.body["messages"]),
            json!({"role": "assistant", "content": "The quick brown "}),
            "{fault}"
        );
        let row = logged_requests(&gw, 1).await[0].clone();
        assert_eq!(row["status"], 200, "{fault}: {row}");
        let attempts: Vec<(Value, Value)> = row["attempt_log"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| (a["outcome"].clone(), a["resumed_after"].clone()))
            .collect();
        assert_eq!(
            attempts,
            [
                (json!(label(fault)), Value::Null),
                (json!("resumed"), json!(16))
            ],
            "{fault}: {row}"
        );
        let metrics = send("GET", &gw.url("/metrics"), Some(TOKEN), None)
            .await
            .text();
        assert!(
            metrics.contains("freellmapi_streams_resumed_total{platform=\"custom\"} 1"),
            "{fault}: {metrics}"
        );
    }
}

#[actix_rt::test]
async fn a_broken_stream_is_continued_by_gemini() {
    for fault in ["cut", "stall", "malformed"] {
        let mock = Mock::start();
        let gw = Gateway::start(&[
            ("UPSTREAM_TIMEOUT_SECS", "1"),
            (
                "FREELLMAPI_BASE_URL_GOOGLE",
                &format!("{}beta", mock.base_url()),
            ),
        ]);
        add_custom_key(&gw, "p", &mock.base_url(), json!(["a"])).await;
        add_platform_key(&gw, "google", GEMINI_KEY).await;
        let chain = json!([{"platform": "custom", "model": "a"}, {"platform": "google", "model": "gemini-2.5-flash"}]);
        assert_eq!(
            admin(&gw, "PUT", "/api/chain", Some(&chain)).await.status,
            200
        );
        mock.push("p", broken(fault));
        mock.push(GEMINI_KEY, gemini_rest());
        let answer = ask(&gw).await;
        assert_whole(&answer, fault);
        let asked = mock
            .requests()
            .into_iter()
            .find(|r| r.key == GEMINI_KEY && r.path.contains("streamGenerateContent"))
            .unwrap();
        assert_eq!(
            last_of(&asked.body["contents"]),
            json!({"role": "model", "parts": [{"text": "The quick brown "}]}),
            "{fault}"
        );
    }
}

#[actix_rt::test]
async fn a_fallback_that_refuses_or_starts_over_ends_the_stream_cleanly() {
    let refusal = Reply::error(
        400,
        "invalid_request_error",
        "Expected last role to be one of: [user, tool] but got assistant",
    );
    let restart = Reply::stream(
        &["The quick red fox", " sleeps."],
        std::time::Duration::ZERO,
    );
    for (why, fallback) in [("refuses the prefill", refusal), ("starts over", restart)] {
        let mock = Mock::start();
        let gw = Gateway::start(&[]);
        add_custom_key(&gw, "p", &mock.base_url(), json!(["a"])).await;
        add_custom_key(&gw, "f", &mock.base_url(), json!(["b"])).await;
        mock.push("p", broken("cut"));
        mock.push("f", fallback);
        let answer = ask(&gw).await;
        assert_eq!(answer.text, "The quick brown ", "{why}: {answer:?}");
        assert_eq!((answer.errors, answer.done), (1, 1), "{why}: {answer:?}");
        assert_eq!(mock.count_for("f"), 1, "{why}: the fallback was asked once");
        let row = logged_requests(&gw, 1).await[0].clone();
        assert_eq!(row["status"], 502, "{why}: {row}");
    }
}

#[actix_rt::test]
async fn with_resuming_off_a_broken_stream_ends_as_before() {
    let mock = Mock::start();
    let gw = Gateway::start(&[("STREAM_RESUME", "off")]);
    add_custom_key(&gw, "p", &mock.base_url(), json!(["a"])).await;
    add_custom_key(&gw, "f", &mock.base_url(), json!(["b"])).await;
    mock.push("p", broken("cut"));
    let answer = ask(&gw).await;
    assert_eq!(answer.text, "The quick brown ");
    assert_eq!((answer.errors, answer.done), (1, 1));
    assert_eq!(mock.count_for("f"), 0);
}
