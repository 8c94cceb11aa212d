//! Key material never leaks: a whole session with distinctive secrets, then every output is searched.

use std::time::Duration;

use serde_json::json;

use crate::support::client::{add_custom_key, admin, chat, chat_body, logged_requests, send};
use crate::support::gateway::{Gateway, TOKEN};
use crate::support::mock::{Mock, Reply};

const PROVIDER_KEY: &str = "sk-audit-7f3e9d2c1b0a5e4d";
const ENCRYPTION_KEY: &str = "c0ffee00c0ffee11c0ffee22c0ffee33c0ffee44c0ffee55c0ffee66c0ffee77";

#[actix_rt::test]
async fn no_output_contains_key_material() {
    let mock = Mock::start();
    let mut gw = Gateway::start(&[("ENCRYPTION_KEY", ENCRYPTION_KEY), ("RUST_LOG", "debug")]);
    let echo = format!(
        "Incorrect API key provided: {PROVIDER_KEY}. You can find your API key in your account."
    );
    let mut outputs = Vec::new();

    let id = add_custom_key(&gw, PROVIDER_KEY, &mock.base_url(), json!(["a"])).await;
    mock.push(PROVIDER_KEY, Reply::error(401, "invalid_api_key", &echo));
    let failed = chat(&gw, &chat_body("a")).await;
    assert_eq!(failed.status, 502);
    outputs.push(failed.text());
    mock.push(PROVIDER_KEY, Reply::error(401, "invalid_api_key", &echo));
    let checked = admin(&gw, "POST", &format!("/api/keys/{id}/check"), None).await;
    assert_eq!(checked.json()["status"], "invalid");
    outputs.push(checked.text());
    assert_eq!(
        admin(&gw, "POST", &format!("/api/keys/{id}/check"), None)
            .await
            .json()["status"],
        "healthy"
    );
    mock.push(
        PROVIDER_KEY,
        Reply::stream(&["all", " good"], Duration::ZERO),
    );
    let mut streamed = chat_body("a");
    streamed["stream"] = json!(true);
    outputs.push(chat(&gw, &streamed).await.text());
    logged_requests(&gw, 2).await;
    for path in [
        "/api/keys",
        "/api/requests?limit=10",
        "/api/budgets",
        "/api/chain",
        "/api/analytics?range=24h",
    ] {
        let res = admin(&gw, "GET", path, None).await;
        outputs.push(format!("{:?} {}", res.headers, res.text()));
    }
    outputs.push(
        send("GET", &gw.url("/v1/models"), Some(TOKEN), None)
            .await
            .text(),
    );
    assert!(
        outputs[0].contains("provided: [redacted]. You can"),
        "the provider's reason survives, masked: {}",
        outputs[0]
    );
    gw.stop();
    outputs.push(gw.logs());
    let db = std::fs::read(gw.dir().join("data/freellmapi.db")).unwrap();
    outputs.push(String::from_utf8_lossy(&db).into_owned());

    for (i, output) in outputs.iter().enumerate() {
        for secret in [PROVIDER_KEY, ENCRYPTION_KEY, TOKEN] {
            assert!(
                !output.contains(secret),
                "output {i} contains a secret: {output}"
            );
        }
    }
}

/// The shortest piece of a secret that may never appear in any output.
const FRAGMENT: usize = 8;

/// Every `FRAGMENT`-character piece of `secret` that `output` contains.
fn fragments_in<'a>(secret: &'a str, output: &str) -> Vec<&'a str> {
    (0..=secret.len() - FRAGMENT)
        .map(|i| &secret[i..i + FRAGMENT])
        .filter(|piece| output.contains(piece))
        .collect()
}

#[actix_rt::test]
async fn an_echoed_key_is_masked_in_part_as_well_as_whole() {
    const ECHOED: &str = "sk-7Hq2vN9pLw4Zr8Tk1Bx6Jm3Fd5Yc0A";
    let mock = Mock::start();
    let mut gw = Gateway::start(&[]);
    let id = add_custom_key(&gw, ECHOED, &mock.base_url(), json!(["a"])).await;
    // The key straddles the 300th character, where messages are shortened, and a second message carries two
    // pieces of it with other text around them.
    let straddling = format!("{}{ECHOED}", "x".repeat(269));
    let pieces = format!("key begins {} and ends {}", &ECHOED[..12], &ECHOED[20..]);
    let mut outputs = Vec::new();
    for echo in [&straddling, &pieces] {
        mock.push(ECHOED, Reply::error(401, "invalid_api_key", echo));
        let failed = chat(&gw, &chat_body("a")).await;
        assert_eq!(failed.status, 502, "{}", failed.text());
        outputs.push(failed.text());
        mock.push(ECHOED, Reply::error(401, "invalid_api_key", echo));
        let checked = admin(&gw, "POST", &format!("/api/keys/{id}/check"), None).await;
        assert_eq!(checked.json()["status"], "invalid", "{}", checked.text());
        outputs.push(checked.text());
        outputs.push(admin(&gw, "GET", "/api/keys", None).await.text());
        let healthy = admin(&gw, "POST", &format!("/api/keys/{id}/check"), None).await;
        assert_eq!(healthy.json()["status"], "healthy", "{}", healthy.text());
    }
    assert!(
        outputs[0].contains("xxxx") && outputs[0].contains("[redacted]"),
        "the provider's words survive, the key masked: {}",
        outputs[0]
    );
    outputs.push(logged_requests(&gw, 2).await.to_string());
    gw.stop();
    outputs.push(gw.logs());
    for file in ["freellmapi.db", "freellmapi.db-wal"] {
        if let Ok(bytes) = std::fs::read(gw.dir().join("data").join(file)) {
            outputs.push(String::from_utf8_lossy(&bytes).into_owned());
        }
    }
    for (i, output) in outputs.iter().enumerate() {
        let leaked = fragments_in(ECHOED, output);
        assert!(leaked.is_empty(), "output {i} holds {leaked:?}: {output}");
    }
}
