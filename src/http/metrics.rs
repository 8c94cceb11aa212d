//! `GET /metrics`: Prometheus text exposition. Request counters come from the RequestLogger (which counts the
//! records it already receives); key, budget and stream gauges are read at scrape time.

use std::collections::BTreeMap;

use actix_web::{web, HttpResponse};

use super::live::read_budgets;
use super::AppState;
use crate::actors::router::queries::ListKeyBudgets;
use crate::analytics::RenderMetrics;
use crate::error::ApiError;
use crate::metrics::{family, sample};
use crate::response_cache::CacheStats;
use crate::store::provider_keys;
use crate::timefmt::now_unix_ms;

/// The exposition format's content type.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

fn unavailable(what: &str, e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(format!("{what} unavailable: {e}"))
}

pub(super) async fn metrics(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let mut out = state
        .logger
        .send(RenderMetrics)
        .await
        .map_err(|e| unavailable("request counters", e))?;

    let rows = state
        .db
        .run(provider_keys::list)
        .await
        .map_err(|e| unavailable("keys", e))?;
    let mut by_status: BTreeMap<(String, &str, bool), u64> = BTreeMap::new();
    for row in rows {
        *by_status
            .entry((row.platform, row.status.as_str(), row.enabled))
            .or_default() += 1;
    }
    family(
        &mut out,
        "freellmapi_keys",
        "gauge",
        "Provider keys by platform, last known status (unknown, healthy, rate_limited, invalid, error) and enabled.",
    );
    for ((platform, status, enabled), n) in &by_status {
        let enabled = enabled.to_string();
        sample(
            &mut out,
            "freellmapi_keys",
            &[
                ("platform", platform),
                ("status", status),
                ("enabled", &enabled),
            ],
            *n as f64,
        );
    }

    let budgets = read_budgets(&state).await?;
    let now = now_unix_ms();
    let mut cooling: BTreeMap<&str, u64> = BTreeMap::new();
    let mut leased: BTreeMap<&str, u64> = BTreeMap::new();
    let mut missed: BTreeMap<&str, u64> = BTreeMap::new();
    for (platform, _, _, s) in &budgets {
        *cooling.entry(platform.id()).or_default() +=
            u64::from(s.cooldown_until_ms.is_some_and(|until| until > now));
        *leased.entry(platform.id()).or_default() += s.in_flight as u64;
        *missed.entry(platform.id()).or_default() += s.misses.count;
    }
    // A refusal of a key's shared limit is the key budget's miss, not any model's: counted once, here.
    let keys = state
        .router
        .send(ListKeyBudgets)
        .await
        .map_err(|e| ApiError::internal(format!("router unavailable: {e}")))?;
    for (platform, _, s) in &keys {
        *missed.entry(platform.id()).or_default() += s.misses.count;
    }
    per_platform(
        &mut out,
        ("freellmapi_cooldowns_active", "gauge"),
        "(platform, model, key) budgets benched now after a rate limit or upstream failures, by platform.",
        &cooling,
    );
    per_platform(
        &mut out,
        ("freellmapi_upstream_requests_in_flight", "gauge"),
        "Upstream requests sent and not yet settled, by platform.",
        &leased,
    );
    per_platform(
        &mut out,
        ("freellmapi_quota_misses_total", "counter"),
        "Upstream rate-limit refusals the budgets did not predict, by platform.",
        &missed,
    );
    family(
        &mut out,
        "freellmapi_streams_in_flight",
        "gauge",
        "Streamed answers being relayed to clients now.",
    );
    sample(
        &mut out,
        "freellmapi_streams_in_flight",
        &[],
        state.streams.get() as f64,
    );
    if let Some(cache) = &state.cache {
        cache_metrics(&mut out, cache.stats());
    }
    Ok(HttpResponse::Ok().content_type(CONTENT_TYPE).body(out))
}

/// The response cache's counters and size.
fn cache_metrics(out: &mut String, stats: CacheStats) {
    let families = [
        (
            "freellmapi_cache_hits_total",
            "counter",
            "Requests answered from the response cache.",
            stats.hits,
        ),
        (
            "freellmapi_cache_misses_total",
            "counter",
            "Requests the response cache did not answer.",
            stats.misses,
        ),
        (
            "freellmapi_cache_evictions_total",
            "counter",
            "Cached answers dropped to stay within RESPONSE_CACHE_MAX_MB.",
            stats.evictions,
        ),
        (
            "freellmapi_cache_bytes",
            "gauge",
            "Bytes the response cache holds now.",
            stats.bytes,
        ),
        (
            "freellmapi_cache_entries",
            "gauge",
            "Answers the response cache holds now.",
            stats.entries,
        ),
    ];
    for (name, kind, help, value) in families {
        family(out, name, kind, help);
        sample(out, name, &[], value as f64);
    }
}

/// One metric family with a sample per platform.
fn per_platform(
    out: &mut String,
    (name, kind): (&str, &str),
    help: &str,
    values: &BTreeMap<&str, u64>,
) {
    family(out, name, kind, help);
    for (platform, n) in values {
        sample(out, name, &[("platform", platform)], *n as f64);
    }
}
