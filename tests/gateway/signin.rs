//! First-run sign-in through the real server: a first start logs a one-time link, its code is exchanged once
//! for the unified key, and a start that is not the first (or has its key set) prints none.

use std::time::Duration;

use crate::support::client::{eventually, send};
use crate::support::gateway::Gateway;

/// The code of the sign-in link the gateway logged.
fn logged_code(gw: &Gateway) -> Option<String> {
    let logs = gw.logs();
    let start = logs.find("/#signin=")? + "/#signin=".len();
    Some(
        logs[start..]
            .chars()
            .take_while(char::is_ascii_hexdigit)
            .collect(),
    )
}

#[actix_rt::test]
async fn a_first_start_logs_a_link_whose_code_works_once() {
    let mut gw = Gateway::start(&[("FREELLMAPI_API_KEY", "")]);
    eventually(
        "the sign-in link is logged",
        Duration::from_secs(5),
        async || logged_code(&gw).is_some(),
    )
    .await;
    let code = logged_code(&gw).unwrap();
    assert_eq!(code.len(), 32);
    assert!(
        gw.logs().contains("http://127.0.0.1:"),
        "a link a browser can open"
    );

    let wrong = send(
        "POST",
        &gw.url("/api/signin"),
        Some("0123456789abcdef0123456789abcdef"),
        None,
    )
    .await;
    assert_eq!(wrong.status, 401);
    let none = send("POST", &gw.url("/api/signin"), None, None).await;
    assert_eq!(none.status, 401);
    let ok = send("POST", &gw.url("/api/signin"), Some(&code), None).await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    let token = ok.json()["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("freellmapi-"));
    assert_eq!(
        send("GET", &gw.url("/api/keys"), Some(&token), None)
            .await
            .status,
        200,
        "the answer is the unified key"
    );
    assert_eq!(
        send("GET", &gw.url("/api/keys"), Some(&code), None)
            .await
            .status,
        401,
        "the code itself opens nothing else"
    );
    let again = send("POST", &gw.url("/api/signin"), Some(&code), None).await;
    assert_eq!(again.status, 401, "a link works once");

    gw.restart_with(&[]).unwrap();
    actix_rt::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        gw.logs().matches("/#signin=").count(),
        1,
        "only a first start prints a link (the log holds both runs): {}",
        gw.logs()
    );
    let fixed = Gateway::start(&[]);
    assert!(
        logged_code(&fixed).is_none(),
        "a configured key is already known"
    );
}
