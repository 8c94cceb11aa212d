//! Between the two shapes of one chat answer: a stream's chunk payloads gathered into the whole completion they
//! make, and a whole completion played back as the chunks of a stream. The response cache keeps one shape and
//! answers in either. Pure JSON work; it never sees the network, and a stream that did not finish gathers nothing.

use serde_json::{json, Map, Value};

use super::chat::Usage;
use super::chunk::{Chunk, Delta, Piece};

/// A call gathered from its pieces.
#[derive(Debug, Default, Clone)]
struct Call {
    id: String,
    name: String,
    arguments: String,
}

/// A stream's chunks, gathered as they pass.
#[derive(Debug, Default, Clone)]
pub struct Gathered {
    id: Option<String>,
    model: Option<String>,
    created: Option<Value>,
    content: String,
    reasoning: String,
    calls: Vec<Call>,
    finish_reason: Option<String>,
    usage: Option<Value>,
    unreadable: bool,
}

impl Gathered {
    /// Takes in one chunk payload.
    pub fn add(&mut self, payload: &[u8]) {
        let Ok(chunk) = serde_json::from_slice::<Chunk<'_>>(payload) else {
            self.unreadable = true;
            return;
        };
        let text = |piece: Option<Piece<'_>>| piece.map(|p| p.0.into_owned());
        if self.id.is_none() {
            self.id = text(chunk.id);
        }
        if self.model.is_none() {
            self.model = text(chunk.model);
        }
        if self.created.is_none() {
            self.created = chunk.created;
        }
        if let Some(usage) = chunk.usage.filter(Value::is_object) {
            self.usage = Some(usage);
        }
        let Some(choice) = chunk.choices.into_iter().next() else {
            return;
        };
        if let Some(delta) = choice.delta {
            self.add_delta(delta);
        }
        if let Some(finish) = choice.finish_reason {
            self.finish_reason = Some(finish.0.into_owned());
        }
    }

    fn add_delta(&mut self, delta: Delta<'_>) {
        if let Some(text) = delta.content {
            self.content.push_str(&text.0);
        }
        if let Some(text) = delta.reasoning_content {
            self.reasoning.push_str(&text.0);
        }
        for piece in delta.tool_calls.unwrap_or_default() {
            let index = piece.index.unwrap_or(self.calls.len());
            if self.calls.len() <= index {
                self.calls.resize(index + 1, Call::default());
            }
            let call = &mut self.calls[index];
            if let Some(id) = piece.id {
                call.id = id.0.into_owned();
            }
            if let Some(function) = piece.function {
                if let Some(name) = function.name {
                    call.name.push_str(&name.0);
                }
                if let Some(arguments) = function.arguments {
                    call.arguments.push_str(&arguments.0);
                }
            }
        }
    }

    /// The whole completion the chunks made, with `usage` where no chunk reported any; `None` when the stream
    /// never finished or a chunk was unreadable.
    pub fn completion(&self, usage: Usage) -> Option<Vec<u8>> {
        let finish_reason = self.finish_reason.clone().filter(|_| !self.unreadable)?;
        let mut message = Map::new();
        message.insert("role".into(), json!("assistant"));
        let content = if !self.content.is_empty() || self.calls.is_empty() {
            json!(self.content)
        } else {
            Value::Null
        };
        message.insert("content".into(), content);
        if !self.reasoning.is_empty() {
            message.insert("reasoning_content".into(), json!(self.reasoning));
        }
        if !self.calls.is_empty() {
            let calls: Vec<Value> = self
                .calls
                .iter()
                .map(|c| json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}))
                .collect();
            message.insert("tool_calls".into(), json!(calls));
        }
        let mut completion = json!({
            "id": self.id.as_deref().unwrap_or("chatcmpl-cached"),
            "object": "chat.completion",
            "created": self.created.clone().unwrap_or(json!(0)),
            "model": self.model.as_deref().unwrap_or(""),
            "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
        });
        completion["usage"] = self.usage.clone().unwrap_or_else(|| {
            json!({"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens,
                "total_tokens": usage.total()})
        });
        Some(completion.to_string().into_bytes())
    }
}

/// The chunk payloads that stream `completion`, as an upstream would have sent them: the opening, reasoning,
/// text, tool calls, the finish, and (when `with_usage`) a usage-only chunk. `None` when it is not a completion.
pub fn chunks_of(completion: &[u8], with_usage: bool) -> Option<Vec<Vec<u8>>> {
    let whole: Value = serde_json::from_slice(completion).ok()?;
    let choice = whole["choices"].get(0)?;
    let message = &choice["message"];
    let base = |choices: Value| {
        json!({"id": whole["id"], "object": "chat.completion.chunk", "created": whole["created"],
            "model": whole["model"], "choices": choices})
    };
    let delta = |delta: Value| base(json!([{"index": 0, "delta": delta, "finish_reason": null}]));
    let mut chunks = vec![delta(json!({"role": "assistant", "content": ""}))];
    if let Some(reasoning) = message["reasoning_content"].as_str() {
        chunks.push(delta(json!({"reasoning_content": reasoning})));
    }
    if let Some(text) = message["content"].as_str().filter(|t| !t.is_empty()) {
        chunks.push(delta(json!({"content": text})));
    }
    if let Some(calls) = message["tool_calls"].as_array() {
        let pieces: Vec<Value> = calls
            .iter()
            .enumerate()
            .map(|(index, call)| {
                json!({"index": index, "id": call["id"], "type": "function", "function": call["function"]})
            })
            .collect();
        chunks.push(delta(json!({ "tool_calls": pieces })));
    }
    chunks.push(base(
        json!([{"index": 0, "delta": {}, "finish_reason": choice["finish_reason"]}]),
    ));
    if with_usage && whole["usage"].is_object() {
        let mut usage = base(json!([]));
        usage["usage"] = whole["usage"].clone();
        chunks.push(usage);
    }
    Some(
        chunks
            .into_iter()
            .map(|c| c.to_string().into_bytes())
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gather(chunks: &[Vec<u8>]) -> Value {
        let mut gathered = Gathered::default();
        for chunk in chunks {
            gathered.add(chunk);
        }
        serde_json::from_slice(&gathered.completion(Usage::default()).unwrap()).unwrap()
    }

    #[test]
    fn a_completion_streams_and_gathers_back_to_itself() {
        let completion = json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 7, "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello there",
                "reasoning_content": "greet"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}});
        let chunks = chunks_of(completion.to_string().as_bytes(), true).unwrap();
        assert_eq!(chunks.len(), 5, "opening, reasoning, text, finish, usage");
        assert_eq!(gather(&chunks), completion);
        let without_usage = chunks_of(completion.to_string().as_bytes(), false).unwrap();
        assert_eq!(without_usage.len(), 4);
    }

    #[test]
    fn tool_calls_gather_from_their_pieces_in_index_order() {
        let pieces = [
            json!({"id": "c", "created": 1, "model": "m", "choices": [{"index": 0, "delta": {"role": "assistant", "content": null}, "finish_reason": null}]}),
            json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "call_a", "type": "function", "function": {"name": "get", "arguments": "{\"q\":"}}]}, "finish_reason": null}]}),
            json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 1, "id": "call_b", "function": {"name": "put", "arguments": "{}"}}]}, "finish_reason": null}]}),
            json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}, "finish_reason": null}]}),
            json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}),
        ];
        let chunks: Vec<Vec<u8>> = pieces.iter().map(|p| p.to_string().into_bytes()).collect();
        let whole = gather(&chunks);
        let message = &whole["choices"][0]["message"];
        assert_eq!(message["content"], Value::Null);
        assert_eq!(
            message["tool_calls"][0]["function"]["arguments"],
            "{\"q\":1}"
        );
        assert_eq!(message["tool_calls"][1]["id"], "call_b");
        assert_eq!(whole["choices"][0]["finish_reason"], "tool_calls");
        let replayed = chunks_of(&whole.to_string().into_bytes(), false).unwrap();
        assert_eq!(gather(&replayed), whole);
    }

    #[test]
    fn an_unfinished_or_unreadable_stream_gathers_nothing() {
        let mut unfinished = Gathered::default();
        unfinished
            .add(br#"{"choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}]}"#);
        assert!(unfinished.completion(Usage::default()).is_none());
        let mut garbled = Gathered::default();
        garbled.add(b"{not json");
        garbled.add(br#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#);
        assert!(garbled.completion(Usage::default()).is_none());
    }
}
