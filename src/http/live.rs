//! Admin routes that read live routing state rather than the database: budgets and on-demand key checks.

use actix_web::{web, HttpResponse};
use futures_util::future::join_all;
use serde_json::{json, Value};

use super::{reload, AppState};
use crate::crypto::key_aad;
use crate::error::ApiError;
use crate::providers::actor::{Probe, Timeouts};
use crate::providers::{FailureKind, Target};
use crate::router::actor::{GetKey, ListBudgets};
use crate::router::limiter::ReadBudget;
use crate::routing::budget::WindowUse;
use crate::timefmt::{iso8601_ms, now_unix_ms};

/// Registers `GET /budgets` and `POST /keys/{id}/check`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/budgets", web::get().to(budgets))
        .route("/keys/{id}/check", web::post().to(check_key));
}

fn window(w: WindowUse) -> Value {
    json!({"used": w.used, "limit": w.limit})
}

/// `GET /api/budgets`: one row per (platform, model, key).
async fn budgets(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let holders = state
        .router
        .send(ListBudgets)
        .await
        .map_err(|e| ApiError::internal(format!("router unavailable: {e}")))?;
    let snapshots = join_all(holders.iter().map(|(_, _, _, addr)| addr.send(ReadBudget))).await;
    let rows: Vec<Value> = holders
        .iter()
        .zip(snapshots)
        .filter_map(|((platform, model, key, _), snapshot)| {
            let s = snapshot.ok()?;
            Some(json!({
                "platform": platform.id(),
                "model": &**model,
                "key_id": key,
                "rpm": window(s.rpm),
                "rpd": window(s.rpd),
                "tpm": window(s.tpm),
                "tpd": window(s.tpd),
                "in_flight": s.in_flight,
                "cooldown_until": s.cooldown_until_ms.map(iso8601_ms),
            }))
        })
        .collect();
    Ok(HttpResponse::Ok().json(rows))
}

/// `POST /api/keys/{id}/check`: probes the key now and answers with its updated entry.
async fn check_key(
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let key = state
        .router
        .send(GetKey(id))
        .await
        .map_err(|e| ApiError::internal(format!("router unavailable: {e}")))?;
    let (status, error) = match key {
        None => (
            "error",
            Some("this key's platform is not supported by this version".to_owned()),
        ),
        Some(key) => match state.registry.adapter(key.platform).cloned() {
            None => (
                "error",
                Some(format!("no adapter for platform {}", key.platform)),
            ),
            Some(provider) => {
                let secret = state
                    .cipher
                    .open(
                        &key.nonce,
                        &key.ciphertext,
                        &key_aad(key.id, key.platform.id()),
                    )
                    .map_err(|_| ApiError::internal("the stored key could not be decrypted"))?;
                let request = provider.probe_request(&Target {
                    base_url: &key.base_url,
                    model: "",
                    secret: &secret,
                });
                drop(secret);
                let timeouts = Timeouts {
                    connect: state.config.connect_timeout,
                    first_byte: state.config.first_byte_timeout,
                    total: state.config.upstream_timeout,
                };
                let probe = Probe {
                    provider,
                    request,
                    timeouts,
                };
                match state.providers.pick().send(probe).await {
                    Ok(Ok(())) => ("healthy", None),
                    Ok(Err(failure)) => (status_of(failure.kind), Some(failure.to_string())),
                    Err(e) => ("error", Some(format!("provider actor unavailable: {e}"))),
                }
            }
        },
    };
    let now = now_unix_ms();
    let view = state
        .db
        .run(move |conn| {
            if crate::store::keys::get(conn, id)?.is_none() {
                return Ok(None);
            }
            crate::store::keys::set_status(conn, id, status, error.as_deref(), now)?;
            crate::keys::get(conn, id)
        })
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .ok_or_else(|| ApiError::not_found(format!("no key with id {id}")))?;
    reload(&state).await;
    Ok(HttpResponse::Ok().json(view))
}

/// The key status a probe failure implies; a transport blip is an error, never `invalid`.
fn status_of(kind: FailureKind) -> &'static str {
    match kind {
        FailureKind::InvalidKey => "invalid",
        FailureKind::RateLimited { .. } | FailureKind::QuotaExhausted { .. } => "rate_limited",
        _ => "error",
    }
}
