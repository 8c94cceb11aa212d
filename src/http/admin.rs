//! The admin API under `/api` (the guard applies authentication; `routes` registers the handlers): keys, the fallback chain, analytics,
//! the request log and token rotation. Handlers validate, call the store through `Db`, and tell the router.

use std::collections::{HashMap, HashSet};

use actix_web::{web, HttpResponse};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::body::AdminBody;
use super::{reload, AppState};
use crate::actors::discovery::discover_models;
use crate::actors::health::KeyAdded;
use crate::actors::provider::LocalProvider;
use crate::catalog::ModelKind;
use crate::error::ApiError;
use crate::key_admin::{self, AddKeyError, CustomModel, NewKey};
use crate::platform::Platform;
use crate::provider_key::KeyId;
use crate::startup_secrets;
use crate::store::{chain, requests, StoreError};
use crate::timefmt::{iso8601_ms, now_unix_ms};

/// Registers the admin routes.
fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::invalid_request("invalid_request", format!("Invalid request body: {e}"))
    })
}

fn store_failed(e: StoreError) -> ApiError {
    ApiError::internal(e.to_string())
}

pub(super) async fn list_keys(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let keys = state.db.run(key_admin::list).await.map_err(store_failed)?;
    Ok(HttpResponse::Ok().json(keys))
}

pub(super) async fn add_key(
    state: web::Data<AppState>,
    provider: Option<web::Data<LocalProvider>>,
    AdminBody(body): AdminBody,
) -> Result<HttpResponse, ApiError> {
    let mut new: NewKey = parse(&body)?;
    if let Some(url) = new.base_url.as_deref() {
        if key_admin::leads_to(url.trim(), state.listen) {
            return Err(ApiError::invalid_request(
                "invalid_key",
                format!(
                    "'base_url' {url} is this gateway's own address: requests would loop back here. Point it \
                     at the upstream server."
                ),
            ));
        }
    }
    if key_admin::wants_discovery(&new) {
        new.models = discover(provider, &new).await?;
    }
    let cipher = state.cipher.clone();
    let secret = new.key.trim().to_owned();
    let added = state
        .db
        .run(move |conn| Ok(key_admin::add(conn, &cipher, new)))
        .await
        .map_err(store_failed)?
        .map_err(|e| match e {
            AddKeyError::Invalid(m) => ApiError::invalid_request("invalid_key", m),
            AddKeyError::Conflict(m) => ApiError::conflict(m),
            AddKeyError::Store(e) => store_failed(e),
        })?;
    state.redactor.learn(&secret);
    reload(&state).await;
    state.health.do_send(KeyAdded(added.id));
    Ok(HttpResponse::Created().json(added))
}

/// A custom key's models as its server lists them; 400 with the reason when it cannot, so they can be given by
/// hand. Runs only once the key and URL passed their checks (and the loop-back refusal above).
async fn discover(
    provider: Option<web::Data<LocalProvider>>,
    new: &NewKey,
) -> Result<Vec<CustomModel>, ApiError> {
    let invalid = |m: String| ApiError::invalid_request("invalid_key", m);
    let checked = key_admin::check(new).map_err(|e| invalid(e.to_string()))?;
    let (Some(url), Some(provider)) = (checked.base_url, provider) else {
        return Err(ApiError::internal("no ProviderActor is registered"));
    };
    discover_models(&provider.0, url, checked.secret)
        .await
        .map_err(invalid)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyPatch {
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    enabled: Option<bool>,
}

pub(super) async fn update_key(
    state: web::Data<AppState>,
    id: web::Path<KeyId>,
    AdminBody(body): AdminBody,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let patch: KeyPatch = parse(&body)?;
    let updated = state
        .db
        .run(move |conn| key_admin::update(conn, id, patch.label.as_deref(), patch.enabled))
        .await
        .map_err(store_failed)?
        .ok_or_else(|| ApiError::not_found(format!("no key with id {id}")))?;
    reload(&state).await;
    Ok(HttpResponse::Ok().json(updated))
}

pub(super) async fn remove_key(
    state: web::Data<AppState>,
    id: web::Path<KeyId>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    if !state
        .db
        .run(move |conn| key_admin::remove(conn, id))
        .await
        .map_err(store_failed)?
    {
        return Err(ApiError::not_found(format!("no key with id {id}")));
    }
    reload(&state).await;
    Ok(HttpResponse::NoContent().finish())
}

/// One entry of `GET/PUT /api/chain`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChainEntry {
    platform: String,
    model: String,
    #[serde(default = "enabled_by_default")]
    enabled: bool,
}

fn enabled_by_default() -> bool {
    true
}

pub(super) async fn get_chain(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let rows = state.db.run(chain::list).await.map_err(store_failed)?;
    let entries: Vec<ChainEntry> = rows
        .into_iter()
        .map(|r| ChainEntry {
            platform: r.platform,
            model: r.model,
            enabled: r.enabled,
        })
        .collect();
    Ok(HttpResponse::Ok().json(entries))
}

pub(super) async fn put_chain(
    state: web::Data<AppState>,
    AdminBody(body): AdminBody,
) -> Result<HttpResponse, ApiError> {
    let entries: Vec<ChainEntry> = parse(&body)?;
    let custom_models: HashMap<String, ModelKind> = state
        .db
        .run(key_admin::list)
        .await
        .map_err(store_failed)?
        .into_iter()
        .flat_map(|k| k.models.unwrap_or_default())
        .map(|m: CustomModel| (m.id, m.kind))
        .collect();
    let mut seen = HashSet::new();
    for (i, e) in entries.iter().enumerate() {
        let platform: Platform =
            e.platform
                .parse()
                .map_err(|err: crate::platform::UnknownPlatform| {
                    ApiError::invalid_request("invalid_chain", format!("entry {i}: {err}"))
                })?;
        let kind = match platform {
            Platform::Custom => custom_models.get(&e.model).copied(),
            p => state.catalog.get(p, &e.model).map(|entry| entry.kind),
        };
        if kind == Some(ModelKind::Embedding) {
            return Err(ApiError::invalid_request(
                "invalid_chain",
                format!(
                    "entry {i}: {}/{} is an embedding model; the chain orders chat models",
                    e.platform, e.model
                ),
            ));
        }
        if kind.is_none() {
            return Err(ApiError::invalid_request(
                "invalid_chain",
                format!(
                    "entry {i}: no model '{}' on platform {}",
                    e.model, e.platform
                ),
            ));
        }
        if !seen.insert((platform, e.model.clone())) {
            return Err(ApiError::invalid_request(
                "invalid_chain",
                format!("entry {i}: {}/{} appears twice", e.platform, e.model),
            ));
        }
    }
    let rows: Vec<(String, String, bool)> = entries
        .iter()
        .map(|e| (e.platform.clone(), e.model.clone(), e.enabled))
        .collect();
    state
        .db
        .run(move |conn| chain::replace(conn, &rows))
        .await
        .map_err(store_failed)?;
    reload(&state).await;
    Ok(HttpResponse::Ok().json(entries))
}

#[derive(Deserialize)]
pub(super) struct RangeQuery {
    #[serde(default)]
    range: Option<String>,
}

pub(super) async fn analytics(
    state: web::Data<AppState>,
    query: web::Query<RangeQuery>,
) -> Result<HttpResponse, ApiError> {
    const HOUR: i64 = 3_600_000;
    let (span, bucket) = match query.range.as_deref().unwrap_or("24h") {
        "24h" => (24 * HOUR, HOUR),
        "7d" => (7 * 24 * HOUR, 6 * HOUR),
        "30d" => (30 * 24 * HOUR, 24 * HOUR),
        other => {
            return Err(ApiError::invalid_request(
                "invalid_range",
                format!("range '{other}' must be 24h, 7d or 30d"),
            ))
        }
    };
    let since = (now_unix_ms() - span).div_euclid(bucket) * bucket;
    let result = state
        .db
        .run(move |conn| requests::analytics(conn, since, bucket))
        .await
        .map_err(store_failed)?;
    Ok(HttpResponse::Ok().json(result))
}

#[derive(Deserialize)]
pub(super) struct LimitQuery {
    #[serde(default)]
    limit: Option<i64>,
}

pub(super) async fn recent_requests(
    state: web::Data<AppState>,
    query: web::Query<LimitQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = query.limit.unwrap_or(50);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid_request(
            "invalid_limit",
            "limit must be between 1 and 1000",
        ));
    }
    let rows = state
        .db
        .run(move |conn| requests::recent(conn, limit))
        .await
        .map_err(store_failed)?;
    let out: Vec<Value> = rows
        .into_iter()
        .map(|r| {
            let attempt_log: Value = r
                .attempt_log
                .as_deref()
                .and_then(|a| serde_json::from_str(a).ok())
                .unwrap_or(Value::Null);
            let mut row = json!({
                "ts": iso8601_ms(r.ts),
                "requested_model": r.requested_model,
                "platform": r.platform,
                "model": r.model,
                "status": r.status,
                "latency_ms": r.latency_ms,
                "prompt_tokens": r.prompt_tokens,
                "completion_tokens": r.completion_tokens,
                "attempts": r.attempts,
                "stream": r.stream,
                "attempt_log": attempt_log,
                "client": r.client,
                "cached": r.cached,
            });
            if let Some(error) = r.error {
                row["error"] = Value::String(error);
            }
            row
        })
        .collect();
    Ok(HttpResponse::Ok().json(out))
}

pub(super) async fn rotate_token(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let cipher = state.cipher.clone();
    let token = state
        .db
        .run(move |conn| startup_secrets::rotate_unified_key(conn, &cipher))
        .await
        .map_err(store_failed)?;
    state.redactor.learn(&token);
    state.unified_key.set(token.clone());
    Ok(HttpResponse::Ok().json(json!({"token": token})))
}
