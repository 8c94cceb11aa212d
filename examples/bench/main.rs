//! The benchmark suite of issue 6: starts mock upstreams (`examples/mock_upstream`) and the release gateway,
//! runs every scenario directly against the mock and through the gateway in the same run, samples the gateway's
//! RSS, and prints one table. Its limit rows (`one_hop.rs`) put nginx as a bare reverse proxy beside the gateway.
//!
//! ```sh
//! cargo build --release --bin freellmapi --examples && target/release/examples/bench [--quick]
//! ```
//! `--quick` shortens every scenario (a smoke run, not figures to quote).
// A measuring tool: a setup step that fails (no free port, binary not built) should stop it loudly.
#![allow(clippy::expect_used, clippy::panic)]

use std::future::Future;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;

mod one_hop;
mod relay;

const TOKEN: &str = "freellmapi-0123456789abcdef0123456789abcdef";
const BODY: &str = r#"{"model":"MODEL","messages":[{"role":"user","content":"Say hello in one short sentence."}]}"#;

/// How long each part runs.
#[derive(Clone, Copy)]
struct Plan {
    window: Duration,
    streams_held: usize,
    hold: Duration,
    many_requests: usize,
    failover_samples: usize,
}

impl Plan {
    fn new(quick: bool) -> Plan {
        if quick {
            Plan {
                window: Duration::from_secs(1),
                streams_held: 100,
                hold: Duration::from_secs(3),
                many_requests: 10_000,
                failover_samples: 3,
            }
        } else {
            Plan {
                window: Duration::from_secs(5),
                streams_held: 1000,
                hold: Duration::from_secs(30),
                many_requests: 100_000,
                failover_samples: 20,
            }
        }
    }
}

/// A child process killed when dropped.
struct Proc {
    child: Child,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `N` distinct free ports: all `N` listeners are held until each is chosen, so no port is handed out twice.
fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: Vec<_> = (0..N)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("a free port"))
        .collect();
    std::array::from_fn(|i| listeners[i].local_addr().expect("a bound port").port())
}

fn wait_listening(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn binaries() -> PathBuf {
    let exe = std::env::current_exe().expect("the bench's own path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/release/examples/bench")
        .to_owned()
}

/// Starts `examples/mock_upstream` with `args`; returns it and its OpenAI base URL.
fn mock(args: &[&str]) -> (Proc, String) {
    let [port] = free_ports();
    let child = Command::new(binaries().join("examples/mock_upstream"))
        .args(["--port", &port.to_string()])
        .args(args)
        .spawn()
        .expect("target/release/examples/mock_upstream (build with --examples)");
    wait_listening(port);
    (Proc { child }, format!("http://127.0.0.1:{port}/v1"))
}

/// A running release gateway in its own data directory.
struct Gateway {
    proc: Proc,
    port: u16,
    dir: PathBuf,
}

impl Gateway {
    fn start(name: &str) -> Gateway {
        let [port] = free_ports();
        let dir =
            std::env::temp_dir().join(format!("freellmapi-bench-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a temp dir");
        let child = Command::new(binaries().join("freellmapi"))
            .current_dir(&dir)
            .env_clear()
            .env("PORT", port.to_string())
            .env("DATABASE_URL", dir.join("bench.db"))
            .env("FREELLMAPI_API_KEY", TOKEN)
            .env("ENCRYPTION_KEY", "ab".repeat(32))
            .env("HEALTH_CHECK_INTERVAL_SECS", "0")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("target/release/freellmapi (cargo build --release --bin freellmapi)");
        wait_listening(port);
        Gateway {
            proc: Proc { child },
            port,
            dir,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/v1/chat/completions", self.port)
    }

    fn add_key(&self, key: &str, base_url: &str, model: &str) {
        let body = serde_json::json!({"platform": "custom", "key": key, "base_url": base_url, "models": [model]});
        let url = format!("http://127.0.0.1:{}/api/keys", self.port);
        let status = block_on(async move {
            awc::Client::new()
                .post(url)
                .insert_header(("authorization", format!("Bearer {TOKEN}")))
                .send_json(&body)
                .await
                .map(|r| r.status().as_u16())
        });
        assert_eq!(status.ok(), Some(201), "adding a bench key");
    }

    fn rss_kb(&self) -> u64 {
        rss_kb(self.proc.child.id())
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Sends `requests` requests from 64 clients, lets the gateway settle, and reads its RSS in MB.
fn settled_rss_after(gw: &Gateway, body: &'static str, requests: usize) -> (Stats, f64) {
    let stats = closed_loop(
        &gw.url(),
        body,
        64,
        Duration::from_secs(3600),
        Some(requests),
    );
    std::thread::sleep(Duration::from_millis(1500));
    (stats, gw.rss_kb() as f64 / 1024.0)
}

fn rss_kb(pid: u32) -> u64 {
    let mut text = String::new();
    let read = std::fs::File::open(format!("/proc/{pid}/status"))
        .and_then(|mut f| f.read_to_string(&mut text));
    if read.is_err() {
        return 0;
    }
    text.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Samples a process's RSS every 50 ms until dropped; keeps the peak.
struct RssSampler {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl RssSampler {
    fn start(pid: u32) -> RssSampler {
        let peak = Arc::new(AtomicU64::new(rss_kb(pid)));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (peak.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                p.fetch_max(rss_kb(pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        RssSampler { peak, stop }
    }

    fn peak_mb(&self) -> f64 {
        self.peak.load(Ordering::Relaxed) as f64 / 1024.0
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn block_on<F: Future>(f: F) -> F::Output {
    actix_rt::System::new().block_on(f)
}

fn client() -> awc::Client {
    awc::Client::builder()
        .connector(awc::Connector::new().limit(0))
        .timeout(Duration::from_secs(120))
        .finish()
}

/// Latencies (µs) and counts of one run.
#[derive(Default)]
struct Stats {
    latencies_us: Vec<u64>,
    ok: usize,
    failed: usize,
    elapsed: Duration,
}

impl Stats {
    fn merge(parts: Vec<Stats>, elapsed: Duration) -> Stats {
        let mut all = Stats {
            elapsed,
            ..Stats::default()
        };
        for p in parts {
            all.latencies_us.extend(p.latencies_us);
            all.ok += p.ok;
            all.failed += p.failed;
        }
        all.latencies_us.sort_unstable();
        all
    }

    fn percentile_ms(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        let i = ((self.latencies_us.len() - 1) as f64 * p).round() as usize;
        self.latencies_us[i] as f64 / 1000.0
    }

    fn rps(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }

    fn success_rate(&self) -> f64 {
        100.0 * self.ok as f64 / (self.ok + self.failed).max(1) as f64
    }
}

/// One request; whether it succeeded with a complete body.
async fn request(client: &awc::Client, url: &str, body: &'static str) -> bool {
    let sent = client
        .post(url)
        .insert_header(("authorization", format!("Bearer {TOKEN}")))
        .insert_header(("content-type", "application/json"))
        .send_body(body)
        .await;
    match sent {
        Ok(mut res) if res.status().is_success() => res.body().limit(1 << 20).await.is_ok(),
        Ok(mut res) => {
            let _ = res.body().await;
            false
        }
        Err(_) => false,
    }
}

fn body_for(model: &str, stream: bool) -> &'static str {
    let body = BODY.replace("MODEL", model);
    let body = if stream {
        body.replacen('{', r#"{"stream":true,"#, 1)
    } else {
        body
    };
    Box::leak(body.into_boxed_str())
}

/// `clients` concurrent loops on two driver threads until `window` passes or `total` requests are done.
fn closed_loop(
    url: &str,
    body: &'static str,
    clients: usize,
    window: Duration,
    total: Option<usize>,
) -> Stats {
    let started = Instant::now();
    let deadline = started + window;
    let done = Arc::new(AtomicUsize::new(0));
    let threads = clients.clamp(1, 2);
    let parts: Vec<Stats> = (0..threads)
        .map(|t| {
            let url = url.to_owned();
            let done = done.clone();
            let mine = clients / threads + usize::from(t < clients % threads);
            std::thread::spawn(move || {
                block_on(async move {
                    let client = client();
                    let loops = (0..mine).map(|_| {
                        let (client, url, done) = (client.clone(), url.clone(), done.clone());
                        async move {
                            let mut stats = Stats::default();
                            loop {
                                if Instant::now() >= deadline && total.is_none() {
                                    break;
                                }
                                if total.is_some_and(|n| done.fetch_add(1, Ordering::Relaxed) >= n)
                                {
                                    break;
                                }
                                let t0 = Instant::now();
                                if request(&client, &url, body).await {
                                    stats.ok += 1;
                                    stats.latencies_us.push(t0.elapsed().as_micros() as u64);
                                } else {
                                    stats.failed += 1;
                                }
                            }
                            stats
                        }
                    });
                    let all = futures_util::future::join_all(loops).await;
                    Stats::merge(all, Duration::ZERO)
                })
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().expect("a driver thread"))
        .collect();
    Stats::merge(parts, started.elapsed())
}

/// A fixed arrival rate for `window`; latency counts from each request's scheduled start (no coordinated
/// omission). Requests still open 10 s after the window count as failed.
fn open_loop(url: &str, body: &'static str, rate: u32, window: Duration) -> Stats {
    let threads = 2u32;
    let started = Instant::now();
    let parts: Vec<Stats> = (0..threads)
        .map(|_| {
            let url = url.to_owned();
            std::thread::spawn(move || {
                block_on(async move {
                    let client = client();
                    let stats = Arc::new(Mutex::new(Stats::default()));
                    let interval = Duration::from_secs_f64(f64::from(threads) / f64::from(rate));
                    let first = Instant::now();
                    let count = (window.as_secs_f64() / interval.as_secs_f64()) as u32;
                    let mut open = Vec::with_capacity(count as usize);
                    for i in 0..count {
                        let at = first + interval * i;
                        actix_rt::time::sleep_until(at.into()).await;
                        let (client, url, stats) = (client.clone(), url.clone(), stats.clone());
                        open.push(actix_rt::spawn(async move {
                            let ok = request(&client, &url, body).await;
                            let mut s = stats.lock().expect("stats");
                            if ok {
                                s.ok += 1;
                                s.latencies_us.push(at.elapsed().as_micros() as u64);
                            } else {
                                s.failed += 1;
                            }
                        }));
                    }
                    let grace = actix_rt::time::sleep(Duration::from_secs(10));
                    let all = futures_util::future::join_all(open);
                    tokio_select(all, grace).await;
                    let mut s = std::mem::take(&mut *stats.lock().expect("stats"));
                    s.failed = count as usize - s.ok;
                    s
                })
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().expect("a driver thread"))
        .collect();
    Stats::merge(parts, started.elapsed())
}

async fn tokio_select<A: Future, B: Future>(a: A, b: B) {
    futures_util::future::select(std::pin::pin!(a), std::pin::pin!(b)).await;
}

/// Time to the first body chunk and to the end, of `count` sequential streams.
fn stream_timings(url: &str, body: &'static str, count: usize) -> (Stats, Stats) {
    let url = url.to_owned();
    block_on(async move {
        let client = client();
        let (mut first, mut whole) = (Stats::default(), Stats::default());
        for _ in 0..count {
            let t0 = Instant::now();
            let sent = client
                .post(&url)
                .insert_header(("authorization", format!("Bearer {TOKEN}")))
                .send_body(body)
                .await;
            let Ok(mut res) = sent else {
                first.failed += 1;
                continue;
            };
            let mut seen_first = false;
            let mut text = Vec::new();
            while let Some(chunk) = res.next().await {
                let Ok(chunk) = chunk else { break };
                if !seen_first {
                    seen_first = true;
                    first.latencies_us.push(t0.elapsed().as_micros() as u64);
                    first.ok += 1;
                }
                text.extend_from_slice(&chunk);
            }
            if text.ends_with(b"data: [DONE]\n\n") {
                whole.ok += 1;
                whole.latencies_us.push(t0.elapsed().as_micros() as u64);
            } else {
                whole.failed += 1;
            }
        }
        first.latencies_us.sort_unstable();
        whole.latencies_us.sort_unstable();
        (first, whole)
    })
}

/// `count` streams open at once, each read to its end; returns (complete, failed).
fn held_streams(url: &str, body: &'static str, count: usize) -> (usize, usize) {
    let parts: Vec<(usize, usize)> = (0..2)
        .map(|t| {
            let url = url.to_owned();
            let mine = count / 2 + usize::from(t < count % 2);
            std::thread::spawn(move || {
                block_on(async move {
                    let client = client();
                    let streams = (0..mine).map(|_| {
                        let (client, url) = (client.clone(), url.clone());
                        async move {
                            let Ok(mut res) = client
                                .post(&url)
                                .insert_header(("authorization", format!("Bearer {TOKEN}")))
                                .send_body(body)
                                .await
                            else {
                                return false;
                            };
                            let mut tail = Vec::new();
                            while let Some(Ok(chunk)) = res.next().await {
                                tail.extend_from_slice(&chunk);
                                if tail.len() > 64 {
                                    tail.drain(..tail.len() - 64);
                                }
                            }
                            res.status().is_success() && tail.ends_with(b"data: [DONE]\n\n")
                        }
                    });
                    let done = futures_util::future::join_all(streams).await;
                    let ok = done.iter().filter(|d| **d).count();
                    (ok, done.len() - ok)
                })
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().expect("a driver thread"))
        .collect();
    parts
        .into_iter()
        .fold((0, 0), |(a, b), (c, d)| (a + c, b + d))
}

/// The printed table.
struct Table(Vec<[String; 5]>);

impl Table {
    fn row(&mut self, what: &str, direct: String, gateway: String, versus: String, target: &str) {
        self.0
            .push([what.to_owned(), direct, gateway, versus, target.to_owned()]);
        eprintln!(
            "  {what}: direct {} | gateway {} | {}",
            self.0.last().map_or("", |r| &r[1]),
            self.0.last().map_or("", |r| &r[2]),
            self.0.last().map_or("", |r| &r[3])
        );
    }

    fn print(&self) {
        println!("| scenario | direct to mock | through gateway | gateway vs direct | target |");
        println!("|---|---|---|---|---|");
        for r in &self.0 {
            println!("| {} | {} | {} | {} | {} |", r[0], r[1], r[2], r[3], r[4]);
        }
    }
}

fn ms(v: f64) -> String {
    format!("{v:.2} ms")
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!("{cores} cores, {cpu}")
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let [_, flag, port, upstream] = args.as_slice() {
        if flag == "--relay" {
            let port = port.parse().expect("--relay PORT UPSTREAM_URL");
            relay::serve(port, upstream.clone()).expect("the bare relay");
            return;
        }
    }
    let quick = args.iter().any(|a| a == "--quick");
    let plan = Plan::new(quick);
    eprintln!(
        "freellmapi bench on {}{}",
        machine(),
        if quick { " (quick)" } else { "" }
    );
    let mut table = Table(Vec::new());

    let (_m0, zero) = mock(&[]);
    let (_m50, fifty) = mock(&["--latency-ms", "50", "--workers", "2"]);
    let (_ms, streaming) = mock(&["--chunks", "50", "--chunk-delay-ms", "20"]);
    let (_ml, long) = mock(&[
        "--chunks",
        &plan.hold.as_secs().to_string(),
        "--chunk-delay-ms",
        "1000",
        "--workers",
        "2",
    ]);
    let gw = Gateway::start("main");
    std::thread::sleep(Duration::from_millis(500));
    let idle_mb = gw.rss_kb() as f64 / 1024.0;
    for (key, base, model) in [
        ("k0", &zero, "m0"),
        ("k50", &fifty, "m50"),
        ("ks", &streaming, "ms"),
        ("kl", &long, "ml"),
    ] {
        gw.add_key(key, base, model);
    }
    let direct0 = format!("{zero}/chat/completions");
    let (b0, bs, bl) = (
        body_for("m0", false),
        body_for("ms", true),
        body_for("ml", true),
    );

    eprintln!(
        "0. RSS: idle, then after {} requests at 64 clients",
        plan.many_requests
    );
    let (first, after_mb) = settled_rss_after(&gw, b0, plan.many_requests);
    table.row(
        "idle RSS after start",
        "-".to_owned(),
        format!("{idle_mb:.1} MB"),
        String::new(),
        "≤ 8 MB",
    );
    table.row(
        &format!(
            "RSS after {} requests, 64 clients ({} failed)",
            plan.many_requests, first.failed
        ),
        "-".to_owned(),
        format!("{after_mb:.1} MB"),
        format!("+{:.1} MB over idle", after_mb - idle_mb),
        "≤ idle + 20 MB",
    );

    eprintln!("1. sequential added latency, 0 ms mock");
    let _warm = closed_loop(&gw.url(), b0, 4, Duration::from_secs(1), None);
    let d = closed_loop(&direct0, b0, 1, plan.window, None);
    let g = closed_loop(&gw.url(), b0, 1, plan.window, None);
    for (name, p, target) in [
        ("p50", 0.5, "≤ 0.15 ms added"),
        ("p99", 0.99, "≤ 0.5 ms added"),
    ] {
        let (dv, gv) = (d.percentile_ms(p), g.percentile_ms(p));
        table.row(
            &format!("1 client sequential, {name}"),
            ms(dv),
            ms(gv),
            format!("+{}", ms(gv - dv)),
            target,
        );
    }

    eprintln!("2. closed-loop throughput, 0 ms mock");
    for clients in [1, 16, 64, 256] {
        let d = closed_loop(&direct0, b0, clients, plan.window, None);
        let g = closed_loop(&gw.url(), b0, clients, plan.window, None);
        let target = if clients == 64 {
            "≥ 50 % of direct"
        } else {
            ""
        };
        table.row(
            &format!("{clients} clients: req/s (p99)"),
            format!("{:.0} ({})", d.rps(), ms(d.percentile_ms(0.99))),
            format!("{:.0} ({})", g.rps(), ms(g.percentile_ms(0.99))),
            format!("{:.0} %", 100.0 * g.rps() / d.rps()),
            target,
        );
    }

    eprintln!(
        "2b. the limit: nginx as a bare proxy, the bare actix-web + awc relay and the gateway in front of an nginx \
         upstream (wrk, {} alternating rounds)",
        one_hop::ROUNDS
    );
    let seconds = plan.window.as_secs().max(1);
    let add_key = |key: &str, base: &str, model: &str| gw.add_key(key, base, model);
    if let Some(hop) = one_hop::measure(&gw.dir.join("one-hop"), seconds, add_key, &gw.url()) {
        let added = |through: one_hop::Load| through.p50_ms - hop.direct[0].p50_ms;
        table.row(
            "one hop, 1 connection (wrk): added p50, nginx proxy / gateway",
            format!("+{}", ms(added(hop.nginx[0]))),
            format!("+{}", ms(added(hop.gateway[0]))),
            format!("upstream alone {}", ms(hop.direct[0].p50_ms)),
            "≤ 0.10 ms added",
        );
        table.row(
            "one hop, bare actix-web + awc relay: added p50 at 1 connection / req/s at 64",
            format!("+{}", ms(added(hop.relay[0]))),
            format!("{:.0}", hop.relay[1].rps),
            format!(
                "{:.0} % of nginx",
                100.0 * hop.relay[1].rps / hop.nginx[1].rps
            ),
            "",
        );
        table.row(
            "one hop, 64 connections (wrk): req/s, nginx proxy / gateway",
            format!("{:.0}", hop.nginx[1].rps),
            format!("{:.0}", hop.gateway[1].rps),
            format!(
                "{:.0} % of nginx",
                100.0 * hop.gateway[1].rps / hop.nginx[1].rps
            ),
            "≥ 50 % of nginx",
        );
    }

    eprintln!("3. open loop, 50 ms mock");
    let direct50 = format!("{fifty}/chat/completions");
    let b50 = body_for("m50", false);
    for rate in [1000, 5000] {
        let d = open_loop(&direct50, b50, rate, plan.window);
        let g = open_loop(&gw.url(), b50, rate, plan.window);
        table.row(
            &format!("{rate} req/s offered: success (p99)"),
            format!("{:.1} % ({})", d.success_rate(), ms(d.percentile_ms(0.99))),
            format!("{:.1} % ({})", g.success_rate(), ms(g.percentile_ms(0.99))),
            format!("+{} p99", ms(g.percentile_ms(0.99) - d.percentile_ms(0.99))),
            "",
        );
    }

    eprintln!("4. streaming, 50 chunks at 20 ms");
    let count = if quick { 3 } else { 10 };
    let (df, dw) = stream_timings(&format!("{streaming}/chat/completions"), bs, count);
    let (gf, gw_) = stream_timings(&gw.url(), bs, count);
    table.row(
        "stream: time to first byte (p50)",
        ms(df.percentile_ms(0.5)),
        ms(gf.percentile_ms(0.5)),
        format!("+{}", ms(gf.percentile_ms(0.5) - df.percentile_ms(0.5))),
        "",
    );
    let per_chunk = (gw_.percentile_ms(0.5) - dw.percentile_ms(0.5)) / 50.0;
    table.row(
        "stream: whole answer (p50)",
        ms(dw.percentile_ms(0.5)),
        ms(gw_.percentile_ms(0.5)),
        format!("+{} per chunk", ms(per_chunk)),
        "",
    );

    eprintln!(
        "5. RSS after the load phases and {} more requests",
        plan.many_requests
    );
    let (more, final_mb) = settled_rss_after(&gw, b0, plan.many_requests);
    table.row(
        &format!(
            "RSS after every phase above and {} more ({} failed)",
            plan.many_requests, more.failed
        ),
        "-".to_owned(),
        format!("{final_mb:.1} MB"),
        format!(
            "+{:.1} MB over the first {}",
            final_mb - after_mb,
            plan.many_requests
        ),
        "",
    );
    eprintln!("6. {} streams held for {:?}", plan.streams_held, plan.hold);
    let sampler = RssSampler::start(gw.proc.child.id());
    let (ok, failed) = held_streams(&gw.url(), bl, plan.streams_held);
    table.row(
        &format!(
            "{} concurrent streams, {} s: complete / failed, peak RSS",
            plan.streams_held,
            plan.hold.as_secs()
        ),
        "-".to_owned(),
        format!("{ok} / {failed}, {:.1} MB", sampler.peak_mb()),
        String::new(),
        "0 errors, ≤ 64 MB",
    );
    drop(sampler);

    drop(gw);

    eprintln!("7. failover cost");
    let (_m429, limited) = mock(&["--error-rate", "1"]);
    let fo = Gateway::start("failover");
    fo.add_key("k429", &limited, "a");
    fo.add_key("kok", &zero, "b");
    let (mut plain, mut failed_over) = (Stats::default(), Stats::default());
    for i in 0..plan.failover_samples {
        // A new conversation each time, so stickiness does not skip the rate-limited first candidate.
        let auto: &'static str = Box::leak(
            BODY.replace("MODEL", "auto")
                .replace("sentence", &format!("sentence #{i}"))
                .into_boxed_str(),
        );
        std::thread::sleep(Duration::from_millis(1050));
        let first = closed_loop(&fo.url(), auto, 1, Duration::ZERO, Some(1));
        let second = closed_loop(&fo.url(), auto, 1, Duration::ZERO, Some(1));
        failed_over.latencies_us.extend(first.latencies_us);
        plain.latencies_us.extend(second.latencies_us);
    }
    plain.latencies_us.sort_unstable();
    failed_over.latencies_us.sort_unstable();
    table.row(
        "first candidate answers 429 (p50)",
        format!("{} (no 429)", ms(plain.percentile_ms(0.5))),
        ms(failed_over.percentile_ms(0.5)),
        format!(
            "+{}",
            ms(failed_over.percentile_ms(0.5) - plain.percentile_ms(0.5))
        ),
        "",
    );

    println!(
        "\nfreellmapi bench, {}{}\n",
        machine(),
        if quick {
            " (quick: not figures to quote)"
        } else {
            ""
        }
    );
    table.print();
}
