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

/// Permission bits of a file in the gateway's data directory.
fn mode_of(gw: &Gateway, name: &str) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    let path = gw.dir().join("data").join(name);
    let meta = std::fs::metadata(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    meta.permissions().mode() & 0o777
}

#[actix_rt::test]
async fn the_data_files_are_private_to_the_owner() {
    let mock = Mock::start();
    let mut gw = Gateway::start(&[("ENCRYPTION_KEY", "")]);
    add_custom_key(&gw, "k1", &mock.base_url(), json!(["a"])).await;
    assert_eq!(chat(&gw, &chat_body("a")).await.status, 200);
    for name in [
        "freellmapi.db",
        "freellmapi.db-wal",
        "freellmapi.db-shm",
        "freellmapi.db.lock",
        "encryption.key",
    ] {
        assert_eq!(mode_of(&gw, name), 0o600, "{name}");
    }
    assert_eq!(mode_of(&gw, ""), 0o700, "the data directory it created");
    gw.stop();
    // Files an older version left readable by others are made private on the next start.
    for name in ["freellmapi.db", "freellmapi.db.lock"] {
        use std::os::unix::fs::PermissionsExt;
        let path = gw.dir().join("data").join(name);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    gw.restart_with(&[]).unwrap();
    assert_eq!(admin(&gw, "GET", "/api/keys", None).await.status, 200);
    for name in ["freellmapi.db", "freellmapi.db-wal", "freellmapi.db.lock"] {
        assert_eq!(mode_of(&gw, name), 0o600, "{name} after a restart");
    }
}

#[test]
fn an_unusable_upstream_ca_file_is_explained() {
    let dir = TempDir::new();
    let not_pem = dir.0.join("ca.pem");
    std::fs::write(&not_pem, b"not a certificate").unwrap();
    for path in [not_pem.display().to_string(), "/nowhere/ca.pem".to_owned()] {
        let env = base_env(&dir.0, &[("UPSTREAM_CA_FILE", &path)]);
        let (status, _, err) = run_cli(&dir.0, &env, &["serve"]);
        assert!(!status.success());
        assert!(
            err.contains("UPSTREAM_CA_FILE") && err.contains("PEM"),
            "{err}"
        );
    }
}
