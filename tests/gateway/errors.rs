//! Bad input gets the OpenAI-shaped error of interface.md, never a panic or actix's plain text.

use serde_json::json;

use crate::support::client::{admin, chat, send_raw, send_raw_as};
use crate::support::gateway::{Gateway, TOKEN};
use crate::support::setup::gateway_on_mock;

fn assert_invalid(res: &crate::support::client::Reply, status: u16) {
    assert_eq!(res.status, status, "{}", res.text());
    let error = &res.json()["error"];
    assert_eq!(error["type"], "invalid_request_error", "{}", res.text());
    assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(error["code"].is_string());
}

#[actix_rt::test]
async fn malformed_and_invalid_chat_requests_get_400s() {
    let gw = Gateway::start(&[]);
    let url = gw.url("/v1/chat/completions");
    assert_invalid(&send_raw(&url, b"{not json".to_vec()).await, 400);
    assert_invalid(&chat(&gw, &json!({"model": "auto"})).await, 400);
    assert_invalid(
        &chat(&gw, &json!({"model": "auto", "messages": []})).await,
        400,
    );
    assert_invalid(
        &chat(&gw, &json!({"model": "auto", "messages": "hi"})).await,
        400,
    );
    assert_invalid(
        &chat(
            &gw,
            &json!({"model": "auto", "messages": [{"role": "user", "content": "x"}], "n": 2}),
        )
        .await,
        400,
    );
    assert_invalid(
        &chat(
            &gw,
            &json!({"model": 7, "messages": [{"role": "user", "content": "x"}]}),
        )
        .await,
        400,
    );
}

#[actix_rt::test]
async fn hostile_bodies_get_clear_answers_and_the_server_keeps_serving() {
    let (mock, gw) = gateway_on_mock(&[("k1", json!(["a"]))]).await;
    let url = gw.url("/v1/chat/completions");
    let expect_400 = |res: &crate::support::client::Reply, mentions: &str| {
        assert_invalid(res, 400);
        let message = res.json()["error"]["message"].as_str().unwrap().to_owned();
        assert!(message.contains(mentions), "{mentions}: {message}");
    };

    let deep = format!(
        r#"{{"model":"a","extra":{}{}}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    expect_400(&send_raw(&url, deep.into_bytes()).await, "recursion limit");
    let deep_content = format!(
        r#"{{"model":"a","messages":[{{"role":"user","content":{}"x"{}}}]}}"#,
        "[".repeat(200),
        "]".repeat(200)
    );
    expect_400(
        &send_raw(&url, deep_content.into_bytes()).await,
        "recursion limit",
    );
    let mut invalid_utf8 = br#"{"model":"a","messages":[{"role":"user","content":""#.to_vec();
    invalid_utf8.extend_from_slice(&[0xff, 0xfe, 0xc3]);
    invalid_utf8.extend_from_slice(br#""}]}"#);
    expect_400(&send_raw(&url, invalid_utf8).await, "unicode");
    let duplicated = r#"{"model":"a","model":"b","messages":[{"role":"user","content":"x"}]}"#;
    expect_400(
        &send_raw(&url, duplicated.into()).await,
        "duplicate field `model`",
    );
    for (max_tokens, mentions) in [
        ("-1", "max_tokens"),
        ("99999999999999999999", "max_tokens"),
        (r#""many""#, "max_tokens"),
        ("1e400", "number out of range"),
    ] {
        let body = format!(
            r#"{{"model":"a","max_tokens":{max_tokens},"messages":[{{"role":"user","content":"x"}}]}}"#
        );
        expect_400(&send_raw(&url, body.into_bytes()).await, mentions);
    }
    assert_eq!(
        mock.requests().len(),
        0,
        "nothing rejected reached the upstream"
    );

    let huge = "many words ".repeat(400_000);
    let body = json!({"model": "a", "messages": [{"role": "user", "content": huge}],
                      "unknown_knob": {"nested": [1, 2]}, "max_tokens": 4_000_000_000u32});
    let res = send_raw_as(&url, "text/plain", body.to_string().into_bytes()).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let seen = &mock.requests()[0].body;
    assert_eq!(
        seen["messages"][0]["content"].as_str().map(str::len),
        Some(huge.len())
    );
    assert_eq!(
        seen["unknown_knob"],
        json!({"nested": [1, 2]}),
        "unknown fields pass through"
    );
    assert_eq!(
        chat(
            &gw,
            &json!({"model": "a", "messages": [{"role": "user", "content": "ok?"}]})
        )
        .await
        .status,
        200
    );
}

#[actix_rt::test]
async fn oversized_body_gets_413() {
    let gw = Gateway::start(&[]);
    let big = format!(
        r#"{{"model":"auto","messages":[{{"role":"user","content":"{}"}}]}}"#,
        "a".repeat(10 * 1024 * 1024)
    );
    let res = send_raw(&gw.url("/v1/chat/completions"), big.into_bytes()).await;
    assert_invalid(&res, 413);
    assert_eq!(res.json()["error"]["code"], "request_too_large");
}

#[actix_rt::test]
async fn admin_input_errors_are_openai_shaped() {
    let gw = Gateway::start(&[]);
    assert_invalid(
        &admin(
            &gw,
            "POST",
            "/api/keys",
            Some(&json!({"platform": "nope", "key": "k"})),
        )
        .await,
        400,
    );
    assert_invalid(
        &admin(
            &gw,
            "POST",
            "/api/keys",
            Some(&json!({"platform": "groq", "key": ""})),
        )
        .await,
        400,
    );
    let custom =
        json!({"platform": "custom", "key": "k", "base_url": "not a url", "models": ["m"]});
    assert_invalid(&admin(&gw, "POST", "/api/keys", Some(&custom)).await, 400);
    let ok = json!({"platform": "groq", "key": "gsk_duplicate_1234"});
    assert_eq!(admin(&gw, "POST", "/api/keys", Some(&ok)).await.status, 201);
    assert_eq!(admin(&gw, "POST", "/api/keys", Some(&ok)).await.status, 409);
    assert_invalid(&admin(&gw, "DELETE", "/api/keys/999", None).await, 404);
    assert_invalid(
        &admin(&gw, "PATCH", "/api/keys/abc", Some(&json!({}))).await,
        400,
    );
    assert_invalid(
        &admin(&gw, "GET", "/api/analytics?range=1y", None).await,
        400,
    );
    for key in [
        "gsk_caf\u{e9}_1234",
        "gsk_del\u{7f}_1234",
        "gsk_\u{2028}_1234",
    ] {
        let res = admin(
            &gw,
            "POST",
            "/api/keys",
            Some(&json!({"platform": "groq", "key": key})),
        )
        .await;
        assert_invalid(&res, 400);
        assert!(res.text().contains("HTTP header"), "{}", res.text());
    }
    let with_userinfo = json!({"platform": "custom", "key": "k", "models": ["m"],
        "base_url": "http://user:s3cretpass@127.0.0.1:1/v1"});
    let res = admin(&gw, "POST", "/api/keys", Some(&with_userinfo)).await;
    assert_invalid(&res, 400);
    assert!(
        res.text().contains("'key'"),
        "says where credentials go: {}",
        res.text()
    );
    assert!(!res.text().contains("s3cretpass"), "{}", res.text());
    let keys = admin(&gw, "GET", "/api/keys", None).await.text();
    assert!(
        !keys.contains("s3cretpass") && !keys.contains("caf"),
        "{keys}"
    );
}

#[actix_rt::test]
async fn oversized_admin_bodies_get_the_documented_413() {
    let gw = Gateway::start(&[]);
    let label = "a".repeat(2 * 1024 * 1024);
    for (method, path, body) in [
        (
            "POST",
            "/api/keys",
            json!({"platform": "groq", "key": "gsk_big_12345678", "label": label}),
        ),
        (
            "PUT",
            "/api/chain",
            json!([{"platform": "groq", "model": label}]),
        ),
        ("PATCH", "/api/keys/1", json!({"label": label})),
    ] {
        let res = admin(&gw, method, path, Some(&body)).await;
        assert_invalid(&res, 413);
        assert_eq!(
            res.json()["error"]["code"],
            "request_too_large",
            "{method} {path}"
        );
        assert!(
            res.text().contains("1048576"),
            "names the limit: {}",
            res.text()
        );
    }
    let fits =
        json!({"platform": "groq", "key": "gsk_fits_12345678", "label": "a".repeat(900 * 1024)});
    assert_eq!(
        admin(&gw, "POST", "/api/keys", Some(&fits)).await.status,
        201
    );
}

/// Sends a request head promising `declared` body bytes, then only `sent` of them, and returns what the gateway
/// answers and how long it took to answer and then close the connection.
pub(crate) fn stall_body(
    gw: &Gateway,
    method: &str,
    path: &str,
    declared: usize,
    sent: usize,
) -> (String, std::time::Duration) {
    use std::io::{Read, Write};
    let address = gw.url("").trim_start_matches("http://").to_owned();
    let mut stream = std::net::TcpStream::connect(&address).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let started = std::time::Instant::now();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: {declared}\r\n\r\n{}",
        "{".repeat(sent)
    );
    stream.write_all(head.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    (
        String::from_utf8_lossy(&answer).into_owned(),
        started.elapsed(),
    )
}

#[actix_rt::test]
async fn a_body_that_never_arrives_times_out() {
    let gw = Gateway::start(&[("BODY_READ_TIMEOUT_SECS", "1")]);
    for (method, path) in [
        ("POST", "/v1/chat/completions"),
        ("POST", "/api/keys"),
        ("PUT", "/api/chain"),
    ] {
        let (answer, took) = stall_body(&gw, method, path, 100, 10);
        assert!(answer.starts_with("HTTP/1.1 408"), "{path}: {answer}");
        assert!(
            answer.contains(r#""code":"request_timeout""#),
            "{path}: {answer}"
        );
        assert!(
            took < std::time::Duration::from_secs(5),
            "{path} took {took:?}"
        );
    }
    assert_eq!(
        admin(&gw, "GET", "/api/keys", None).await.status,
        200,
        "the server keeps serving"
    );
}
