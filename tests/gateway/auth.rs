//! The route audit (every registered route but /healthz and the dashboard's files needs the unified key), the
//! browser-origin policy (admin API same-origin only, CORS on /v1 as configured), key rotation and the
//! failed-attempt limit.

use serde_json::json;

use freellmapi::http::error_shape::is_anthropic;
use freellmapi::http::routes::{Access, ROUTES};

use crate::support::client::{add_custom_key, admin, chat_body, send, send_with};
use crate::support::gateway::{Gateway, TOKEN};
use crate::support::mock::Mock;

/// Paths no route matches: they need the key too (deny by default), so probing reveals nothing.
const UNROUTED: &[(&str, &str)] = &[
    ("GET", "/v1/unknown"),
    ("GET", "/api/unknown"),
    ("GET", "/nowhere"),
    ("POST", "/healthz"),
    ("OPTIONS", "/api/keys"),
];

/// A concrete path for an actix pattern.
fn concrete(pattern: &str) -> String {
    pattern
        .replace("{id:.*}", "groq/llama-3.3-70b-versatile")
        .replace("{id}", "1")
        .replace("{file}", "app.js")
}

/// The same path with the first letter of every segment percent-encoded (`/api/keys` → `/%61pi/%6Beys`): the
/// router decodes it to the same route, so the guard must judge it as that route.
fn encoded(path: &str) -> String {
    path.split('/')
        .map(|segment| match segment.chars().next() {
            Some(c) if c.is_ascii_alphanumeric() => format!("%{:02X}{}", c as u8, &segment[1..]),
            _ => segment.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[actix_rt::test]
async fn every_route_needs_the_unified_key() {
    let gw = Gateway::start(&[("AUTH_FAILURES_PER_MINUTE", "1000")]);
    let protected = ROUTES
        .iter()
        .filter(|r| r.access != Access::Public)
        .map(|r| (r.method, concrete(r.path)))
        .chain(UNROUTED.iter().map(|(m, p)| (*m, p.to_string())))
        .flat_map(|(method, path)| {
            [
                (method, encoded(&path), path.clone()),
                (method, path.clone(), path),
            ]
        });
    let mut checked = 0;
    for (method, path, plain) in protected {
        for token in [None, Some("freellmapi-wrong"), Some("")] {
            let res = send(method, &gw.url(&path), token, Some(&json!({}))).await;
            assert_eq!(res.status, 401, "{method} {path} with {token:?}");
            let body = res.json();
            assert_eq!(
                body["error"]["type"], "authentication_error",
                "{method} {path}"
            );
            if is_anthropic(&plain) {
                assert_eq!(body["type"], "error", "Anthropic's shape on {path}");
            } else {
                assert_eq!(body["error"]["code"], "invalid_api_key", "{method} {path}");
            }
        }
        checked += 1;
    }
    assert!(checked >= 36, "only {checked} routes audited");
    for route in ROUTES.iter().filter(|r| r.access == Access::Public) {
        for path in [concrete(route.path), encoded(&concrete(route.path))] {
            let res = send(route.method, &gw.url(&path), None, None).await;
            assert_eq!(res.status, 200, "{} {path}", route.method);
        }
    }
    let head = send("HEAD", &gw.url("/healthz"), None, None).await;
    assert_eq!((head.status, head.body.len()), (200, 0), "HEAD /healthz");
    let health = send("GET", &gw.url("/healthz"), None, None).await;
    assert_eq!(
        (health.status, health.json()),
        (200, json!({"status": "ok"}))
    );
    let page = send("GET", &gw.url("/"), None, None).await;
    assert!(page.text().contains("freellmapi"));
    for name in ["content-security-policy", "x-content-type-options"] {
        assert!(page.header(name).is_some(), "dashboard lacks {name}");
    }
    assert!(page
        .header("content-security-policy")
        .unwrap()
        .contains("frame-ancestors 'none'"));
    assert_eq!(
        send("GET", &gw.url("/static/nope.js"), None, None)
            .await
            .status,
        404
    );
}

#[actix_rt::test]
async fn the_admin_api_refuses_other_origins_even_with_the_key() {
    let gw = Gateway::start(&[("CORS_ALLOWED_ORIGINS", "https://app.example")]);
    let host = gw.url("").trim_start_matches("http://").to_owned();
    let same = format!("http://{host}");
    for headers in [
        vec![("origin", "https://evil.example")],
        vec![("origin", "https://app.example")],
        vec![
            ("sec-fetch-site", "cross-site"),
            ("origin", "https://evil.example"),
        ],
        vec![("origin", "null")],
    ] {
        let res = send_with("GET", &gw.url("/api/keys"), Some(TOKEN), &headers, None).await;
        assert_eq!(res.status, 403, "{headers:?}: {}", res.text());
        assert_eq!(res.json()["error"]["code"], "cross_origin_forbidden");
        assert_eq!(res.header("access-control-allow-origin"), None);
    }
    let dashboard = [("origin", same.as_str()), ("sec-fetch-site", "same-origin")];
    let ok = send_with("GET", &gw.url("/api/keys"), Some(TOKEN), &dashboard, None).await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    let preflight = send_with(
        "OPTIONS",
        &gw.url("/api/keys"),
        None,
        &[
            ("origin", "https://app.example"),
            ("access-control-request-method", "GET"),
        ],
        None,
    )
    .await;
    assert_eq!(preflight.status, 403);
    assert_eq!(preflight.header("access-control-allow-origin"), None);
}

#[actix_rt::test]
async fn an_encoded_admin_path_gets_the_same_origin_check() {
    let gw = Gateway::start(&[]);
    let evil = [("origin", "https://evil.example")];
    for (method, path) in [
        ("GET", "/%61pi/keys"),
        ("POST", "/%61pi/token/rotate"),
        ("GET", "/api/%6Beys"),
    ] {
        let res = send_with(method, &gw.url(path), Some(TOKEN), &evil, None).await;
        assert_eq!(res.status, 403, "{method} {path}: {}", res.text());
        assert_eq!(res.json()["error"]["code"], "cross_origin_forbidden");
    }
    let still = send("GET", &gw.url("/api/keys"), Some(TOKEN), None).await;
    assert_eq!(still.status, 200, "the key was not rotated");
    let plain = send("GET", &gw.url("/%61pi/keys"), Some(TOKEN), None).await;
    assert_eq!(
        plain.status, 200,
        "without an Origin the encoded path is the same route"
    );
}

#[actix_rt::test]
async fn cors_on_v1_is_limited_to_the_configured_origins() {
    let mock = Mock::start();
    let gw = Gateway::start(&[("CORS_ALLOWED_ORIGINS", "https://app.example")]);
    add_custom_key(&gw, "k1", &mock.base_url(), json!(["a"])).await;
    let ask = |origin: &'static str| {
        let url = gw.url("/v1/chat/completions");
        async move {
            send_with(
                "OPTIONS",
                &url,
                None,
                &[
                    ("origin", origin),
                    ("access-control-request-method", "POST"),
                    (
                        "access-control-request-headers",
                        "authorization, content-type, x-stainless-os",
                    ),
                ],
                None,
            )
            .await
        }
    };
    let allowed = ask("https://app.example").await;
    assert_eq!(allowed.status, 204, "{}", allowed.text());
    assert_eq!(
        allowed.header("access-control-allow-origin").as_deref(),
        Some("https://app.example")
    );
    assert!(allowed
        .header("access-control-allow-headers")
        .unwrap()
        .contains("x-stainless-os"));
    assert!(allowed
        .header("access-control-allow-methods")
        .unwrap()
        .contains("POST"));
    let refused = ask("https://evil.example").await;
    assert_eq!(refused.status, 403);
    assert_eq!(refused.header("access-control-allow-origin"), None);

    let from_app = [("origin", "https://app.example")];
    let res = send_with(
        "POST",
        &gw.url("/v1/chat/completions"),
        Some(TOKEN),
        &from_app,
        Some(&chat_body("a")),
    )
    .await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(
        res.header("access-control-allow-origin").as_deref(),
        Some("https://app.example")
    );
    assert!(res
        .header("access-control-expose-headers")
        .unwrap()
        .contains("x-routed-via"));
    let unauthorised = send_with("GET", &gw.url("/v1/models"), None, &from_app, None).await;
    assert_eq!(unauthorised.status, 401);
    assert_eq!(
        unauthorised
            .header("access-control-allow-origin")
            .as_deref(),
        Some("https://app.example"),
        "a browser app can read why it was refused"
    );
    let other = send_with(
        "GET",
        &gw.url("/v1/models"),
        Some(TOKEN),
        &[("origin", "https://evil.example")],
        None,
    )
    .await;
    assert_eq!(other.header("access-control-allow-origin"), None);

    let closed = Gateway::start(&[]);
    let res = send_with(
        "OPTIONS",
        &closed.url("/v1/chat/completions"),
        None,
        &[
            ("origin", "https://app.example"),
            ("access-control-request-method", "POST"),
        ],
        None,
    )
    .await;
    assert_eq!(res.status, 403, "no CORS unless configured");
}

#[actix_rt::test]
async fn rotation_replaces_the_key_at_once() {
    let gw = Gateway::start(&[]);
    let res = admin(&gw, "POST", "/api/token/rotate", None).await;
    assert_eq!(res.status, 200);
    let new = res.json()["token"].as_str().unwrap().to_owned();
    assert!(new.starts_with("freellmapi-") && new.len() == "freellmapi-".len() + 48);
    assert_eq!(
        send("GET", &gw.url("/api/keys"), Some(TOKEN), None)
            .await
            .status,
        401
    );
    assert_eq!(
        send("GET", &gw.url("/api/keys"), Some(&new), None)
            .await
            .status,
        200
    );
}

#[actix_rt::test]
async fn repeated_wrong_keys_block_the_address_for_a_while() {
    let gw = Gateway::start(&[("AUTH_FAILURES_PER_MINUTE", "3")]);
    for _ in 0..3 {
        assert_eq!(
            send("GET", &gw.url("/api/keys"), Some("freellmapi-guess"), None)
                .await
                .status,
            401
        );
    }
    let blocked = send("GET", &gw.url("/api/keys"), Some("freellmapi-guess"), None).await;
    assert_eq!(blocked.status, 429, "{}", blocked.text());
    assert_eq!(blocked.json()["error"]["type"], "rate_limit_error");
    let wait: u64 = blocked.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    let right = send("GET", &gw.url("/api/keys"), Some(TOKEN), None).await;
    assert_eq!(
        right.status, 429,
        "a blocked address cannot try even the right key"
    );
    assert_eq!(
        send("GET", &gw.url("/healthz"), None, None).await.status,
        200
    );
}

#[actix_rt::test]
async fn behind_a_trusted_proxy_failures_count_per_forwarded_client() {
    let gw = Gateway::start(&[
        ("AUTH_FAILURES_PER_MINUTE", "2"),
        ("TRUSTED_PROXIES", "127.0.0.1"),
    ]);
    let url = gw.url("/api/keys");
    let guess = |client: &'static str| {
        let url = url.clone();
        async move {
            send_with(
                "GET",
                &url,
                Some("freellmapi-guess"),
                &[("x-forwarded-for", client)],
                None,
            )
            .await
            .status
        }
    };
    assert_eq!(guess("198.51.100.1").await, 401);
    assert_eq!(guess("198.51.100.1").await, 401);
    assert_eq!(
        guess("198.51.100.1").await,
        429,
        "the guessing client is blocked"
    );
    assert_eq!(
        guess("198.51.100.2").await,
        401,
        "another client behind the same proxy is not"
    );
    let honest = send_with(
        "GET",
        &url,
        Some(TOKEN),
        &[("x-forwarded-for", "198.51.100.2")],
        None,
    )
    .await;
    assert_eq!(honest.status, 200);
}
