//! The OpenAI Responses front door: `POST /v1/responses` parses its wire shape (with the stored conversation a
//! `previous_response_id` names) into the gateway's chat request and runs the one pipeline with a Responses
//! [`render`]; `GET` and `DELETE /v1/responses/{id}` read and remove kept responses. It must not hold routing,
//! failover or storage logic: those are the pipeline's and `ResponseStore`'s.

mod render;

use actix_web::{web, HttpResponse};
use serde_json::{json, Value};

use super::body::ApiBody;
use super::pipeline::{Inbound, Pipeline};
use super::AppState;
use crate::crypto::random_hex;
use crate::error::ApiError;
use crate::response_store::{Conversation, ResponseStore};
use crate::responses::answer::{Assembler, Head};
use crate::responses::request::{ResponsesRequest, Translated};
use crate::responses::Refusal;
use crate::store::StoreError;
use crate::timefmt::now_unix_secs;
use render::{Keep, ResponsesRender};

/// Handles one `POST /v1/responses`.
pub async fn create(
    pipeline: Pipeline,
    state: web::Data<AppState>,
    ApiBody(body): ApiBody,
) -> Result<HttpResponse, ApiError> {
    let request = ResponsesRequest::parse(&body).map_err(refused)?;
    let pipeline = pipeline.keyed(&body);
    drop(body);
    let earlier = match request.previous_response_id.as_deref() {
        Some(id) => conversation(&state.responses, id).await?,
        None => Vec::new(),
    };
    let Translated { chat, names } = request.to_chat(&earlier).map_err(refused)?;
    // The prompt is what goes upstream, earlier turns included: estimate from that, not from the body.
    let sent = serde_json::to_vec(&chat).map_err(ApiError::internal)?;
    let head = Head {
        id: format!("resp_{}", random_hex(24)),
        created_at: now_unix_secs(),
        model: chat.model.clone(),
        echo: request.echo(),
    };
    let keep = if request.stores() {
        Some(Keep {
            store: state.responses.clone(),
            previous: request.previous_response_id.clone(),
            input: serde_json::to_string(&request.items().map_err(refused)?)
                .map_err(ApiError::internal)?,
        })
    } else {
        None
    };
    let render = ResponsesRender::new(Assembler::new(head, names), keep);
    pipeline.serve(Inbound::new(chat, &sent), render).await
}

/// `GET /v1/responses/{id}`: a kept response as it was answered.
pub async fn retrieve(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    match state.responses.get(&id).await.map_err(store_failed)? {
        Some(kept) => Ok(HttpResponse::Ok()
            .content_type("application/json")
            .body(kept.response.clone())),
        None => Err(not_kept(&id)),
    }
}

/// `DELETE /v1/responses/{id}`: removes a kept response.
pub async fn delete(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    if !state.responses.forget(&id).await.map_err(store_failed)? {
        return Err(not_kept(&id));
    }
    Ok(HttpResponse::Ok().json(json!({"id": *id, "object": "response", "deleted": true})))
}

/// The items of the conversation the response `id` ends (each turn's input, then its output), oldest first.
async fn conversation(store: &ResponseStore, id: &str) -> Result<Vec<Value>, ApiError> {
    let turns = match store.conversation(id).await.map_err(store_failed)? {
        Conversation::Found(turns) => turns,
        Conversation::Unknown => {
            return Err(ApiError::unknown_id(
                "previous_response_not_found",
                format!(
                    "Previous response with id '{id}' not found. Responses made with store: false are not \
                     kept, and kept ones expire after LOG_RETENTION_DAYS."
                ),
            ))
        }
        Conversation::Broken(missing) => {
            return Err(ApiError::unknown_id(
                "previous_response_not_found",
                format!(
                    "Previous response '{id}' continues '{missing}', which is no longer kept (deleted, or \
                     older than LOG_RETENTION_DAYS); start a new conversation."
                ),
            ))
        }
    };
    let mut items = Vec::new();
    for turn in turns {
        let input: Vec<Value> = serde_json::from_str(&turn.input).map_err(ApiError::internal)?;
        let response: Value = serde_json::from_str(&turn.response).map_err(ApiError::internal)?;
        items.extend(input);
        if let Some(Value::Array(output)) = response.get("output") {
            items.extend(output.iter().cloned());
        }
    }
    Ok(items)
}

fn refused(refusal: Refusal) -> ApiError {
    ApiError::invalid_request(refusal.code, refusal.message)
}

fn not_kept(id: &str) -> ApiError {
    ApiError::unknown_id(
        "response_not_found",
        format!("Response with id '{id}' not found."),
    )
}

fn store_failed(e: StoreError) -> ApiError {
    ApiError::internal(e.to_string())
}
