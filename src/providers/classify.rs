//! The vocabulary of upstream failures and the generic classification of an error answer.
//!
//! Classification uses the HTTP status, headers and the provider's structured error fields, never substrings of
//! prose. Adapters with their own error shapes refine this in their own `classify`.

use std::time::{Duration, SystemTime};

use awc::http::header::HeaderMap;
use serde_json::Value;

use crate::day_window::DayWindow;
use crate::failure::{Failure, FailureKind};

/// What a provider's structured error code or status means, where it departs from the OpenAI baseline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// A short-window rate limit.
    RateLimited,
    /// A daily quota is spent: bench until the next UTC day unless the provider says otherwise.
    DailyQuota,
    /// Credit or long-period quota is spent.
    QuotaExhausted,
    /// The key is wrong or revoked.
    InvalidKey,
    /// The request itself was rejected.
    BadRequest,
    /// The platform does not serve the model.
    ModelUnavailable,
    /// Capacity or server trouble: try elsewhere.
    Transient,
}

/// One platform's error vocabulary: structured codes and statuses whose meaning departs from the baseline.
#[derive(Debug)]
pub struct ErrorTable {
    /// `error.code`, `code`, `error.type`, `type` or `base_resp.status_code` value → meaning.
    pub codes: &'static [(&'static str, Signal)],
    /// HTTP status → meaning.
    pub statuses: &'static [(u16, Signal)],
}

/// The plain OpenAI vocabulary.
pub const OPENAI_ERRORS: ErrorTable = ErrorTable {
    codes: &[],
    statuses: &[],
};

/// Classifies an OpenAI-style error answer by status and structured fields.
pub fn classify_openai(status: u16, headers: &HeaderMap, body: &[u8]) -> Failure {
    classify(status, headers, body, &OPENAI_ERRORS)
}

/// Classifies an error answer: the platform's table first (structured codes, then statuses), then the baseline.
pub fn classify(status: u16, headers: &HeaderMap, body: &[u8], table: &ErrorTable) -> Failure {
    let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let message =
        error_message(&json).unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    let retry_after = retry_after(headers).or_else(|| body_retry_hint(&json));
    let signal = error_codes(&json)
        .iter()
        .find_map(|code| table.codes.iter().find(|(c, _)| c == code).map(|(_, s)| *s))
        .or_else(|| {
            table
                .statuses
                .iter()
                .find(|(s, _)| *s == status)
                .map(|(_, s)| *s)
        });
    let kind = match signal {
        Some(signal) => signal_kind(signal, retry_after),
        None => match status {
            429 if error_code(&json).as_deref() == Some("insufficient_quota") => {
                FailureKind::QuotaExhausted { retry_after }
            }
            429 => FailureKind::RateLimited { retry_after },
            402 => FailureKind::QuotaExhausted { retry_after },
            401 | 403 => FailureKind::InvalidKey,
            400 | 413 | 422 => FailureKind::BadRequest,
            404 | 410 => FailureKind::ModelUnavailable,
            408 => FailureKind::Timeout,
            _ => FailureKind::Transient,
        },
    };
    Failure {
        kind,
        status: Some(status),
        message,
    }
}

fn signal_kind(signal: Signal, retry_after: Option<Duration>) -> FailureKind {
    match signal {
        Signal::RateLimited => FailureKind::RateLimited { retry_after },
        Signal::DailyQuota => FailureKind::QuotaExhausted {
            retry_after: retry_after.or_else(|| Some(DayWindow::MidnightUtc.until_reset())),
        },
        Signal::QuotaExhausted => FailureKind::QuotaExhausted { retry_after },
        Signal::InvalidKey => FailureKind::InvalidKey,
        Signal::BadRequest => FailureKind::BadRequest,
        Signal::ModelUnavailable => FailureKind::ModelUnavailable,
        Signal::Transient => FailureKind::Transient,
    }
}

/// Every structured code an error body carries, as text, most specific first.
fn error_codes(json: &Value) -> Vec<String> {
    [
        "/error/code",
        "/code",
        "/error/type",
        "/type",
        "/base_resp/status_code",
        "/errors/0/code",
    ]
    .iter()
    .filter_map(|p| match json.pointer(p)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
    .collect()
}

/// Retry hints inside error bodies: OpenRouter's `metadata.headers.X-RateLimit-Reset` (epoch ms), then a
/// Groq-style "try again in 1.984s" duration in the message.
fn body_retry_hint(json: &Value) -> Option<Duration> {
    let reset_ms = json
        .pointer("/error/metadata/headers/X-RateLimit-Reset")
        .and_then(|v| match v {
            Value::String(s) => s.parse::<u64>().ok(),
            Value::Number(n) => n.as_u64(),
            _ => None,
        });
    if let Some(reset_ms) = reset_ms {
        let now_ms = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .ok()?
            .as_millis();
        let wait = u64::try_from(u128::from(reset_ms).saturating_sub(now_ms)).unwrap_or(u64::MAX);
        return Some(clamp(Duration::from_millis(wait)));
    }
    let message = json.pointer("/error/message")?.as_str()?;
    let (_, after) = message.split_once("try again in ")?;
    let token = after
        .split_whitespace()
        .next()?
        .trim_end_matches(['.', ',']);
    parse_go_duration(token).map(clamp)
}

/// The human message of the error shapes providers use: `error.message`, `message`, `detail`, `error` string.
pub fn error_message(json: &Value) -> Option<String> {
    let candidates = [
        json.pointer("/error/message"),
        json.pointer("/errors/0/message"),
        json.get("message"),
        json.get("detail"),
        json.get("title"),
        json.get("error").filter(|e| e.is_string()),
    ];
    candidates
        .into_iter()
        .flatten()
        .find_map(|v| v.as_str().map(str::to_owned))
}

/// The structured error code (`error.code` or top-level `code`), as text.
pub fn error_code(json: &Value) -> Option<String> {
    let code = json.pointer("/error/code").or_else(|| json.get("code"))?;
    match code {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Retry hint from `Retry-After` (seconds or HTTP-date), then the `x-ratelimit-reset-*` durations.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    if let Some(v) = headers.get("retry-after").and_then(|v| v.to_str().ok()) {
        let v = v.trim();
        if let Ok(secs) = v.parse::<f64>() {
            if secs.is_finite() && secs >= 0.0 {
                return Some(clamp(Duration::from_secs_f64(secs)));
            }
        }
        if let Ok(when) = httpdate::parse_http_date(v) {
            let wait = when
                .duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO);
            return Some(clamp(wait));
        }
    }
    ["x-ratelimit-reset-requests", "x-ratelimit-reset-tokens"]
        .iter()
        .filter_map(|name| {
            headers
                .get(*name)?
                .to_str()
                .ok()
                .and_then(parse_go_duration)
        })
        .max()
        .map(clamp)
}

/// Parses Go-style durations as Groq sends them: `399ms`, `7.66s`, `2m59.56s`, `1h2m`.
pub fn parse_go_duration(text: &str) -> Option<Duration> {
    let mut total = 0f64;
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let value: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let factor = match &rest[..unit_end] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += value * factor;
        rest = &rest[unit_end..];
    }
    Some(Duration::from_secs_f64(total))
}

/// Keeps provider hints within sane bounds (a day at most).
fn clamp(d: Duration) -> Duration {
    d.min(Duration::from_secs(86_400))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failure::MAX_MESSAGE_CHARS;
    use crate::redact::Redactor;
    use awc::http::header::{HeaderName, HeaderValue};

    #[test]
    fn context_overflow_is_told_apart_from_other_rejections() {
        let rejected = |status, message: &str| Failure {
            kind: FailureKind::BadRequest,
            status: Some(status),
            message: message.to_owned(),
        };
        for message in [
            "This model's maximum context length is 8192 tokens. However, you requested 9000 tokens.",
            "Please reduce the length of the messages or completion.",
            "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).",
            "prompt is too long: 210000 tokens > 200000 maximum",
        ] {
            assert!(rejected(400, message).exceeds_context(), "{message}");
        }
        assert!(rejected(413, "Request Entity Too Large").exceeds_context());
        assert!(!rejected(400, "Content violates our usage policy").exceeds_context());
        let timeout = Failure::transport(FailureKind::Timeout, "maximum context length");
        assert!(!timeout.exceeds_context());
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                HeaderName::from_static(k),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn statuses_map_to_kinds() {
        let none = HeaderMap::new();
        let cases = [
            (401, FailureKind::InvalidKey),
            (403, FailureKind::InvalidKey),
            (400, FailureKind::BadRequest),
            (413, FailureKind::BadRequest),
            (404, FailureKind::ModelUnavailable),
            (500, FailureKind::Transient),
            (503, FailureKind::Transient),
            (402, FailureKind::QuotaExhausted { retry_after: None }),
            (429, FailureKind::RateLimited { retry_after: None }),
        ];
        for (status, kind) in cases {
            assert_eq!(
                classify_openai(status, &none, b"{}").kind,
                kind,
                "status {status}"
            );
        }
    }

    #[test]
    fn retry_after_seconds_date_and_groq_resets() {
        let f = classify_openai(429, &headers(&[("retry-after", "30")]), b"");
        assert_eq!(
            f.kind,
            FailureKind::RateLimited {
                retry_after: Some(Duration::from_secs(30))
            }
        );
        let soon = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(120));
        let d = retry_after(&headers(&[("retry-after", &soon)])).unwrap();
        assert!(
            d > Duration::from_secs(100) && d <= Duration::from_secs(120),
            "{d:?}"
        );
        let d = retry_after(&headers(&[
            ("x-ratelimit-reset-tokens", "7.66s"),
            ("x-ratelimit-reset-requests", "2m59.5s"),
        ]));
        assert_eq!(d, Some(Duration::from_secs_f64(179.5)));
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("399ms"), Some(Duration::from_millis(399)));
        assert_eq!(
            parse_go_duration("9m38.016s"),
            Some(Duration::from_secs_f64(578.016))
        );
        assert_eq!(parse_go_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_go_duration("soon"), None);
        assert_eq!(parse_go_duration(""), None);
    }

    #[test]
    fn messages_from_every_common_shape() {
        let cases = [
            (
                r#"{"error":{"message":"Invalid API Key","code":"invalid_api_key"}}"#,
                "Invalid API Key",
            ),
            (
                r#"{"message":"Requests per minute limit exceeded","code":"request_quota_exceeded"}"#,
                "Requests per minute limit exceeded",
            ),
            (
                r#"{"status":429,"title":"Too Many Requests"}"#,
                "Too Many Requests",
            ),
            (
                r#"{"error":"Invalid credentials in Authorization header"}"#,
                "Invalid credentials in Authorization header",
            ),
            ("plain text", "plain text"),
        ];
        for (body, msg) in cases {
            assert_eq!(
                classify_openai(500, &HeaderMap::new(), body.as_bytes()).message,
                msg
            );
        }
        let long = "x".repeat(1000);
        assert!(
            classify_openai(500, &HeaderMap::new(), long.as_bytes())
                .sanitized(&Redactor::default(), &[])
                .message
                .chars()
                .count()
                <= MAX_MESSAGE_CHARS + 1
        );
    }

    const TABLE: ErrorTable = ErrorTable {
        codes: &[
            ("1304", Signal::DailyQuota),
            ("1261", Signal::BadRequest),
            ("1002", Signal::RateLimited),
        ],
        statuses: &[(403, Signal::BadRequest)],
    };

    #[test]
    fn platform_tables_override_the_baseline() {
        let none = HeaderMap::new();
        let daily = classify(
            429,
            &none,
            br#"{"error":{"code":"1304","message":"daily quota"}}"#,
            &TABLE,
        );
        let FailureKind::QuotaExhausted {
            retry_after: Some(wait),
        } = daily.kind
        else {
            panic!("{daily:?}")
        };
        assert!(wait <= Duration::from_secs(86_400));
        let long = classify(
            400,
            &none,
            br#"{"error":{"code":"1261","message":"Prompt too long"}}"#,
            &TABLE,
        );
        assert_eq!(long.kind, FailureKind::BadRequest);
        let moderated = classify(
            403,
            &none,
            br#"{"error":{"code":403,"message":"flagged"}}"#,
            &TABLE,
        );
        assert_eq!(
            moderated.kind,
            FailureKind::BadRequest,
            "403 means moderation here, not a bad key"
        );
        let minimax = classify(
            200,
            &none,
            br#"{"base_resp":{"status_code":1002,"status_msg":"rate limit"}}"#,
            &TABLE,
        );
        assert_eq!(minimax.kind, FailureKind::RateLimited { retry_after: None });
        assert_eq!(
            classify(403, &none, b"{}", &OPENAI_ERRORS).kind,
            FailureKind::InvalidKey
        );
    }

    #[test]
    fn retry_hints_in_bodies() {
        let none = HeaderMap::new();
        let groq = br#"{"error":{"message":"Rate limit reached ... Please try again in 1.984s. Need more tokens?","type":"tokens","code":"rate_limit_exceeded"}}"#;
        assert_eq!(
            classify_openai(429, &none, groq).kind,
            FailureKind::RateLimited {
                retry_after: Some(Duration::from_secs_f64(1.984))
            }
        );
        let soon = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_millis()
            + 60_000;
        let openrouter = format!(
            r#"{{"error":{{"message":"Rate limit exceeded: free-models-per-min","code":429,"metadata":{{"headers":{{"X-RateLimit-Reset":"{soon}"}}}}}}}}"#
        );
        let FailureKind::RateLimited {
            retry_after: Some(wait),
        } = classify_openai(429, &none, openrouter.as_bytes()).kind
        else {
            panic!()
        };
        assert!(
            wait > Duration::from_secs(55) && wait <= Duration::from_secs(60),
            "{wait:?}"
        );
        let header_wins = classify_openai(429, &headers(&[("retry-after", "5")]), groq).kind;
        assert_eq!(
            header_wins,
            FailureKind::RateLimited {
                retry_after: Some(Duration::from_secs(5))
            }
        );
    }

    #[test]
    fn echoed_keys_are_masked() {
        let f = classify_openai(
            401,
            &HeaderMap::new(),
            br#"{"error":{"message":"Incorrect API key provided: sk-secret-abcdef1234."}}"#,
        );
        let f = f.sanitized(&Redactor::default(), &["sk-secret-abcdef1234".to_owned()]);
        assert_eq!(f.message, "Incorrect API key provided: [redacted].");
    }

    #[test]
    fn a_key_at_the_cut_is_masked_before_the_message_is_shortened() {
        let key = "sk-secret-abcdef1234567890";
        let body = serde_json::json!({"error": {"message": format!("{}{key}", "x".repeat(MAX_MESSAGE_CHARS - 5))}});
        let f = classify_openai(401, &HeaderMap::new(), body.to_string().as_bytes());
        let redactor = Redactor::default();
        redactor.learn(key);
        let f = f.sanitized(&redactor, &[]);
        assert!(!f.message.contains("sk-secr"), "{}", f.message);
        assert!(f.message.ends_with('…'), "{}", f.message);
    }

    #[test]
    fn insufficient_quota_is_exhaustion_not_rate() {
        let f = classify_openai(
            429,
            &HeaderMap::new(),
            br#"{"error":{"code":"insufficient_quota","message":"x"}}"#,
        );
        assert_eq!(f.kind, FailureKind::QuotaExhausted { retry_after: None });
    }
}
