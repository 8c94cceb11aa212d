//! A fast OpenAI-compatible mock upstream for benchmarks: fixed latency, optional streaming, optional error rate.
//!
//! `cargo run --release --example mock_upstream -- --port 9100 [--latency-ms 0] [--chunks 0] [--chunk-delay-ms 0]
//! [--error-rate 0.0]`. `--chunks N` makes streamed requests answer with N content chunks; non-streamed requests
//! always get one JSON answer. Errors are 429s with `retry-after: 1`, drawn from a cheap counter, not randomness,
//! so runs are repeatable.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use actix_web::http::header::ContentType;
use actix_web::{web, App, HttpResponse, HttpServer};
use bytes::Bytes;
use futures_util::stream;

#[derive(Clone, Copy)]
struct Settings {
    latency: Duration,
    chunks: usize,
    chunk_delay: Duration,
    error_every: Option<u64>,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

const ANSWER: &str = r#"{"id":"chatcmpl-mock","object":"chat.completion","created":1700000000,"model":"mock","choices":[{"index":0,"message":{"role":"assistant","content":"Hello from the mock."},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17}}"#;
const CHUNK: &[u8] = b"data: {\"id\":\"chatcmpl-mock\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"mock\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"tok \"},\"finish_reason\":null}]}\n\n";
const LAST: &[u8] = b"data: {\"id\":\"chatcmpl-mock\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"mock\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":5,\"total_tokens\":17}}\n\ndata: [DONE]\n\n";

async fn chat(settings: web::Data<Settings>, body: Bytes) -> HttpResponse {
    let s = **settings;
    if !s.latency.is_zero() {
        actix_rt::time::sleep(s.latency).await;
    }
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    if s.error_every.is_some_and(|every| n % every == every - 1) {
        return HttpResponse::TooManyRequests()
            .insert_header(("retry-after", "1"))
            .content_type(ContentType::json())
            .body(r#"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"#);
    }
    let streamed = body.windows(13).any(|w| w == b"\"stream\":true");
    if !streamed || s.chunks == 0 {
        return HttpResponse::Ok()
            .content_type(ContentType::json())
            .body(ANSWER);
    }
    let pieces = stream::unfold(0usize, move |i| async move {
        if i > s.chunks {
            return None;
        }
        if i > 0 && !s.chunk_delay.is_zero() {
            actix_rt::time::sleep(s.chunk_delay).await;
        }
        let bytes = if i == s.chunks {
            Bytes::from_static(LAST)
        } else {
            Bytes::from_static(CHUNK)
        };
        Some((Ok::<_, actix_web::Error>(bytes), i + 1))
    });
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .streaming(pieces)
}

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let port: u16 = arg(&args, "--port", 9100);
    let error_rate: f64 = arg(&args, "--error-rate", 0.0);
    let settings = Settings {
        latency: Duration::from_millis(arg(&args, "--latency-ms", 0)),
        chunks: arg(&args, "--chunks", 0),
        chunk_delay: Duration::from_millis(arg(&args, "--chunk-delay-ms", 0)),
        error_every: (error_rate > 0.0).then(|| (1.0 / error_rate).round().max(1.0) as u64),
    };
    let workers: usize = arg(&args, "--workers", 1);
    actix_rt::System::new().block_on(async move {
        HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(settings))
                .app_data(web::PayloadConfig::new(16 * 1024 * 1024))
                .route("/{tail:.*}/chat/completions", web::post().to(chat))
                .route(
                    "/{tail:.*}/models",
                    web::get().to(|| async {
                        HttpResponse::Ok().json(serde_json::json!({"object":"list","data":[]}))
                    }),
                )
        })
        .workers(workers)
        .bind(("127.0.0.1", port))?
        .run()
        .await
    })
}
