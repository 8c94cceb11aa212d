//! Keys are encrypted at rest and survive restarts; a wrong ENCRYPTION_KEY refuses to start and touches nothing.

use std::path::Path;

use serde_json::json;

use crate::support::client::{add_custom_key, admin, chat, chat_body};
use crate::support::gateway::{base_env, run_cli, Gateway};
use crate::support::mock::Mock;

#[actix_rt::test]
async fn keys_survive_a_restart_and_are_never_shown_or_stored_in_clear() {
    let mock = Mock::start();
    let mut gw = Gateway::start(&[]);
    let secret = "sk-distinctive-secret-7f3a9c";
    let body =
        json!({"platform": "custom", "key": secret, "base_url": mock.base_url(), "models": ["a"]});
    let added = admin(&gw, "POST", "/api/keys", Some(&body)).await;
    assert_eq!(added.status, 201, "{}", added.text());
    assert!(!added.text().contains(secret), "{}", added.text());
    assert_eq!(added.json()["masked"], "…3a9c");
    let listed = admin(&gw, "GET", "/api/keys", None).await;
    assert!(!listed.text().contains(secret));
    assert_eq!(listed.json()[0]["masked"], "…3a9c");
    let first_run = gw.logs();
    gw.restart_with(&[]).unwrap();
    let res = chat(&gw, &chat_body("a")).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(mock.requests()[0].key, secret);
    gw.stop();
    for (name, bytes) in snapshot(&gw.dir().join("data")) {
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "the key is not stored in clear in {name}"
        );
    }
    assert!(
        gw.logs().starts_with(&first_run) && gw.logs().len() > first_run.len(),
        "both runs' logs are searched"
    );
    assert!(!gw.logs().contains(secret), "the key is never logged");
}

/// Every file under `dir` with its bytes, sorted by name.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    files.sort();
    files
}

#[actix_rt::test]
async fn wrong_encryption_key_refuses_to_start_and_changes_nothing() {
    let mock = Mock::start();
    let mut gw = Gateway::start(&[]);
    add_custom_key(&gw, "k1", &mock.base_url(), json!(["a"])).await;
    gw.stop();
    let data = gw.dir().join("data");
    let before = snapshot(&data);
    assert!(before.iter().any(|(name, _)| name == "freellmapi.db"));
    let wrong = "ff".repeat(32);
    for (key, says) in [(wrong.as_str(), "ENCRYPTION_KEY"), ("tooshort", "gen-key")] {
        let env = base_env(gw.dir(), &[("ENCRYPTION_KEY", key)]);
        let (status, _, err) = run_cli(gw.dir(), &env, &["serve"]);
        assert!(
            status.code().is_some_and(|c| c != 0),
            "must exit non-zero at once with ENCRYPTION_KEY={key}: {status:?}\n{err}"
        );
        assert!(
            err.contains("ENCRYPTION_KEY") && err.contains(says),
            "{err}"
        );
        assert!(
            snapshot(&data) == before,
            "the data directory is untouched after ENCRYPTION_KEY={key}"
        );
    }
    gw.restart_with(&[]).unwrap();
    let res = chat(&gw, &chat_body("a")).await;
    assert_eq!(
        res.status,
        200,
        "the right key still opens everything: {}",
        res.text()
    );
}
