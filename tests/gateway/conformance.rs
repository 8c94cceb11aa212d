//! Per-platform conformance: every fixture under tests/fixtures/<platform>/ is a client request, the upstream's
//! recorded-style answer in that platform's wire format, and what the client must see.

use std::time::Duration;

use serde_json::Value;

use crate::support::client::{
    add_platform_key, admin, chat, eventually, sse_payloads, Reply as ClientReply,
};
use crate::support::gateway::Gateway;
use crate::support::mock::{Mock, Reply};

/// Each platform and the path its real base URL has after the host.
pub(crate) const PLATFORMS: &[(&str, &str)] = &[
    ("google", "/v1beta"),
    ("groq", "/openai/v1"),
    ("cerebras", "/v1"),
    ("sambanova", "/v1"),
    ("nvidia", "/v1"),
    ("mistral", "/v1"),
    ("openrouter", "/api/v1"),
    ("github", "/inference"),
    ("huggingface", "/v1"),
    ("cohere", ""),
    ("cloudflare", "/client/v4"),
    ("zhipu", "/api/paas/v4"),
    ("moonshot", "/v1"),
    ("minimax", "/v1"),
];

pub(crate) fn fixtures(platform: &str) -> Vec<(String, Value)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(platform);
    let mut cases: Vec<(String, Value)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            (
                name,
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
            )
        })
        .collect();
    cases.sort_by(|a, b| a.0.cmp(&b.0));
    cases
}

pub(crate) fn upstream_reply(upstream: &Value) -> Reply {
    let status = upstream["status"].as_u64().unwrap() as u16;
    if let Some(sse) = upstream["sse"].as_str() {
        return Reply::RawSse(sse.to_owned());
    }
    let headers = upstream["headers"]
        .as_object()
        .map(|h| {
            h.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                .collect()
        })
        .unwrap_or_default();
    let body = match (&upstream["json"], upstream["text"].as_str()) {
        (_, Some(text)) => text.to_owned(),
        (json, None) => json.to_string(),
    };
    Reply::Status {
        status,
        headers,
        body,
    }
}

/// What a client reads from a stream.
struct StreamRead {
    text: String,
    finish: Option<String>,
    call: Option<(String, String)>,
    done: usize,
    payloads: Vec<String>,
}

/// Assembles what a client reads from a stream: text, finish reason, the first tool call, and the [DONE] count.
fn read_stream(res: &ClientReply) -> StreamRead {
    let payloads = sse_payloads(&res.body);
    let done = payloads.iter().filter(|p| *p == "[DONE]").count();
    assert_eq!(
        payloads.last().map(String::as_str),
        Some("[DONE]"),
        "{payloads:?}"
    );
    let mut read = StreamRead {
        text: String::new(),
        finish: None,
        call: None,
        done,
        payloads: Vec::new(),
    };
    for p in payloads.iter().filter(|p| *p != "[DONE]") {
        let chunk: Value = serde_json::from_str(p).unwrap();
        assert!(
            chunk.get("error").is_none(),
            "unexpected in-band error: {p}"
        );
        let Some(choice) = chunk["choices"].get(0) else {
            continue;
        };
        read.text
            .push_str(choice["delta"]["content"].as_str().unwrap_or_default());
        if let Some(f) = choice["finish_reason"].as_str() {
            read.finish = Some(f.to_owned());
        }
        if let Some(fragment) = choice["delta"]["tool_calls"].get(0) {
            let entry = read
                .call
                .get_or_insert_with(|| (String::new(), String::new()));
            entry
                .0
                .push_str(fragment["function"]["name"].as_str().unwrap_or_default());
            entry.1.push_str(
                fragment["function"]["arguments"]
                    .as_str()
                    .unwrap_or_default(),
            );
        }
    }
    read.payloads = payloads;
    read
}

async fn check(
    gw: &Gateway,
    mock: &Mock,
    platform: &str,
    base: &str,
    case: &str,
    fixture: &Value,
    key_id: i64,
) {
    let expect = &fixture["expect"];
    let what = format!("{platform}/{case}");
    let res = chat(gw, &fixture["request"]).await;
    assert_eq!(
        res.status,
        expect["status"].as_u64().unwrap() as u16,
        "{what}: {}",
        res.text()
    );
    let seen = mock.requests().last().cloned().unwrap();
    assert!(
        seen.path.starts_with(&format!("/{platform}{base}/")),
        "{what}: upstream path {}",
        seen.path
    );
    for key in expect_upstream_keys(fixture) {
        assert!(
            seen.body.get(&key).is_some(),
            "{what}: upstream body lacks {key}: {}",
            seen.body
        );
    }
    if res.status == 200 {
        let (content, finish, call) = if expect["stream"] == true {
            let read = read_stream(&res);
            assert_eq!(
                read.done, 1,
                "{what}: exactly one [DONE]: {:?}",
                read.payloads
            );
            let call = read
                .call
                .map(|(n, a)| (n, serde_json::from_str::<Value>(&a).unwrap()));
            (Some(read.text), read.finish, call)
        } else {
            let body = res.json();
            assert_eq!(body["object"], "chat.completion", "{what}");
            assert!(body["model"].is_string(), "{what}: model must be a string");
            let message = &body["choices"][0]["message"];
            let call = message["tool_calls"].get(0).map(|c| {
                let args =
                    serde_json::from_str::<Value>(c["function"]["arguments"].as_str().unwrap())
                        .unwrap();
                (c["function"]["name"].as_str().unwrap().to_owned(), args)
            });
            if let Some(total) = expect["usage_total"].as_u64() {
                assert_eq!(body["usage"]["total_tokens"], total, "{what}");
            }
            (
                message["content"].as_str().map(str::to_owned),
                body["choices"][0]["finish_reason"]
                    .as_str()
                    .map(str::to_owned),
                call,
            )
        };
        if let Some(text) = expect["content"].as_str() {
            assert_eq!(content.as_deref(), Some(text), "{what}");
        }
        assert_eq!(
            finish.as_deref(),
            expect["finish_reason"].as_str(),
            "{what}"
        );
        if let Some(tool) = expect.get("tool_call") {
            let (name, args) = call.unwrap_or_else(|| panic!("{what}: no tool call"));
            assert_eq!(
                (name.as_str(), &args),
                (tool["name"].as_str().unwrap(), &tool["arguments"]),
                "{what}"
            );
        }
    } else {
        assert_eq!(
            res.json()["error"]["type"],
            expect["error_type"],
            "{what}: {}",
            res.text()
        );
        if expect["retry_after"] == true {
            assert!(
                res.header("retry-after").is_some(),
                "{what}: Retry-After missing"
            );
        }
    }
    if let Some(status) = expect["key_status"].as_str() {
        eventually(
            &format!("{what}: key {status}"),
            Duration::from_secs(5),
            async || {
                let keys = admin(gw, "GET", "/api/keys", None).await.json();
                keys.as_array()
                    .unwrap()
                    .iter()
                    .any(|k| k["id"] == key_id && k["status"] == status)
            },
        )
        .await;
    }
}

fn expect_upstream_keys(fixture: &Value) -> Vec<String> {
    fixture["expect_upstream"]["body_has"]
        .as_array()
        .map(|keys| {
            keys.iter()
                .map(|k| k.as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// A gateway whose every platform's base URL points at `mock`, under `/<platform><real base path>`.
pub(crate) fn every_platform_on(mock: &Mock) -> Gateway {
    let root = mock.base_url().trim_end_matches("/v1").to_owned();
    let overrides: Vec<(String, String)> = PLATFORMS
        .iter()
        .map(|(p, base)| {
            (
                format!("FREELLMAPI_BASE_URL_{}", p.to_uppercase()),
                format!("{root}/{p}{base}"),
            )
        })
        .collect();
    let env: Vec<(&str, &str)> = overrides
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    Gateway::start(&env)
}

/// Adds a key whose bearer token is `token` (Cloudflare keys carry an account id before it); returns its id.
pub(crate) async fn add_keyed(gw: &Gateway, platform: &str, token: &str) -> i64 {
    let key = if platform == "cloudflare" {
        format!("account1:{token}")
    } else {
        token.to_owned()
    };
    add_platform_key(gw, platform, &key).await
}

#[actix_rt::test]
async fn every_platform_speaks_its_own_wire_format() {
    let mock = Mock::start();
    let gw = every_platform_on(&mock);
    let mut checked = 0;
    for (platform, base) in PLATFORMS {
        for (case, fixture) in fixtures(platform) {
            let token = format!("{platform}-{case}-key");
            let id = add_keyed(&gw, platform, &token).await;
            let reply = upstream_reply(&fixture["upstream"]);
            // A transient upstream error (the client then sees a 502) gets one second chance; the fixture's
            // upstream answers both.
            if fixture["expect"]["status"] == 502 {
                mock.push(&token, reply.clone());
            }
            mock.push(&token, reply);
            check(&gw, &mock, platform, base, &case, &fixture, id).await;
            assert_eq!(
                admin(&gw, "DELETE", &format!("/api/keys/{id}"), None)
                    .await
                    .status,
                204
            );
            checked += 1;
        }
    }
    assert!(checked >= 14 * 7, "only {checked} fixtures ran");
}

/// Probes each platform's key with the platform's own success, invalid-key and rate-limit answers.
#[actix_rt::test]
async fn every_platform_probe_classifies_its_answers() {
    let mock = Mock::start();
    let gw = every_platform_on(&mock);
    for (platform, base) in PLATFORMS {
        let token = format!("{platform}-probe-key");
        let id = add_keyed(&gw, platform, &token).await;
        let cases = fixtures(platform);
        let upstream = |case: &str| {
            cases
                .iter()
                .find(|(name, _)| name == case)
                .map(|(_, f)| f["upstream"].clone())
                .unwrap()
        };
        for (reply, status) in [
            (None, "healthy"),
            (Some("rate_limit"), "rate_limited"),
            (Some("invalid_key"), "invalid"),
        ] {
            if let Some(case) = reply {
                mock.push(&token, upstream_reply(&upstream(case)));
            }
            let res = admin(&gw, "POST", &format!("/api/keys/{id}/check"), None).await;
            assert_eq!(res.status, 200, "{platform}: {}", res.text());
            assert_eq!(
                res.json()["status"],
                status,
                "{platform} probe after {reply:?}: {}",
                res.text()
            );
            let seen = mock.requests().last().cloned().unwrap();
            assert!(
                seen.path.starts_with(&format!("/{platform}{base}/")),
                "{platform}: probe path {}",
                seen.path
            );
        }
    }
}
