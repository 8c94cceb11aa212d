//! The command line of interface.md: --version, gen-key, token, keys add/list/remove, and rotate-encryption-key.

use serde_json::json;

use crate::support::client::{add_custom_key, chat, chat_body};
use crate::support::gateway::{base_env, run_cli, Gateway, TempDir, TOKEN};
use crate::support::mock::Mock;

#[test]
fn version_help_and_gen_key() {
    let dir = TempDir::new();
    let env = base_env(&dir.0, &[]);
    let (status, out, _) = run_cli(&dir.0, &env, &["--version"]);
    assert!(status.success());
    assert_eq!(
        out.trim(),
        format!("freellmapi {}", env!("CARGO_PKG_VERSION"))
    );
    let (status, out, _) = run_cli(&dir.0, &env, &["--help"]);
    assert!(status.success() && out.contains("keys add") && out.contains("ENCRYPTION_KEY"));
    let (status, out, _) = run_cli(&dir.0, &env, &["gen-key"]);
    assert!(status.success());
    let key = out.trim();
    assert_eq!(key.len(), 64);
    assert!(key.chars().all(|c| c.is_ascii_hexdigit()));
    let (status, _, err) = run_cli(&dir.0, &env, &["frobnicate"]);
    assert_eq!(status.code(), Some(2));
    assert!(err.contains("unknown command"));
}

#[test]
fn token_prints_the_fixed_or_generated_key() {
    let dir = TempDir::new();
    let env = base_env(&dir.0, &[]);
    let (status, out, _) = run_cli(&dir.0, &env, &["token"]);
    assert!(status.success());
    assert_eq!(out.trim(), TOKEN);
    let fresh = TempDir::new();
    let mut env = base_env(&fresh.0, &[]);
    env.retain(|(k, _)| k != "FREELLMAPI_API_KEY" && k != "ENCRYPTION_KEY");
    let (_, first, _) = run_cli(&fresh.0, &env, &["token"]);
    let (_, second, _) = run_cli(&fresh.0, &env, &["token"]);
    assert!(first.trim().starts_with("freellmapi-"));
    assert_eq!(first, second, "the generated key is stored");
    assert!(fresh.0.join("data/encryption.key").exists());
}

#[test]
fn keys_add_list_remove() {
    let dir = TempDir::new();
    let env = base_env(&dir.0, &[]);
    let (status, out, err) = run_cli(
        &dir.0,
        &env,
        &[
            "keys",
            "add",
            "groq",
            "gsk_cli_secret_abcd",
            "--label",
            "main",
        ],
    );
    assert!(status.success(), "{err}");
    assert!(!out.contains("gsk_cli_secret_abcd"));
    let (_, list, _) = run_cli(&dir.0, &env, &["keys", "list"]);
    assert!(
        list.contains("groq") && list.contains("main") && list.contains("…abcd"),
        "{list}"
    );
    assert!(!list.contains("gsk_cli_secret"));
    let (status, _, err) = run_cli(
        &dir.0,
        &env,
        &["keys", "add", "groq", "gsk_cli_secret_abcd"],
    );
    assert!(!status.success() && err.contains("already stored"), "{err}");
    let (status, _, _) = run_cli(&dir.0, &env, &["keys", "remove", "1"]);
    assert!(status.success());
    let (_, list, _) = run_cli(&dir.0, &env, &["keys", "list"]);
    assert!(!list.contains("groq"));
    let (status, _, err) = run_cli(&dir.0, &env, &["keys", "remove", "1"]);
    assert!(!status.success() && err.contains("no key"));
}

#[actix_rt::test]
async fn rotate_encryption_key_reseals_the_stored_keys_with_the_server_stopped() {
    let mock = Mock::start();
    let mut gw = Gateway::start(&[]);
    add_custom_key(&gw, "rotated-secret", &mock.base_url(), json!(["a"])).await;
    assert_eq!(chat(&gw, &chat_body("a")).await.status, 200);
    let new_key = "44".repeat(32);
    let rotate = ["rotate-encryption-key", "--new-key", new_key.as_str()];

    let (status, _, err) = run_cli(gw.dir(), gw.env(), &rotate);
    assert!(!status.success());
    assert!(
        err.contains("stopped"),
        "refused while the server runs: {err}"
    );

    gw.stop();
    let (status, out, err) = run_cli(gw.dir(), gw.env(), &rotate);
    assert!(status.success(), "{err}");
    assert!(out.contains("re-encrypted 1 provider keys"), "{out}");
    assert!(!out.contains(&new_key) && !err.contains(&new_key));

    let old = gw.restart_with(&[]).unwrap_err();
    assert!(old.contains("does not match"), "{old}");
    gw.restart_with(&[("ENCRYPTION_KEY", &new_key)]).unwrap();
    let res = chat(&gw, &chat_body("a")).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(
        mock.count_for("rotated-secret"),
        2,
        "the key opens to the same secret"
    );
}

#[test]
fn healthcheck_exits_zero_only_while_the_server_answers() {
    let mut gw = Gateway::start(&[]);
    let port = gw.url("").rsplit(':').next().unwrap().to_owned();
    let mut env = gw.env().to_vec();
    env.retain(|(k, _)| k != "PORT" && k != "HOST");
    env.push(("PORT".into(), port));
    // The image listens on 0.0.0.0; the check must reach it over loopback.
    env.push(("HOST".into(), "0.0.0.0".into()));
    let dir = gw.dir().to_path_buf();
    let (status, out, err) = run_cli(&dir, &env, &["healthcheck"]);
    assert!(status.success(), "healthy server: {out}{err}");
    gw.stop();
    let (status, _, err) = run_cli(&dir, &env, &["healthcheck"]);
    assert_eq!(status.code(), Some(1));
    assert!(err.contains("cannot connect"), "{err}");
}
