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
    model: String,
    created: i64,
    started: bool,
    /// The answer's calls, assembled across events.
    calls: Calls,
    /// The last event that held calls (a hash of its bytes): an event Gemini repeats is taken once.
    last_call_event: Option<u64>,
    finish: Option<FinishReason>,
    usage: Option<Usage>,
}

impl GeminiStream {
    pub(super) fn new(model: &str, client_wants_usage: bool, signatures: SignatureCache) -> Self {
        GeminiStream {
            client_wants_usage,
            signatures,
            id: None,
            model: model.to_owned(),
            created: now_unix_secs(),
            started: false,
            calls: Calls::default(),
            last_call_event: None,
            finish: None,
            usage: None,
        }
    }

    /// What every chunk of this stream repeats.
    fn ids(&self) -> StreamIds<'_> {
        StreamIds {
            id: self.id.as_deref().unwrap_or("chatcmpl-gemini"),
            model: &self.model,
            created: self.created,
        }
    }
}

/// Complete calls as the entries of a chunk's `tool_calls`, the first at place `first` in the answer.
fn call_deltas(calls: &[Call], first: usize) -> Vec<ToolCallDelta<'_>> {
    calls
        .iter()
        .enumerate()
        .map(|(i, (id, name, arguments, _))| {
            ToolCallDelta::start(
                first + i,
                Some(id.as_str().into()),
                Some(name.as_str().into()),
                arguments.as_str(),
            )
        })
        .collect()
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
            self.model = model_of(&response, &self.model).to_owned();
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
        let fresh = self.calls.take(std::mem::take(&mut parts.calls));
        let mut delta = Delta {
            content: parts.text.map(Cow::Owned),
            reasoning_content: parts.reasoning.map(Cow::Owned),
            ..Delta::default()
        };
        if !self.started {
            delta.role = Some(Role::Assistant);
        }
        if !fresh.is_empty() {
            self.signatures.remember(&fresh);
            let first = self.calls.count() - fresh.len();
            delta.tool_calls = Some(call_deltas(&fresh, first));
        }
        if parts.finish.is_some() {
            self.finish = parts.finish;
        }
        if !self.started && delta.content.is_none() && delta.tool_calls.is_none() {
            delta.content = Some(Cow::Borrowed(""));
        }
        if !delta.is_empty() {
            self.started = true;
            out.push(Bytes::from(ChatChunk::delta(self.ids(), delta).to_vec()));
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
        let ids = self.ids();
        if !rest.is_empty() {
            self.signatures.remember(&rest);
            let first = self.calls.count() - rest.len();
            let delta = Delta::tool_calls(call_deltas(&rest, first));
            out.push(Bytes::from(ChatChunk::delta(ids, delta).to_vec()));
        }
        let finish = if self.calls.count() > 0 {
            FinishReason::ToolCalls
        } else {
            finish
        };
        out.push(Bytes::from(ChatChunk::finish(ids, finish).to_vec()));
        if self.client_wants_usage {
            let usage = self.usage.unwrap_or_default();
            out.push(Bytes::from(ChatChunk::usage(ids, usage).to_vec()));
        }
        Ok(())
    }

    fn usage(&self) -> Option<Usage> {
        self.usage
    }
}
