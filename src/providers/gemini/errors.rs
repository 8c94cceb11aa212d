//! Gemini errors as the gateway's failures: `google.rpc` details (`ErrorInfo.reason`, `QuotaFailure` quota ids,
//! `RetryInfo.retryDelay`), and the quota a 429 names. Classifies; decides nothing.

use super::*;

/// Classifies a Gemini error from its status and `google.rpc` details (`ErrorInfo.reason`, `QuotaFailure`
/// quota ids, `RetryInfo.retryDelay`); array-wrapped bodies are accepted.
pub fn classify_gemini(status: u16, headers: &HeaderMap, body: &[u8]) -> Failure {
    let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let json = match json {
        Value::Array(mut items) if !items.is_empty() => items.swap_remove(0),
        other => other,
    };
    let message =
        error_message(&json).unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    let details = json
        .pointer("/error/details")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let reason = details
        .iter()
        .find_map(|d| d.get("reason").and_then(Value::as_str));
    let rpc_status = json.pointer("/error/status").and_then(Value::as_str);
    let status = json
        .pointer("/error/code")
        .and_then(Value::as_u64)
        .and_then(|c| u16::try_from(c).ok())
        .filter(|_| status == 200)
        .unwrap_or(status);
    let retry = retry_after(headers).or_else(|| {
        details
            .iter()
            .find_map(|d| d.get("retryDelay").and_then(Value::as_str))
            .and_then(parse_go_duration)
    });
    let per_day = details
        .iter()
        .filter_map(|d| d.get("violations").and_then(Value::as_array))
        .flatten()
        .any(|v| {
            v.get("quotaId")
                .and_then(Value::as_str)
                .is_some_and(|q| q.contains("PerDay"))
        });
    let kind = match (status, reason, rpc_status) {
        (_, Some("API_KEY_INVALID"), _) | (401, _, _) => FailureKind::InvalidKey,
        (429, _, _) if per_day => FailureKind::QuotaExhausted {
            retry_after: Some(DayWindow::MidnightPacific.until_reset()),
        },
        (429, _, _) => FailureKind::RateLimited { retry_after: retry },
        (400, _, Some("FAILED_PRECONDITION")) | (403, _, _) | (404, _, _) => {
            FailureKind::ModelUnavailable
        }
        (400 | 413, _, _) => FailureKind::BadRequest,
        _ => FailureKind::Transient,
    };
    Failure {
        kind,
        status: Some(status),
        message,
    }
}

/// The windows a 429's `QuotaFailure` violations name (by `quotaId`) with their `quotaValue` limits.
pub(super) fn quota_failure(body: &[u8]) -> QuotaNews {
    let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let json = match json {
        Value::Array(mut items) if !items.is_empty() => items.swap_remove(0),
        other => other,
    };
    let mut news = QuotaNews::default();
    let violations = json
        .pointer("/error/details")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|d| d.get("violations").and_then(Value::as_array))
        .flatten();
    for violation in violations {
        let Some(id) = violation.get("quotaId").and_then(Value::as_str) else {
            continue;
        };
        let window = match (id.contains("Token"), id.contains("PerDay")) {
            (false, false) => Window::Rpm,
            (false, true) => Window::Rpd,
            (true, false) => Window::Tpm,
            (true, true) => Window::Tpd,
        };
        let limit = violation.get("quotaValue").and_then(|v| {
            v.as_str()
                .and_then(|s| s.parse().ok())
                .or_else(|| v.as_u64())
        });
        news.exceeded.push(window);
        news.add(
            window,
            WindowReport {
                limit,
                remaining: Some(0),
                reset: None,
            },
        );
    }
    news
}
