//! What budgets learn from providers and show: limits stated in rate-limit headers and in refusals, prediction
//! misses and window use, all on `/api/budgets` and kept across a restart and a crash; and no lease is ever left
//! in flight.

use std::time::Duration;

use serde_json::json;

use crate::support::client::{
    add_custom_key, add_platform_key, admin, budget_of, chat, chat_body, eventually,
};
use crate::support::gateway::{Gateway, TOKEN};
use crate::support::mock::{completion, Mock, Reply};

const MODEL: &str = "llama-3.3-70b-versatile";
const KEY: &str = "gsk_learning_key_0001";

fn header(name: &str, value: &str) -> (String, String) {
    (name.to_owned(), value.to_owned())
}

/// `/metrics` counts exactly one prediction miss for `platform`.
async fn assert_one_miss(gw: &Gateway, platform: &str) {
    let metrics = admin(gw, "GET", "/metrics", None).await.text();
    let line = format!("freellmapi_quota_misses_total{{platform=\"{platform}\"}} 1");
    assert!(metrics.lines().any(|l| l == line), "{metrics}");
}

#[actix_rt::test]
async fn stated_limits_and_misses_are_learned_shown_and_kept() {
    let mock = Mock::start();
    let mut gw = Gateway::start(&[("FREELLMAPI_BASE_URL_GROQ", &mock.base_url())]);
    add_platform_key(&gw, "groq", KEY).await;
    mock.push(
        KEY,
        Reply::Status {
            status: 200,
            headers: vec![
                header("x-ratelimit-limit-requests", "1000"),
                header("x-ratelimit-remaining-requests", "999"),
                header("x-ratelimit-reset-requests", "1m26.4s"),
                header("x-ratelimit-limit-tokens", "6000"),
                header("x-ratelimit-remaining-tokens", "5982"),
                header("x-ratelimit-reset-tokens", "180ms"),
            ],
            body: completion(MODEL, "hi").to_string(),
        },
    );
    assert_eq!(chat(&gw, &chat_body(MODEL)).await.status, 200);
    let refusal = json!({"error": {"message": "Rate limit reached for model `llama-3.3-70b-versatile` in organization `org_1` service tier `on_demand` on requests per minute (RPM): Limit 1, Used 1, Requested 1. Please try again in 2s.", "type": "requests", "code": "rate_limit_exceeded"}});
    mock.push(
        KEY,
        Reply::Status {
            status: 429,
            headers: vec![header("retry-after", "2")],
            body: refusal.to_string(),
        },
    );
    let refused = chat(&gw, &chat_body(MODEL)).await;
    assert_eq!(refused.status, 429, "{}", refused.text());

    let check = |b: &serde_json::Value, when: &str| {
        assert_eq!(
            b["learned"],
            json!({"rpd": 1000, "tpm": 6000, "rpm": 1}),
            "{when}: {b}"
        );
        assert_eq!(b["rpm"], json!({"used": 1, "limit": 1}), "{when}: {b}");
        assert_eq!(b["tpm"]["limit"], 6000, "{when}: {b}");
        assert_eq!(b["rpd"]["limit"], 1000, "{when}");
        assert_eq!(b["day_window"], "rolling-24h", "{when}");
        assert_eq!(b["misses"]["count"], 1, "{when}: {b}");
        assert_eq!(b["misses"]["window"], "rpm", "{when}");
        assert!(
            b["misses"]["message"].as_str().unwrap().contains("Limit 1"),
            "{when}: {b}"
        );
        assert!(b["misses"]["last_at"].is_string(), "{when}");
    };
    check(&budget_of(&gw, MODEL).await, "at once");
    assert_one_miss(&gw, "groq").await;

    actix_rt::time::sleep(Duration::from_millis(2100)).await;
    let held = chat(&gw, &chat_body(MODEL)).await;
    assert_eq!(held.status, 429, "the learned limit holds after the bench");
    assert_eq!(mock.count_for(KEY), 2, "nothing more was sent upstream");

    gw.stop();
    gw.restart_with(&[]).unwrap();
    check(&budget_of(&gw, MODEL).await, "after a restart");
    actix_rt::time::sleep(Duration::from_millis(2500)).await;
    gw.crash();
    gw.restart_with(&[]).unwrap();
    check(&budget_of(&gw, MODEL).await, "after kill -9");
}

#[actix_rt::test]
async fn a_client_that_goes_away_mid_attempt_leaves_no_lease_in_flight() {
    let mock = Mock::start();
    let gw = Gateway::start(&[
        ("UPSTREAM_FIRST_BYTE_TIMEOUT_SECS", "60"),
        ("UPSTREAM_TIMEOUT_SECS", "60"),
    ]);
    add_custom_key(
        &gw,
        "silent",
        &mock.base_url(),
        json!([{"id": "a", "rpm": 5}]),
    )
    .await;
    mock.push("silent", Reply::Silence);
    let impatient = awc::Client::builder()
        .timeout(Duration::from_millis(500))
        .finish();
    let sent = impatient
        .post(gw.url("/v1/chat/completions"))
        .insert_header(("authorization", format!("Bearer {TOKEN}")))
        .send_json(&chat_body("a"))
        .await;
    assert!(sent.is_err(), "the upstream never answers");
    drop(impatient);
    eventually(
        "the lease is settled",
        Duration::from_secs(10),
        async || budget_of(&gw, "a").await["in_flight"] == 0,
    )
    .await;
    let a = budget_of(&gw, "a").await;
    assert_eq!(
        a["rpm"]["used"], 1,
        "counted: the upstream may have seen it"
    );
}

/// The key-wide row of `/api/budgets` for the key with `key_id`.
async fn key_budget_of(gw: &Gateway, key_id: i64) -> serde_json::Value {
    let budgets = admin(gw, "GET", "/api/budgets", None).await.json();
    budgets
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["scope"] == "key" && b["key_id"] == key_id)
        .unwrap_or_else(|| panic!("no key-wide budget for key {key_id}: {budgets}"))
        .clone()
}

#[actix_rt::test]
async fn a_key_wide_refusal_closes_every_model_of_the_key_and_is_shown_and_kept() {
    let mock = Mock::start();
    let mut gw = Gateway::start(&[("FREELLMAPI_BASE_URL_OPENROUTER", &mock.base_url())]);
    let key = "sk-or-v1-shared-daily-key";
    let key_id = add_platform_key(&gw, "openrouter", key).await;
    let fresh = key_budget_of(&gw, key_id).await;
    assert_eq!(fresh["model"], serde_json::Value::Null, "{fresh}");
    assert_eq!(fresh["platform"], "openrouter");
    assert_eq!(
        fresh["rpm"],
        json!({"used": 0, "limit": 20}),
        "the catalog's key limits"
    );
    assert_eq!(fresh["rpd"], json!({"used": 0, "limit": 50}));
    assert_eq!(fresh["day_window"], "midnight-utc");

    let reset = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        + 3_600_000;
    let refusal = json!({"error": {"message": "Rate limit exceeded: free-models-per-day. Add 10 credits to unlock 1000 free model requests per day", "code": 429, "metadata": {"headers": {"X-RateLimit-Limit": "40", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset.to_string()}}}});
    mock.push(key, Reply::body(429, refusal.to_string()));
    let first = chat(&gw, &chat_body("openrouter/openai/gpt-oss-120b:free")).await;
    assert_eq!(first.status, 429, "{}", first.text());
    let other = chat(&gw, &chat_body("openrouter/z-ai/glm-4.5-air:free")).await;
    assert_eq!(other.status, 429, "{}", other.text());
    assert_eq!(
        mock.count_for(key),
        1,
        "no model of the spent key is tried again"
    );

    let check = |b: &serde_json::Value, when: &str| {
        assert_eq!(b["learned"], json!({"rpd": 40}), "{when}: {b}");
        assert_eq!(b["rpd"], json!({"used": 40, "limit": 40}), "{when}: {b}");
        assert_eq!(b["misses"]["count"], 1, "{when}: {b}");
        assert_eq!(b["misses"]["window"], "rpd", "{when}: {b}");
        assert!(b["cooldown_until"].is_string(), "{when}: {b}");
    };
    check(&key_budget_of(&gw, key_id).await, "at once");
    assert_one_miss(&gw, "openrouter").await;
    let model = budget_of(&gw, "openai/gpt-oss-120b:free").await;
    assert_eq!(
        model["learned"],
        json!({}),
        "the model learned nothing: {model}"
    );
    assert_eq!(model["misses"]["count"], 0, "{model}");
    assert!(model["cooldown_until"].is_null(), "{model}");

    gw.stop();
    gw.restart_with(&[]).unwrap();
    check(&key_budget_of(&gw, key_id).await, "after a restart");
    let later = chat(
        &gw,
        &chat_body("openrouter/meta-llama/llama-3.3-70b-instruct:free"),
    )
    .await;
    assert_eq!(later.status, 429, "{}", later.text());
    assert_eq!(mock.count_for(key), 1, "still closed after a restart");
}

#[actix_rt::test]
async fn calendar_day_windows_say_when_they_reset_and_rolling_ones_do_not() {
    let mock = Mock::start();
    let gw = Gateway::start(&[
        ("FREELLMAPI_BASE_URL_GROQ", &mock.base_url()),
        ("FREELLMAPI_BASE_URL_OPENROUTER", &mock.base_url()),
    ]);
    crate::support::client::add_platform_key(&gw, "groq", "gsk-window-0001").await;
    crate::support::client::add_platform_key(&gw, "openrouter", "sk-or-window-0001").await;
    let rows = crate::support::client::admin(&gw, "GET", "/api/budgets", None)
        .await
        .json();
    let rows = rows.as_array().unwrap();
    let groq = rows.iter().find(|r| r["platform"] == "groq").unwrap();
    assert_eq!(groq["day_window"], "rolling-24h");
    assert!(groq["day_resets_at"].is_null(), "{groq}");
    let openrouter = rows.iter().find(|r| r["platform"] == "openrouter").unwrap();
    assert_eq!(openrouter["day_window"], "midnight-utc");
    let resets = openrouter["day_resets_at"].as_str().unwrap();
    assert!(
        resets.ends_with("T00:00:00.000Z"),
        "next UTC midnight: {resets}"
    );
}
