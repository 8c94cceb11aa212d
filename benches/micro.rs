//! Micro-benchmarks for the hot paths a request crosses inside the gateway: the router's candidate selection
//! (10,000 keys × 200 models), a budget's lease taken and settled, the SSE parser, following a streamed answer
//! for continuation, the Gemini translation both ways, and writing a batch of request-log rows.
//!
//! `cargo bench --bench micro`; the selection benchmark also prints its p50/p99/max per call, since the target
//! (≤ 20 µs p99) is about the tail, which criterion's mean does not show.

#![allow(clippy::panic)]

use std::collections::HashMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde_json::json;

use freellmapi::actors::router::{RouterActor, RoutingData, RoutingState};
use freellmapi::catalog::{Catalog, Limits, Window};
use freellmapi::config::Config;
use freellmapi::day_window::DayWindow;
use freellmapi::openai::chat::{ChatRequest, Usage};
use freellmapi::openai::replay::Gathered;
use freellmapi::openai::sse::{SseEvent, SseParser};
use freellmapi::platform::Platform;
use freellmapi::providers::{Provider, QuotaNews, Registry, Target};
use freellmapi::quota_news::WindowReport;
use freellmapi::response_cache::{CacheKey, Scope};
use freellmapi::routing::budget::{Budget, Outcome, Settlement};
use freellmapi::routing::estimate::Cost;
use freellmapi::routing::resume::Partial;
use freellmapi::store::chain::ChainRow;
use freellmapi::store::provider_keys::KeyRow;
use freellmapi::store::requests::{self, LogEntry};
use freellmapi::store::Db;

const KEYS: i64 = 10_000;
const MODELS: usize = 200;

/// Every platform the catalog may name (custom models come from keys, not the catalog).
fn catalog_platforms() -> Vec<Platform> {
    Platform::ALL
        .into_iter()
        .filter(|p| *p != Platform::Custom)
        .collect()
}

/// A catalog of `MODELS` models spread over the platforms, each with published limits.
fn large_catalog() -> Catalog {
    let platforms = catalog_platforms();
    let models: Vec<_> = (0..MODELS)
        .map(|i| {
            json!({"platform": platforms[i % platforms.len()].id(), "model": format!("model-{i}"),
                   "context": 32768, "limits": {"rpm": 30, "rpd": 1000, "tpm": 60000}})
        })
        .collect();
    let text = json!({ "models": models }).to_string();
    Catalog::parse(&text).unwrap_or_else(|e| panic!("synthetic catalog: {e}"))
}

/// `KEYS` keys spread over the platforms and a chain naming every model, as the database would hand them over.
fn large_routing_data() -> RoutingData {
    let platforms = catalog_platforms();
    let keys = (1..=KEYS)
        .map(|id| KeyRow {
            id: freellmapi::provider_key::KeyId(id),
            platform: platforms[id as usize % platforms.len()].id().to_owned(),
            label: format!("key {id}"),
            ciphertext: vec![0; 48],
            nonce: vec![0; 12],
            key_hint: "sk-…abcd".into(),
            base_url: None,
            models: None,
            status: freellmapi::provider_key::KeyStatus::Healthy,
            last_error: None,
            last_checked_at: None,
            enabled: true,
            created_at: 0,
            updated_at: 0,
        })
        .collect();
    let chain = (0..MODELS)
        .map(|i| ChainRow {
            position: i as i64,
            platform: platforms[i % platforms.len()].id().to_owned(),
            model: format!("model-{i}"),
            enabled: true,
        })
        .collect();
    RoutingData {
        keys,
        chain,
        aliases: Vec::new(),
        revision: 1,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

fn selection(c: &mut Criterion) {
    let system = actix::System::new();
    let dir = std::env::temp_dir().join(format!("freellmapi-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    system.block_on(async {
        let config = Config::from_vars(&HashMap::new()).unwrap_or_else(|e| panic!("{e}"));
        let db = Db::start(dir.join("bench.db"), 1).unwrap_or_else(|e| panic!("{e}"));
        let state = RoutingState::new(
            freellmapi::catalog::SharedCatalog::new(large_catalog()),
            std::sync::Arc::new(Registry::new(&config)),
            large_routing_data(),
            Vec::new(),
        );
        let mut router = RouterActor::worker(db, std::sync::Arc::new(state));
        let mut session = 0u64;
        let mut group = c.benchmark_group("router selection, 10k keys x 200 models");
        let pinned = format!(
            "{}/model-7",
            catalog_platforms()[7 % catalog_platforms().len()]
        );
        for model in ["auto", "model-7", pinned.as_str()] {
            let ask = freellmapi::actors::router::Ask::chat(model);
            let mut samples = Vec::new();
            group.bench_function(model, |b| {
                b.iter_custom(|iterations| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iterations {
                        session = session.wrapping_add(1);
                        let start = Instant::now();
                        let planned = router.plan(black_box(&ask), session, None);
                        let took = start.elapsed();
                        black_box(planned.map(|p| p.candidates.len()).unwrap_or(0));
                        samples.push(took);
                        total += took;
                    }
                    total
                })
            });
            samples.sort();
            if !samples.is_empty() {
                println!(
                    "selection {model}: {} calls, p50 {:?}, p99 {:?}, max {:?}",
                    samples.len(),
                    percentile(&samples, 0.50),
                    percentile(&samples, 0.99),
                    samples[samples.len() - 1]
                );
            }
        }
        group.finish();
    });
    let _ = std::fs::remove_dir_all(&dir);
}

/// An OpenAI-style stream of `chunks` content chunks, as an upstream sends it.
fn openai_stream(chunks: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..chunks {
        let chunk = json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1_700_000_000,
            "model": "llama-3.3-70b", "choices": [{"index": 0, "delta": {"content": format!("token {i} of the answer ")},
            "finish_reason": null}]});
        out.extend_from_slice(format!("data: {chunk}\n\n").as_bytes());
    }
    out.extend_from_slice(b"data: [DONE]\n\n");
    out
}

fn sse_parser(c: &mut Criterion) {
    let stream = openai_stream(50);
    let mut group = c.benchmark_group("sse parser");
    group.throughput(Throughput::Bytes(stream.len() as u64));
    for segment in [64usize, 1400, 16384] {
        group.bench_function(format!("50 chunks in {segment}-byte reads"), |b| {
            let mut events: Vec<SseEvent> = Vec::with_capacity(64);
            b.iter(|| {
                let mut parser = SseParser::new();
                events.clear();
                for piece in stream.chunks(segment) {
                    parser
                        .push(black_box(piece), &mut events)
                        .unwrap_or_else(|e| panic!("{e}"));
                }
                parser.finish(&mut events).unwrap_or_else(|e| panic!("{e}"));
                black_box(events.len())
            })
        });
    }
    group.finish();
}

/// What reading an OpenAI-compatible stream costs per chunk: the peek that finds usage, the finish and reasoning
/// outside `reasoning_content`; chunks without such reasoning are relayed as they came.
fn compat_stream(c: &mut Criterion) {
    let stream = openai_stream(50);
    let mut events: Vec<SseEvent> = Vec::new();
    let mut parser = SseParser::new();
    parser
        .push(&stream, &mut events)
        .unwrap_or_else(|e| panic!("{e}"));
    let adapter = freellmapi::providers::openai_compat::OpenAiCompat::for_platform(Platform::Groq)
        .unwrap_or_else(|| panic!("groq is OpenAI-compatible"));
    c.bench_function("openai-compatible stream: read 50 chunks", |b| {
        b.iter(|| {
            let mut decoder = adapter.stream_decoder("m", false);
            let mut out = Vec::with_capacity(64);
            for event in &events {
                let _ = decoder.event(black_box(event.clone()), &mut out);
            }
            black_box(out.len())
        })
    });
}

/// What following a stream for continuation costs per relayed chunk (every streamed answer pays it).
fn partial_answer(c: &mut Criterion) {
    let chunks: Vec<Vec<u8>> = (0..50)
        .map(|i| {
            json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1_700_000_000,
                "model": "llama-3.3-70b", "choices": [{"index": 0,
                "delta": {"content": format!("token {i} of the answer ")}, "finish_reason": null}]})
            .to_string()
            .into_bytes()
        })
        .collect();
    c.bench_function("stream resume: follow a 50-chunk answer", |b| {
        b.iter(|| {
            let mut partial = Partial::default();
            for chunk in &chunks {
                partial.observe(black_box(chunk));
            }
            black_box(partial.text.len())
        })
    });
}

/// A realistic agent turn: system prompt, a few exchanges, a tool call and its result, two tools offered.
fn agent_request() -> ChatRequest {
    let body = json!({
        "model": "google/gemini-2.5-flash",
        "messages": [
            {"role": "system", "content": "You are a careful coding assistant. Answer briefly."},
            {"role": "user", "content": "What is in src/main.rs?"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
                "function": {"name": "read_file", "arguments": "{\"path\":\"src/main.rs\"}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "fn main() { println!(\"hello\"); }"},
            {"role": "assistant", "content": "It prints hello."},
            {"role": "user", "content": [{"type": "text", "text": "Now make it print the arguments."}]}
        ],
        "tools": [
            {"type": "function", "function": {"name": "read_file", "description": "Reads a file",
                "parameters": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}}},
            {"type": "function", "function": {"name": "write_file", "description": "Writes a file",
                "parameters": {"type": "object", "properties": {"path": {"type": "string"},
                    "content": {"type": "string"}}, "required": ["path", "content"]}}}
        ],
        "temperature": 0.2,
        "max_tokens": 1024,
        "stream": true
    });
    ChatRequest::parse(body.to_string().as_bytes()).unwrap_or_else(|e| panic!("{e}"))
}

/// A Gemini `streamGenerateContent?alt=sse` answer of `chunks` text parts, the last with usage.
fn gemini_stream(chunks: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..chunks {
        let mut event = json!({"candidates": [{"content": {"role": "model", "parts": [{"text": format!("token {i} ")}]},
            "index": 0}], "modelVersion": "gemini-2.5-flash", "responseId": "r1"});
        if i + 1 == chunks {
            event["candidates"][0]["finishReason"] = json!("STOP");
            event["usageMetadata"] = json!({"promptTokenCount": 90, "candidatesTokenCount": chunks, "totalTokenCount": 90 + chunks});
        }
        out.extend_from_slice(format!("data: {event}\r\n\r\n").as_bytes());
    }
    out
}

fn gemini_translation(c: &mut Criterion) {
    let config = Config::from_vars(&HashMap::new()).unwrap_or_else(|e| panic!("{e}"));
    let registry = Registry::new(&config);
    let gemini = registry
        .adapter(Platform::Google)
        .unwrap_or_else(|| panic!("gemini adapter"))
        .clone();
    let request = agent_request();
    let target = Target {
        base_url: "https://generativelanguage.googleapis.com/v1beta",
        model: "gemini-2.5-flash",
        secret: "AIza-bench-key",
    };
    let answer = Bytes::from(
        json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "Here is the change: print std::env::args()."}]},
            "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": 90, "candidatesTokenCount": 12, "totalTokenCount": 102},
            "modelVersion": "gemini-2.5-flash", "responseId": "r1"})
        .to_string(),
    );
    let mut events = Vec::new();
    let mut parser = SseParser::new();
    parser
        .push(&gemini_stream(50), &mut events)
        .unwrap_or_else(|e| panic!("{e}"));

    let mut group = c.benchmark_group("gemini translation");
    group.bench_function("request: agent turn with tools", |b| {
        b.iter(|| {
            gemini
                .chat_request(black_box(&target), black_box(&request))
                .unwrap_or_else(|e| panic!("{e}"))
        })
    });
    group.bench_function("answer: non-streamed body", |b| {
        b.iter(|| {
            gemini
                .decode_body("gemini-2.5-flash", black_box(answer.clone()))
                .unwrap_or_else(|e| panic!("{e:?}"))
        })
    });
    group.bench_function("answer: 50-event stream", |b| {
        let mut out = Vec::with_capacity(64);
        b.iter(|| {
            let mut decoder = gemini.stream_decoder("gemini-2.5-flash", true);
            out.clear();
            for event in &events {
                decoder
                    .event(black_box(event.clone()), &mut out)
                    .unwrap_or_else(|e| panic!("{e:?}"));
            }
            black_box(out.len())
        })
    });
    group.finish();
}

/// One request's budget work: a lease taken, then settled with the provider's rate-limit headers, on a budget that
/// is busy (about 25 requests in its minute window), as each request pays it on its limiter's thread.
fn budget(c: &mut Criterion) {
    let limits = Limits {
        rpm: Some(1_000_000),
        rpd: Some(100_000_000),
        tpm: Some(u32::MAX),
        tpd: None,
        day_window: Some(DayWindow::MidnightPacific),
    };
    let mut budget = Budget::new(limits);
    let mut news = QuotaNews::default();
    // Stated limits as the catalog's, with remaining quota that shows no use the budget did not see.
    for (window, limit) in [
        (Window::Rpd, 100_000_000),
        (Window::Tpm, u64::from(u32::MAX)),
    ] {
        news.add(
            window,
            WindowReport {
                limit: Some(limit),
                remaining: Some(limit - 1),
                reset: Some(Duration::from_secs(30)),
            },
        );
    }
    let cost = Cost {
        prompt: 120,
        output: 400,
    };
    let mut now = 1_795_000_000_000i64;
    c.bench_function("budget: acquire and settle with rate-limit news", |b| {
        b.iter(|| {
            // 2.4 s apart: about 25 settled requests stay in the minute window.
            now += 2_400;
            let lease = budget
                .acquire(black_box(cost), now)
                .unwrap_or_else(|d| panic!("{d:?}"));
            let outcome = Outcome {
                settlement: Settlement::Served {
                    tokens: Some(500),
                    reported_prompt: Some(100),
                },
                answered_ms: now + 300,
                news: news.clone(),
            };
            budget.settle(lease, outcome, now + 300);
        })
    });
}

/// The response cache's per-request work when it is on: the key of an agent turn, and gathering a 50-chunk
/// stream into the completion it keeps.
fn response_cache(c: &mut Criterion) {
    let body = serde_json::to_vec(&agent_request()).unwrap_or_else(|e| panic!("{e}"));
    let mut group = c.benchmark_group("response cache");
    group.bench_function("key of an agent turn", |b| {
        b.iter(|| CacheKey::of("/v1/chat/completions", Scope::Shared, black_box(&body)))
    });
    let chunks: Vec<Vec<u8>> = (0..50)
        .map(|i| {
            json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                "choices": [{"index": 0, "delta": {"content": format!("token {i} ")},
                    "finish_reason": if i == 49 { json!("stop") } else { json!(null) }}]})
            .to_string()
            .into_bytes()
        })
        .collect();
    group.bench_function("gather a 50-chunk stream", |b| {
        b.iter(|| {
            let mut gathered = Gathered::default();
            for chunk in &chunks {
                gathered.add(black_box(chunk));
            }
            gathered.completion(Usage::default())
        })
    });
}

/// The request log's writer: one batch of 512 rows (the logger's flush size) in one transaction.
fn request_log(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("freellmapi-micro-log-{}", std::process::id()));
    let mut conn = freellmapi::store::open(&dir.join("log.db")).unwrap_or_else(|e| panic!("{e}"));
    let mut rows: Vec<LogEntry> = (0..512)
        .map(|i| LogEntry {
            ts: 1_780_000_000_000 + i,
            requested_model: "auto".into(),
            platform: Some("groq".into()),
            model: Some("llama-3.3-70b-versatile".into()),
            status: 200,
            latency_ms: 412,
            prompt_tokens: 14,
            completion_tokens: 9,
            attempts: 1,
            stream: false,
            error: None,
            attempt_log: Some(
                r#"[{"platform":"groq","model":"llama-3.3-70b-versatile","key_id":1,"outcome":"ok","status":200,"latency_ms":412}]"#
                    .into(),
            ),
            client: None,
            cached: false,
        })
        .collect();
    let mut group = c.benchmark_group("request log");
    group.throughput(Throughput::Elements(rows.len() as u64));
    group.bench_function("insert a batch of 512 rows", |b| {
        b.iter(|| {
            // Later rows, as a running gateway logs them (the ts index grows at its end).
            for row in &mut rows {
                row.ts += 512;
            }
            requests::insert_batch(&mut conn, black_box(&rows))
        })
    });
    group.finish();
    drop(conn);
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(
    benches,
    response_cache,
    request_log,
    selection,
    budget,
    sse_parser,
    partial_answer,
    compat_stream,
    gemini_translation
);
criterion_main!(benches);
