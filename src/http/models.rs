//! `GET /v1/models` and `GET /v1/models/{id}`: `auto` plus every model that has at least one usable key, in
//! OpenAI's list shape, each with what the catalog knows of it (kind, context window, capabilities). It only
//! reads the router's table and the catalog; it decides nothing about routing. A client key with an allowlist sees
//! only the models it may ask for.

use actix_web::{web, HttpResponse};
use serde_json::{json, Value};

use super::AppState;
use crate::actors::router::queries::{ListModels, Servable};
use crate::catalog::ModelKind;
use crate::client_keys::Caller;
use crate::error::ApiError;

/// Lists servable models.
pub async fn list_models(
    state: web::Data<AppState>,
    caller: Option<web::ReqData<Caller>>,
) -> Result<HttpResponse, ApiError> {
    let data = listed(&state, caller).await?;
    Ok(HttpResponse::Ok().json(json!({"object": "list", "data": data})))
}

/// One servable model by id (ids may contain `/`), in the list's shape; 404 `model_not_found` otherwise.
pub async fn get_model(
    state: web::Data<AppState>,
    id: web::Path<String>,
    caller: Option<web::ReqData<Caller>>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    listed(&state, caller)
        .await?
        .into_iter()
        .find(|entry| entry["id"] == id.as_str())
        .map(|entry| HttpResponse::Ok().json(entry))
        .ok_or_else(|| ApiError::model_not_found(&id))
}

/// `auto` and every servable model the caller may ask for, as list entries.
async fn listed(
    state: &AppState,
    caller: Option<web::ReqData<Caller>>,
) -> Result<Vec<Value>, ApiError> {
    let models = state
        .router
        .send(ListModels)
        .await
        .map_err(|e| ApiError::internal(format!("router unavailable: {e}")))?;
    let created = state.started_unix_secs;
    let auto = json!({"id": "auto", "object": "model", "created": created, "owned_by": "freellmapi", "type": "chat"});
    let mut listed: Vec<Value> = std::iter::once(auto)
        .chain(models.models.iter().map(|m| entry(state, m, created)))
        .collect();
    for (name, reached) in models.shared {
        match listed.iter_mut().find(|entry| entry["id"] == name.as_str()) {
            Some(entry) => entry["aliases"] = json!(reached),
            None => listed.push(json!({"id": name, "object": "model", "created": created,
                "owned_by": "freellmapi", "type": "chat", "aliases": reached})),
        }
    }
    if let Some(Caller::Client(client)) = caller.as_deref() {
        listed.retain(|entry| {
            let id = entry["id"].as_str().unwrap_or_default();
            let owner = entry["owned_by"].as_str().unwrap_or_default();
            client.allows(id) || client.allows(&format!("{owner}/{id}"))
        });
    }
    Ok(listed)
}

/// One model's entry: OpenAI's fields, then the gateway's extensions where known.
fn entry(state: &AppState, model: &Servable, created: i64) -> Value {
    let mut entry = json!({
        "id": &*model.model,
        "object": "model",
        "created": created,
        "owned_by": model.platform.id(),
        "type": model.kind.as_str(),
    });
    if let Some(context) = model.context {
        entry["context_window"] = json!(context);
    }
    if model.kind == ModelKind::Chat {
        entry["capabilities"] = json!(model.capabilities);
    }
    if let Some(known) = state.catalog.get(model.platform, &model.model) {
        if let Some(max_output) = known.max_output {
            entry["max_output"] = json!(max_output);
        }
        if let Some(dimensions) = known.dimensions {
            entry["dimensions"] = json!(dimensions);
        }
    }
    entry
}
