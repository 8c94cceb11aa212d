//! Admin routes that read live routing state rather than the database: budgets and on-demand key checks.

use std::sync::Arc;

use actix_web::{web, HttpResponse};
use serde_json::{json, Value};

use super::AppState;
use crate::actors::health::Check;
use crate::actors::router::queries::{ListBudgets, ListKeyBudgets};
use crate::catalog::Window;
use crate::day_window::DayWindow;
use crate::error::ApiError;
use crate::platform::Platform;
use crate::provider_key::KeyId;
use crate::routing::budget::{Snapshot, WindowUse};
use crate::timefmt::{iso8601_ms, now_unix_ms};

fn window(w: WindowUse) -> Value {
    json!({"used": w.used, "limit": w.limit})
}

/// Limits learned from the provider, by window name.
fn learned(s: &Snapshot) -> Value {
    s.learned
        .iter()
        .map(|l| (l.window.as_str().to_owned(), json!(l.limit)))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// The budget's prediction misses: refusals it did not see coming.
fn misses(s: &Snapshot) -> Value {
    let m = &s.misses;
    json!({
        "count": m.count,
        "last_at": m.last_ms.map(iso8601_ms),
        "window": m.window.map(Window::as_str),
        "message": m.message,
    })
}

/// When a calendar day window next resets; `None` for a rolling window, where each use counts for 24 hours.
fn day_resets_at(window: DayWindow) -> Option<String> {
    (window != DayWindow::Rolling24h).then(|| iso8601_ms(window.expiry(now_unix_ms())))
}

/// Every (platform, model, key) budget with its current state.
pub(super) async fn read_budgets(
    state: &AppState,
) -> Result<Vec<(Platform, Arc<str>, KeyId, Snapshot)>, ApiError> {
    state
        .router
        .send(ListBudgets)
        .await
        .map_err(|e| ApiError::internal(format!("router unavailable: {e}")))
}

/// One row of `/api/budgets`: a model's budget (`model` its id) or a key's shared one (`model` null).
fn budget_row(platform: Platform, model: Option<&str>, key: KeyId, s: &Snapshot) -> Value {
    json!({
        "platform": platform.id(),
        "model": model,
        "key_id": key,
        "scope": if model.is_some() { "model" } else { "key" },
        "rpm": window(s.rpm),
        "rpd": window(s.rpd),
        "tpm": window(s.tpm),
        "tpd": window(s.tpd),
        "in_flight": s.in_flight,
        "cooldown_until": s.cooldown_until_ms.map(iso8601_ms),
        "day_window": s.day_window.as_str(),
        "day_resets_at": day_resets_at(s.day_window),
        "learned": learned(s),
        "misses": misses(s),
    })
}

/// `GET /api/budgets`: one row per (platform, model, key), then one per key whose models share a limit
/// (`"scope": "key"`, `"model": null`), so clients that know only model rows keep reading them unchanged.
pub(super) async fn budgets(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let mut rows: Vec<Value> = read_budgets(&state)
        .await?
        .into_iter()
        .map(|(platform, model, key, s)| budget_row(platform, Some(&model), key, &s))
        .collect();
    let keys = state
        .router
        .send(ListKeyBudgets)
        .await
        .map_err(|e| ApiError::internal(format!("router unavailable: {e}")))?;
    rows.extend(
        keys.iter()
            .map(|(platform, key, s)| budget_row(*platform, None, *key, s)),
    );
    Ok(HttpResponse::Ok().json(rows))
}

/// `POST /api/keys/{id}/check`: probes the key now and answers with its updated entry.
pub(super) async fn check_key(
    state: web::Data<AppState>,
    id: web::Path<KeyId>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    state
        .health
        .send(Check(id))
        .await
        .map_err(|e| ApiError::internal(format!("health prober unavailable: {e}")))?
        .map_err(|_| ApiError::not_found(format!("no key with id {id}")))?;
    let view = state
        .db
        .run(move |conn| crate::key_admin::get(conn, id))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .ok_or_else(|| ApiError::not_found(format!("no key with id {id}")))?;
    Ok(HttpResponse::Ok().json(view))
}
