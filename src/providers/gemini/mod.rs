//! Google Gemini, natively: OpenAI chat requests become `generateContent` / `streamGenerateContent?alt=sse`
//! calls and Gemini's answers, stream events and errors become OpenAI shapes.
//!
//! Translation is pure (functions of JSON values) except for one bounded cache: the thought signatures Gemini
//! attaches to function calls, which OpenAI clients drop and Gemini 3 requires back on the next turn.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use awc::http::header::{HeaderMap, HeaderName};
use bytes::Bytes;
use serde_json::{json, Map, Value};

use self::calls::{Call, CallPart, Calls};
use super::classify::{error_message, parse_go_duration, retry_after};
use super::{secret_header, Flow, Prefill, Provider, StreamDecoder, Target, UpstreamRequest};
use crate::catalog::Window;
use crate::day_window::DayWindow;
use crate::failure::{Failure, FailureKind};
use crate::openai::answer::{
    AssistantMessage, ChatChunk, ChatCompletion, Delta, FinishReason, Role, StreamIds, ToolCall,
    ToolCallDelta, ToolCalls,
};
use crate::openai::chat::{ChatRequest, Message, Usage};
use crate::openai::embeddings::{EmbeddingsRequest, Vectors};
use crate::openai::sse::SseEvent;
use crate::quota_news::{QuotaNews, WindowReport};
use crate::timefmt::now_unix_secs;

mod answer;
mod calls;
mod embed;
mod errors;
mod request;
mod stream;
#[cfg(test)]
mod tests;

use self::answer::*;
use self::errors::*;
use self::request::*;
use self::stream::*;

/// The header Gemini reads the key from.
const GOOG_API_KEY: HeaderName = HeaderName::from_static("x-goog-api-key");
/// Sent in place of a thought signature we never saw, which Gemini documents as accepted.
const SIGNATURE_SENTINEL: &str = "skip_thought_signature_validator";
/// Thought signatures remembered for replays.
const SIGNATURE_CAPACITY: usize = 4096;

/// The Gemini adapter.
#[derive(Default)]
pub struct Gemini {
    signatures: SignatureCache,
}

/// Thought signatures by tool-call id, bounded, shared by the adapter and its streams.
#[derive(Clone, Default)]
struct SignatureCache(Arc<Mutex<Signatures>>);

#[derive(Default)]
struct Signatures {
    by_call: HashMap<String, String>,
    order: VecDeque<String>,
}

impl SignatureCache {
    fn remember(&self, calls: &[(String, String, String, Option<String>)]) {
        if calls.iter().all(|c| c.3.is_none()) {
            return;
        }
        let Ok(mut cache) = self.0.lock() else { return };
        for (id, _, _, signature) in calls {
            let Some(signature) = signature else { continue };
            if cache
                .by_call
                .insert(id.clone(), signature.clone())
                .is_none()
            {
                cache.order.push_back(id.clone());
            }
        }
        while cache.order.len() > SIGNATURE_CAPACITY {
            if let Some(old) = cache.order.pop_front() {
                cache.by_call.remove(&old);
            }
        }
    }

    fn get(&self, call_id: &str) -> Option<String> {
        self.0.lock().ok()?.by_call.get(call_id).cloned()
    }
}

impl Provider for Gemini {
    fn chat_request(
        &self,
        target: &Target<'_>,
        request: &ChatRequest,
    ) -> Result<UpstreamRequest, String> {
        let model = target.model.strip_prefix("models/").unwrap_or(target.model);
        let body = translate_request(request, model, |id| self.signatures.get(id))?;
        let url = if request.stream {
            format!(
                "{}/models/{model}:streamGenerateContent?alt=sse",
                target.base_url
            )
        } else {
            format!("{}/models/{model}:generateContent", target.base_url)
        };
        UpstreamRequest::post_json(
            url,
            vec![secret_header(GOOG_API_KEY, "", target.secret)?],
            &body,
        )
    }

    fn embeddings_request(
        &self,
        target: &Target<'_>,
        request: &EmbeddingsRequest,
    ) -> Result<UpstreamRequest, String> {
        let model = target.model.strip_prefix("models/").unwrap_or(target.model);
        let url = format!("{}/models/{model}:batchEmbedContents", target.base_url);
        UpstreamRequest::post_json(
            url,
            vec![secret_header(GOOG_API_KEY, "", target.secret)?],
            &embed::batch_body(model, request),
        )
    }

    fn decode_embeddings(&self, body: &[u8]) -> Result<Vectors, Failure> {
        embed::vectors(body)
    }

    fn max_embedding_inputs(&self) -> usize {
        embed::MAX_INPUTS
    }

    fn probe_request(&self, target: &Target<'_>) -> UpstreamRequest {
        let headers = secret_header(GOOG_API_KEY, "", target.secret)
            .into_iter()
            .collect();
        UpstreamRequest::get(format!("{}/models?pageSize=1", target.base_url), headers)
    }

    fn decode_body(&self, model: &str, body: Bytes) -> Result<(Bytes, Option<Usage>), Failure> {
        let response: Value = serde_json::from_slice(&body).map_err(|e| {
            Failure::transport(
                FailureKind::Undecodable,
                format!("Gemini answered with malformed JSON: {e}"),
            )
        })?;
        let answer = translate_response(&response, model)?;
        self.signatures.remember(&answer.calls);
        let out = serde_json::to_vec(&answer.body)
            .map_err(|e| Failure::transport(FailureKind::Undecodable, e.to_string()))?;
        Ok((Bytes::from(out), answer.usage))
    }

    fn stream_decoder(&self, model: &str, client_wants_usage: bool) -> Box<dyn StreamDecoder> {
        Box::new(GeminiStream::new(
            model,
            client_wants_usage,
            self.signatures.clone(),
        ))
    }

    fn prefill(&self) -> Prefill {
        // A trailing `model` turn in `contents` is continued, not answered anew.
        Prefill::Continues
    }

    fn classify(&self, status: u16, headers: &HeaderMap, body: &[u8]) -> Failure {
        classify_gemini(status, headers, body)
    }

    fn quota_news(&self, status: u16, _headers: &HeaderMap, body: &[u8]) -> QuotaNews {
        if status == 429 {
            quota_failure(body)
        } else {
            QuotaNews::default()
        }
    }
}
