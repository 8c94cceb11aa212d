//! Startup problems stop the server with a message that says what to do, and a stop flushes pending writes.

use serde_json::json;

use crate::support::client::{add_custom_key, admin, chat, chat_body};
use crate::support::gateway::{base_env, run_cli, Gateway, TempDir};
use crate::support::mock::Mock;

#[test]
fn port_in_use_is_explained() {
    let running = Gateway::start(&[]);
    let port = running.url("").rsplit(':').next().unwrap().to_owned();
    let dir = TempDir::new();
    let env = base_env(&dir.0, &[("PORT", &port)]);
    let (status, _, err) = run_cli(&dir.0, &env, &["serve"]);
    assert!(!status.success());
    assert!(
        err.contains("cannot listen") && err.contains("PORT"),
        "{err}"
    );
}

#[test]
fn a_second_server_on_the_same_database_is_refused() {
    let running = Gateway::start(&[]);
    let (status, _, err) = run_cli(running.dir(), running.env(), &["serve"]);
    assert!(!status.success());
    assert!(err.contains("another freellmapi server"), "{err}");
}

#[test]
fn unusable_data_dir_and_corrupt_database_are_explained() {
    let dir = TempDir::new();
    std::fs::write(dir.0.join("file"), b"x").unwrap();
    let env = base_env(
        &dir.0,
        &[(
            "DATABASE_URL",
            &dir.0.join("file/sub/db.sqlite").display().to_string(),
        )],
    );
    let (status, _, err) = run_cli(&dir.0, &env, &["serve"]);
    assert!(!status.success());
    assert!(err.contains("DATABASE_URL"), "{err}");

    let corrupt = dir.0.join("corrupt.db");
    std::fs::write(&corrupt, vec![0x42u8; 8192]).unwrap();
    let env = base_env(&dir.0, &[("DATABASE_URL", &corrupt.display().to_string())]);
    let (status, _, err) = run_cli(&dir.0, &env, &["serve"]);
    assert!(!status.success());
    assert!(err.contains("not a valid freellmapi database"), "{err}");
}

#[actix_rt::test]
async fn graceful_stop_flushes_the_request_log() {
    let mock = Mock::start();
    let mut gw = Gateway::start(&[]);
    add_custom_key(&gw, "k1", &mock.base_url(), json!(["a"])).await;
    assert_eq!(chat(&gw, &chat_body("a")).await.status, 200);
    let status = gw.stop().unwrap();
    assert!(status.success(), "a SIGTERM stop exits cleanly: {status:?}");
    gw.restart_with(&[]).unwrap();
    let rows = admin(&gw, "GET", "/api/requests?limit=5", None)
        .await
        .json();
    assert_eq!(rows.as_array().map(Vec::len), Some(1), "{rows}");
}

#[actix_rt::test]
async fn log_format_json_writes_one_object_per_line() {
    let mock = Mock::start();
    let mut gw = Gateway::start(&[("LOG_FORMAT", "json")]);
    add_custom_key(&gw, "sk-json-log", &mock.base_url(), json!(["m1"])).await;
    gw.stop();
    let logs = gw.logs();
    let lines: Vec<&str> = logs.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.len() >= 2, "{logs}");
    for line in &lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            v["ts"].is_string() && v["level"].is_string() && v["target"].is_string(),
            "{line}"
        );
    }
    assert!(logs.contains("listening on http://"));

    let dir = TempDir::new();
    let env = base_env(&dir.0, &[("LOG_FORMAT", "yaml")]);
    let (status, _, err) = run_cli(&dir.0, &env, &["serve"]);
    assert!(!status.success());
    assert!(err.contains("LOG_FORMAT=yaml: use text or json"), "{err}");
}
