//! Quota yield: 3 platforms × 3 keys behind the real gateway, driven above their total capacity by clients that
//! retry whenever the gateway says every key is spent, with a restart half-way through. The simulated providers
//! enforce their limits exactly, so every upstream 429 is a prediction the gateway got wrong. A second scenario
//! puts three OpenRouter free models on one key whose per-key limits they share.
//!
//! The short runs are CI tests. The long run is a documented command (README, "Quota yield"):
//! `FREELLMAPI_SIM_SECS=600 cargo test --release --test gateway quota_yield_long -- --ignored --nocapture`.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::client::{add_platform_key, admin};
use crate::support::gateway::{Gateway, TOKEN};
use crate::support::provider_sim::{prompt_tokens, ProviderSim, SimLimits, SimModel, Window, Wire};

/// Characters of every prompt: with `MAX_TOKENS` this makes each request cost exactly `COST` tokens upstream.
const PROMPT_CHARS: usize = 384;
const MAX_TOKENS: u64 = 400;
const CLIENTS: usize = 16;
/// How long a client waits after the gateway answers 429 (every key spent) before asking again.
const CLIENT_RETRY: Duration = Duration::from_millis(100);
const LATENCY: Duration = Duration::from_millis(40);

/// The providers of the scenario, with the limits each enforces. `stricter` makes the providers enforce less than
/// the gateway's catalog says (the catalog is wrong); otherwise they enforce exactly the catalog's limits.
fn providers(stricter: bool) -> Vec<(Wire, &'static str, &'static str, SimLimits)> {
    let pick = |right: u64, wrong: u64| Some(if stricter { wrong } else { right });
    vec![
        (
            Wire::Groq,
            "groq",
            "llama-3.3-70b-versatile",
            SimLimits {
                rpm: Some(30),
                rpd: Some(1000),
                tpm: pick(12_000, 8_000),
                tpd: Some(100_000),
            },
        ),
        (
            Wire::Cerebras,
            "cerebras",
            "gpt-oss-120b",
            SimLimits {
                rpm: pick(5, 3),
                rpd: Some(2400),
                tpm: Some(30_000),
                tpd: Some(1_000_000),
            },
        ),
        (
            Wire::Gemini,
            "google",
            "gemini-2.5-flash",
            SimLimits {
                rpm: pick(10, 5),
                rpd: Some(20),
                tpm: Some(250_000),
                tpd: None,
            },
        ),
    ]
}

/// What one run measured.
#[derive(Debug)]
pub struct Report {
    duration: Duration,
    capacity: u64,
    served: u64,
    refused: u64,
    other_errors: u64,
    upstream_429: usize,
    /// Upstream 429s per (key, model, window): how many, and over how long from the first to the last.
    misses: BTreeMap<(String, String, Window), (usize, Duration)>,
    /// Requests served per key.
    per_key: BTreeMap<String, usize>,
    errors_seen: Vec<String>,
}

impl Report {
    fn print(&self, title: &str) {
        println!(
            "{title}: {:.0}s, served {} of capacity {} ({:.1} %), gateway 429s {}, other client errors {}, upstream 429s {}",
            self.duration.as_secs_f64(),
            self.served,
            self.capacity,
            100.0 * self.served as f64 / self.capacity as f64,
            self.refused,
            self.other_errors,
            self.upstream_429
        );
        for ((key, model, window), (count, spread)) in &self.misses {
            println!(
                "  misses {key} {model} {window:?}: {count} within {:.2}s",
                spread.as_secs_f64()
            );
        }
        println!("  served per key: {:?}", self.per_key);
        for e in self.errors_seen.iter().take(5) {
            println!("  error: {e}");
        }
    }

    fn yield_ratio(&self) -> f64 {
        self.served as f64 / self.capacity as f64
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn prompt(n: u64) -> String {
    let head = format!("Request {n}: ");
    format!("{head}{}", "x".repeat(PROMPT_CHARS - head.len()))
}

/// Three OpenRouter free models the catalog lists (each 20 a minute and 200 a day of its own).
const OPENROUTER_MODELS: [&str; 3] = [
    "openai/gpt-oss-120b:free",
    "meta-llama/llama-3.3-70b-instruct:free",
    "z-ai/glm-4.5-air:free",
];
/// What an OpenRouter key without credits shares across its free models, as the catalog says.
const OPENROUTER_KEY: SimLimits = SimLimits {
    rpm: Some(20),
    rpd: Some(50),
    tpm: None,
    tpd: None,
};
/// Long enough for the key's day, not its minute, to bind: three minute windows of 20 exceed 50.
const KEY_WIDE_RUN: Duration = Duration::from_secs(130);

/// Runs the scenario for `duration` with a restart at half-time; `stricter` makes the catalog wrong.
async fn run(duration: Duration, stricter: bool) -> Report {
    let providers = providers(stricter);
    let sim = ProviderSim::start(
        providers
            .iter()
            .map(|(wire, _, model, limits)| SimModel {
                wire: *wire,
                model: (*model).to_owned(),
                limits: *limits,
            })
            .collect(),
        LATENCY,
    );
    let port = free_port().to_string();
    let (groq, cerebras, google) = (
        sim.base_url(Wire::Groq),
        sim.base_url(Wire::Cerebras),
        sim.base_url(Wire::Gemini),
    );
    let gw = Gateway::start(&[
        ("PORT", &port),
        ("FREELLMAPI_BASE_URL_GROQ", &groq),
        ("FREELLMAPI_BASE_URL_CEREBRAS", &cerebras),
        ("FREELLMAPI_BASE_URL_GOOGLE", &google),
        ("UPSTREAM_TIMEOUT_SECS", "30"),
        ("UPSTREAM_FIRST_BYTE_TIMEOUT_SECS", "10"),
        ("RUST_LOG", "warn,freellmapi::server=info"),
    ]);
    let mut chain = Vec::new();
    for (_, platform, model, _) in &providers {
        for k in 1..=3 {
            add_platform_key(&gw, platform, &format!("{platform}-sim-key-{k}")).await;
        }
        chain.push(json!({"platform": platform, "model": model, "enabled": true}));
    }
    let res = admin(&gw, "PUT", "/api/chain", Some(&Value::Array(chain))).await;
    assert_eq!(res.status, 200, "{}", res.text());

    let capacity: u64 = providers
        .iter()
        .map(|(_, _, _, limits)| 3 * limits.capacity(cost(), duration))
        .sum();
    drive(gw, port, &sim, duration, capacity).await
}

/// The key-wide scenario: three free models on one OpenRouter key, whose shared daily limit binds.
async fn run_key_wide(duration: Duration) -> Report {
    let model_limits = SimLimits {
        rpm: Some(20),
        rpd: Some(200),
        tpm: None,
        tpd: None,
    };
    let sim = ProviderSim::start(
        OPENROUTER_MODELS
            .iter()
            .map(|model| SimModel {
                wire: Wire::OpenRouter,
                model: (*model).to_owned(),
                limits: model_limits,
            })
            .collect(),
        LATENCY,
    );
    sim.share_per_key(Wire::OpenRouter, OPENROUTER_KEY);
    let port = free_port().to_string();
    let gw = Gateway::start(&[
        ("PORT", &port),
        (
            "FREELLMAPI_BASE_URL_OPENROUTER",
            &sim.base_url(Wire::OpenRouter),
        ),
        ("UPSTREAM_TIMEOUT_SECS", "30"),
        ("UPSTREAM_FIRST_BYTE_TIMEOUT_SECS", "10"),
        ("RUST_LOG", "warn,freellmapi::server=info"),
    ]);
    add_platform_key(&gw, "openrouter", "sk-or-v1-sim-key").await;
    let chain: Vec<Value> = OPENROUTER_MODELS
        .iter()
        .map(|model| json!({"platform": "openrouter", "model": model, "enabled": true}))
        .collect();
    let res = admin(&gw, "PUT", "/api/chain", Some(&Value::Array(chain))).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let models = 3 * model_limits.capacity(cost(), duration);
    let capacity = OPENROUTER_KEY.capacity(cost(), duration).min(models);
    drive(gw, port, &sim, duration, capacity).await
}

/// What each request costs upstream, in tokens.
fn cost() -> u64 {
    prompt_tokens(&[&prompt(0)]) + MAX_TOKENS
}

/// Drives the gateway with the clients for `duration`, restarting it at half-time, and reports what the clients
/// and the simulator saw.
async fn drive(
    gw: Gateway,
    port: String,
    sim: &ProviderSim,
    duration: Duration,
    capacity: u64,
) -> Report {
    let url = gw.url("/v1/chat/completions");
    let gw = Arc::new(Mutex::new(gw));
    let stop = Arc::new(AtomicBool::new(false));
    let counters = Arc::new([AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)]);
    let errors = Arc::new(Mutex::new(Vec::new()));
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (url, stop, counters, errors, next) = (
                url.clone(),
                stop.clone(),
                counters.clone(),
                errors.clone(),
                next.clone(),
            );
            actix_rt::spawn(async move {
                let client = awc::Client::builder()
                    .timeout(Duration::from_secs(60))
                    .finish();
                while !stop.load(Ordering::SeqCst) {
                    let n = next.fetch_add(1, Ordering::SeqCst);
                    let body = json!({"model": "auto", "max_tokens": MAX_TOKENS,
                        "messages": [{"role": "user", "content": prompt(n)}]});
                    let (status, text) = post(&client, &url, &body).await;
                    match status {
                        200 => {
                            counters[0].fetch_add(1, Ordering::SeqCst);
                        }
                        429 => {
                            counters[1].fetch_add(1, Ordering::SeqCst);
                            actix_rt::time::sleep(CLIENT_RETRY).await;
                        }
                        // A refused or broken connection: the gateway is restarting.
                        0 => actix_rt::time::sleep(Duration::from_millis(20)).await,
                        status => {
                            counters[2].fetch_add(1, Ordering::SeqCst);
                            errors.lock().unwrap().push(format!("{status} {text}"));
                            actix_rt::time::sleep(CLIENT_RETRY).await;
                        }
                    }
                }
            })
        })
        .collect();
    actix_rt::time::sleep(duration / 2).await;
    let restarting = gw.clone();
    let restart = actix_rt::task::spawn_blocking(move || {
        let port = port.clone();
        restarting.lock().unwrap().restart_with(&[("PORT", &port)])
    });
    restart.await.unwrap().expect("the gateway restarts");
    actix_rt::time::sleep(duration.saturating_sub(started.elapsed())).await;
    stop.store(true, Ordering::SeqCst);
    for client in clients {
        client.await.unwrap();
    }

    let log = sim.log();
    let mut misses: BTreeMap<(String, String, Window), (usize, Duration, Duration)> =
        BTreeMap::new();
    let mut per_key: BTreeMap<String, usize> = BTreeMap::new();
    for served in &log {
        match served.refused {
            None => *per_key.entry(served.key.clone()).or_default() += 1,
            Some(window) => {
                let entry = misses
                    .entry((served.key.clone(), served.model.clone(), window))
                    .or_insert((0, served.at, served.at));
                entry.0 += 1;
                entry.2 = served.at;
            }
        }
    }
    let errors_seen = errors.lock().unwrap().clone();
    drop(gw);
    Report {
        duration,
        capacity,
        served: counters[0].load(Ordering::SeqCst),
        refused: counters[1].load(Ordering::SeqCst),
        other_errors: counters[2].load(Ordering::SeqCst),
        upstream_429: log.iter().filter(|s| s.refused.is_some()).count(),
        misses: misses
            .into_iter()
            .map(|(k, (n, first, last))| (k, (n, last - first)))
            .collect(),
        per_key,
        errors_seen,
    }
}

/// POSTs a chat request; status 0 when the connection failed.
async fn post(client: &awc::Client, url: &str, body: &Value) -> (u16, String) {
    let sent = client
        .post(url)
        .insert_header(("authorization", format!("Bearer {TOKEN}")))
        .send_json(body)
        .await;
    let Ok(mut res) = sent else {
        return (0, String::new());
    };
    let body = res.body().await.unwrap_or_default();
    (
        res.status().as_u16(),
        String::from_utf8_lossy(&body).into_owned(),
    )
}

fn short_run() -> Duration {
    Duration::from_secs(
        std::env::var("FREELLMAPI_SIM_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(66),
    )
}

#[actix_rt::test]
async fn right_catalog_serves_its_capacity_without_a_single_upstream_429() {
    let report = run(short_run(), false).await;
    report.print("catalog right");
    assert_eq!(report.other_errors, 0, "{:?}", report.errors_seen);
    assert_eq!(report.upstream_429, 0, "{:?}", report.misses);
    assert!(report.yield_ratio() >= 0.99, "{report:?}");
}

#[actix_rt::test]
async fn wrong_catalog_misses_once_per_key_and_window_then_learns() {
    let report = run(short_run(), true).await;
    report.print("catalog wrong (providers stricter)");
    assert_eq!(report.other_errors, 0, "{:?}", report.errors_seen);
    for (what, (count, spread)) in &report.misses {
        assert!(
            *spread < Duration::from_secs(2),
            "{what:?}: {count} misses spread over {spread:?}, so the gateway kept sending after the first"
        );
    }
    assert!(report.yield_ratio() >= 0.95, "{report:?}");
}

#[actix_rt::test]
async fn a_key_wide_day_shared_by_three_models_is_served_in_full_without_a_429() {
    let report = run_key_wide(KEY_WIDE_RUN).await;
    report.print("key-wide day (three models, one OpenRouter key)");
    assert_eq!(report.capacity, 50, "the key's day binds, not its minute");
    assert_eq!(report.other_errors, 0, "{:?}", report.errors_seen);
    assert_eq!(report.upstream_429, 0, "{:?}", report.misses);
    assert_eq!(report.served, report.capacity, "{report:?}");
}

#[actix_rt::test]
#[ignore = "long run: FREELLMAPI_SIM_SECS=600 cargo test --release --test gateway quota_yield_long -- --ignored --nocapture"]
async fn quota_yield_long() {
    let right = run(short_run(), false).await;
    right.print("catalog right");
    let wrong = run(short_run(), true).await;
    wrong.print("catalog wrong (providers stricter)");
}
