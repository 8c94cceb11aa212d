//! Provider adapters: one trait, one implementation per wire format, and the registry that picks one per platform.
//!
//! Adapters only translate shapes and classify errors; routing, retries and budgets live elsewhere and know
//! nothing of any provider's JSON. Providers never touch the database.

pub mod classify;
pub mod cohere;
mod cohere_embed;
mod compat_answer;
pub mod connector;
pub mod framing;
pub mod gemini;
pub mod model_list;
pub mod openai_compat;
#[cfg(test)]
mod properties;
pub mod quota;
mod reasoning;

use std::collections::HashMap;
use std::sync::Arc;

use awc::http::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use awc::http::Method;
use bytes::Bytes;

use crate::config::Config;
pub use crate::failure::{Failure, FailureKind};
use crate::openai::chat::{ChatRequest, Usage};
use crate::openai::embeddings::{EmbeddingsRequest, Vectors, MAX_INPUTS};
use crate::openai::sse::SseEvent;
use crate::platform::Platform;
pub use crate::quota_news::QuotaNews;

/// Where one attempt goes: the key's base URL, the upstream model id and the key in plaintext (for this call only).
pub struct Target<'a> {
    /// Base URL without a trailing slash.
    pub base_url: &'a str,
    /// Model id as the platform names it.
    pub model: &'a str,
    /// The provider key; lives only as long as the call.
    pub secret: &'a str,
}

/// An HTTP request ready for the wire.
#[derive(Debug, Clone)]
pub struct UpstreamRequest {
    /// GET for probes, POST for chats.
    pub method: Method,
    /// Absolute URL.
    pub url: String,
    /// Headers, auth included (marked sensitive so it is never printed).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// JSON body (empty for GET).
    pub body: Bytes,
}

/// A header carrying a key, marked sensitive so it is never printed; `prefix` is e.g. `"Bearer "`.
pub fn secret_header(
    name: HeaderName,
    prefix: &str,
    secret: &str,
) -> Result<(HeaderName, HeaderValue), String> {
    let mut text = String::with_capacity(prefix.len() + secret.len());
    text.push_str(prefix);
    text.push_str(secret);
    let mut value = HeaderValue::try_from(text).map_err(|_| {
        "the stored key contains characters not allowed in an HTTP header".to_owned()
    })?;
    value.set_sensitive(true);
    Ok((name, value))
}

impl UpstreamRequest {
    /// A POST of `body` as JSON (adds `Content-Type`).
    pub fn post_json(
        url: String,
        mut headers: Vec<(HeaderName, HeaderValue)>,
        body: &impl serde::Serialize,
    ) -> Result<UpstreamRequest, String> {
        let body =
            serde_json::to_vec(body).map_err(|e| format!("cannot encode the request: {e}"))?;
        headers.push((CONTENT_TYPE, HeaderValue::from_static("application/json")));
        Ok(UpstreamRequest {
            method: Method::POST,
            url,
            headers,
            body: Bytes::from(body),
        })
    }

    /// A GET without a body (probes).
    pub fn get(url: String, headers: Vec<(HeaderName, HeaderValue)>) -> UpstreamRequest {
        UpstreamRequest {
            method: Method::GET,
            url,
            headers,
            body: Bytes::new(),
        }
    }

    /// The secrets this request carries (values of sensitive headers, without a `Bearer ` prefix), for redaction.
    pub fn secrets(&self) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(_, v)| v.is_sensitive())
            .filter_map(|(_, v)| v.to_str().ok())
            .map(|v| v.strip_prefix("Bearer ").unwrap_or(v).to_owned())
            .collect()
    }
}

/// How a platform treats a conversation whose last message is a partial assistant answer (a prefill), which is
/// how a broken stream is continued elsewhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prefill {
    /// It continues the trailing assistant message.
    Continues,
    /// It continues it when the message carries `"prefix": true` (Mistral).
    Flagged,
    /// Not known to continue one: never asked to.
    Unknown,
}

/// What a stream decoder says after each upstream event.
#[derive(Debug, PartialEq, Eq)]
pub enum Flow {
    /// Keep reading.
    Continue,
    /// The upstream said the answer is complete.
    Done,
}

/// Turns one upstream SSE stream into OpenAI chunk payloads; one per stream, so it may keep state.
pub trait StreamDecoder: Send {
    /// Handles one event, appending zero or more OpenAI chunk JSON payloads to `out`.
    fn event(&mut self, event: SseEvent, out: &mut Vec<Bytes>) -> Result<Flow, Failure>;
    /// Called when the connection ends without a completion signal; decides whether the answer was complete.
    fn finish(&mut self, out: &mut Vec<Bytes>) -> Result<(), Failure>;
    /// Usage reported so far.
    fn usage(&self) -> Option<Usage>;
}

/// One wire format.
pub trait Provider: Send + Sync {
    /// Builds the chat request of one attempt.
    fn chat_request(
        &self,
        target: &Target<'_>,
        request: &ChatRequest,
    ) -> Result<UpstreamRequest, String>;
    /// Builds the cheapest request that proves a key works.
    fn probe_request(&self, target: &Target<'_>) -> UpstreamRequest;
    /// Turns a successful non-streamed answer into an OpenAI response body and its usage; `model` is the model
    /// asked for, used where the upstream does not name one.
    fn decode_body(&self, model: &str, body: Bytes) -> Result<(Bytes, Option<Usage>), Failure>;
    /// A decoder for one streamed answer; `client_wants_usage` says whether a usage-only chunk may be relayed.
    fn stream_decoder(&self, model: &str, client_wants_usage: bool) -> Box<dyn StreamDecoder>;
    /// Classifies an error answer.
    fn classify(&self, status: u16, headers: &HeaderMap, body: &[u8]) -> Failure;
    /// What an answer says about the key's quota: rate-limit headers on any answer, and for a refusal the window
    /// and limit it names. `body` is empty for successful answers (their headers are read before the body).
    fn quota_news(&self, _status: u16, _headers: &HeaderMap, _body: &[u8]) -> QuotaNews {
        QuotaNews::default()
    }
    /// Whether and how the platform continues a partial assistant answer.
    fn prefill(&self) -> Prefill {
        Prefill::Unknown
    }
    /// Looks inside a successful probe answer for an error some platforms send with HTTP 200.
    fn check_probe(&self, _body: &[u8]) -> Result<(), Failure> {
        Ok(())
    }
    /// Most texts one embeddings call may carry; larger requests are sent in batches of this size.
    fn max_embedding_inputs(&self) -> usize {
        MAX_INPUTS
    }
    /// Builds the embeddings request of one batch (upstreams are always asked for float vectors).
    fn embeddings_request(
        &self,
        _target: &Target<'_>,
        _request: &EmbeddingsRequest,
    ) -> Result<UpstreamRequest, String> {
        Err("the gateway does not ask this platform for embeddings".to_owned())
    }
    /// Reads a successful embeddings answer: OpenAI's list shape unless the platform has its own.
    fn decode_embeddings(&self, body: &[u8]) -> Result<Vectors, Failure> {
        Vectors::from_openai(body).map_err(|e| Failure::transport(FailureKind::Undecodable, e))
    }
}

/// The adapter and base URL for each platform.
pub struct Registry {
    adapters: HashMap<Platform, Arc<dyn Provider>>,
    base_urls: HashMap<Platform, String>,
}

impl Registry {
    /// Builds the adapters for every supported platform, honouring base-URL overrides.
    pub fn new(config: &Config) -> Registry {
        let mut adapters: HashMap<Platform, Arc<dyn Provider>> = HashMap::new();
        let mut base_urls = HashMap::new();
        for platform in Platform::ALL {
            if platform == Platform::Google {
                adapters.insert(platform, Arc::new(gemini::Gemini::default()));
            } else if platform == Platform::Cohere {
                adapters.insert(platform, Arc::new(cohere::Cohere));
            } else if let Some(adapter) = openai_compat::OpenAiCompat::for_platform(platform) {
                adapters.insert(platform, Arc::new(adapter));
            }
            if let Some(url) = config.base_url(platform) {
                base_urls.insert(platform, url.to_owned());
            }
        }
        Registry {
            adapters,
            base_urls,
        }
    }

    /// The adapter for a platform, if the gateway can talk to it.
    pub fn adapter(&self, platform: Platform) -> Option<&Arc<dyn Provider>> {
        self.adapters.get(&platform)
    }

    /// The configured base URL of a platform (`None` for custom: keys carry theirs).
    pub fn base_url(&self, platform: Platform) -> Option<&str> {
        self.base_urls.get(&platform).map(String::as_str)
    }

    /// Whether the gateway has an adapter for this platform.
    pub fn supports(&self, platform: Platform) -> bool {
        self.adapters.contains_key(&platform)
    }
}
