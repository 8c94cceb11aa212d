//! What providers say about a key's quota: `x-ratelimit-*` headers on any answer, and the window and limit a
//! refusal names. Budgets learn from it (`routing::budget`); this module only reads the wire.

use std::time::Duration;

use awc::http::header::HeaderMap;
use serde_json::Value;

use super::classify::{error_code, error_message, parse_go_duration};
use crate::catalog::Window;
use crate::quota_news::{QuotaNews, WindowReport};
use crate::timefmt::now_unix_ms;

/// One rate-limit header family: `x-ratelimit-{limit,remaining,reset}-<suffix>` reports `window`.
#[derive(Debug)]
pub struct HeaderSpec {
    window: Window,
    limit: &'static str,
    remaining: &'static str,
    reset: &'static str,
}

/// The header family with `suffix` reporting `window`; names are built at compile time, so reading them
/// allocates nothing per answer.
macro_rules! family {
    ($window:expr, $suffix:literal) => {
        HeaderSpec {
            window: $window,
            limit: concat!("x-ratelimit-limit-", $suffix),
            remaining: concat!("x-ratelimit-remaining-", $suffix),
            reset: concat!("x-ratelimit-reset-", $suffix),
        }
    };
}

/// Groq: the `requests` family is the day's requests, `tokens` the minute's tokens.
pub const GROQ_HEADERS: &[HeaderSpec] = &[
    family!(Window::Rpd, "requests"),
    family!(Window::Tpm, "tokens"),
];
/// Cerebras names the period in every header.
pub const CEREBRAS_HEADERS: &[HeaderSpec] = &[
    family!(Window::Rpm, "requests-minute"),
    family!(Window::Rpd, "requests-day"),
    family!(Window::Tpm, "tokens-minute"),
    family!(Window::Tpd, "tokens-day"),
];
/// SambaNova: plain `requests` per minute, plus `-day`.
pub const SAMBANOVA_HEADERS: &[HeaderSpec] = &[
    family!(Window::Rpm, "requests"),
    family!(Window::Rpd, "requests-day"),
];
/// Mistral: per-minute requests and tokens.
pub const MISTRAL_HEADERS: &[HeaderSpec] = &[
    family!(Window::Rpm, "req-minute"),
    family!(Window::Tpm, "tokens-minute"),
];

/// Reads the rate-limit headers `specs` describe.
pub fn from_headers(headers: &HeaderMap, specs: &[HeaderSpec], news: &mut QuotaNews) {
    let read = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    for spec in specs {
        let report = WindowReport {
            limit: read(spec.limit).and_then(parse_count),
            remaining: read(spec.remaining).and_then(parse_count),
            reset: read(spec.reset).and_then(parse_reset),
        };
        if report != WindowReport::default() {
            news.add(spec.window, report);
        }
    }
}

/// Reads what an OpenAI-style refusal body and its headers say about the window it hit: Groq's message
/// ("… on tokens per minute (TPM): Limit 6000, Used 5800, Requested 400 …"), Cerebras' quota codes, GitHub's
/// `x-ratelimit-type` ("Rate limit of 150 per 86400s"), OpenRouter's `free-models-per-day` with
/// `metadata.headers`.
pub fn from_refusal(headers: &HeaderMap, body: &[u8], news: &mut QuotaNews) {
    let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let message = error_message(&json).unwrap_or_default();
    if let Some(window) = groq_window(&message) {
        let limit = number_after(&message, "Limit ");
        let used = number_after(&message, "Used ");
        news.exceeded = vec![window];
        news.add(
            window,
            WindowReport {
                limit,
                remaining: limit.zip(used).map(|(l, u)| l.saturating_sub(u)),
                reset: None,
            },
        );
        return;
    }
    match error_code(&json).as_deref() {
        Some("request_quota_exceeded") => news.exceeded = vec![Window::Rpm, Window::Rpd],
        Some("token_quota_exceeded") => news.exceeded = vec![Window::Tpm, Window::Tpd],
        _ => {}
    }
    let github = headers
        .get("x-ratelimit-type")
        .and_then(|v| v.to_str().ok());
    let github_window = match github {
        Some(t) if t.ends_with("ByDay") => Some(Window::Rpd),
        Some(t) if t.ends_with("ByMinute") => Some(Window::Rpm),
        _ => None,
    };
    if let Some(window) = github_window {
        news.exceeded = vec![window];
        news.add(
            window,
            WindowReport {
                limit: number_after(&message, "Rate limit of "),
                remaining: Some(0),
                reset: None,
            },
        );
        return;
    }
    let openrouter = if message.contains("free-models-per-day") {
        Some(Window::Rpd)
    } else if message.contains("free-models-per-min") {
        Some(Window::Rpm)
    } else {
        None
    };
    if let Some(window) = openrouter {
        // OpenRouter relays the headers as strings or numbers; the reset is an instant in Unix ms.
        let meta = |name: &str| match json.pointer(&format!("/error/metadata/headers/{name}"))? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        };
        let reset = meta("X-RateLimit-Reset").and_then(|r| parse_reset(&r));
        // These limits are the account's, shared by every free model (openrouter.ai/docs, "Limits").
        news.key_wide = true;
        news.exceeded = vec![window];
        news.add(
            window,
            WindowReport {
                limit: meta("X-RateLimit-Limit").and_then(|l| parse_count(&l)),
                remaining: meta("X-RateLimit-Remaining").and_then(|r| parse_count(&r)),
                reset,
            },
        );
    }
}

/// The window a Groq rate-limit message names by its abbreviation.
fn groq_window(message: &str) -> Option<Window> {
    [
        ("(RPM)", Window::Rpm),
        ("(RPD)", Window::Rpd),
        ("(TPM)", Window::Tpm),
        ("(TPD)", Window::Tpd),
    ]
    .into_iter()
    .find(|(tag, _)| message.contains(tag))
    .map(|(_, w)| w)
}

/// The integer right after `label` in `text`.
fn number_after(text: &str, label: &str) -> Option<u64> {
    let (_, rest) = text.split_once(label)?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

fn parse_count(text: &str) -> Option<u64> {
    let text = text.trim();
    text.parse::<u64>().ok().or_else(|| {
        let f: f64 = text.parse().ok()?;
        // Counts are whole; a fractional one (some providers send "29.0") is rounded down.
        (f.is_finite() && f >= 0.0).then_some(f as u64)
    })
}

/// A reset as providers send it: a Go duration (`7.66s`, `2m59.56s`), seconds (`59.5`), or an instant in Unix
/// seconds or milliseconds.
fn parse_reset(text: &str) -> Option<Duration> {
    if text.ends_with(|c: char| c.is_ascii_alphabetic()) {
        return parse_go_duration(text);
    }
    let value: f64 = text.parse().ok()?;
    if !value.is_finite() || value < 0.0 {
        return None;
    }
    let now_ms = now_unix_ms() as f64;
    let wait_ms = if value > 1e12 {
        value - now_ms
    } else if value > 1e9 {
        value * 1000.0 - now_ms
    } else {
        value * 1000.0
    };
    Some(Duration::from_millis(wait_ms.max(0.0) as u64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use awc::http::header::{HeaderName, HeaderValue};

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(
                HeaderName::from_static(name),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    #[test]
    fn groq_headers_report_the_day_and_the_minute() {
        let mut news = QuotaNews::default();
        let h = headers(&[
            ("x-ratelimit-limit-requests", "1000"),
            ("x-ratelimit-remaining-requests", "997"),
            ("x-ratelimit-reset-requests", "4m19.2s"),
            ("x-ratelimit-limit-tokens", "12000"),
            ("x-ratelimit-remaining-tokens", "11500"),
            ("x-ratelimit-reset-tokens", "2.5s"),
        ]);
        from_headers(&h, GROQ_HEADERS, &mut news);
        assert_eq!(
            news.report(Window::Rpd),
            Some(&WindowReport {
                limit: Some(1000),
                remaining: Some(997),
                reset: Some(Duration::from_millis(259_200)),
            })
        );
        assert_eq!(news.report(Window::Tpm).unwrap().remaining, Some(11_500));
        assert!(news.exceeded.is_empty());
    }

    #[test]
    fn cerebras_resets_are_seconds() {
        let mut news = QuotaNews::default();
        let h = headers(&[
            ("x-ratelimit-limit-tokens-minute", "30000"),
            ("x-ratelimit-remaining-tokens-minute", "29000"),
            ("x-ratelimit-reset-tokens-minute", "41.5"),
        ]);
        from_headers(&h, CEREBRAS_HEADERS, &mut news);
        assert_eq!(
            news.report(Window::Tpm).unwrap().reset,
            Some(Duration::from_millis(41_500))
        );
        assert_eq!(news.report(Window::Rpd), None);
    }

    #[test]
    fn groq_refusals_name_window_limit_and_use() {
        let body = br#"{"error":{"message":"Rate limit reached for model `llama-3.3-70b-versatile` in organization `org_x` service tier `on_demand` on tokens per minute (TPM): Limit 8000, Used 7800, Requested 500. Please try again in 2.25s.","type":"tokens","code":"rate_limit_exceeded"}}"#;
        let mut news = QuotaNews::default();
        from_refusal(&HeaderMap::new(), body, &mut news);
        assert_eq!(news.exceeded, [Window::Tpm]);
        let tpm = news.report(Window::Tpm).unwrap();
        assert_eq!((tpm.limit, tpm.remaining), (Some(8000), Some(200)));
    }

    #[test]
    fn cerebras_codes_narrow_the_window_to_requests_or_tokens() {
        let body = br#"{"message":"Requests per minute limit exceeded - too many requests sent.","type":"too_many_requests_error","param":"quota","code":"request_quota_exceeded"}"#;
        let mut news = QuotaNews::default();
        from_refusal(&HeaderMap::new(), body, &mut news);
        assert_eq!(news.exceeded, [Window::Rpm, Window::Rpd]);
        assert!(news.windows.is_empty());
    }

    #[test]
    fn github_and_openrouter_refusals() {
        let body = br#"{"error":{"code":"RateLimitReached","message":"Rate limit of 150 per 86400s exceeded for UserByModelByDay. Please wait 24367 seconds before retrying."}}"#;
        let h = headers(&[("x-ratelimit-type", "UserByModelByDay")]);
        let mut news = QuotaNews::default();
        from_refusal(&h, body, &mut news);
        assert_eq!(news.exceeded, [Window::Rpd]);
        assert_eq!(news.report(Window::Rpd).unwrap().limit, Some(150));

        let reset = now_unix_ms() + 3_600_000;
        let body = format!(
            r#"{{"error":{{"message":"Rate limit exceeded: free-models-per-day. Add 10 credits","code":429,"metadata":{{"headers":{{"X-RateLimit-Limit":"50","X-RateLimit-Remaining":"0","X-RateLimit-Reset":"{reset}"}}}}}}}}"#
        );
        let mut news = QuotaNews::default();
        from_refusal(&HeaderMap::new(), body.as_bytes(), &mut news);
        assert_eq!(news.exceeded, [Window::Rpd]);
        assert!(
            news.key_wide,
            "OpenRouter's free-model limits are the key's"
        );
        let rpd = news.report(Window::Rpd).unwrap();
        assert_eq!((rpd.limit, rpd.remaining), (Some(50), Some(0)));
        let wait = rpd.reset.unwrap();
        assert!(wait > Duration::from_secs(3590) && wait <= Duration::from_secs(3600));
    }

    #[test]
    fn unrelated_bodies_say_nothing() {
        let mut news = QuotaNews::default();
        from_refusal(&HeaderMap::new(), b"<html>busy</html>", &mut news);
        from_headers(&headers(&[("x-request-id", "1")]), GROQ_HEADERS, &mut news);
        assert!(news.is_empty());
    }
}
