//! Times the analytics and request-log queries over a large request log.
//!
//! `cargo run --release --example analytics_bench -- [rows]` (default 1,000,000): fills a temporary database
//! with rows spread over 30 days, then times `/api/analytics` for each range and `/api/requests?limit=50`.

use std::time::{Duration, Instant};

use freellmapi::store::requests::{self, LogEntry};
use freellmapi::timefmt::now_unix_ms;

fn main() -> Result<(), String> {
    let rows: i64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let dir =
        std::env::temp_dir().join(format!("freellmapi-analytics-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut conn = freellmapi::store::open(&dir.join("bench.db")).map_err(|e| e.to_string())?;
    let now = now_unix_ms();
    let span = 30 * 86_400_000i64;
    let started = Instant::now();
    let models = [
        "llama-3.3-70b-versatile",
        "gemini-2.5-flash",
        "gpt-oss-120b",
        "mistral-small-latest",
    ];
    let platforms = ["groq", "google", "cerebras", "mistral"];
    let batch: Vec<LogEntry> = (0..rows)
        .map(|i| {
            let pick = usize::try_from(i % 4).unwrap_or(0);
            let failed = i % 17 == 0;
            LogEntry {
                ts: now - span + i * span / rows,
                requested_model: "auto".to_owned(),
                platform: (!failed).then(|| platforms[pick].to_owned()),
                model: (!failed).then(|| models[pick].to_owned()),
                status: if failed { 502 } else { 200 },
                latency_ms: i32::try_from(50 + (i * 7919) % 3000).unwrap_or(0),
                prompt_tokens: 120,
                completion_tokens: 80,
                attempts: 1,
                stream: i % 2 == 0,
                error: None,
                attempt_log: None,
                client: None,
                cached: false,
            }
        })
        .collect();
    for chunk in batch.chunks(50_000) {
        requests::insert_batch(&mut conn, chunk).map_err(|e| e.to_string())?;
    }
    println!("inserted {rows} rows in {:.1?}", started.elapsed());
    for (name, range_ms, bucket_ms) in [
        ("24h", 86_400_000i64, 3_600_000i64),
        ("7d", 7 * 86_400_000, 6 * 3_600_000),
        ("30d", span, 86_400_000),
    ] {
        let t = Instant::now();
        let a =
            requests::analytics(&mut conn, now - range_ms, bucket_ms).map_err(|e| e.to_string())?;
        println!(
            "analytics {name}: {:>8.1?} ({} requests, {} buckets)",
            t.elapsed(),
            a.totals.requests,
            a.series.len()
        );
    }
    let t = Instant::now();
    let recent = requests::recent(&mut conn, 50).map_err(|e| e.to_string())?;
    println!(
        "recent 50:    {:>8.1?} ({} rows)",
        t.elapsed(),
        recent.len()
    );
    drop(conn);
    std::thread::sleep(Duration::from_millis(10));
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
