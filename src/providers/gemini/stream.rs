//! Gemini SSE streams as OpenAI chunks, one decoder per stream: text, thoughts and calls as they come, one finish
//! and the usage at the end. It only translates; the relay and failover are elsewhere.

use super::*;

pub(super) fn hash_of(bytes: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

/// Translates a Gemini SSE stream into OpenAI chunks.
pub(super) struct GeminiStream {
    client_wants_usage: bool,
    signatures: SignatureCache,
    id: Option<String>,
    model: Value,
    created: i64,
    started: bool,
    /// The answer's calls, assembled across events.
    calls: Calls,
    /// The last event that held calls (a hash of its bytes): an event Gemini repeats is taken once.
    last_call_event: Option<u64>,
    finish: Option<&'static str>,
    usage: Option<Usage>,
}

impl GeminiStream {
    pub(super) fn new(model: &str, client_wants_usage: bool, signatures: SignatureCache) -> Self {
        GeminiStream {
            client_wants_usage,
            signatures,
            id: None,
            model: json!(model),
            created: now_unix_secs(),
            started: false,
            calls: Calls::default(),
            last_call_event: None,
            finish: None,
            usage: None,
        }
    }

    fn chunk(&self, delta: Value, finish: Option<&str>) -> Bytes {
        let chunk = json!({
            "id": self.id.as_deref().unwrap_or("chatcmpl-gemini"),
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        });
        Bytes::from(chunk.to_string())
    }
}

impl StreamDecoder for GeminiStream {
    fn event(&mut self, event: SseEvent, out: &mut Vec<Bytes>) -> Result<Flow, Failure> {
        let response: Value = serde_json::from_slice(&event.data).map_err(|e| {
            Failure::transport(
                FailureKind::Undecodable,
                format!("Gemini sent a malformed stream event: {e}"),
            )
        })?;
        if response.get("error").is_some() {
            return Err(classify_gemini(200, &HeaderMap::new(), &event.data));
        }
        if self.id.is_none() {
            self.id = Some(response_id(&response));
            self.model = model_of(&response, self.model.as_str().unwrap_or_default());
        }
        if let Some(usage) = read_usage(&response) {
            self.usage = Some(usage);
        }
        let mut parts = read_candidate(&response)?;
        if !parts.calls.is_empty() {
            let repeat = Some(hash_of(&event.data));
            if self.last_call_event == repeat {
                return Ok(Flow::Continue);
            }
            self.last_call_event = repeat;
        }
        let mut delta = Map::new();
        if !self.started {
            delta.insert("role".into(), json!("assistant"));
        }
        if let Some(text) = parts.text {
            delta.insert("content".into(), json!(text));
        }
        if let Some(reasoning) = parts.reasoning {
            delta.insert("reasoning_content".into(), json!(reasoning));
        }
        let fresh = self.calls.take(std::mem::take(&mut parts.calls));
        if !fresh.is_empty() {
            self.signatures.remember(&fresh);
            let first = self.calls.count() - fresh.len();
            delta.insert("tool_calls".into(), tool_calls_json(&fresh, first));
        }
        if parts.finish.is_some() {
            self.finish = parts.finish;
        }
        if !self.started && !delta.contains_key("content") && !delta.contains_key("tool_calls") {
            delta.insert("content".into(), json!(""));
        }
        if !delta.is_empty() {
            self.started = true;
            out.push(self.chunk(Value::Object(delta), None));
        }
        Ok(Flow::Continue)
    }

    fn finish(&mut self, out: &mut Vec<Bytes>) -> Result<(), Failure> {
        let Some(finish) = self.finish else {
            return Err(Failure::transport(
                FailureKind::Transient,
                "Gemini closed the stream before the answer was complete",
            ));
        };
        let rest = self.calls.finish();
        if !rest.is_empty() {
            self.signatures.remember(&rest);
            let first = self.calls.count() - rest.len();
            out.push(self.chunk(json!({"tool_calls": tool_calls_json(&rest, first)}), None));
        }
        let finish = if self.calls.count() > 0 {
            "tool_calls"
        } else {
            finish
        };
        out.push(self.chunk(json!({}), Some(finish)));
        if self.client_wants_usage {
            let usage = json!({
                "id": self.id.as_deref().unwrap_or("chatcmpl-gemini"),
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "choices": [],
                "usage": self.usage.unwrap_or_default().to_json(),
            });
            out.push(Bytes::from(usage.to_string()));
        }
        Ok(())
    }

    fn usage(&self) -> Option<Usage> {
        self.usage
    }
}
