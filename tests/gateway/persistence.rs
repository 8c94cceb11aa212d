//! Keys are encrypted at rest and survive restarts; a wrong ENCRYPTION_KEY refuses to start and touches nothing.

use serde_json::json;

use crate::support::client::{add_custom_key, admin, chat, chat_body};
use crate::support::gateway::Gateway;
use crate::support::mock::Mock;

#[actix_rt::test]
async fn keys_survive_a_restart_and_are_never_shown_or_stored_in_clear() {
    let mock = Mock::start();
    let mut gw = Gateway::start(&[]);
    let secret = "sk-distinctive-secret-7f3a9c";
    add_custom_key(&gw, secret, &mock.base_url(), json!(["a"])).await;
    let listed = admin(&gw, "GET", "/api/keys", None).await;
    assert!(!listed.text().contains(secret));
    assert_eq!(listed.json()[0]["masked"], "…3a9c");
    gw.restart_with(&[]).unwrap();
    let res = chat(&gw, &chat_body("a")).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(mock.requests()[0].key, secret);
    let db = std::fs::read(gw.dir().join("data/freellmapi.db")).unwrap();
    assert!(
        !db.windows(secret.len()).any(|w| w == secret.as_bytes()),
        "the key is not stored in clear"
    );
    assert!(!gw.logs().contains(secret), "the key is never logged");
}

#[actix_rt::test]
async fn wrong_encryption_key_refuses_to_start_and_changes_nothing() {
    let mock = Mock::start();
    let mut gw = Gateway::start(&[]);
    add_custom_key(&gw, "k1", &mock.base_url(), json!(["a"])).await;
    gw.stop();
    let db_path = gw.dir().join("data/freellmapi.db");
    let before = std::fs::read(&db_path).unwrap();
    let wrong = "ff".repeat(32);
    let err = gw
        .restart_with(&[("ENCRYPTION_KEY", &wrong)])
        .expect_err("must refuse to start");
    assert!(err.contains("ENCRYPTION_KEY"), "{err}");
    assert!(
        std::fs::read(&db_path).unwrap() == before,
        "the database is untouched"
    );
    let err = gw
        .restart_with(&[("ENCRYPTION_KEY", "tooshort")])
        .expect_err("must refuse to start");
    assert!(err.contains("gen-key"), "{err}");
}
