//! A provider simulator for quota tests: Groq, Cerebras, Gemini and OpenRouter wire formats served from one port,
//! each (key, model) held to its own limits exactly the way the provider enforces them, and, where a provider
//! counts per key (OpenRouter's free models), each key to the limits it shares across its models.
//!
//! Admission counts a request in a sliding 60-second window the moment it arrives; its token cost is the prompt
//! (about four characters per token) plus `max_tokens`, which is also exactly what it generates. A request over a
//! limit gets the provider's own 429 (status, headers, body shape); successful answers carry the provider's
//! rate-limit headers. The simulator records every answer so a scenario can count upstream 429s per key and window.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{web, HttpRequest, HttpResponse};

use super::mock::serve;
use serde_json::{json, Value};

/// The wire format (and rate-limit signalling) a simulated provider speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Wire {
    /// OpenAI format under `/openai/v1`; `x-ratelimit-*` headers (RPD and TPM), a 429 quoting the limit.
    Groq,
    /// OpenAI format under `/v1`; `-day`/`-minute` headers; a 429 that names no limit.
    Cerebras,
    /// Native `generateContent` under `/v1beta`; no headers; a 429 with QuotaFailure and RetryInfo.
    Gemini,
    /// OpenAI format under `/api/v1`; no headers; a key-wide refusal names `free-models-per-day` (or `-min`)
    /// with the key's limit in `metadata.headers`, a model's own is "Provider returned error".
    OpenRouter,
}

/// One limit window of a provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Window {
    /// Requests per minute.
    Rpm,
    /// Requests per day.
    Rpd,
    /// Tokens per minute.
    Tpm,
    /// Tokens per day.
    Tpd,
}

/// The limits a simulated provider enforces on each (key, model).
#[derive(Clone, Copy, Debug, Default)]
pub struct SimLimits {
    /// Requests per minute.
    pub rpm: Option<u64>,
    /// Requests per day.
    pub rpd: Option<u64>,
    /// Tokens per minute.
    pub tpm: Option<u64>,
    /// Tokens per day.
    pub tpd: Option<u64>,
}

impl SimLimits {
    /// Requests of `cost` tokens each that these limits allow within `duration`, starting from nothing used:
    /// one full minute window per started minute, bounded by the day limits.
    pub fn capacity(&self, cost: u64, duration: Duration) -> u64 {
        let minutes = duration.as_secs().div_ceil(60);
        let per_minute = [self.rpm, self.tpm.map(|t| t / cost)]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(u64::MAX);
        [
            Some(per_minute.saturating_mul(minutes)),
            self.rpd,
            self.tpd.map(|t| t / cost),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(u64::MAX)
    }
}

/// One model of one simulated provider.
#[derive(Clone, Debug)]
pub struct SimModel {
    /// The wire format.
    pub wire: Wire,
    /// The model id.
    pub model: String,
    /// What the provider enforces per key.
    pub limits: SimLimits,
}

/// One answer the simulator gave.
#[derive(Clone, Debug)]
pub struct Served {
    /// Which key.
    pub key: String,
    /// Which model.
    pub model: String,
    /// When, since the simulator started.
    pub at: Duration,
    /// `None` when served, else the window that refused it.
    pub refused: Option<Window>,
}

#[derive(Default)]
struct Usage {
    minute: VecDeque<(Instant, u64)>,
    day_requests: u64,
    day_tokens: u64,
}

struct State {
    models: Vec<SimModel>,
    usage: HashMap<(String, String), Usage>,
    /// Limits each key of a wire shares across its models.
    key_limits: HashMap<Wire, SimLimits>,
    key_usage: HashMap<(Wire, String), Usage>,
    log: Vec<Served>,
    started: Instant,
    latency: Duration,
}

/// A running simulator.
pub struct ProviderSim {
    port: u16,
    state: Arc<Mutex<State>>,
    server: actix_web::dev::ServerHandle,
}

impl ProviderSim {
    /// Starts a simulator for `models` that answers after `latency`.
    pub fn start(models: Vec<SimModel>, latency: Duration) -> ProviderSim {
        let state = Arc::new(Mutex::new(State {
            models,
            usage: HashMap::new(),
            key_limits: HashMap::new(),
            key_usage: HashMap::new(),
            log: Vec::new(),
            started: Instant::now(),
            latency,
        }));
        let shared = state.clone();
        let (port, server) = serve(move |app| {
            app.app_data(web::Data::new(shared.clone()))
                .default_service(web::to(handle));
        });
        ProviderSim {
            port,
            state,
            server,
        }
    }

    /// The base URL to give the gateway for `wire` (its `FREELLMAPI_BASE_URL_<PLATFORM>`).
    pub fn base_url(&self, wire: Wire) -> String {
        let path = match wire {
            Wire::Groq => "/openai/v1",
            Wire::Cerebras => "/v1",
            Wire::Gemini => "/v1beta",
            Wire::OpenRouter => "/api/v1",
        };
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Makes every key of `wire` share `limits` across all its models, on top of each model's own.
    pub fn share_per_key(&self, wire: Wire, limits: SimLimits) {
        self.state.lock().unwrap().key_limits.insert(wire, limits);
    }

    /// Every answer so far, in order.
    pub fn log(&self) -> Vec<Served> {
        self.state.lock().unwrap().log.clone()
    }
}

impl Drop for ProviderSim {
    fn drop(&mut self) {
        drop(self.server.stop(false));
    }
}

/// The prompt's cost as the simulated providers count it: about four characters per token plus four per message.
pub fn prompt_tokens(texts: &[&str]) -> u64 {
    texts
        .iter()
        .map(|t| (t.chars().count() as u64).div_ceil(4) + 4)
        .sum()
}

struct Parsed {
    wire: Wire,
    key: String,
    model: String,
    prompt: u64,
    max_tokens: u64,
}

fn parse(req: &HttpRequest, body: &[u8]) -> Option<Parsed> {
    let json: Value = serde_json::from_slice(body).ok()?;
    let path = req.path();
    let bearer = || {
        req.headers()
            .get("authorization")?
            .to_str()
            .ok()?
            .strip_prefix("Bearer ")
            .map(str::to_owned)
    };
    if let Some(rest) = path.strip_prefix("/v1beta/models/") {
        let model = rest.strip_suffix(":generateContent")?.to_owned();
        let key = req
            .headers()
            .get("x-goog-api-key")?
            .to_str()
            .ok()?
            .to_owned();
        let texts: Vec<&str> = json["contents"]
            .as_array()?
            .iter()
            .flat_map(|c| c["parts"].as_array().into_iter().flatten())
            .filter_map(|p| p["text"].as_str())
            .collect();
        let max_tokens = json["generationConfig"]["maxOutputTokens"]
            .as_u64()
            .unwrap_or(16);
        return Some(Parsed {
            wire: Wire::Gemini,
            key,
            model,
            prompt: prompt_tokens(&texts),
            max_tokens,
        });
    }
    let wire = match path {
        "/openai/v1/chat/completions" => Wire::Groq,
        "/v1/chat/completions" => Wire::Cerebras,
        "/api/v1/chat/completions" => Wire::OpenRouter,
        _ => return None,
    };
    let texts: Vec<&str> = json["messages"]
        .as_array()?
        .iter()
        .filter_map(|m| m["content"].as_str())
        .collect();
    let max_tokens = json["max_completion_tokens"]
        .as_u64()
        .or_else(|| json["max_tokens"].as_u64())
        .unwrap_or(16);
    Some(Parsed {
        wire,
        key: bearer()?,
        model: json["model"].as_str()?.to_owned(),
        prompt: prompt_tokens(&texts),
        max_tokens,
    })
}

/// What one admission decided, with what the rate-limit headers report.
struct Decision {
    refused: Option<Window>,
    /// Whether the key's shared limits refused it (then `limits` and the figures are the key's).
    key_wide: bool,
    limits: SimLimits,
    minute_requests: u64,
    minute_tokens: u64,
    day_requests: u64,
    day_tokens: u64,
    /// Until the oldest request of the minute window leaves it.
    minute_reset: Duration,
}

fn admit(state: &mut State, p: &Parsed, cost: u64, now: Instant) -> Option<Decision> {
    let limits = state
        .models
        .iter()
        .find(|m| m.wire == p.wire && m.model == p.model)?
        .limits;
    let shared = state.key_limits.get(&p.wire).copied();
    if let Some(key_limits) = shared {
        let usage = state.key_usage.entry((p.wire, p.key.clone())).or_default();
        let decision = decide(usage, key_limits, cost, now, false);
        if decision.refused.is_some() {
            return Some(Decision {
                key_wide: true,
                ..decision
            });
        }
    }
    let usage = state
        .usage
        .entry((p.key.clone(), p.model.clone()))
        .or_default();
    let decision = decide(usage, limits, cost, now, true);
    if decision.refused.is_none() && shared.is_some() {
        if let Some(usage) = state.key_usage.get_mut(&(p.wire, p.key.clone())) {
            count(usage, cost, now);
        }
    }
    Some(decision)
}

/// Whether `usage` has room under `limits` for one more request of `cost`; counts it when it has and `take`.
fn decide(usage: &mut Usage, limits: SimLimits, cost: u64, now: Instant, take: bool) -> Decision {
    while usage
        .minute
        .front()
        .is_some_and(|(t, _)| now.duration_since(*t) >= Duration::from_secs(60))
    {
        usage.minute.pop_front();
    }
    let minute_requests = usage.minute.len() as u64;
    let minute_tokens: u64 = usage.minute.iter().map(|(_, c)| c).sum();
    let over = |limit: Option<u64>, used: u64, more: u64| limit.is_some_and(|l| used + more > l);
    let refused = if over(limits.rpm, minute_requests, 1) {
        Some(Window::Rpm)
    } else if over(limits.rpd, usage.day_requests, 1) {
        Some(Window::Rpd)
    } else if over(limits.tpm, minute_tokens, cost) {
        Some(Window::Tpm)
    } else if over(limits.tpd, usage.day_tokens, cost) {
        Some(Window::Tpd)
    } else {
        None
    };
    if refused.is_none() && take {
        count(usage, cost, now);
    }
    let minute_reset = usage.minute.front().map_or(Duration::ZERO, |(t, _)| {
        Duration::from_secs(60).saturating_sub(now.duration_since(*t))
    });
    Decision {
        refused,
        key_wide: false,
        limits,
        minute_requests: usage.minute.len() as u64,
        minute_tokens: usage.minute.iter().map(|(_, c)| c).sum(),
        day_requests: usage.day_requests,
        day_tokens: usage.day_tokens,
        minute_reset,
    }
}

fn count(usage: &mut Usage, cost: u64, now: Instant) {
    usage.minute.push_back((now, cost));
    usage.day_requests += 1;
    usage.day_tokens += cost;
}

async fn handle(
    state: web::Data<Arc<Mutex<State>>>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let Some(p) = parse(&req, &body) else {
        return HttpResponse::BadRequest().body("the simulator did not understand this request");
    };
    let cost = p.prompt + p.max_tokens;
    let now = Instant::now();
    let (decision, latency) = {
        let mut s = state.lock().unwrap();
        let Some(decision) = admit(&mut s, &p, cost, now) else {
            return HttpResponse::NotFound().body("unknown model");
        };
        let at = now.duration_since(s.started);
        s.log.push(Served {
            key: p.key.clone(),
            model: p.model.clone(),
            at,
            refused: decision.refused,
        });
        (decision, s.latency)
    };
    if decision.refused.is_none() {
        actix_rt::time::sleep(latency).await;
    }
    match p.wire {
        Wire::Groq => groq(&p, &decision, cost),
        Wire::Cerebras => cerebras(&p, &decision, cost),
        Wire::Gemini => gemini(&p, &decision),
        Wire::OpenRouter => openrouter(&p, &decision),
    }
}

fn remaining(limit: Option<u64>, used: u64) -> String {
    limit.map_or(0, |l| l.saturating_sub(used)).to_string()
}

/// Renders a duration the way Groq does (`2m59.56s`, `7.66s`).
fn go_duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs >= 60.0 {
        format!("{}m{:.2}s", (secs / 60.0).floor(), secs % 60.0)
    } else {
        format!("{secs:.2}s")
    }
}

fn openai_completion(p: &Parsed) -> Value {
    json!({
        "id": "chatcmpl-sim", "object": "chat.completion", "created": 1, "model": p.model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "simulated"}, "finish_reason": "length"}],
        "usage": {"prompt_tokens": p.prompt, "completion_tokens": p.max_tokens, "total_tokens": p.prompt + p.max_tokens}
    })
}

fn groq(p: &Parsed, d: &Decision, cost: u64) -> HttpResponse {
    let l = d.limits;
    let day = Duration::from_secs(86_400);
    let mut res = match d.refused {
        None => HttpResponse::Ok(),
        Some(_) => HttpResponse::TooManyRequests(),
    };
    res.insert_header(("x-ratelimit-limit-requests", l.rpd.unwrap_or(0).to_string()))
        .insert_header((
            "x-ratelimit-remaining-requests",
            remaining(l.rpd, d.day_requests),
        ))
        .insert_header(("x-ratelimit-reset-requests", go_duration(day)))
        .insert_header(("x-ratelimit-limit-tokens", l.tpm.unwrap_or(0).to_string()))
        .insert_header((
            "x-ratelimit-remaining-tokens",
            remaining(l.tpm, d.minute_tokens),
        ))
        .insert_header(("x-ratelimit-reset-tokens", go_duration(d.minute_reset)));
    let Some(window) = d.refused else {
        return res.json(openai_completion(p));
    };
    let (name, kind, limit, used, requested, wait) = match window {
        Window::Rpm => (
            "requests per minute (RPM)",
            "requests",
            l.rpm,
            d.minute_requests,
            1,
            d.minute_reset,
        ),
        Window::Rpd => (
            "requests per day (RPD)",
            "requests",
            l.rpd,
            d.day_requests,
            1,
            day,
        ),
        Window::Tpm => (
            "tokens per minute (TPM)",
            "tokens",
            l.tpm,
            d.minute_tokens,
            cost,
            d.minute_reset,
        ),
        Window::Tpd => (
            "tokens per day (TPD)",
            "tokens",
            l.tpd,
            d.day_tokens,
            cost,
            day,
        ),
    };
    let message = format!(
        "Rate limit reached for model `{}` in organization `org_sim` service tier `on_demand` on {name}: Limit {}, Used {used}, Requested {requested}. Please try again in {}. Need more tokens? Upgrade to Dev Tier today at https://console.groq.com/settings/billing",
        p.model,
        limit.unwrap_or(0),
        go_duration(wait)
    );
    res.insert_header(("retry-after", wait.as_secs().max(1).to_string()))
        .json(json!({"error": {"message": message, "type": kind, "code": "rate_limit_exceeded"}}))
}

fn cerebras(p: &Parsed, d: &Decision, _cost: u64) -> HttpResponse {
    let l = d.limits;
    let mut res = match d.refused {
        None => HttpResponse::Ok(),
        Some(_) => HttpResponse::TooManyRequests(),
    };
    res.insert_header((
        "x-ratelimit-limit-requests-day",
        l.rpd.unwrap_or(0).to_string(),
    ))
    .insert_header((
        "x-ratelimit-remaining-requests-day",
        remaining(l.rpd, d.day_requests),
    ))
    .insert_header(("x-ratelimit-reset-requests-day", "86400.0"))
    .insert_header((
        "x-ratelimit-limit-tokens-minute",
        l.tpm.unwrap_or(0).to_string(),
    ))
    .insert_header((
        "x-ratelimit-remaining-tokens-minute",
        remaining(l.tpm, d.minute_tokens),
    ))
    .insert_header((
        "x-ratelimit-reset-tokens-minute",
        format!("{:.2}", d.minute_reset.as_secs_f64()),
    ));
    match d.refused {
        None => res.json(openai_completion(p)),
        Some(Window::Rpm | Window::Rpd) => {
            res.json(json!({
            "message": "Requests per minute limit exceeded - too many requests sent.",
            "type": "too_many_requests_error", "param": "quota", "code": "request_quota_exceeded"}))
        }
        Some(Window::Tpm | Window::Tpd) => res.json(json!({
            "message": "Tokens per minute limit exceeded - too many tokens processed.",
            "type": "too_many_requests_error", "param": "quota", "code": "token_quota_exceeded"})),
    }
}

fn gemini(p: &Parsed, d: &Decision) -> HttpResponse {
    let Some(window) = d.refused else {
        return HttpResponse::Ok().json(json!({
            "candidates": [{"content": {"role": "model", "parts": [{"text": "simulated"}]}, "finishReason": "MAX_TOKENS"}],
            "usageMetadata": {"promptTokenCount": p.prompt, "candidatesTokenCount": p.max_tokens,
                "totalTokenCount": p.prompt + p.max_tokens},
            "modelVersion": p.model, "responseId": "sim"
        }));
    };
    let l = d.limits;
    let (metric, quota_id, limit) = match window {
        Window::Rpm => (
            "generate_content_free_tier_requests",
            "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
            l.rpm,
        ),
        Window::Rpd => (
            "generate_content_free_tier_requests",
            "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
            l.rpd,
        ),
        Window::Tpm | Window::Tpd => (
            "generate_content_free_tier_input_token_count",
            "GenerateContentInputTokensPerModelPerMinute-FreeTier",
            l.tpm,
        ),
    };
    let limit = limit.unwrap_or(0);
    let wait = if window == Window::Rpd {
        Duration::from_secs(3600)
    } else {
        d.minute_reset
    };
    let delay = format!("{}s", wait.as_secs().max(1));
    let message = format!(
        "You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.\n* Quota exceeded for metric: generativelanguage.googleapis.com/{metric}, limit: {limit}, model: {}\nPlease retry in {:.2}s.",
        p.model,
        wait.as_secs_f64()
    );
    HttpResponse::TooManyRequests().json(json!({"error": {
        "code": 429, "message": message, "status": "RESOURCE_EXHAUSTED",
        "details": [
            {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{
                "quotaMetric": format!("generativelanguage.googleapis.com/{metric}"), "quotaId": quota_id,
                "quotaDimensions": {"location": "global", "model": p.model}, "quotaValue": limit.to_string()}]},
            {"@type": "type.googleapis.com/google.rpc.Help", "links": [{"description": "Learn more about Gemini API quotas", "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]},
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay}
        ]}}))
}

/// OpenRouter: no rate-limit headers; a key's refusal names its window and carries the key's figures (the reset
/// an instant in Unix ms: the next UTC midnight for the day, the oldest use's expiry for the minute).
fn openrouter(p: &Parsed, d: &Decision) -> HttpResponse {
    let Some(window) = d.refused else {
        return HttpResponse::Ok().json(openai_completion(p));
    };
    if !d.key_wide {
        return HttpResponse::TooManyRequests().json(json!({"error": {
            "message": "Provider returned error", "code": 429,
            "metadata": {"raw": format!("{} is temporarily rate-limited upstream", p.model), "provider_name": "Sim"}}}));
    }
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let (name, limit, reset_ms) = match window {
        Window::Rpm | Window::Tpm => (
            "free-models-per-min",
            d.limits.rpm,
            now_ms + d.minute_reset.as_millis() as u64,
        ),
        Window::Rpd | Window::Tpd => (
            "free-models-per-day. Add 10 credits to unlock 1000 free model requests per day",
            d.limits.rpd,
            (now_ms / 86_400_000 + 1) * 86_400_000,
        ),
    };
    HttpResponse::TooManyRequests().json(json!({"error": {
        "message": format!("Rate limit exceeded: {name}"), "code": 429,
        "metadata": {"headers": {"X-RateLimit-Limit": limit.unwrap_or(0).to_string(),
            "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset_ms.to_string()}}}}))
}
