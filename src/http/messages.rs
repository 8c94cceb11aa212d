//! `POST /v1/messages` and `POST /v1/messages/count_tokens`, the Anthropic front door (Claude Code, Anthropic's
//! SDKs): the body is translated into the gateway's request by `crate::anthropic`, the pipeline runs it, and its
//! answer is rendered as an Anthropic message or event stream. Errors, here and before the handler, take
//! Anthropic's shape in the request guard (`error_shape.rs`). It must not hold routing or failover logic (the
//! pipeline's) nor translation logic (`crate::anthropic`'s).

use std::sync::Arc;

use actix_web::HttpResponse;
use bytes::Bytes;
use serde_json::json;

use super::body::ApiBody;
use super::pipeline::{Inbound, Pipeline, Render, Work};
use crate::anthropic::answer;
use crate::anthropic::request::MessagesRequest;
use crate::anthropic::stream::{Events, PING};
use crate::error::ApiError;
use crate::openai::chat::{ChatRequest, Usage};
use crate::routing::estimate;

fn parse(body: &[u8]) -> Result<MessagesRequest, ApiError> {
    MessagesRequest::parse(body).map_err(|m| ApiError::invalid_request("invalid_request", m))
}

/// Handles one Anthropic message request.
pub async fn messages(
    pipeline: Pipeline,
    ApiBody(body): ApiBody,
) -> Result<HttpResponse, ApiError> {
    let request = parse(&body)?
        .into_chat()
        .map_err(|m| ApiError::invalid_request("invalid_request", m))?;
    let prompt_estimate = estimate::prompt_tokens(&body);
    let pipeline = pipeline.keyed(&body);
    drop(body);
    let render = AnthropicMessages::new(&request, prompt_estimate);
    let inbound = Inbound {
        or_auto: request.model.starts_with("claude-"),
        work: Work::Chat(Arc::new(request)),
        prompt_estimate,
    };
    pipeline.serve(inbound, render).await
}

/// Answers the gateway's estimate of a request's prompt tokens, without calling any upstream.
pub async fn count_tokens(ApiBody(body): ApiBody) -> Result<HttpResponse, ApiError> {
    parse(&body)?;
    Ok(HttpResponse::Ok().json(json!({"input_tokens": estimate::prompt_tokens(&body)})))
}

/// Answers as Anthropic shows them: a message, or its event stream.
struct AnthropicMessages {
    /// The model named where the upstream names none.
    model: String,
    /// The prompt's estimated tokens, for usage the upstream does not report.
    prompt_estimate: u32,
    events: Events,
}

impl AnthropicMessages {
    fn new(request: &ChatRequest, prompt_estimate: u32) -> AnthropicMessages {
        AnthropicMessages {
            model: request.model.clone(),
            prompt_estimate,
            events: Events::new(&request.model, prompt_estimate),
        }
    }
}

impl Render for AnthropicMessages {
    fn whole(&mut self, completion: Bytes) -> Result<Bytes, ApiError> {
        answer::message(&completion, &self.model, self.prompt_estimate)
            .map(Bytes::from)
            .map_err(ApiError::upstream)
    }

    fn chunk(&mut self, payload: &[u8]) -> Option<Bytes> {
        self.events.chunk(payload).map(Bytes::from)
    }

    fn keep_alive(&mut self) -> Bytes {
        Bytes::from_static(PING)
    }

    fn done(&mut self, usage: Usage) -> Bytes {
        Bytes::from(self.events.done(usage))
    }

    fn failed(&mut self, error: &ApiError) -> Bytes {
        Bytes::from(self.events.failed(error.status.as_u16(), &error.message))
    }
}
