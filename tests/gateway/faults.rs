//! The upstream fault matrix: every fault, streamed and not, with a healthy second candidate and without one.
//! Each case asserts what the client received, how many attempts the faulty upstream saw, and that the next
//! request is served (or refused quickly) as the fault's cooldown says.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::client::{
    add_custom_key, add_platform_key, admin, budget_of, chat, eventually, sse_payloads,
};
use crate::support::gateway::Gateway;
use crate::support::mock::{refusing_base_url, Hangup, Mock, Reply, StreamPlan};

/// How one matrix request is sent.
#[derive(Clone, Copy, Debug)]
struct Mode {
    stream: bool,
    fallback: bool,
}

const MODES: [Mode; 4] = [
    Mode {
        stream: false,
        fallback: true,
    },
    Mode {
        stream: true,
        fallback: true,
    },
    Mode {
        stream: false,
        fallback: false,
    },
    Mode {
        stream: true,
        fallback: false,
    },
];

/// A gateway whose chain tries key `p` (model `a`) first and, when the mode has one, the healthy key `f`
/// (model `b`) on the mock.
struct Bench {
    mock: Mock,
    gw: Gateway,
    mode: Mode,
}

impl Bench {
    async fn new(mode: Mode, env: &[(&str, &str)]) -> Bench {
        let mock = Mock::start();
        let base = mock.base_url();
        Bench::with_primary(mock, mode, env, &base, json!(["a"])).await
    }

    async fn with_primary(
        mock: Mock,
        mode: Mode,
        env: &[(&str, &str)],
        primary_base: &str,
        primary_models: Value,
    ) -> Bench {
        let gw = Gateway::start(env);
        add_custom_key(&gw, "p", primary_base, primary_models).await;
        if mode.fallback {
            add_custom_key(&gw, "f", &mock.base_url(), json!(["b"])).await;
        }
        Bench { mock, gw, mode }
    }

    /// Sends a request of a new conversation (stickiness never decides its route).
    async fn ask(&self) -> Answer {
        let mut body = crate::support::client::new_conversation("auto");
        body["stream"] = json!(self.mode.stream);
        let started = Instant::now();
        let reply = chat(&self.gw, &body).await;
        let mut answer = Answer {
            status: reply.status,
            routed_via: reply.header("x-routed-via"),
            failed_attempts: reply
                .header("x-fallback-attempts")
                .map_or(0, |v| v.parse().unwrap()),
            retry_after: reply.header("retry-after").map(|v| v.parse().unwrap()),
            content: String::new(),
            error: Value::Null,
            done: false,
            chunks: 0,
            model: Value::Null,
            elapsed: started.elapsed(),
        };
        let is_sse = reply
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/event-stream"));
        if !is_sse {
            let json = reply.json();
            answer.error = json["error"].clone();
            answer.model = json["model"].clone();
            answer.content = json["choices"][0]["message"]["content"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            return answer;
        }
        for payload in sse_payloads(&reply.body) {
            if payload == "[DONE]" {
                answer.done = true;
                continue;
            }
            let event: Value = serde_json::from_str(&payload).unwrap();
            if event["error"].is_object() {
                answer.error = event["error"].clone();
                continue;
            }
            answer.chunks += 1;
            answer.model = event["model"].clone();
            if let Some(piece) = event["choices"][0]["delta"]["content"].as_str() {
                answer.content.push_str(piece);
            }
        }
        answer
    }

    fn primary_attempts(&self) -> usize {
        self.mock.count_for("p")
    }
}

/// What the client saw.
#[derive(Debug)]
struct Answer {
    status: u16,
    routed_via: Option<String>,
    failed_attempts: usize,
    retry_after: Option<u64>,
    content: String,
    error: Value,
    done: bool,
    chunks: usize,
    model: Value,
    elapsed: Duration,
}

impl Answer {
    /// Asserts a complete answer from `key` serving `model`.
    fn served_by(&self, key: &str, model: &str, mode: Mode) {
        assert_eq!(self.status, 200, "{mode:?}: {self:?}");
        assert_eq!(
            self.routed_via.as_deref(),
            Some(format!("custom/{model}").as_str()),
            "{mode:?}"
        );
        assert_eq!(self.content, format!("Hello from {key}"), "{mode:?}");
        assert_eq!(
            self.model, model,
            "{mode:?}: the model field names the model that served"
        );
        assert!(self.error.is_null(), "{mode:?}: {self:?}");
        if mode.stream {
            assert!(self.done, "{mode:?}: a complete stream ends with [DONE]");
        }
    }

    /// Asserts an OpenAI-shaped error with `status` and `code`.
    fn refused(&self, status: u16, code: &str, mode: Mode) {
        assert_eq!(self.status, status, "{mode:?}: {self:?}");
        assert_eq!(self.error["code"], code, "{mode:?}: {self:?}");
        assert!(self.error["message"].is_string(), "{mode:?}");
    }

    /// Asserts the contract's 429 for "every candidate is cooling down", here after upstream failures.
    fn cooling_after_failures(&self, mode: Mode) {
        self.refused(429, "rate_limit_exceeded", mode);
        assert!(
            self.retry_after.is_some_and(|s| s >= 1),
            "{mode:?}: {self:?}"
        );
        let message = self.error["message"].as_str().unwrap();
        assert!(message.contains("after upstream failures"), "{message}");
    }

    /// Asserts a stream that broke after "Hello" and was continued by the fallback `f` (whose answer, "Hello
    /// from f", repeats the opening, which is dropped): one complete answer, no error.
    fn continued(&self, mode: Mode) {
        assert_eq!(self.status, 200, "{mode:?}: {self:?}");
        assert!(self.error.is_null(), "{mode:?}: {self:?}");
        assert_eq!(self.content, "Hello from f", "{mode:?}");
        assert!(self.done, "{mode:?}");
    }

    /// Asserts a stream that started and then ended with one in-band error and `[DONE]`.
    fn broke_mid_answer(&self, mode: Mode) {
        assert_eq!(self.status, 200, "{mode:?}: {self:?}");
        assert!(self.chunks > 0, "{mode:?}: the first chunks arrived");
        assert_eq!(self.error["type"], "upstream_error", "{mode:?}: {self:?}");
        assert!(self.done, "{mode:?}: the client is told the stream is over");
    }
}

fn rate_limit_body() -> String {
    json!({"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}})
        .to_string()
}

fn matrix_line(fault: &str, mode: Mode, answer: &Answer, primary_attempts: usize) {
    println!(
        "fault-matrix | {fault} | stream={} fallback={} | status {} via {} | primary attempts {} | {} ms",
        mode.stream,
        mode.fallback,
        answer.status,
        answer.routed_via.as_deref().unwrap_or("-"),
        primary_attempts,
        answer.elapsed.as_millis()
    );
}

#[actix_rt::test]
async fn rate_limits_with_retry_after_are_honoured_in_both_forms() {
    for form in ["seconds", "http-date"] {
        for mode in MODES {
            let bench = Bench::new(mode, &[]).await;
            let retry_after = match form {
                "seconds" => "30".to_owned(),
                _ => {
                    httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(30))
                }
            };
            bench.mock.push(
                "p",
                Reply::Status {
                    status: 429,
                    headers: vec![("retry-after".into(), retry_after)],
                    body: rate_limit_body(),
                },
            );
            let first = bench.ask().await;
            matrix_line(&format!("429 retry-after {form}"), mode, &first, 1);
            let second = bench.ask().await;
            let cooling = budget_of(&bench.gw, "a").await;
            assert!(cooling["cooldown_until"].is_string(), "{cooling}");
            if mode.fallback {
                first.served_by("f", "b", mode);
                assert_eq!(first.failed_attempts, 1);
                second.served_by("f", "b", mode);
                assert_eq!(second.failed_attempts, 0, "the cooled key is skipped");
            } else {
                first.refused(429, "rate_limit_exceeded", mode);
                assert!((28..=31).contains(&first.retry_after.unwrap()), "{first:?}");
                second.refused(429, "rate_limit_exceeded", mode);
                assert!(second.elapsed < Duration::from_secs(1), "{second:?}");
            }
            assert_eq!(bench.primary_attempts(), 1, "{form} {mode:?}: not retried");
        }
    }
}

#[actix_rt::test]
async fn persistent_rate_limits_without_a_hint_back_off() {
    for mode in MODES {
        let bench = Bench::new(mode, &[]).await;
        let no_hint = Reply::body(429, rate_limit_body());
        bench.mock.outage("p", Duration::from_secs(120), no_hint);
        for _ in 0..5 {
            let answer = bench.ask().await;
            if mode.fallback {
                answer.served_by("f", "b", mode);
            } else {
                answer.refused(429, "rate_limit_exceeded", mode);
                assert!(answer.retry_after.unwrap() >= 1);
            }
        }
        matrix_line(
            "429 persistent, no hint (5 requests)",
            mode,
            &bench.ask().await,
            bench.primary_attempts(),
        );
        assert_eq!(
            bench.primary_attempts(),
            1,
            "{mode:?}: one 429 benches the key for its window (30 s without a hint)"
        );
    }
}

#[actix_rt::test]
async fn one_server_error_is_absorbed() {
    for status in [500, 502, 503, 504] {
        for mode in MODES {
            let bench = Bench::new(mode, &[]).await;
            bench
                .mock
                .push("p", Reply::error(status, "server_error", "boom"));
            let first = bench.ask().await;
            matrix_line(
                &format!("{status} once"),
                mode,
                &first,
                bench.primary_attempts(),
            );
            if mode.fallback {
                first.served_by("f", "b", mode);
                assert_eq!(bench.primary_attempts(), 1);
            } else {
                first.served_by("p", "a", mode);
                assert_eq!(first.failed_attempts, 1);
                assert_eq!(bench.primary_attempts(), 2, "a second chance after a blip");
            }
            let next = bench.ask().await;
            next.served_by("p", "a", mode);
            assert_eq!(
                next.failed_attempts, 0,
                "{mode:?}: one blip benches nothing"
            );
        }
    }
}

#[actix_rt::test]
async fn a_persistently_failing_upstream_is_benched() {
    for mode in MODES {
        let bench = Bench::new(mode, &[]).await;
        let down = Reply::error(503, "overloaded", "The model is overloaded");
        bench.mock.outage("p", Duration::from_secs(120), down);
        let first = bench.ask().await;
        matrix_line("503 persistent", mode, &first, bench.primary_attempts());
        if mode.fallback {
            first.served_by("f", "b", mode);
        } else {
            first.refused(502, "upstream_error", mode);
            assert!(first.error["message"]
                .as_str()
                .unwrap()
                .contains("The model is overloaded"));
        }
        for _ in 0..4 {
            let next = bench.ask().await;
            if mode.fallback {
                next.served_by("f", "b", mode);
            } else if next.status == 429 {
                next.cooling_after_failures(mode);
            } else {
                next.refused(502, "upstream_error", mode);
            }
        }
        assert!(
            bench.primary_attempts() <= 3,
            "{mode:?}: {} attempts on a down upstream within a second",
            bench.primary_attempts()
        );
    }
}

#[actix_rt::test]
async fn refused_and_reset_connections_fail_over() {
    for fault in ["connection refused", "reset before headers"] {
        for mode in MODES {
            let hangup = Hangup::start();
            let base = match fault {
                "connection refused" => refusing_base_url(),
                _ => hangup.base_url(),
            };
            let bench = Bench::with_primary(Mock::start(), mode, &[], &base, json!(["a"])).await;
            let answer = bench.ask().await;
            matrix_line(fault, mode, &answer, hangup.accepted());
            if mode.fallback {
                answer.served_by("f", "b", mode);
            } else {
                answer.refused(502, "upstream_error", mode);
                assert!(
                    answer.error["message"]
                        .as_str()
                        .unwrap()
                        .contains("custom/a"),
                    "{answer:?}"
                );
                if fault == "reset before headers" {
                    assert_eq!(hangup.accepted(), 2, "one retry, no more");
                }
            }
            assert!(answer.elapsed < Duration::from_secs(3), "{answer:?}");
        }
    }
}

#[actix_rt::test]
async fn a_silent_upstream_costs_one_timeout_then_is_skipped() {
    let env = [
        ("UPSTREAM_FIRST_BYTE_TIMEOUT_SECS", "1"),
        ("UPSTREAM_TIMEOUT_SECS", "2"),
    ];
    for mode in MODES {
        let bench = Bench::new(mode, &env).await;
        bench
            .mock
            .outage("p", Duration::from_secs(120), Reply::Silence);
        let first = bench.ask().await;
        matrix_line("silent upstream", mode, &first, bench.primary_attempts());
        if mode.fallback {
            first.served_by("f", "b", mode);
            assert!(
                first.elapsed >= Duration::from_millis(900)
                    && first.elapsed < Duration::from_secs(2),
                "{mode:?}: failed over at the first-byte limit, {:?}",
                first.elapsed
            );
        } else {
            first.refused(502, "upstream_error", mode);
            assert!(
                first.elapsed >= Duration::from_millis(1900)
                    && first.elapsed < Duration::from_secs(3),
                "{mode:?}: the last candidate gets the whole timeout, {:?}",
                first.elapsed
            );
        }
        let second = bench.ask().await;
        assert!(
            second.elapsed < Duration::from_millis(500),
            "{mode:?}: {second:?}"
        );
        if mode.fallback {
            second.served_by("f", "b", mode);
        } else {
            second.cooling_after_failures(mode);
            assert!(second.retry_after.unwrap() >= 20);
        }
        assert_eq!(bench.primary_attempts(), 1, "{mode:?}: never re-waited on");
    }
}

#[actix_rt::test]
async fn a_slow_first_token_gives_way_only_when_another_candidate_exists() {
    let env = [
        ("FREELLMAPI_FIRST_BYTE_TIMEOUT_CUSTOM", "1"),
        ("UPSTREAM_TIMEOUT_SECS", "10"),
    ];
    for mode in MODES {
        let bench = Bench::new(mode, &env).await;
        let slow = Reply::Delayed(
            Duration::from_millis(2500),
            Box::new(Reply::Answer("Hello from p".into())),
        );
        bench.mock.push("p", slow);
        let answer = bench.ask().await;
        matrix_line(
            "slow first token (2.5 s, limit 1 s)",
            mode,
            &answer,
            bench.primary_attempts(),
        );
        if mode.fallback {
            answer.served_by("f", "b", mode);
            assert!(answer.elapsed < Duration::from_millis(2000), "{answer:?}");
        } else {
            answer.served_by("p", "a", mode);
            assert!(answer.elapsed >= Duration::from_millis(2500), "{answer:?}");
        }
        assert_eq!(bench.primary_attempts(), 1);
    }
}

#[actix_rt::test]
async fn a_stream_cut_or_stalled_mid_answer_is_reported_and_cooled() {
    let env = [("UPSTREAM_TIMEOUT_SECS", "1")];
    for fault in ["cut", "stall"] {
        for mode in MODES.into_iter().filter(|m| m.stream) {
            let bench = Bench::new(mode, &env).await;
            let plan = match fault {
                "cut" => StreamPlan::of(&["Hel", "lo", " world"])
                    .paced(Duration::from_millis(20))
                    .cut_after(2),
                _ => StreamPlan::of(&["Hel", "lo"]).paced(Duration::from_secs(5)),
            };
            bench.mock.push("p", Reply::Stream(plan));
            let answer = bench.ask().await;
            matrix_line(
                &format!("stream {fault} mid-answer"),
                mode,
                &answer,
                bench.primary_attempts(),
            );
            // A cut after "Hello" is continued where a fallback exists; a stall before any text leaves nothing to
            // continue.
            if mode.fallback && fault == "cut" {
                answer.continued(mode);
            } else {
                answer.broke_mid_answer(mode);
            }
            assert!(answer.elapsed < Duration::from_secs(3), "{answer:?}");
            if fault == "stall" {
                eventually(
                    "the stalled upstream stream is abandoned",
                    Duration::from_secs(5),
                    async || bench.mock.dropped_streams() == 1,
                )
                .await;
            }
            let next = bench.ask().await;
            if mode.fallback {
                next.served_by("f", "b", mode);
                assert_eq!(
                    next.failed_attempts, 0,
                    "the broken route is benched, not retried"
                );
            } else {
                next.cooling_after_failures(mode);
            }
            assert_eq!(bench.primary_attempts(), 1);
        }
    }
    for mode in MODES.into_iter().filter(|m| !m.stream) {
        let cut = Reply::Truncated(r#"{"id":"chatcmpl-1","choices":[{"#.into());
        fails_over_before_the_answer("body cut mid-answer", mode, cut).await;
    }
}

/// A fault before any answer: the fallback serves, or, without one, the client gets a 502 after exactly two
/// attempts, or one for an answer the gateway could not read (trying the same route again would only spend
/// quota on the same unreadable answer).
async fn fails_over_before_the_answer(fault: &str, mode: Mode, reply: Reply) {
    let unreadable = fault.starts_with("malformed");
    let bench = Bench::new(mode, &[]).await;
    for _ in 0..2 {
        bench.mock.push("p", reply.clone());
    }
    let answer = bench.ask().await;
    matrix_line(fault, mode, &answer, bench.primary_attempts());
    if mode.fallback {
        answer.served_by("f", "b", mode);
        assert_eq!(bench.primary_attempts(), 1, "{fault}");
    } else {
        answer.refused(502, "upstream_error", mode);
        let attempts = if unreadable { 1 } else { 2 };
        assert_eq!(bench.primary_attempts(), attempts, "{fault}");
    }
}

#[actix_rt::test]
async fn malformed_or_error_first_events_fail_over() {
    let chunk = |content: &str, finish: Value| {
        json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "a",
               "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": finish}]})
        .to_string()
    };
    let cases = [
        ("malformed first event", "data: {not json\n\n".to_owned()),
        (
            "in-band error first",
            "data: {\"error\":{\"message\":\"Upstream overloaded\",\"type\":\"server_error\",\"code\":\"overloaded\"}}\n\n"
                .to_owned(),
        ),
    ];
    for (fault, sse) in cases {
        for mode in MODES.into_iter().filter(|m| m.stream) {
            fails_over_before_the_answer(fault, mode, Reply::RawSse(sse.clone())).await;
        }
    }
    for mode in MODES.into_iter().filter(|m| !m.stream) {
        let malformed = Reply::body(200, "{not json");
        fails_over_before_the_answer("malformed JSON body", mode, malformed).await;
    }
    let mid = format!(
        "data: {}\n\ndata: {{broken\n\n",
        chunk("Hello", Value::Null)
    );
    let without_done = format!(
        "data: {}\n\ndata: {}\n\n",
        chunk("Hello from p", Value::Null),
        chunk("", json!("stop"))
    );
    for mode in MODES.into_iter().filter(|m| m.stream) {
        let bench = Bench::new(mode, &[]).await;
        bench.mock.push("p", Reply::RawSse(mid.clone()));
        let answer = bench.ask().await;
        matrix_line("malformed event mid-stream", mode, &answer, 1);
        if mode.fallback {
            answer.continued(mode);
        } else {
            answer.broke_mid_answer(mode);
        }

        let bench = Bench::new(mode, &[]).await;
        bench.mock.push("p", Reply::RawSse(without_done.clone()));
        let answer = bench.ask().await;
        matrix_line("stream ends without [DONE]", mode, &answer, 1);
        answer.served_by("p", "a", mode);
        assert!(answer.elapsed < Duration::from_secs(1));
    }
}

/// A gateway with one key on each of Groq, Cerebras and SambaNova, all served by `mock` (keys `g`, `c`, `s`).
async fn three_platforms(mock: &Mock) -> Gateway {
    let base = mock.base_url();
    let gw = Gateway::start(&[
        ("FREELLMAPI_BASE_URL_GROQ", &base),
        ("FREELLMAPI_BASE_URL_CEREBRAS", &base),
        ("FREELLMAPI_BASE_URL_SAMBANOVA", &base),
    ]);
    for (platform, key) in [("groq", "g"), ("cerebras", "c"), ("sambanova", "s")] {
        add_platform_key(&gw, platform, key).await;
    }
    gw
}

/// The platforms (by key) whose mock saw a chat request, in order.
fn chat_keys(mock: &Mock) -> Vec<String> {
    mock.requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/chat/completions"))
        .map(|r| r.key)
        .collect()
}

#[actix_rt::test]
async fn an_unreadable_answer_benches_nothing_and_stops_at_the_second_platform() {
    for stream in [false, true] {
        let mock = Mock::start();
        let gw = three_platforms(&mock).await;
        let unreadable = if stream {
            Reply::RawSse("data: {not json\n\n".into())
        } else {
            Reply::body(200, "{not json")
        };
        for key in ["g", "c", "s"] {
            for _ in 0..MAX_SCRIPTED {
                mock.push(key, unreadable.clone());
            }
        }
        let mut body = crate::support::client::new_conversation("auto");
        body["stream"] = json!(stream);
        let res = chat(&gw, &body).await;
        assert_eq!(res.status, 502, "stream {stream}: {}", res.text());
        let message = res.json()["error"]["message"].as_str().unwrap().to_owned();
        assert!(message.contains("could not read"), "{message}");
        let tried = chat_keys(&mock);
        let mut platforms = tried.clone();
        platforms.dedup();
        assert_eq!(
            platforms.len(),
            2,
            "stopped at the second platform: {tried:?}"
        );
        assert!(!tried.contains(&"s".to_owned()), "{tried:?}");
        mock.clear_scripts();
        let next = chat(&gw, &crate::support::client::new_conversation("auto")).await;
        assert_eq!(next.status, 200, "nothing was benched: {}", next.text());
        let budgets = admin(&gw, "GET", "/api/budgets", None).await.json();
        for row in budgets.as_array().unwrap() {
            assert!(row["cooldown_until"].is_null(), "{row}");
        }
    }
}

#[actix_rt::test]
async fn the_same_refusal_from_two_platforms_ends_the_request() {
    let mock = Mock::start();
    let gw = three_platforms(&mock).await;
    let refusal = Reply::error(
        400,
        "invalid_request_error",
        "messages.0.content: unknown variant `video`",
    );
    for key in ["g", "c", "s"] {
        for _ in 0..MAX_SCRIPTED {
            mock.push(key, refusal.clone());
        }
    }
    let res = chat(&gw, &crate::support::client::new_conversation("auto")).await;
    assert_eq!(res.status, 400, "{}", res.text());
    assert_eq!(res.json()["error"]["code"], "upstream_rejected_request");
    let message = res.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains("unknown variant") && message.contains("no further platform"),
        "{message}"
    );
    let tried = chat_keys(&mock);
    assert!(!tried.contains(&"s".to_owned()), "{tried:?}");
}

/// More scripted answers than one request can use up on one key.
const MAX_SCRIPTED: usize = 40;

#[actix_rt::test]
async fn rejected_requests_are_never_retried_on_the_same_model() {
    let overflow = Reply::error(
        400,
        "context_length_exceeded",
        "This model's maximum context length is 8192 tokens. However, you requested 9000 tokens.",
    );
    let policy = Reply::error(
        400,
        "content_policy_violation",
        "Content violates the usage policy",
    );
    for (fault, reply) in [
        ("400 context length", overflow),
        ("400 content policy", policy),
    ] {
        for mode in MODES {
            let mock = Mock::start();
            let base = mock.base_url();
            let small = json!([{"id": "a", "context": 8192}]);
            let alone = Mode {
                fallback: false,
                ..mode
            };
            let bench = Bench::with_primary(mock, alone, &[], &base, small).await;
            add_custom_key(
                &bench.gw,
                "q",
                &base,
                json!([{"id": "a2", "context": 8192}]),
            )
            .await;
            if mode.fallback {
                let big = json!([{"id": "b2", "context": 131072}]);
                add_custom_key(&bench.gw, "g", &base, big).await;
            }
            bench.mock.push("p", reply.clone());
            bench.mock.push("q", reply.clone());
            let answer = bench.ask().await;
            matrix_line(fault, mode, &answer, bench.primary_attempts());
            assert_eq!(bench.primary_attempts(), 1, "{fault} {mode:?}");
            let overflowed = fault.contains("context");
            let q = bench.mock.count_for("q");
            assert_eq!(
                q,
                usize::from(!overflowed),
                "{fault} {mode:?}: an equally small window is {}",
                if overflowed { "skipped" } else { "tried" }
            );
            if mode.fallback && overflowed {
                answer.served_by("g", "b2", mode);
            } else if mode.fallback {
                assert_eq!(answer.status, 200, "{answer:?}");
            } else {
                answer.refused(400, "upstream_rejected_request", mode);
                let message = answer.error["message"].as_str().unwrap();
                assert!(
                    message.contains("maximum context length") || message.contains("usage policy"),
                    "{message}"
                );
            }
        }
    }
}

#[actix_rt::test]
async fn traffic_returns_to_a_recovered_primary() {
    let bench = Bench::new(
        Mode {
            stream: false,
            fallback: true,
        },
        &[],
    )
    .await;
    let down_for = Duration::from_secs(3);
    bench.mock.outage(
        "p",
        down_for,
        Reply::error(503, "unavailable", "down for maintenance"),
    );
    let started = Instant::now();
    let mut during = Vec::new();
    while started.elapsed() < down_for {
        let answer = bench.ask().await;
        assert_eq!(
            answer.status, 200,
            "never a client-visible error: {answer:?}"
        );
        during.push(answer.routed_via.unwrap());
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }
    let attempts_while_down = bench.primary_attempts();
    assert!(during.iter().all(|via| via == "custom/b"), "{during:?}");
    assert!(
        attempts_while_down <= 5,
        "a down primary is probed sparingly: {attempts_while_down} attempts in {down_for:?}"
    );
    let mut back = None;
    eventually(
        "traffic returns to the primary",
        Duration::from_secs(10),
        async || {
            let answer = bench.ask().await;
            assert_eq!(answer.status, 200);
            if answer.routed_via.as_deref() == Some("custom/a") {
                back = Some(started.elapsed());
                return true;
            }
            false
        },
    )
    .await;
    println!(
        "fault-matrix | primary down {down_for:?} then recovers | {} requests served by the fallback | primary attempts while down {attempts_while_down} | back on the primary after {:?}",
        during.len(),
        back.unwrap()
    );
    for _ in 0..3 {
        assert_eq!(bench.ask().await.routed_via.as_deref(), Some("custom/a"));
    }
}

#[actix_rt::test]
async fn failover_accounting_names_the_model_that_served() {
    for mode in MODES.into_iter().filter(|m| m.fallback) {
        let bench = Bench::new(mode, &[]).await;
        bench.mock.push("p", Reply::rate_limited(30));
        let answer = bench.ask().await;
        answer.served_by("f", "b", mode);
        let logged = async || {
            admin(&bench.gw, "GET", "/api/requests?limit=5", None)
                .await
                .json()
        };
        eventually(
            "the request is logged",
            Duration::from_secs(5),
            async || {
                logged()
                    .await
                    .as_array()
                    .is_some_and(|rows| !rows.is_empty())
            },
        )
        .await;
        let rows = logged().await;
        let row = &rows[0];
        assert_eq!(
            (row["platform"].as_str(), row["model"].as_str()),
            (Some("custom"), Some("b"))
        );
        assert_eq!(row["status"], 200);
        assert_eq!(row["attempts"], 2);
        assert_eq!(row["attempt_log"][0]["outcome"], "rate_limited");
        assert_eq!(row["attempt_log"][1]["outcome"], "ok");
        if !mode.stream {
            assert_eq!(row["prompt_tokens"], 11, "usage is the serving model's");
            assert_eq!(row["completion_tokens"], 7);
        }
        let a = budget_of(&bench.gw, "a").await;
        assert_eq!(
            a["tpm"]["used"], 0,
            "the failed attempt is not billed tokens"
        );
        let b = budget_of(&bench.gw, "b").await;
        assert!(b["tpm"]["used"].as_u64().unwrap() > 0);
    }
}
