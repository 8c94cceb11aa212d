//! A custom key added without `models` lists them from `GET {base_url}/models` (OpenAI's shape, a bare array or
//! Ollama's); when the server cannot list them, the key is refused with the reason.

use serde_json::json;

use crate::support::client::{admin, chat, chat_body};
use crate::support::gateway::{base_env, run_cli, Gateway, TempDir};
use crate::support::mock::{refusing_base_url, Mock, Reply};

#[actix_rt::test]
async fn a_custom_key_without_models_discovers_them() {
    let mock = Mock::start();
    let gw = Gateway::start(&[]);
    let list = json!({"object": "list", "data": [{"id": "found-a"}, {"id": "found-b"}]});
    mock.push("sk-disc", Reply::body(200, list.to_string()));
    let body = json!({"platform": "custom", "key": "sk-disc", "base_url": mock.base_url()});
    let res = admin(&gw, "POST", "/api/keys", Some(&body)).await;
    assert_eq!(res.status, 201, "{}", res.text());
    assert_eq!(
        res.json()["models"],
        json!([{"id": "found-a"}, {"id": "found-b"}])
    );
    let listing = &mock.requests()[0];
    assert_eq!(
        (listing.method.as_str(), listing.path.as_str()),
        ("GET", "/v1/models")
    );
    assert_eq!(listing.key, "sk-disc");
    let res = chat(&gw, &chat_body("found-b")).await;
    assert_eq!(res.status, 200, "{}", res.text());

    let ollama = json!({"models": [{"name": "llama3:8b"}]});
    mock.push("sk-ollama", Reply::body(200, ollama.to_string()));
    let body = json!({"platform": "custom", "key": "sk-ollama", "base_url": mock.base_url()});
    let res = admin(&gw, "POST", "/api/keys", Some(&body)).await;
    assert_eq!(res.status, 201, "{}", res.text());
    assert_eq!(res.json()["models"], json!([{"id": "llama3:8b"}]));
}

#[actix_rt::test]
async fn a_failing_discovery_is_a_400_with_the_reason() {
    let mock = Mock::start();
    let gw = Gateway::start(&[]);
    mock.push("sk-fail", Reply::error(500, "boom", "server error"));
    let body = json!({"platform": "custom", "key": "sk-fail", "base_url": mock.base_url()});
    let res = admin(&gw, "POST", "/api/keys", Some(&body)).await;
    assert_eq!(res.status, 400, "{}", res.text());
    let message = res.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains("HTTP 500") && message.contains("'models'"),
        "{message}"
    );

    let body = json!({"platform": "custom", "key": "sk-empty", "base_url": mock.base_url()});
    let res = admin(&gw, "POST", "/api/keys", Some(&body)).await;
    assert_eq!(res.status, 400, "{}", res.text());
    assert!(res.text().contains("no models"), "{}", res.text());

    let body = json!({"platform": "custom", "key": "sk-gone", "base_url": refusing_base_url()});
    let res = admin(&gw, "POST", "/api/keys", Some(&body)).await;
    assert_eq!(res.status, 400, "{}", res.text());
    assert!(!res.text().contains("sk-gone"), "{}", res.text());
    assert!(!gw.logs().contains("sk-fail") && !gw.logs().contains("sk-gone"));
    assert_eq!(admin(&gw, "GET", "/api/keys", None).await.json(), json!([]));
}

#[actix_rt::test]
async fn the_cli_discovers_a_custom_keys_models() {
    let mock = Mock::start();
    mock.push(
        "sk-cli",
        Reply::body(200, json!(["cli-a", "cli-b"]).to_string()),
    );
    let dir = TempDir::new();
    let env = base_env(&dir.0, &[]);
    let url = mock.base_url();
    let args = ["keys", "add", "custom", "sk-cli", "--base-url", &url];
    let (status, out, err) = run_cli(&dir.0, &env, &args);
    assert!(status.success(), "{err}");
    assert!(out.contains("cli-a") && out.contains("cli-b"), "{out}");
    assert!(!out.contains("sk-cli") && !err.contains("sk-cli"));
    let (_, list, _) = run_cli(&dir.0, &env, &["keys", "list"]);
    assert!(list.contains("custom"), "{list}");
}
