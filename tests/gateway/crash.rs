//! Crash safety and graceful shutdown: acknowledged changes survive kill -9 under load; daily budgets and
//! benches survive restarts; SIGTERM lets streams finish.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::json;

use crate::support::client::{
    add_custom_key, admin, budget_of, chat, chat_body, open_stream, stream_body,
};
use crate::support::gateway::Gateway;
use crate::support::mock::{Mock, Reply};

#[actix_rt::test]
async fn acknowledged_changes_survive_kill_dash_nine() {
    let mock = Mock::start();
    let mut gw = Gateway::start(&[]);
    add_custom_key(&gw, "k1", &mock.base_url(), json!(["a"])).await;
    add_custom_key(&gw, "k2", &mock.base_url(), json!(["b"])).await;
    let mut chain = admin(&gw, "GET", "/api/chain", None)
        .await
        .json()
        .as_array()
        .unwrap()
        .clone();
    chain.reverse();
    assert_eq!(
        admin(&gw, "PUT", "/api/chain", Some(&json!(chain)))
            .await
            .status,
        200
    );
    assert_eq!(chat(&gw, &chat_body("a")).await.status, 200);
    actix_rt::time::sleep(Duration::from_millis(1500)).await;
    gw.crash();
    gw.restart_with(&[]).unwrap();
    let keys = admin(&gw, "GET", "/api/keys", None).await.json();
    assert_eq!(keys.as_array().map(Vec::len), Some(2), "{keys}");
    assert_eq!(
        admin(&gw, "GET", "/api/chain", None).await.json(),
        json!(chain)
    );
    let logged = admin(&gw, "GET", "/api/requests?limit=5", None)
        .await
        .json();
    assert_eq!(
        logged.as_array().map(Vec::len),
        Some(1),
        "a request older than the flush window (0.3 s) survives: {logged}"
    );
    assert_eq!(chat(&gw, &chat_body("b")).await.status, 200);
}

#[actix_rt::test]
async fn kill_dash_nine_under_load_loses_only_the_last_flush_window() {
    let mock = Mock::start();
    let mut gw = Gateway::start(&[]);
    add_custom_key(&gw, "k0", &mock.base_url(), json!(["a"])).await;
    let acknowledged: Rc<RefCell<Vec<Instant>>> = Rc::default();
    let load: Vec<_> = (0..4)
        .map(|_| {
            let url = gw.url("/v1/chat/completions");
            let acknowledged = acknowledged.clone();
            actix_rt::spawn(async move {
                loop {
                    let res = crate::support::client::send(
                        "POST",
                        &url,
                        Some(crate::support::gateway::TOKEN),
                        Some(&chat_body("a")),
                    )
                    .await;
                    if res.status != 200 {
                        break;
                    }
                    acknowledged.borrow_mut().push(Instant::now());
                    actix_rt::time::sleep(Duration::from_millis(20)).await;
                }
            })
        })
        .collect();
    let mut added = Vec::new();
    for i in 1..=5 {
        added.push(add_custom_key(&gw, &format!("k{i}"), &mock.base_url(), json!(["a"])).await);
        actix_rt::time::sleep(Duration::from_millis(200)).await;
    }
    actix_rt::time::sleep(Duration::from_millis(1500)).await;
    gw.crash();
    let killed_at = Instant::now();
    for task in load {
        task.abort();
    }
    let flush_window = Duration::from_millis(1500);
    let must_survive = acknowledged
        .borrow()
        .iter()
        .filter(|at| **at + flush_window < killed_at)
        .count();
    assert!(must_survive > 20, "the load ran: {must_survive}");
    gw.restart_with(&[]).unwrap();
    let keys = admin(&gw, "GET", "/api/keys", None).await.json();
    let ids: Vec<i64> = keys
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_i64().unwrap())
        .collect();
    for id in &added {
        assert!(ids.contains(id), "acknowledged key {id} lost: {ids:?}");
    }
    let totals = admin(&gw, "GET", "/api/analytics?range=24h", None)
        .await
        .json()["totals"]["requests"]
        .as_u64()
        .unwrap() as usize;
    println!(
        "crash: {} requests acknowledged, {must_survive} older than the flush window, {totals} in the log after kill -9",
        acknowledged.borrow().len()
    );
    assert!(
        totals >= must_survive,
        "{totals} logged < {must_survive} acknowledged before the last flush window"
    );
    assert_eq!(chat(&gw, &chat_body("a")).await.status, 200);
}

#[actix_rt::test]
async fn daily_budgets_and_benches_survive_restarts() {
    let mock = Mock::start();
    let mut gw = Gateway::start(&[]);
    add_custom_key(
        &gw,
        "daily",
        &mock.base_url(),
        json!([{"id": "a", "rpd": 2}]),
    )
    .await;
    add_custom_key(&gw, "benched", &mock.base_url(), json!(["b"])).await;
    for _ in 0..2 {
        assert_eq!(chat(&gw, &chat_body("a")).await.status, 200);
    }
    assert_eq!(chat(&gw, &chat_body("a")).await.status, 429);
    mock.push("benched", Reply::rate_limited(600));
    assert_eq!(chat(&gw, &chat_body("b")).await.status, 429);

    gw.stop();
    gw.restart_with(&[]).unwrap();
    let spent = chat(&gw, &chat_body("a")).await;
    assert_eq!(spent.status, 429, "graceful restart: {}", spent.text());
    let benched = chat(&gw, &chat_body("b")).await;
    assert_eq!(benched.status, 429, "{}", benched.text());
    assert!(
        benched
            .header("retry-after")
            .unwrap()
            .parse::<u64>()
            .unwrap()
            > 500
    );

    actix_rt::time::sleep(Duration::from_millis(2500)).await;
    gw.crash();
    gw.restart_with(&[]).unwrap();
    assert_eq!(
        chat(&gw, &chat_body("a")).await.status,
        429,
        "after kill -9"
    );
    assert_eq!(chat(&gw, &chat_body("b")).await.status, 429);
    assert_eq!(
        mock.count_for("daily"),
        2,
        "the daily quota is never re-spent"
    );
    assert_eq!(mock.count_for("benched"), 1, "the bench is never forgotten");
    let a = budget_of(&gw, "a").await;
    assert_eq!(a["rpd"], json!({"used": 2, "limit": 2}));
}

#[actix_rt::test]
async fn sigterm_lets_an_in_flight_stream_finish() {
    let mock = Mock::start();
    let mut gw = Gateway::start(&[]);
    add_custom_key(&gw, "k1", &mock.base_url(), json!(["a"])).await;
    let pieces: Vec<&str> = vec!["tick "; 20];
    mock.push("k1", Reply::stream(&pieces, Duration::from_millis(50)));
    let body = stream_body("a");
    let mut res = open_stream(&gw, &body).await;
    let mut received = Vec::new();
    received.extend_from_slice(&res.next().await.unwrap().unwrap());
    gw.signal_stop();
    while let Some(chunk) = res.next().await {
        received.extend_from_slice(&chunk.unwrap());
    }
    let text = String::from_utf8_lossy(&received);
    assert_eq!(text.matches("tick").count(), 20, "{text}");
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    assert!(gw.stop().is_none_or(|s| s.success()));
}
