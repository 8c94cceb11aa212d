//! `GET /v1/models`: `auto` plus every model that has at least one usable key, in OpenAI's list shape.

use actix_web::{web, HttpResponse};
use serde_json::json;

use super::AppState;
use crate::actors::router::ListModels;
use crate::error::ApiError;

/// Lists servable models.
pub async fn list_models(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let models = state
        .router
        .send(ListModels)
        .await
        .map_err(|e| ApiError::internal(format!("router unavailable: {e}")))?;
    let created = state.started_unix_secs;
    let mut data = vec![
        json!({"id": "auto", "object": "model", "created": created, "owned_by": "freellmapi"}),
    ];
    data.extend(
        models
            .iter()
            .map(|(model, platform)| json!({"id": &**model, "object": "model", "created": created, "owned_by": platform.id()})),
    );
    Ok(HttpResponse::Ok().json(json!({"object": "list", "data": data})))
}
