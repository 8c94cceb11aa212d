//! What the request log keeps of one client request and its upstream attempts, as the front doors report it.
//! Below both the log writer (`analytics`) and the counters (`metrics`) that read it; types only.

use std::sync::Arc;

use crate::provider_key::KeyId;
use serde::Serialize;

/// One upstream attempt of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttemptRecord {
    /// Platform tried (its id).
    pub platform: &'static str,
    /// Model tried (the route table's own name, shared, not copied).
    pub model: Arc<str>,
    /// Key used.
    pub key_id: KeyId,
    /// `ok`, `resumed` or the failure's label.
    pub outcome: &'static str,
    /// Upstream status, if it answered.
    pub status: Option<u16>,
    /// Time the attempt took.
    pub latency_ms: u32,
    /// The provider's reason, on failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// For the attempt that continued a broken stream: how many characters of the answer came before it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resumed_after: Option<u32>,
}

/// One client request, as the chat handler reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestRecord {
    /// Arrival (Unix ms).
    pub ts_ms: i64,
    /// Model asked for.
    pub requested_model: String,
    /// Serving platform (its id).
    pub platform: Option<&'static str>,
    /// Serving model (the route table's own name, shared, not copied).
    pub model: Option<Arc<str>>,
    /// Client-visible status (499: client went away).
    pub status: u16,
    /// Time until the answer ended.
    pub latency_ms: u32,
    /// Prompt tokens.
    pub prompt_tokens: u32,
    /// Completion tokens.
    pub completion_tokens: u32,
    /// Upstream attempts.
    pub attempts: u32,
    /// Whether it streamed.
    pub stream: bool,
    /// What went wrong.
    pub error: Option<String>,
    /// Every attempt.
    pub attempt_log: Vec<AttemptRecord>,
    /// The client key's name, when a client key made the request.
    pub client: Option<String>,
    /// Whether the response cache answered it (no upstream was asked, no quota spent).
    pub cached: bool,
}
