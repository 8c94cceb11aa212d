//! `POST /v1/embeddings`, the OpenAI embeddings front door: parses the request and runs the one pipeline for an
//! embedding model. The answer is already OpenAI's list shape (the provider adapters write it), so it is shown as
//! the chat door shows a whole answer. It must not hold routing or failover logic; that is the pipeline's.

use actix_web::HttpResponse;

use super::body::ApiBody;
use super::chat::OpenAiChat;
use super::pipeline::{Inbound, Pipeline};
use crate::error::ApiError;
use crate::openai::embeddings::EmbeddingsRequest;

/// Handles one embeddings request.
pub async fn embeddings(
    pipeline: Pipeline,
    ApiBody(body): ApiBody,
) -> Result<HttpResponse, ApiError> {
    let request = EmbeddingsRequest::parse(&body)
        .map_err(|m| ApiError::invalid_request("invalid_request", m))?;
    let inbound = Inbound::embeddings(request, &body);
    let pipeline = pipeline.keyed(&body);
    drop(body);
    pipeline.serve(inbound, OpenAiChat).await
}
