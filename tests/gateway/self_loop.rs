//! A gateway never calls itself: a key whose base URL is the gateway's own address is refused, and a request that
//! comes back through any other way (a relay, another name for the host) is refused on entry by its hop header.

use serde_json::json;

use crate::support::client::{add_custom_key, admin, chat, chat_body, send_with};
use crate::support::gateway::{Gateway, TOKEN};
use crate::support::mock::Relay;

#[actix_rt::test]
async fn a_key_on_the_gateways_own_address_is_refused() {
    let gw = Gateway::start(&[]);
    let port = gw.url("").rsplit(':').next().unwrap().to_owned();
    for host in ["127.0.0.1", "localhost", "0.0.0.0", "127.0.0.1."] {
        let base_url = format!("http://{host}:{port}/v1");
        let body =
            json!({"platform": "custom", "key": TOKEN, "base_url": base_url, "models": ["m"]});
        let res = admin(&gw, "POST", "/api/keys", Some(&body)).await;
        assert_eq!(res.status, 400, "{base_url}: {}", res.text());
        assert!(
            res.json()["error"]["message"]
                .as_str()
                .unwrap()
                .contains("this gateway"),
            "{}",
            res.text()
        );
    }
    assert_eq!(admin(&gw, "GET", "/api/keys", None).await.json(), json!([]));
}

#[actix_rt::test]
async fn a_request_that_comes_back_is_refused_on_entry() {
    let gw = Gateway::start(&[]);
    let gateway = gw.url("").trim_start_matches("http://").to_owned();
    // One relay (and key) per request: a key that failed is benched for a while.
    let relays = [Relay::start(gateway.clone()), Relay::start(gateway)];
    let mut ids = Vec::new();
    for (relay, model) in relays.iter().zip(["loop", "loop-streamed"]) {
        ids.push(add_custom_key(&gw, TOKEN, &relay.base_url(), json!([model])).await);
    }
    for (stream, model) in [(false, "loop"), (true, "loop-streamed")] {
        let mut body = chat_body(model);
        body["stream"] = json!(stream);
        let res = chat(&gw, &body).await;
        assert_eq!(res.status, 502, "stream {stream}: {}", res.text());
        assert!(res.text().contains("508"), "{}", res.text());
        assert!(res.text().contains("loop"), "{}", res.text());
    }
    let checked = admin(&gw, "POST", &format!("/api/keys/{}/check", ids[0]), None).await;
    assert_eq!(checked.json()["status"], "error", "{}", checked.text());
    assert!(
        checked.json()["last_error"]
            .as_str()
            .unwrap()
            .contains("loop"),
        "{}",
        checked.text()
    );
    for relay in &relays {
        assert!(
            relay.accepted() <= 4,
            "each attempt came back once and stopped: {} connections",
            relay.accepted()
        );
    }
    let hop = send_with(
        "GET",
        &gw.url("/v1/models"),
        Some(TOKEN),
        &[("x-freellmapi-hops", "someone-else")],
        None,
    )
    .await;
    assert_eq!(
        hop.status,
        200,
        "another gateway's hop is no loop: {}",
        hop.text()
    );
}
