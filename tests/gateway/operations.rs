//! Operations: `X-Request-Id` on every answer, honoured from the caller or generated, and carried into the log;
//! `GET /metrics` in valid Prometheus text, behind the unified key or `METRICS_TOKEN`.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde_json::json;

use crate::support::client::{add_custom_key, chat_body, eventually, send_with, stream_body};
use crate::support::gateway::{Gateway, TOKEN};
use crate::support::mock::{refusing_base_url, Mock, Reply};

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

const METRICS_TOKEN: &str = "metrics-token-0123456789";

/// One sample of a scrape: name, labels, value.
type Sample = (String, HashMap<String, String>, f64);

/// Parses Prometheus text exposition strictly enough to catch malformed output: every line is a `# HELP`, a
/// `# TYPE` declared before its samples, or `name{label="value",...} number` with escapes resolved.
fn parse_exposition(text: &str) -> Result<Vec<Sample>, String> {
    let mut typed: HashMap<String, String> = HashMap::new();
    let mut samples = Vec::new();
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
            && !n.starts_with(|c: char| c.is_ascii_digit())
    };
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap_or_default();
            if !name_ok(name) {
                return Err(format!("bad HELP: {line}"));
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split(' ');
            let (name, kind) = (
                parts.next().unwrap_or_default(),
                parts.next().unwrap_or_default(),
            );
            if !name_ok(name)
                || !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind)
            {
                return Err(format!("bad TYPE: {line}"));
            }
            if typed.insert(name.to_owned(), kind.to_owned()).is_some() {
                return Err(format!("TYPE declared twice: {line}"));
            }
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            return Err(format!("unexpected line: {line:?}"));
        }
        let (name, rest) = match line.find(['{', ' ']) {
            Some(i) => line.split_at(i),
            None => return Err(format!("no value: {line}")),
        };
        let mut labels = HashMap::new();
        let value_text = if let Some(body) = rest.strip_prefix('{') {
            let mut chars = body.chars();
            loop {
                let key: String = chars.by_ref().take_while(|&c| c != '=').collect();
                if !name_ok(&key) || chars.next() != Some('"') {
                    return Err(format!("bad label in {line}"));
                }
                let mut value = String::new();
                loop {
                    match chars.next() {
                        Some('\\') => match chars.next() {
                            Some('n') => value.push('\n'),
                            Some(c @ ('\\' | '"')) => value.push(c),
                            _ => return Err(format!("bad escape in {line}")),
                        },
                        Some('"') => break,
                        Some(c) => value.push(c),
                        None => return Err(format!("unterminated label in {line}")),
                    }
                }
                labels.insert(key, value);
                match chars.next() {
                    Some(',') => continue,
                    Some('}') => break,
                    _ => return Err(format!("bad label list in {line}")),
                }
            }
            chars.as_str().to_owned()
        } else {
            rest.to_owned()
        };
        let value: f64 = value_text
            .strip_prefix(' ')
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("bad value in {line}"))?;
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| {
                name.strip_suffix(suffix)
                    .filter(|f| typed.get(*f).is_some_and(|k| k == "histogram"))
            })
            .unwrap_or(name);
        if !typed.contains_key(family) {
            return Err(format!("sample before its TYPE: {line}"));
        }
        samples.push((name.to_owned(), labels, value));
    }
    Ok(samples)
}

fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, _, v)| *v)
}

#[actix_rt::test]
async fn metrics_are_valid_prometheus_text_behind_either_token() {
    let mock = Mock::start();
    let gw = Gateway::start(&[("METRICS_TOKEN", METRICS_TOKEN)]);
    add_custom_key(&gw, "sk-metrics", &mock.base_url(), json!(["m1"])).await;
    let url = gw.url("/v1/chat/completions");
    for _ in 0..3 {
        assert_eq!(
            send_with("POST", &url, Some(TOKEN), &[], Some(&chat_body("m1")))
                .await
                .status,
            200
        );
    }
    assert_eq!(
        send_with("POST", &url, Some(TOKEN), &[], Some(&chat_body("nope")))
            .await
            .status,
        404
    );

    let metrics = gw.url("/metrics");
    let mut scraped = Vec::new();
    eventually(
        "the four requests to be counted",
        Duration::from_secs(5),
        async || {
            let reply = send_with("GET", &metrics, Some(METRICS_TOKEN), &[], None).await;
            assert_eq!(reply.status, 200);
            let content_type = reply.headers.get("content-type").unwrap().to_str().unwrap();
            assert!(
                content_type.starts_with("text/plain; version=0.0.4"),
                "{content_type}"
            );
            let text = String::from_utf8(reply.body.to_vec()).unwrap();
            scraped = parse_exposition(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
            value(
                &scraped,
                "freellmapi_requests_total",
                &[("platform", "custom"), ("status", "200")],
            ) == Some(3.0)
                && value(
                    &scraped,
                    "freellmapi_requests_total",
                    &[("platform", "none"), ("status", "404")],
                ) == Some(1.0)
        },
    )
    .await;
    let s = &scraped;
    assert_eq!(
        value(
            s,
            "freellmapi_upstream_attempts_total",
            &[("model", "m1"), ("outcome", "ok")]
        ),
        Some(3.0)
    );
    assert!(
        value(
            s,
            "freellmapi_tokens_total",
            &[("model", "m1"), ("kind", "completion")]
        )
        .unwrap()
            > 0.0
    );
    let inf = value(
        s,
        "freellmapi_request_duration_seconds_bucket",
        &[("platform", "custom"), ("le", "+Inf")],
    );
    assert_eq!(
        inf,
        value(
            s,
            "freellmapi_request_duration_seconds_count",
            &[("platform", "custom")]
        )
    );
    assert_eq!(inf, Some(3.0));
    let buckets: Vec<f64> = s
        .iter()
        .filter(|(n, l, _)| {
            n == "freellmapi_request_duration_seconds_bucket" && l["platform"] == "custom"
        })
        .map(|(_, _, v)| *v)
        .collect();
    assert!(
        buckets.windows(2).all(|w| w[0] <= w[1]),
        "buckets are cumulative: {buckets:?}"
    );
    assert_eq!(
        value(
            s,
            "freellmapi_keys",
            &[("platform", "custom"), ("enabled", "true")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(s, "freellmapi_cooldowns_active", &[("platform", "custom")]),
        Some(0.0)
    );
    assert_eq!(value(s, "freellmapi_streams_in_flight", &[]), Some(0.0));
    let families: HashSet<&str> = s.iter().map(|(n, _, _)| n.as_str()).collect();
    assert!(families.contains("freellmapi_upstream_requests_in_flight"));

    assert_eq!(
        send_with("GET", &metrics, Some(TOKEN), &[], None)
            .await
            .status,
        200,
        "the unified key works too"
    );
    assert_eq!(
        send_with("GET", &metrics, None, &[], None).await.status,
        401
    );
    assert_eq!(
        send_with("GET", &metrics, Some("metrics-token-wrong-0000"), &[], None)
            .await
            .status,
        401
    );
    assert_eq!(
        send_with("GET", &gw.url("/api/keys"), Some(METRICS_TOKEN), &[], None)
            .await
            .status,
        401,
        "the metrics token opens nothing else"
    );
}

/// Scrapes `/metrics` with the unified key and reads the stream gauge.
async fn streams_in_flight(metrics: &str) -> Option<f64> {
    let reply = send_with("GET", metrics, Some(TOKEN), &[], None).await;
    let text = String::from_utf8(reply.body.to_vec()).unwrap();
    value(
        &parse_exposition(&text).unwrap(),
        "freellmapi_streams_in_flight",
        &[],
    )
}

#[actix_rt::test]
async fn a_stream_is_counted_in_flight_while_it_is_relayed() {
    let mock = Mock::start();
    let gw = Gateway::start(&[]);
    mock.push(
        "sk-stream",
        Reply::stream(&["one ", "two ", "three"], Duration::from_millis(300)),
    );
    add_custom_key(&gw, "sk-stream", &mock.base_url(), json!(["m1"])).await;
    let body = stream_body("m1");
    let url = gw.url("/v1/chat/completions");
    let streaming =
        actix_rt::spawn(
            async move { send_with("POST", &url, Some(TOKEN), &[], Some(&body)).await },
        );
    let metrics = gw.url("/metrics");
    eventually("one stream in flight", Duration::from_secs(5), async || {
        streams_in_flight(&metrics).await == Some(1.0)
    })
    .await;
    assert_eq!(streaming.await.unwrap().status, 200);
    eventually("no stream in flight", Duration::from_secs(5), async || {
        streams_in_flight(&metrics).await == Some(0.0)
    })
    .await;
}
