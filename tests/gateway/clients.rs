//! Client keys through the real server: `/api/clients` creates (the key shown once), lists, changes and deletes
//! them; a client key opens only `/v1`, within its own limits (429 `client_quota_exceeded`) and model allowlist
//! (403 `model_not_allowed`); its use survives a restart; the request log, analytics and metrics name it.

use serde_json::{json, Value};

use crate::support::client::Reply;
use crate::support::client::{admin, chat_body, eventually, logged_requests, send, send_with};
use crate::support::gateway::{Gateway, TOKEN};
use crate::support::setup::gateway_on_mock;

use std::time::Duration;

fn anthropic(model: &str) -> Value {
    json!({"model": model, "max_tokens": 32, "messages": [{"role": "user", "content": "hi"}]})
}

/// A chat request for `model` made with `key`.
async fn ask(gw: &Gateway, key: &str, model: &str) -> Reply {
    let url = gw.url("/v1/chat/completions");
    send("POST", &url, Some(key), Some(&chat_body(model))).await
}

/// An Anthropic message request for `model` made with `key` in `x-api-key`.
async fn ask_anthropic(gw: &Gateway, key: &str, model: &str) -> Reply {
    let headers = [("x-api-key", key), ("anthropic-version", "2023-06-01")];
    send_with(
        "POST",
        &gw.url("/v1/messages"),
        None,
        &headers,
        Some(&anthropic(model)),
    )
    .await
}

/// Creates a client and answers its id and key.
async fn create(gw: &Gateway, body: Value) -> (i64, String) {
    let res = admin(gw, "POST", "/api/clients", Some(&body)).await;
    assert_eq!(res.status, 201, "{}", res.text());
    let made = res.json();
    (
        made["id"].as_i64().unwrap(),
        made["key"].as_str().unwrap().to_owned(),
    )
}

#[actix_rt::test]
async fn clients_are_created_listed_changed_and_deleted() {
    let (_mock, gw) = gateway_on_mock(&[("k1", json!(["first"]))]).await;
    for (bad, why) in [
        (json!({}), "name is required"),
        (json!({"name": "  "}), "empty name"),
        (json!({"name": "a", "rpm": -1}), "negative limit"),
        (json!({"name": "a", "tpd": "many"}), "not a number"),
        (json!({"name": "a", "models": "first"}), "not a list"),
        (json!({"name": "a", "colour": "red"}), "unknown field"),
    ] {
        let res = admin(&gw, "POST", "/api/clients", Some(&bad)).await;
        assert_eq!(res.status, 400, "{why}: {}", res.text());
        assert_eq!(
            res.json()["error"]["type"],
            "invalid_request_error",
            "{why}"
        );
    }

    let res = admin(
        &gw,
        "POST",
        "/api/clients",
        Some(&json!({"name": "partner", "models": ["first"], "rpm": 10, "tpd": 5000})),
    )
    .await;
    assert_eq!(res.status, 201, "{}", res.text());
    let made = res.json();
    let key = made["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("freellmapi-") && key.len() == 43, "{key}");
    let id = made["id"].as_i64().unwrap();

    let again = admin(
        &gw,
        "POST",
        "/api/clients",
        Some(&json!({"name": "partner"})),
    )
    .await;
    assert_eq!(
        again.status,
        409,
        "names tell clients apart: {}",
        again.text()
    );

    let listed = admin(&gw, "GET", "/api/clients", None).await;
    assert_eq!(listed.status, 200);
    assert!(!listed.text().contains(&key), "the key is shown only once");
    let row = &listed.json()[0];
    assert_eq!(row["name"], "partner");
    assert_eq!(row["masked"], format!("…{}", &key[key.len() - 4..]));
    assert_eq!(row["models"], json!(["first"]));
    assert_eq!(
        (row["rpm"].clone(), row["rpd"].clone()),
        (json!(10), Value::Null)
    );
    assert_eq!(row["enabled"], true);
    assert_eq!(row["used"], json!({"rpm": 0, "rpd": 0, "tpm": 0, "tpd": 0}));

    let path = format!("/api/clients/{id}");
    let patched = admin(
        &gw,
        "PATCH",
        &path,
        Some(&json!({"name": "team", "rpm": null})),
    )
    .await;
    assert_eq!(patched.status, 200, "{}", patched.text());
    assert_eq!(patched.json()["name"], "team");
    assert_eq!(patched.json()["rpm"], Value::Null);
    assert_eq!(patched.json()["tpd"], 5000, "fields not named are kept");
    let bad = admin(&gw, "PATCH", &path, Some(&json!({"enabled": "no"}))).await;
    assert_eq!(bad.status, 400);
    assert_eq!(
        admin(
            &gw,
            "PATCH",
            "/api/clients/999",
            Some(&json!({"name": "x"}))
        )
        .await
        .status,
        404
    );

    let ok = ask(&gw, &key, "first").await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(admin(&gw, "DELETE", &path, None).await.status, 204);
    let gone = ask(&gw, &key, "first").await;
    assert_eq!(gone.status, 401, "a deleted key stops working at once");
    assert_eq!(admin(&gw, "DELETE", &path, None).await.status, 404);
    assert_eq!(
        admin(&gw, "GET", "/api/clients", None).await.json(),
        json!([])
    );
}

#[actix_rt::test]
async fn a_client_key_opens_only_v1_and_is_named_in_the_log() {
    let (_mock, gw) = gateway_on_mock(&[("k1", json!(["first"]))]).await;
    let (id, key) = create(&gw, json!({"name": "partner"})).await;

    let res = ask(&gw, &key, "first").await;
    assert_eq!(res.status, 200, "{}", res.text());
    let res = ask_anthropic(&gw, &key, "first").await;
    assert_eq!(res.status, 200, "{}", res.text());
    for path in ["/api/keys", "/api/clients", "/metrics"] {
        let res = send("GET", &gw.url(path), Some(&key), None).await;
        assert_eq!(res.status, 401, "{path} is not for client keys");
    }

    let rows = logged_requests(&gw, 2).await;
    for row in rows.as_array().unwrap() {
        assert_eq!(row["client"], "partner", "{row}");
    }
    let res = ask(&gw, TOKEN, "first").await;
    assert_eq!(res.status, 200, "the unified key keeps full access");
    let rows = logged_requests(&gw, 3).await;
    assert_eq!(
        rows[0]["client"],
        Value::Null,
        "the owner's requests name no client"
    );

    let analytics = admin(&gw, "GET", "/api/analytics", None).await.json();
    let by_client = analytics["by_client"].as_array().unwrap();
    assert_eq!(by_client.len(), 1, "{analytics}");
    assert_eq!(by_client[0]["client"], "partner");
    assert_eq!(by_client[0]["requests"], 2);
    let metrics = admin(&gw, "GET", "/metrics", None).await.text();
    assert!(
        metrics.contains("client=\"partner\""),
        "metrics name the client:\n{metrics}"
    );

    let path = format!("/api/clients/{id}");
    admin(&gw, "PATCH", &path, Some(&json!({"enabled": false}))).await;
    let res = ask(&gw, &key, "first").await;
    assert_eq!(res.status, 401, "a disabled key stops working at once");
    admin(&gw, "PATCH", &path, Some(&json!({"enabled": true}))).await;
    let res = ask(&gw, &key, "first").await;
    assert_eq!(res.status, 200, "and works again once enabled");
}

#[actix_rt::test]
async fn each_limit_refuses_with_client_quota_exceeded_and_retry_after() {
    let (_mock, gw) = gateway_on_mock(&[("k1", json!(["first"]))]).await;
    for (limit, window) in [("rpm", 60), ("rpd", 86_400), ("tpm", 60), ("tpd", 86_400)] {
        // One request fits (a token limit of 1 admits the first request, whose answer spends 18 tokens).
        let (_, key) = create(&gw, json!({"name": limit, limit: 1})).await;
        let ok = ask(&gw, &key, "first").await;
        assert_eq!(ok.status, 200, "{limit}: {}", ok.text());
        let refused = ask(&gw, &key, "first").await;
        assert_eq!(refused.status, 429, "{limit}: {}", refused.text());
        let body = refused.json();
        assert_eq!(body["error"]["type"], "rate_limit_error", "{limit}");
        assert_eq!(body["error"]["code"], "client_quota_exceeded", "{limit}");
        let wait: u64 = refused.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=window).contains(&wait), "{limit}: retry after {wait}s");
    }
    let listed = admin(&gw, "GET", "/api/clients", None).await.json();
    let tpd = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "tpd")
        .unwrap();
    assert_eq!(
        tpd["used"]["tpd"], 18,
        "tokens counted from the answer's usage"
    );
    assert_eq!(tpd["used"]["rpd"], 1, "a refused request is not counted");

    let (_, key) = create(&gw, json!({"name": "anthropic", "rpd": 0})).await;
    let refused = ask_anthropic(&gw, &key, "first").await;
    assert_eq!(refused.status, 429);
    assert!(refused.header("retry-after").is_some());
    assert_eq!(
        refused.json()["type"],
        "error",
        "Anthropic's shape on /v1/messages"
    );
    assert_eq!(refused.json()["error"]["type"], "rate_limit_error");
}

#[actix_rt::test]
async fn the_allowlist_takes_models_aliases_and_platform_model() {
    let (_mock, gw) =
        gateway_on_mock(&[("k1", json!(["first"])), ("k2", json!(["second", "third"]))]).await;
    let aliases = json!([{"name": "team", "targets": ["third"]}]);
    assert_eq!(
        admin(&gw, "PUT", "/api/aliases", Some(&aliases))
            .await
            .status,
        200
    );
    let (_, key) = create(
        &gw,
        json!({"name": "narrow", "models": ["first", "team", "custom/second"]}),
    )
    .await;
    for model in ["first", "team", "custom/second"] {
        let res = ask(&gw, &key, model).await;
        assert_eq!(res.status, 200, "{model}: {}", res.text());
    }
    for model in ["second", "third", "auto", "custom/first"] {
        let res = ask(&gw, &key, model).await;
        assert_eq!(res.status, 403, "{model}: {}", res.text());
        assert_eq!(res.json()["error"]["type"], "permission_error");
        assert_eq!(res.json()["error"]["code"], "model_not_allowed");
    }
    let res = ask(&gw, TOKEN, "third").await;
    assert_eq!(res.status, 200, "the unified key has no allowlist");
    let listed = send("GET", &gw.url("/v1/models"), Some(&key), None).await;
    assert_eq!(listed.status, 200, "{}", listed.text());
    let mut ids: Vec<String> = listed.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        ["first", "second", "team"],
        "a client lists only its models"
    );
    let one = send("GET", &gw.url("/v1/models/third"), Some(&key), None).await;
    assert_eq!(one.status, 404);
    let rows = logged_requests(&gw, 8).await;
    let refused: Vec<&Value> = rows
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == 403)
        .collect();
    assert_eq!(refused.len(), 4, "refusals are logged too: {rows}");
    assert!(refused.iter().all(|r| r["client"] == "narrow"));
}

#[actix_rt::test]
async fn client_usage_survives_a_restart() {
    let (_mock, mut gw) = gateway_on_mock(&[("k1", json!(["first"]))]).await;
    let (_, key) = create(&gw, json!({"name": "daily", "rpd": 2})).await;
    for _ in 0..2 {
        let res = ask(&gw, &key, "first").await;
        assert_eq!(res.status, 200, "{}", res.text());
    }
    gw.restart_with(&[]).unwrap();
    let mut used = Value::Null;
    eventually("the clients to load", Duration::from_secs(5), async || {
        let res = admin(&gw, "GET", "/api/clients", None).await;
        used = res.json()[0]["used"].clone();
        res.status == 200
    })
    .await;
    assert_eq!(used["rpd"], 2, "{used}");
    let refused = ask(&gw, &key, "first").await;
    assert_eq!(refused.status, 429, "{}", refused.text());
    assert_eq!(refused.json()["error"]["code"], "client_quota_exceeded");
}
