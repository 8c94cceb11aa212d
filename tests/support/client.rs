//! A small HTTP client for tests: JSON in, status + headers + body out, with the unified key by default.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use awc::http::header::HeaderMap;
use bytes::Bytes;
use serde_json::Value;

use super::gateway::{Gateway, TOKEN};

/// A finished response.
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Response headers.
    pub headers: HeaderMap,
    /// Raw body.
    pub body: Bytes,
}

impl Reply {
    /// The body as JSON (Null if it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn client() -> awc::Client {
    awc::Client::builder()
        .timeout(Duration::from_secs(30))
        .finish()
}

/// Sends a request with an optional bearer token and JSON body.
pub async fn send(method: &str, url: &str, token: Option<&str>, body: Option<&Value>) -> Reply {
    send_with(method, url, token, &[], body).await
}

/// Sends a request with an optional bearer token, extra headers and JSON body.
pub async fn send_with(
    method: &str,
    url: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> Reply {
    let method = awc::http::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = client().request(method, url);
    if let Some(t) = token {
        req = req.insert_header(("authorization", format!("Bearer {t}")));
    }
    for (name, value) in headers {
        req = req.insert_header((*name, *value));
    }
    let mut res = match body {
        Some(b) => req
            .insert_header(("content-type", "application/json"))
            .send_body(b.to_string())
            .await
            .unwrap(),
        None => req.send().await.unwrap(),
    };
    let body = res.body().limit(64 * 1024 * 1024).await.unwrap();
    Reply {
        status: res.status().as_u16(),
        headers: res.headers().clone(),
        body,
    }
}

/// Sends raw bytes as a JSON body.
pub async fn send_raw(url: &str, body: Vec<u8>) -> Reply {
    send_raw_as(url, "application/json", body).await
}

/// Sends raw bytes as the body with the given content type.
pub async fn send_raw_as(url: &str, content_type: &str, body: Vec<u8>) -> Reply {
    let mut res = client()
        .post(url)
        .insert_header(("authorization", format!("Bearer {TOKEN}")))
        .insert_header(("content-type", content_type))
        .send_body(body)
        .await
        .unwrap();
    let body = res.body().limit(64 * 1024 * 1024).await.unwrap();
    Reply {
        status: res.status().as_u16(),
        headers: res.headers().clone(),
        body,
    }
}

/// POSTs a streaming chat request and returns the response once its head arrives, for reading chunk by chunk.
pub async fn open_stream(
    gw: &Gateway,
    body: &Value,
) -> awc::ClientResponse<impl futures_util::Stream<Item = Result<Bytes, awc::error::PayloadError>>>
{
    let res = awc::Client::new()
        .post(gw.url("/v1/chat/completions"))
        .insert_header(("authorization", format!("Bearer {TOKEN}")))
        .send_body(body.to_string())
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    res
}

/// POSTs a chat request.
pub async fn chat(gw: &Gateway, body: &Value) -> Reply {
    send(
        "POST",
        &gw.url("/v1/chat/completions"),
        Some(TOKEN),
        Some(body),
    )
    .await
}

/// Calls an admin route with the unified key.
pub async fn admin(gw: &Gateway, method: &str, path: &str, body: Option<&Value>) -> Reply {
    send(method, &gw.url(path), Some(TOKEN), body).await
}

/// The `/api/budgets` row of `model` (the first, if several keys serve it).
pub async fn budget_of(gw: &Gateway, model: &str) -> Value {
    let budgets = admin(gw, "GET", "/api/budgets", None).await.json();
    budgets
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["model"] == model)
        .unwrap_or_else(|| panic!("no budget for {model}: {budgets}"))
        .clone()
}

/// Adds a custom key served by `base_url` with `models`; returns its id.
pub async fn add_custom_key(gw: &Gateway, key: &str, base_url: &str, models: Value) -> i64 {
    let body = serde_json::json!({"platform": "custom", "key": key, "base_url": base_url, "models": models});
    add_key_with(gw, &body).await
}

/// Adds a key of a real platform (its base URL comes from the gateway's environment); returns its id.
pub async fn add_platform_key(gw: &Gateway, platform: &str, key: &str) -> i64 {
    add_key_with(gw, &serde_json::json!({"platform": platform, "key": key})).await
}

async fn add_key_with(gw: &Gateway, body: &Value) -> i64 {
    let res = admin(gw, "POST", "/api/keys", Some(body)).await;
    assert_eq!(res.status, 201, "adding a key failed: {}", res.text());
    res.json()["id"].as_i64().unwrap()
}

/// The `data:` payloads of an SSE body, in order.
pub fn sse_payloads(body: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(body)
        .split("\n\n")
        .filter_map(|event| {
            event
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .map(str::to_owned)
        })
        .collect()
}

/// Polls `check` until it returns true or the deadline passes.
pub async fn eventually(what: &str, timeout: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check().await {
            return;
        }
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for: {what}");
}

/// Waits until the request log holds `count` rows (it is written off the request path) and returns them, newest
/// first.
pub async fn logged_requests(gw: &Gateway, count: usize) -> Value {
    let path = format!("/api/requests?limit={}", count + 5);
    let mut rows = Value::Null;
    eventually(
        &format!("{count} requests logged"),
        Duration::from_secs(5),
        async || {
            rows = admin(gw, "GET", &path, None).await.json();
            rows.as_array().is_some_and(|r| r.len() == count)
        },
    )
    .await;
    rows
}

/// A minimal chat body. Every call is the same conversation as far as derived stickiness is concerned.
pub fn chat_body(model: &str) -> Value {
    serde_json::json!({"model": model, "messages": [{"role": "user", "content": "hello"}]})
}

/// The JSON chunks of a complete OpenAI stream, checked to end with exactly one `[DONE]`.
pub fn stream_chunks(body: &[u8]) -> Vec<Value> {
    let payloads = sse_payloads(body);
    assert_eq!(
        payloads.last().map(String::as_str),
        Some("[DONE]"),
        "{}",
        String::from_utf8_lossy(body)
    );
    assert_eq!(payloads.iter().filter(|p| *p == "[DONE]").count(), 1);
    payloads[..payloads.len() - 1]
        .iter()
        .map(|p| serde_json::from_str(p).unwrap())
        .collect()
}

/// The text a stream's chunks carry, joined.
pub fn streamed_text(chunks: &[Value]) -> String {
    chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect()
}

/// [`chat_body`] asking for a stream.
pub fn stream_body(model: &str) -> Value {
    serde_json::json!({"model": model, "messages": [{"role": "user", "content": "hello"}], "stream": true})
}

/// A minimal chat body opening a conversation no earlier request belongs to, so stickiness cannot decide its
/// route: tests that watch routing skip keys use it for every turn after the first.
pub fn new_conversation(model: &str) -> Value {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    serde_json::json!({"model": model, "messages": [{"role": "user", "content": format!("hello #{n}")}]})
}
