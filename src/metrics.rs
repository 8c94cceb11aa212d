//! Prometheus metrics: counters the RequestLogger accumulates from the records it already receives (so counting
//! costs the request path nothing), and the text exposition format `GET /metrics` answers with.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use crate::request_record::RequestRecord;

/// Upper bounds of the latency histogram's buckets, in seconds: LLM answers take from tens of milliseconds
/// (cached, tiny) to minutes (long streams).
const LATENCY_BUCKETS: [f64; 12] = [
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

/// Label value for requests no platform served (rejected, unroutable, all candidates failed).
const NONE: &str = "none";

/// [`NONE`] as a model label, made once: counting a request clones its model's shared name, never copies it.
fn no_model() -> Arc<str> {
    static NO_MODEL: OnceLock<Arc<str>> = OnceLock::new();
    NO_MODEL.get_or_init(|| Arc::from(NONE)).clone()
}

/// One histogram: cumulative counts per bucket, the sum and the count.
#[derive(Debug, Clone, Default, PartialEq)]
struct Histogram {
    buckets: [u64; LATENCY_BUCKETS.len()],
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        for (bound, count) in LATENCY_BUCKETS.iter().zip(self.buckets.iter_mut()) {
            if seconds <= *bound {
                *count += 1;
            }
        }
        self.sum += seconds;
        self.count += 1;
    }
}

/// Request counters since the process started. Label sets are bounded: platforms and models come from the
/// catalog and the keys, never from what a client typed.
#[derive(Debug, Clone, Default)]
pub struct RequestMetrics {
    requests: BTreeMap<(&'static str, Arc<str>, u16), u64>,
    attempts: BTreeMap<(&'static str, Arc<str>, &'static str), u64>,
    tokens: BTreeMap<(&'static str, Arc<str>, &'static str), u64>,
    latency: BTreeMap<&'static str, Histogram>,
    resumed: BTreeMap<&'static str, u64>,
    /// Per client key (names the owner gave, so few) and status: requests and tokens.
    clients: BTreeMap<(String, u16), (u64, u64)>,
}

impl RequestMetrics {
    /// Counts one finished client request and its upstream attempts.
    pub fn observe(&mut self, record: &RequestRecord) {
        let platform = record.platform.unwrap_or(NONE);
        let model = record.model.clone().unwrap_or_else(no_model);
        if let Some(client) = &record.client {
            let entry = self
                .clients
                .entry((client.clone(), record.status))
                .or_default();
            entry.0 += 1;
            entry.1 += u64::from(record.prompt_tokens) + u64::from(record.completion_tokens);
        }
        if record.cached {
            // No platform served it; the cache's own counters count it.
            return;
        }
        *self
            .requests
            .entry((platform, model.clone(), record.status))
            .or_default() += 1;
        for (kind, n) in [
            ("prompt", record.prompt_tokens),
            ("completion", record.completion_tokens),
        ] {
            if n > 0 {
                *self
                    .tokens
                    .entry((platform, model.clone(), kind))
                    .or_default() += u64::from(n);
            }
        }
        self.latency
            .entry(platform)
            .or_default()
            .observe(f64::from(record.latency_ms) / 1000.0);
        for attempt in &record.attempt_log {
            if attempt.resumed_after.is_some() {
                *self.resumed.entry(attempt.platform).or_default() += 1;
            }
            *self
                .attempts
                .entry((attempt.platform, attempt.model.clone(), attempt.outcome))
                .or_default() += 1;
        }
    }

    /// Appends the counters in Prometheus text format.
    pub fn render(&self, out: &mut String) {
        family(
            out,
            "freellmapi_requests_total",
            "counter",
            "Client chat requests by serving platform, model and HTTP status (platform none: not served).",
        );
        for ((platform, model, status), n) in &self.requests {
            let status = status.to_string();
            sample(
                out,
                "freellmapi_requests_total",
                &[
                    ("platform", platform),
                    ("model", model),
                    ("status", &status),
                ],
                *n as f64,
            );
        }
        type Count = fn(&(u64, u64)) -> u64;
        let client_counters: [(&str, &str, Count); 2] = [
            (
                "freellmapi_client_requests_total",
                "Requests made with client keys, by client name and HTTP status.",
                |(requests, _)| *requests,
            ),
            (
                "freellmapi_client_tokens_total",
                "Prompt and completion tokens of requests made with client keys, by client name and HTTP status.",
                |(_, tokens)| *tokens,
            ),
        ];
        for (name, help, count) in client_counters {
            family(out, name, "counter", help);
            for ((client, status), counted) in &self.clients {
                let status = status.to_string();
                sample(
                    out,
                    name,
                    &[("client", client), ("status", &status)],
                    count(counted) as f64,
                );
            }
        }
        family(
            out,
            "freellmapi_streams_resumed_total",
            "counter",
            "Streams that broke after their first byte and were continued, by the platform that continued them.",
        );
        for (platform, n) in &self.resumed {
            sample(
                out,
                "freellmapi_streams_resumed_total",
                &[("platform", platform)],
                *n as f64,
            );
        }
        family(
            out,
            "freellmapi_upstream_attempts_total",
            "counter",
            "Upstream attempts by platform, model and outcome (ok or the failure kind).",
        );
        for ((platform, model, outcome), n) in &self.attempts {
            sample(
                out,
                "freellmapi_upstream_attempts_total",
                &[
                    ("platform", platform),
                    ("model", model),
                    ("outcome", outcome),
                ],
                *n as f64,
            );
        }
        family(
            out,
            "freellmapi_tokens_total",
            "counter",
            "Tokens the upstreams reported, by platform, model and kind (prompt, completion).",
        );
        for ((platform, model, kind), n) in &self.tokens {
            sample(
                out,
                "freellmapi_tokens_total",
                &[("platform", platform), ("model", model), ("kind", kind)],
                *n as f64,
            );
        }
        family(
            out,
            "freellmapi_request_duration_seconds",
            "histogram",
            "Time from a chat request's arrival until its answer ended, by serving platform.",
        );
        for (platform, h) in &self.latency {
            for (bound, n) in LATENCY_BUCKETS.iter().zip(h.buckets) {
                let le = bound.to_string();
                sample(
                    out,
                    "freellmapi_request_duration_seconds_bucket",
                    &[("platform", platform), ("le", &le)],
                    n as f64,
                );
            }
            let labels = [("platform", *platform)];
            sample(
                out,
                "freellmapi_request_duration_seconds_bucket",
                &[("platform", platform), ("le", "+Inf")],
                h.count as f64,
            );
            sample(
                out,
                "freellmapi_request_duration_seconds_sum",
                &labels,
                h.sum,
            );
            sample(
                out,
                "freellmapi_request_duration_seconds_count",
                &labels,
                h.count as f64,
            );
        }
    }
}

/// A gauge of things in flight (streams being relayed); each [`Tracked`] counts once until dropped, so no exit
/// path can forget to decrement it.
#[derive(Debug, Clone, Default)]
pub struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    /// Counts one more until the returned guard is dropped.
    pub fn track(&self) -> Tracked {
        self.0.fetch_add(1, Ordering::Relaxed);
        Tracked(self.0.clone())
    }

    /// How many are in flight now.
    pub fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

/// One tracked item of an [`InFlight`] gauge.
#[derive(Debug)]
pub struct Tracked(Arc<AtomicUsize>);

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Writes a metric family's `# HELP` and `# TYPE` lines.
pub fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Writes one sample line, escaping label values as the format requires.
pub fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: f64) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (key, value)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(key);
            out.push_str("=\"");
            for c in value.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '"' => out.push_str("\\\""),
                    '\n' => out.push_str("\\n"),
                    c => out.push(c),
                }
            }
            out.push('"');
        }
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request_record::AttemptRecord;

    fn record(platform: Option<&'static str>, status: u16, latency_ms: u32) -> RequestRecord {
        RequestRecord {
            ts_ms: 0,
            requested_model: "auto".into(),
            platform,
            model: platform.map(|_| "llama".into()),
            status,
            latency_ms,
            prompt_tokens: 10,
            completion_tokens: 5,
            attempts: 2,
            stream: false,
            error: None,
            attempt_log: vec![
                AttemptRecord {
                    platform: "groq",
                    model: "llama".into(),
                    key_id: crate::provider_key::KeyId(1),
                    outcome: "rate_limited",
                    status: Some(429),
                    latency_ms: 3,
                    message: None,
                    resumed_after: None,
                },
                AttemptRecord {
                    platform: "cerebras",
                    model: "llama".into(),
                    key_id: crate::provider_key::KeyId(2),
                    outcome: "resumed",
                    status: Some(200),
                    latency_ms: 300,
                    message: None,
                    resumed_after: Some(42),
                },
            ],
            client: None,
            cached: false,
        }
    }

    #[test]
    fn counts_requests_attempts_tokens_and_latency() {
        let mut m = RequestMetrics::default();
        m.observe(&record(Some("cerebras"), 200, 300));
        m.observe(&record(Some("cerebras"), 200, 2000));
        m.observe(&record(None, 429, 1));
        let mut out = String::new();
        m.render(&mut out);
        for line in [
            "freellmapi_requests_total{platform=\"cerebras\",model=\"llama\",status=\"200\"} 2",
            "freellmapi_requests_total{platform=\"none\",model=\"none\",status=\"429\"} 1",
            "freellmapi_streams_resumed_total{platform=\"cerebras\"} 3",
            "freellmapi_upstream_attempts_total{platform=\"groq\",model=\"llama\",outcome=\"rate_limited\"} 3",
            "freellmapi_tokens_total{platform=\"cerebras\",model=\"llama\",kind=\"prompt\"} 20",
            "freellmapi_request_duration_seconds_bucket{platform=\"cerebras\",le=\"0.5\"} 1",
            "freellmapi_request_duration_seconds_bucket{platform=\"cerebras\",le=\"2.5\"} 2",
            "freellmapi_request_duration_seconds_bucket{platform=\"cerebras\",le=\"+Inf\"} 2",
            "freellmapi_request_duration_seconds_sum{platform=\"cerebras\"} 2.3",
            "freellmapi_request_duration_seconds_count{platform=\"none\"} 1",
            "# TYPE freellmapi_request_duration_seconds histogram",
        ] {
            assert!(out.lines().any(|l| l == line), "missing {line}\n{out}");
        }
    }

    #[test]
    fn in_flight_counts_until_dropped() {
        let gauge = InFlight::default();
        let (a, b) = (gauge.track(), gauge.track());
        assert_eq!(gauge.get(), 2);
        drop(a);
        drop(b);
        assert_eq!(gauge.get(), 0);
    }

    #[test]
    fn label_values_are_escaped() {
        let mut out = String::new();
        sample(&mut out, "m", &[("model", "a\"b\\c\nd")], 1.0);
        assert_eq!(out, "m{model=\"a\\\"b\\\\c\\nd\"} 1\n");
    }
}
