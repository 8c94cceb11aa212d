//! Aliases and one id per open model through the real server: `PUT /api/aliases` validates and stores names that
//! try their targets in order (with failover between them), Claude Code's `claude-…` names use an alias of that
//! name, and an open model served by several platforms answers to its provider-neutral id on each of them.

use serde_json::{json, Value};

use crate::support::client::{add_platform_key, admin, chat, send};
use crate::support::gateway::{Gateway, TOKEN};
use crate::support::mock::{Mock, Reply};
use crate::support::setup::gateway_on_mock;

fn ask(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": format!("hello {model}")}]})
}

#[actix_rt::test]
async fn an_alias_tries_its_targets_in_order_and_bad_ones_are_refused() {
    let (mock, gw) = gateway_on_mock(&[
        ("k1", json!(["first"])),
        ("k2", json!([{"id": "second", "tools": false}])),
    ])
    .await;
    let aliases = json!([{"name": "team-default", "targets": ["custom/first", "second"]},
        {"name": "claude-sonnet-4-5", "targets": ["second"]}]);
    let put = admin(&gw, "PUT", "/api/aliases", Some(&aliases)).await;
    assert_eq!(put.status, 200, "{}", put.text());
    assert_eq!(
        admin(&gw, "GET", "/api/aliases", None).await.json(),
        aliases
    );

    mock.push("k1", Reply::Answer("one".into()));
    let res = chat(&gw, &ask("team-default")).await;
    assert_eq!(res.header("x-routed-via").as_deref(), Some("custom/first"));
    mock.push("k1", Reply::error(500, "server_error", "down"));
    mock.push("k2", Reply::Answer("two".into()));
    let res = chat(&gw, &ask("team-default")).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.header("x-routed-via").as_deref(), Some("custom/second"));
    assert_eq!(res.header("x-fallback-attempts").as_deref(), Some("1"));

    let tool = json!([{"type": "function", "function": {"name": "f", "parameters": {}}}]);
    mock.push("k1", Reply::Answer("tools".into()));
    let mut with_tools = ask("team-default");
    with_tools["tools"] = tool;
    let res = chat(&gw, &with_tools).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(
        res.header("x-fallback-attempts"),
        None,
        "capabilities filter an alias's targets too"
    );

    mock.push("k2", Reply::Answer("as claude".into()));
    let claude = json!({"model": "claude-sonnet-4-5", "max_tokens": 64,
        "messages": [{"role": "user", "content": "hi"}]});
    let res = send("POST", &gw.url("/v1/messages"), Some(TOKEN), Some(&claude)).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.header("x-routed-via").as_deref(), Some("custom/second"));

    let listed = send("GET", &gw.url("/v1/models"), Some(TOKEN), None)
        .await
        .json();
    let entry = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "team-default")
        .cloned()
        .unwrap();
    assert_eq!(entry["aliases"], json!(["custom/first", "custom/second"]));

    for (bad, why) in [
        (json!([{"name": "auto", "targets": ["first"]}]), "reserved"),
        (json!([{"name": "groq", "targets": ["first"]}]), "reserved"),
        (
            json!([{"name": "first", "targets": ["second"]}]),
            "already names a model",
        ),
        (
            json!([{"name": "x", "targets": ["nowhere"]}]),
            "names no model",
        ),
        (json!([{"name": "x", "targets": []}]), "at least one target"),
        (
            json!([{"name": "x", "targets": ["first"]}, {"name": "x", "targets": ["first"]}]),
            "twice",
        ),
        (json!({"name": "x"}), "Expected"),
    ] {
        let res = admin(&gw, "PUT", "/api/aliases", Some(&bad)).await;
        assert_eq!(res.status, 400, "{bad}: {}", res.text());
        assert!(res.text().contains(why), "{bad}: {}", res.text());
    }
    assert_eq!(
        admin(&gw, "GET", "/api/aliases", None).await.json(),
        aliases,
        "a refused list changes nothing"
    );
}

#[actix_rt::test]
async fn an_open_model_answers_to_one_id_on_every_platform_serving_it() {
    let mock = Mock::start();
    let base = mock.base_url();
    let gw = Gateway::start(&[
        ("FREELLMAPI_BASE_URL_GROQ", &base),
        ("FREELLMAPI_BASE_URL_CEREBRAS", &base),
    ]);
    add_platform_key(&gw, "groq", "gsk-oss-0001").await;
    add_platform_key(&gw, "cerebras", "csk-oss-0001").await;
    mock.push("csk-oss-0001", Reply::error(500, "server_error", "down"));
    mock.push("gsk-oss-0001", Reply::Answer("from groq".into()));
    let res = chat(&gw, &ask("gpt-oss-120b")).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(
        res.header("x-routed-via").as_deref(),
        Some("groq/openai/gpt-oss-120b"),
        "Groq's own id for the model answers to the neutral one"
    );
    let seen: Vec<String> = mock
        .requests()
        .iter()
        .map(|r| r.body["model"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        seen,
        ["gpt-oss-120b", "openai/gpt-oss-120b"],
        "each platform gets its own id"
    );
    let one = send("GET", &gw.url("/v1/models/gpt-oss-120b"), Some(TOKEN), None)
        .await
        .json();
    assert_eq!(
        one["aliases"],
        json!(["cerebras/gpt-oss-120b", "groq/openai/gpt-oss-120b"])
    );
}
