//! `POST /v1/chat/completions`, the OpenAI front door: the body is already the gateway's request, and the
//! pipeline's answer is already this door's shape, so the door parses, runs the pipeline, and frames chunks as
//! SSE. It must not hold routing or failover logic; that is the pipeline's.

use actix_web::HttpResponse;
use bytes::Bytes;

use super::body::ApiBody;
use super::pipeline::{Inbound, Pipeline, Render};
use crate::error::ApiError;
use crate::openai::chat::{ChatRequest, Usage};
use crate::openai::sse;

/// Handles one chat completion.
pub async fn chat_completions(
    pipeline: Pipeline,
    ApiBody(body): ApiBody,
) -> Result<HttpResponse, ApiError> {
    let request =
        ChatRequest::parse(&body).map_err(|m| ApiError::invalid_request("invalid_request", m))?;
    let inbound = Inbound::new(request, &body);
    let pipeline = pipeline.keyed(&body);
    drop(body);
    pipeline.serve(inbound, OpenAiChat).await
}

/// Answers as OpenAI shows them: the pipeline's own shape, chunks as `data:` events, `[DONE]` last. The
/// embeddings door shows its (never streamed) answers this way too.
pub(super) struct OpenAiChat;

impl Render for OpenAiChat {
    fn whole(&mut self, completion: Bytes) -> Result<Bytes, ApiError> {
        Ok(completion)
    }

    fn chunk(&mut self, payload: &[u8]) -> Option<Bytes> {
        Some(Bytes::from(sse::encode_data(payload)))
    }

    fn keep_alive(&mut self) -> Bytes {
        Bytes::from_static(sse::PING)
    }

    fn done(&mut self, _usage: Usage) -> Bytes {
        // The upstream's usage chunk, when the client asked for one, was relayed as a chunk.
        Bytes::from_static(sse::DONE)
    }

    fn failed(&mut self, error: &ApiError) -> Bytes {
        let mut out = sse::encode_data(error.body().to_string().as_bytes());
        out.extend_from_slice(sse::DONE);
        Bytes::from(out)
    }
}
