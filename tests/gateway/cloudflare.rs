//! Cloudflare Workers AI through its OpenAI-compatible endpoint: ACCOUNT_ID:API_TOKEN keys, account-scoped paths,
//! and the daily neuron quota benching a key until the next UTC day.

use serde_json::json;

use crate::support::client::{add_custom_key, add_platform_key, admin, chat, chat_body};
use crate::support::gateway::Gateway;
use crate::support::mock::{Mock, Reply};

#[actix_rt::test]
async fn account_scoped_request_and_daily_quota_failover() {
    let mock = Mock::start();
    let base = format!("{}/client/v4", mock.base_url().trim_end_matches("/v1"));
    let gw = Gateway::start(&[("FREELLMAPI_BASE_URL_CLOUDFLARE", &base)]);
    add_platform_key(&gw, "cloudflare", "acc1:tok1").await;
    let bad = admin(
        &gw,
        "POST",
        "/api/keys",
        Some(&json!({"platform": "cloudflare", "key": "no-account"})),
    )
    .await;
    assert_eq!(bad.status, 400);

    let model = "cloudflare/@cf/openai/gpt-oss-120b";
    let res = chat(&gw, &chat_body(model)).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let seen = &mock.requests()[0];
    assert_eq!(seen.path, "/client/v4/accounts/acc1/ai/v1/chat/completions");
    assert_eq!(seen.key, "tok1", "only the token is sent as the bearer");
    assert_eq!(seen.body["model"], "@cf/openai/gpt-oss-120b");

    add_custom_key(
        &gw,
        "local",
        &mock.base_url(),
        json!(["@cf/openai/gpt-oss-120b"]),
    )
    .await;
    let quota = json!({"success": false, "errors": [{"code": 3036, "message": "You have used up your daily free allocation of 10,000 neurons."}]});
    mock.push("tok1", Reply::body(429, quota.to_string()));
    let res = chat(&gw, &chat_body("@cf/openai/gpt-oss-120b")).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(
        res.header("x-routed-via").as_deref(),
        Some("custom/@cf/openai/gpt-oss-120b")
    );
    let budgets = admin(&gw, "GET", "/api/budgets", None).await.json();
    let cf = budgets
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["platform"] == "cloudflare" && b["model"] == "@cf/openai/gpt-oss-120b")
        .unwrap();
    let until = cf["cooldown_until"].as_str().unwrap();
    assert!(
        until.ends_with("T00:00:00.000Z") || until.contains("T00:00:0"),
        "benched until the UTC day rolls over: {until}"
    );
}
