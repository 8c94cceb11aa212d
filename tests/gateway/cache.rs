//! The response cache through the real server (`RESPONSE_CACHE_TTL_SECS`): an identical request is answered
//! without asking an upstream (`X-Cache: hit`), streamed or not as asked whichever way the answer was first
//! served; `Cache-Control` bypasses it; only complete, successful answers are kept; it is bounded, oldest first;
//! client keys never share entries unless the owner says so; hits spend no quota and show in the request log and
//! `/metrics`. Off by default.

use serde_json::{json, Value};

use crate::support::client::{
    add_custom_key, admin, logged_requests, send, send_with, stream_chunks, streamed_text, Reply,
};
use crate::support::gateway::{Gateway, TOKEN};
use crate::support::mock::{Mock, Reply as MockReply, StreamPlan};

/// A mock and a gateway with the cache on for `ttl` seconds (and `extra` settings), one key `k1` serving `m`.
async fn cached_gateway(ttl: &str, extra: &[(&str, &str)]) -> (Mock, Gateway) {
    let mock = Mock::start();
    let mut env = vec![("RESPONSE_CACHE_TTL_SECS", ttl)];
    env.extend_from_slice(extra);
    let gw = Gateway::start(&env);
    add_custom_key(&gw, "k1", &mock.base_url(), json!(["m"])).await;
    (mock, gw)
}

fn question(text: &str) -> Value {
    json!({"model": "m", "messages": [{"role": "user", "content": text}]})
}

fn streamed(mut body: Value) -> Value {
    body["stream"] = json!(true);
    body
}

async fn ask(gw: &Gateway, body: &Value) -> Reply {
    ask_as(gw, TOKEN, body, &[]).await
}

async fn ask_as(gw: &Gateway, key: &str, body: &Value, headers: &[(&str, &str)]) -> Reply {
    let url = gw.url("/v1/chat/completions");
    send_with("POST", &url, Some(key), headers, Some(body)).await
}

fn content(reply: &Reply) -> String {
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn x_cache(reply: &Reply) -> Option<String> {
    reply.header("x-cache")
}

/// One sample of `/metrics`.
async fn metric(gw: &Gateway, name: &str) -> f64 {
    let text = send("GET", &gw.url("/metrics"), Some(TOKEN), None)
        .await
        .text();
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics:\n{text}"))
}

/// Requests the budget of `m` on `k1` has counted today.
async fn requests_spent(gw: &Gateway) -> i64 {
    let budgets = admin(gw, "GET", "/api/budgets", None).await.json();
    budgets
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["model"] == "m")
        .map(|b| b["rpd"]["used"].as_i64().unwrap())
        .unwrap()
}

#[actix_rt::test]
async fn identical_requests_are_answered_from_the_cache_streamed_or_not() {
    let (mock, gw) = cached_gateway("60", &[]).await;
    mock.push("k1", MockReply::Answer("first answer".into()));
    let first = ask(&gw, &question("hello")).await;
    assert_eq!(content(&first), "first answer");
    assert_eq!(x_cache(&first).as_deref(), Some("miss"));

    // The same body, keys reordered, with delivery and caller fields that never change an answer.
    let same = json!({"messages": [{"content": "hello", "role": "user"}], "model": "m",
        "user": "alice", "session_id": "s-1"});
    let again = ask(&gw, &same).await;
    assert_eq!(content(&again), "first answer");
    assert_eq!(x_cache(&again).as_deref(), Some("hit"));
    assert_eq!(
        again.json()["usage"]["prompt_tokens"],
        11,
        "usage as served"
    );
    assert_eq!(again.header("x-routed-via").as_deref(), Some("custom/m"));

    // Asked as a stream: a streamed replay of the whole answer, one [DONE], usage only when asked for.
    let replay = ask(&gw, &streamed(question("hello"))).await;
    assert_eq!(x_cache(&replay).as_deref(), Some("hit"));
    assert!(replay
        .header("content-type")
        .unwrap()
        .starts_with("text/event-stream"));
    let chunks = stream_chunks(&replay.body);
    assert_eq!(streamed_text(&chunks), "first answer");
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "stop"
    );
    assert!(chunks.iter().all(|c| c.get("usage").is_none()));
    let mut with_usage = streamed(question("hello"));
    with_usage["stream_options"] = json!({"include_usage": true});
    let chunks = stream_chunks(&ask(&gw, &with_usage).await.body);
    assert_eq!(chunks.last().unwrap()["usage"]["completion_tokens"], 7);
    assert_eq!(
        mock.count_for("k1"),
        1,
        "one upstream call for four answers"
    );

    // A different request is a miss.
    mock.push("k1", MockReply::Answer("cooler".into()));
    let mut colder = question("hello");
    colder["temperature"] = json!(0.1);
    let other = ask(&gw, &colder).await;
    assert_eq!(
        (content(&other).as_str(), x_cache(&other).as_deref()),
        ("cooler", Some("miss"))
    );

    // A streamed answer is kept once complete, and served whole to a request that does not stream.
    mock.push("k1", MockReply::Stream(StreamPlan::of(&["stre", "amed"])));
    let live = ask(&gw, &streamed(question("stream it"))).await;
    assert_eq!(streamed_text(&stream_chunks(&live.body)), "streamed");
    assert_eq!(x_cache(&live).as_deref(), Some("miss"));
    let whole = ask(&gw, &question("stream it")).await;
    assert_eq!(
        (content(&whole).as_str(), x_cache(&whole).as_deref()),
        ("streamed", Some("hit"))
    );
    assert_eq!(whole.json()["choices"][0]["finish_reason"], "stop");
    assert_eq!(mock.count_for("k1"), 3);

    // Hits spend no quota: the budget counted only the three upstream calls.
    assert_eq!(requests_spent(&gw).await, 3);
    let rows = logged_requests(&gw, 7).await;
    let rows = rows.as_array().unwrap();
    let hits: Vec<&Value> = rows.iter().filter(|r| r["cached"] == true).collect();
    assert_eq!(hits.len(), 4, "{rows:?}");
    for hit in hits {
        assert_eq!(hit["status"], 200);
        assert_eq!(hit["attempts"], 0);
        assert_eq!(hit["prompt_tokens"], 0, "no tokens spent: {hit}");
        assert_eq!(hit["platform"], Value::Null);
        assert_eq!(hit["model"], "m");
    }
    assert_eq!(metric(&gw, "freellmapi_cache_hits_total").await, 4.0);
    assert_eq!(metric(&gw, "freellmapi_cache_misses_total").await, 3.0);
    assert_eq!(metric(&gw, "freellmapi_cache_entries").await, 3.0);
    assert!(metric(&gw, "freellmapi_cache_bytes").await > 0.0);
}

#[actix_rt::test]
async fn cache_control_bypasses_and_only_complete_successes_are_kept() {
    let (mock, gw) = cached_gateway("60", &[("STREAM_RESUME", "off")]).await;
    mock.push("k1", MockReply::Answer("old".into()));
    assert_eq!(content(&ask(&gw, &question("q")).await), "old");

    // no-cache: not read, but the fresh answer replaces the kept one.
    mock.push("k1", MockReply::Answer("fresh".into()));
    let bypass = ask_as(&gw, TOKEN, &question("q"), &[("cache-control", "no-cache")]).await;
    assert_eq!(
        (content(&bypass).as_str(), x_cache(&bypass).as_deref()),
        ("fresh", Some("miss"))
    );
    assert_eq!(content(&ask(&gw, &question("q")).await), "fresh");
    // no-store: neither read nor kept.
    mock.push("k1", MockReply::Answer("unkept".into()));
    let unkept = ask_as(&gw, TOKEN, &question("q"), &[("cache-control", "no-store")]).await;
    assert_eq!(content(&unkept), "unkept");
    assert_eq!(content(&ask(&gw, &question("q")).await), "fresh");
    assert_eq!(mock.count_for("k1"), 3);

    // A failure is not kept: the next identical request asks again.
    mock.push(
        "k1",
        MockReply::error(400, "bad", "The model refused this request"),
    );
    assert_eq!(ask(&gw, &question("fails")).await.status, 400);
    mock.push("k1", MockReply::Answer("answered".into()));
    assert_eq!(content(&ask(&gw, &question("fails")).await), "answered");
    assert_eq!(mock.count_for("k1"), 5);
    // Nor is a stream that broke off (continuation is off here). The broken route cools down; the repeat goes
    // to the other key of `m2`, upstream.
    add_custom_key(&gw, "k2", &mock.base_url(), json!(["m2"])).await;
    add_custom_key(&gw, "k3", &mock.base_url(), json!(["m2"])).await;
    for key in ["k2", "k3"] {
        mock.push(
            key,
            MockReply::Stream(StreamPlan::of(&["a", "b", "c"]).cut_after(1)),
        );
    }
    let breaks = json!({"model": "m2", "messages": [{"role": "user", "content": "breaks"}]});
    let broken = ask(&gw, &streamed(breaks.clone())).await;
    assert!(
        broken.text().contains("failed mid-answer"),
        "{}",
        broken.text()
    );
    mock.clear_scripts();
    let after = ask(&gw, &breaks).await;
    assert!(
        content(&after).starts_with("Hello from k"),
        "{}",
        after.text()
    );
    assert_eq!(x_cache(&after).as_deref(), Some("miss"));
}

#[actix_rt::test]
async fn entries_expire_after_the_ttl() {
    let (mock, gw) = cached_gateway("1", &[]).await;
    mock.push("k1", MockReply::Answer("one".into()));
    assert_eq!(content(&ask(&gw, &question("q")).await), "one");
    assert_eq!(
        x_cache(&ask(&gw, &question("q")).await).as_deref(),
        Some("hit")
    );
    actix_rt::time::sleep(std::time::Duration::from_millis(1100)).await;
    mock.push("k1", MockReply::Answer("two".into()));
    let later = ask(&gw, &question("q")).await;
    assert_eq!(
        (content(&later).as_str(), x_cache(&later).as_deref()),
        ("two", Some("miss"))
    );
}

#[actix_rt::test]
async fn the_cache_is_bounded_and_drops_the_oldest_first() {
    let (mock, gw) = cached_gateway("600", &[("RESPONSE_CACHE_MAX_MB", "1")]).await;
    // Four answers of 300 KB: the fourth does not fit beside the first three.
    let long = |n: usize| format!("{n}{}", "x".repeat(300_000));
    for n in 1..=4 {
        mock.push("k1", MockReply::Answer(long(n)));
        assert_eq!(content(&ask(&gw, &question(&n.to_string())).await), long(n));
    }
    for n in 2..=4 {
        let kept = ask(&gw, &question(&n.to_string())).await;
        assert_eq!(x_cache(&kept).as_deref(), Some("hit"), "answer {n}");
    }
    mock.push("k1", MockReply::Answer("asked again".into()));
    let oldest = ask(&gw, &question("1")).await;
    assert_eq!(
        (content(&oldest).as_str(), x_cache(&oldest).as_deref()),
        ("asked again", Some("miss"))
    );
    assert_eq!(metric(&gw, "freellmapi_cache_evictions_total").await, 1.0);
    assert!(metric(&gw, "freellmapi_cache_bytes").await <= 1_048_576.0);
}

/// Creates a client key and answers it.
async fn client_key(gw: &Gateway, name: &str) -> String {
    let res = admin(gw, "POST", "/api/clients", Some(&json!({"name": name}))).await;
    assert_eq!(res.status, 201, "{}", res.text());
    res.json()["key"].as_str().unwrap().to_owned()
}

#[actix_rt::test]
async fn client_keys_never_share_entries_unless_the_owner_allows_it() {
    let (mock, mut gw) = cached_gateway("60", &[]).await;
    let alice = client_key(&gw, "alice").await;
    let bob = client_key(&gw, "bob").await;
    for (who, key) in [
        ("owner", TOKEN),
        ("alice", alice.as_str()),
        ("bob", bob.as_str()),
    ] {
        mock.push("k1", MockReply::Answer(format!("for {who}")));
        let reply = ask_as(&gw, key, &question("secret plans"), &[]).await;
        assert_eq!(
            (content(&reply), x_cache(&reply)),
            (format!("for {who}"), Some("miss".into()))
        );
    }
    for (who, key) in [
        ("owner", TOKEN),
        ("alice", alice.as_str()),
        ("bob", bob.as_str()),
    ] {
        let reply = ask_as(&gw, key, &question("secret plans"), &[]).await;
        assert_eq!(
            (content(&reply), x_cache(&reply)),
            (format!("for {who}"), Some("hit".into()))
        );
    }
    assert_eq!(mock.count_for("k1"), 3);
    let rows = logged_requests(&gw, 6).await;
    let alice_hit = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["client"] == "alice" && r["cached"] == true);
    assert!(alice_hit.is_some(), "the hit names its client: {rows}");

    // Shared: every caller reads and fills one set of entries.
    gw.restart_with(&[("RESPONSE_CACHE_SHARED", "on")]).unwrap();
    mock.push("k1", MockReply::Answer("for everyone".into()));
    let first = ask_as(&gw, &alice, &question("shared plans"), &[]).await;
    assert_eq!(content(&first), "for everyone");
    for key in [bob.as_str(), TOKEN] {
        let reply = ask_as(&gw, key, &question("shared plans"), &[]).await;
        assert_eq!(
            (content(&reply).as_str(), x_cache(&reply).as_deref()),
            ("for everyone", Some("hit"))
        );
    }
}

#[actix_rt::test]
async fn other_front_doors_replay_in_their_own_shapes() {
    let (mock, gw) = cached_gateway("60", &[]).await;
    let anthropic = |stream: bool| {
        json!({"model": "m", "max_tokens": 64, "stream": stream, "metadata": {"user_id": "u1"},
            "messages": [{"role": "user", "content": "hi"}]})
    };
    let headers = [("x-api-key", TOKEN), ("anthropic-version", "2023-06-01")];
    let url = gw.url("/v1/messages");
    mock.push("k1", MockReply::Answer("Bonjour".into()));
    let first = send_with("POST", &url, None, &headers, Some(&anthropic(false))).await;
    assert_eq!(
        first.json()["content"][0]["text"],
        "Bonjour",
        "{}",
        first.text()
    );
    let mut again = anthropic(true);
    again["metadata"]["user_id"] = json!("u2");
    let events = send_with("POST", &url, None, &headers, Some(&again)).await;
    assert_eq!(x_cache(&events).as_deref(), Some("hit"));
    let text = events.text();
    for event in [
        "message_start",
        "content_block_delta",
        "message_delta",
        "message_stop",
    ] {
        assert!(text.contains(&format!("event: {event}")), "{text}");
    }
    assert!(text.contains("Bonjour"), "{text}");

    // Responses: a hit is a new response, kept under its own id.
    let responses = gw.url("/v1/responses");
    let body = json!({"model": "m", "input": "hi"});
    mock.push("k1", MockReply::Answer("Hallo".into()));
    let made = send("POST", &responses, Some(TOKEN), Some(&body))
        .await
        .json();
    let hit = send("POST", &responses, Some(TOKEN), Some(&body)).await;
    assert_eq!(x_cache(&hit).as_deref(), Some("hit"));
    let hit = hit.json();
    assert_eq!(hit["output_text"], "Hallo");
    assert_ne!(hit["id"], made["id"]);
    let kept = send(
        "GET",
        &gw.url(&format!("/v1/responses/{}", hit["id"].as_str().unwrap())),
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(kept.status, 200);

    // Embeddings: the same vectors, without asking again.
    add_custom_key(
        &gw,
        "k2",
        &mock.base_url(),
        json!([{"id": "e5", "type": "embedding"}]),
    )
    .await;
    let list = json!({"object": "list", "model": "e5",
        "data": [{"object": "embedding", "index": 0, "embedding": [0.5, -0.25]}],
        "usage": {"prompt_tokens": 2, "total_tokens": 2}});
    mock.push("k2", MockReply::body(200, list.to_string()));
    let embeddings = gw.url("/v1/embeddings");
    let body = json!({"model": "e5", "input": "vector me", "encoding_format": "float"});
    let first = send("POST", &embeddings, Some(TOKEN), Some(&body)).await;
    let again = send("POST", &embeddings, Some(TOKEN), Some(&body)).await;
    assert_eq!(
        (x_cache(&first).as_deref(), x_cache(&again).as_deref()),
        (Some("miss"), Some("hit"))
    );
    assert_eq!(again.json()["data"][0]["embedding"], json!([0.5, -0.25]));
    assert_eq!(mock.count_for("k2"), 1);

    // The same words through another door are another request.
    mock.push("k1", MockReply::Answer("chat".into()));
    let chat = ask(
        &gw,
        &json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(x_cache(&chat).as_deref(), Some("miss"));
    assert_eq!(mock.count_for("k1"), 3);
}

#[actix_rt::test]
async fn the_cache_is_off_by_default() {
    let mock = Mock::start();
    let gw = Gateway::start(&[]);
    add_custom_key(&gw, "k1", &mock.base_url(), json!(["m"])).await;
    for _ in 0..2 {
        let reply = ask(&gw, &question("hello")).await;
        assert_eq!(reply.status, 200);
        assert_eq!(x_cache(&reply), None);
    }
    assert_eq!(mock.count_for("k1"), 2);
    let text = send("GET", &gw.url("/metrics"), Some(TOKEN), None)
        .await
        .text();
    assert!(!text.contains("freellmapi_cache_"), "{text}");
}
