//! A catalog that keeps up: `CATALOG_PATH` is merged over the embedded catalog and edits apply without a restart;
//! a bad file stops startup, a bad edit keeps the catalog in force; catalog models the chain has never been
//! offered join its end, and ones the user removed stay removed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::client::{add_platform_key, admin, chat, chat_body, eventually, send};
use crate::support::gateway::{base_env, run_cli, Gateway, TempDir, TOKEN};
use crate::support::mock::Mock;

/// A catalog file whose models are groq models with these ids.
fn write_catalog(path: &Path, models: &[&str]) {
    let models: Vec<Value> = models
        .iter()
        .map(|m| json!({"platform": "groq", "model": m, "context": 8192, "limits": {"rpm": 30}}))
        .collect();
    std::fs::write(path, json!({"models": models}).to_string()).unwrap();
}

fn catalog_file(dir: &TempDir) -> PathBuf {
    dir.0.join("catalog.json")
}

async fn listed_ids(gw: &Gateway) -> Vec<String> {
    let res = send("GET", &gw.url("/v1/models"), Some(TOKEN), None).await;
    res.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["id"].as_str().map(str::to_owned))
        .collect()
}

async fn chain_pairs(gw: &Gateway) -> Vec<String> {
    admin(gw, "GET", "/api/chain", None)
        .await
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{}/{}",
                e["platform"].as_str().unwrap(),
                e["model"].as_str().unwrap()
            )
        })
        .collect()
}

/// Removes `model` from the chain as a user would, with `PUT /api/chain`.
async fn remove_from_chain(gw: &Gateway, model: &str) {
    let chain = admin(gw, "GET", "/api/chain", None).await.json();
    let kept: Vec<&Value> = chain
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["model"] != model)
        .collect();
    let res = admin(gw, "PUT", "/api/chain", Some(&json!(kept))).await;
    assert_eq!(res.status, 200, "{}", res.text());
}

#[actix_rt::test]
async fn an_edit_is_picked_up_live_and_a_broken_one_keeps_the_catalog() {
    let mock = Mock::start();
    let files = TempDir::new();
    let path = catalog_file(&files);
    write_catalog(&path, &["groq-extra-1"]);
    let gw = Gateway::start(&[
        ("FREELLMAPI_BASE_URL_GROQ", &mock.base_url()),
        ("CATALOG_PATH", &path.display().to_string()),
    ]);
    add_platform_key(&gw, "groq", "gsk_live").await;
    let ids = listed_ids(&gw).await;
    assert!(ids.contains(&"groq-extra-1".to_owned()), "{ids:?}");
    assert!(!ids.contains(&"groq-extra-2".to_owned()), "{ids:?}");
    let before = chat(&gw, &chat_body("groq-extra-2")).await;
    assert_ne!(before.status, 200, "{}", before.text());

    write_catalog(&path, &["groq-extra-1", "groq-extra-2"]);
    eventually(
        "the edit is picked up",
        Duration::from_secs(10),
        async || listed_ids(&gw).await.contains(&"groq-extra-2".to_owned()),
    )
    .await;
    let res = chat(&gw, &chat_body("groq-extra-2")).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(
        mock.requests().last().unwrap().body["model"],
        "groq-extra-2"
    );

    std::fs::write(&path, "{\"models\": [ {\"platform\": \"groq\"").unwrap();
    eventually(
        "the broken edit is reported",
        Duration::from_secs(10),
        async || gw.logs().contains("the catalog in force stays"),
    )
    .await;
    assert!(
        gw.logs().contains(&path.display().to_string()),
        "{}",
        gw.logs()
    );
    assert!(listed_ids(&gw).await.contains(&"groq-extra-2".to_owned()));
    let res = chat(&gw, &chat_body("groq-extra-2")).await;
    assert_eq!(res.status, 200, "{}", res.text());
}

#[test]
fn a_missing_or_broken_catalog_file_stops_startup_naming_it() {
    let dir = TempDir::new();
    let path = catalog_file(&dir);
    let shown = path.display().to_string();
    let env = base_env(&dir.0, &[("CATALOG_PATH", &shown)]);
    let (status, _, err) = run_cli(&dir.0, &env, &["serve"]);
    assert!(!status.success());
    assert!(
        err.contains(&shown) && err.contains("cannot be read"),
        "{err}"
    );

    std::fs::write(&path, r#"{"models": [{"platform": "groq", "model": "x"}]}"#).unwrap();
    let (status, _, err) = run_cli(&dir.0, &env, &["serve"]);
    assert!(!status.success());
    assert!(err.contains(&shown) && err.contains("context"), "{err}");
}

#[actix_rt::test]
async fn new_catalog_models_join_the_chain_and_removed_ones_stay_removed() {
    let files = TempDir::new();
    let path = catalog_file(&files);
    write_catalog(&path, &[]);
    let mut gw = Gateway::start(&[("CATALOG_PATH", &path.display().to_string())]);
    let seeded = chain_pairs(&gw).await;
    let removed = "groq/llama-3.3-70b-versatile".to_owned();
    assert!(seeded.contains(&removed), "{seeded:?}");
    remove_from_chain(&gw, "llama-3.3-70b-versatile").await;

    // A live edit that adds a model.
    write_catalog(&path, &["groq-new-1"]);
    eventually(
        "the new model joins the chain",
        Duration::from_secs(10),
        async || chain_pairs(&gw).await.last().map(String::as_str) == Some("groq/groq-new-1"),
    )
    .await;
    assert!(!chain_pairs(&gw).await.contains(&removed));

    // A "new release": a restart whose catalog adds another model.
    write_catalog(&path, &["groq-new-1", "groq-new-2"]);
    gw.restart_with(&[]).unwrap();
    let chain = chain_pairs(&gw).await;
    assert_eq!(chain.len(), seeded.len() + 1, "{chain:?}");
    assert_eq!(
        &chain[chain.len() - 2..],
        ["groq/groq-new-1", "groq/groq-new-2"]
    );
    assert!(
        !chain.contains(&removed),
        "a removed model stays removed: {chain:?}"
    );

    // Removing a model that joined keeps it out across restarts too.
    remove_from_chain(&gw, "groq-new-1").await;
    gw.restart_with(&[]).unwrap();
    let chain = chain_pairs(&gw).await;
    assert!(
        !chain.contains(&"groq/groq-new-1".to_owned()) && !chain.contains(&removed),
        "{chain:?}"
    );
}
