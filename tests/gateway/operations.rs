//! Operations: `X-Request-Id` on every answer, honoured from the caller or generated, and carried into the log.

use serde_json::json;

use crate::support::client::{add_custom_key, chat_body, send_with};
use crate::support::gateway::{Gateway, TOKEN};
use crate::support::mock::{refusing_base_url, Mock};

fn request_id(reply: &crate::support::client::Reply) -> String {
    reply
        .headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

#[actix_rt::test]
async fn every_answer_carries_a_request_id_and_failed_attempts_log_it() {
    let mock = Mock::start();
    let gw = Gateway::start(&[]);
    add_custom_key(&gw, "sk-refused", &refusing_base_url(), json!(["m2"])).await;
    add_custom_key(&gw, "sk-served", &mock.base_url(), json!(["m1"])).await;
    let url = gw.url("/v1/chat/completions");
    let body = chat_body("m1");

    let honoured = send_with(
        "POST",
        &url,
        Some(TOKEN),
        &[("x-request-id", "trace-me-1")],
        Some(&body),
    )
    .await;
    assert_eq!(honoured.status, 200);
    assert_eq!(request_id(&honoured), "trace-me-1");

    let (a, b) = (
        send_with("POST", &url, Some(TOKEN), &[], Some(&body)).await,
        send_with(
            "POST",
            &url,
            Some(TOKEN),
            &[("x-request-id", "has space")],
            Some(&body),
        )
        .await,
    );
    let (a, b) = (request_id(&a), request_id(&b));
    assert_eq!(a.len(), 24, "generated: {a}");
    assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
    assert_ne!(a, b, "an unusable caller id is replaced by a fresh one");
    assert_ne!(b, "has space");

    for reply in [
        send_with(
            "POST",
            &url,
            Some("wrong"),
            &[("x-request-id", "denied-1")],
            Some(&body),
        )
        .await,
        send_with(
            "GET",
            &gw.url("/healthz"),
            None,
            &[("x-request-id", "probe-1")],
            None,
        )
        .await,
        send_with(
            "GET",
            &gw.url("/v1/nowhere"),
            Some(TOKEN),
            &[("x-request-id", "lost-1")],
            None,
        )
        .await,
    ] {
        assert!(
            ["denied-1", "probe-1", "lost-1"].contains(&request_id(&reply).as_str()),
            "status {} without its id",
            reply.status
        );
    }

    let failed = send_with(
        "POST",
        &url,
        Some(TOKEN),
        &[("x-request-id", "trace-fail-1")],
        Some(&chat_body("m2")),
    )
    .await;
    assert_eq!(failed.status, 502);
    assert_eq!(request_id(&failed), "trace-fail-1");
    assert!(
        gw.logs()
            .contains("request trace-fail-1: attempt custom/m2"),
        "no failed attempt logged with its request id:\n{}",
        gw.logs()
    );
}
