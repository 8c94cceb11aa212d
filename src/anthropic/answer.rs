//! A whole OpenAI chat completion (the pipeline's answer) as an Anthropic message: reasoning as a `thinking`
//! block first, then the text, then one `tool_use` block per call, and the stop reason and usage. It reads only
//! the completion it is given and must never fail on what an upstream may leave out (an answer with no usage,
//! no id, or tool arguments that are not JSON).

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::wire::{fallback_call_id, message_id, Block, Message, StopReason, Usage};
use crate::openai::chat::Usage as ChatUsage;

#[derive(Deserialize)]
struct Completion {
    id: Option<String>,
    model: Option<String>,
    #[serde(default)]
    choices: Vec<Choice>,
    usage: Option<ChatUsage>,
}

#[derive(Deserialize)]
struct Choice {
    #[serde(default)]
    message: Turn,
    finish_reason: Option<String>,
}

#[derive(Default, Deserialize)]
struct Turn {
    content: Option<Value>,
    reasoning_content: Option<String>,
    tool_calls: Option<Vec<Call>>,
}

#[derive(Deserialize)]
struct Call {
    id: Option<String>,
    function: Option<Function>,
}

#[derive(Deserialize)]
struct Function {
    name: Option<String>,
    arguments: Option<Value>,
}

/// The text of an OpenAI message's content: a string, or the text of its parts.
fn text_of(content: Option<Value>) -> String {
    match content {
        Some(Value::String(text)) => text,
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect(),
        _ => String::new(),
    }
}

/// A tool call's input: its arguments as an object. Arguments that are not a JSON object (an upstream's slip)
/// become an empty input, so the client's own validation tells the model what is missing.
pub fn input_of(arguments: Option<Value>) -> Value {
    let parsed = match arguments {
        Some(Value::String(text)) => serde_json::from_str(&text).ok(),
        other => other,
    };
    match parsed {
        Some(Value::Object(input)) => Value::Object(input),
        _ => Value::Object(Map::new()),
    }
}

/// The Anthropic message of the OpenAI chat completion `completion`; `model` and `prompt_estimate` stand in
/// for a model or usage the completion does not name. The error says why the completion could not be read.
pub fn message(completion: &[u8], model: &str, prompt_estimate: u32) -> Result<Vec<u8>, String> {
    let completion: Completion = serde_json::from_slice(completion)
        .map_err(|e| format!("the upstream's answer could not be read: {e}"))?;
    let id = message_id(completion.id.as_deref());
    let choice = completion.choices.into_iter().next();
    let finish = choice.as_ref().and_then(|c| c.finish_reason.clone());
    let turn = choice.map(|c| c.message).unwrap_or_default();
    let mut content = Vec::new();
    if let Some(reasoning) = turn.reasoning_content.filter(|r| !r.is_empty()) {
        content.push(Block::thinking(reasoning));
    }
    let text = text_of(turn.content);
    if !text.is_empty() {
        content.push(Block::Text {
            text: Cow::Owned(text),
        });
    }
    let calls = turn.tool_calls.unwrap_or_default();
    let called = !calls.is_empty();
    for (index, call) in calls.into_iter().enumerate() {
        let function = call.function.unwrap_or(Function {
            name: None,
            arguments: None,
        });
        content.push(Block::ToolUse {
            id: Cow::Owned(call.id.unwrap_or_else(|| fallback_call_id(&id, index))),
            name: Cow::Owned(function.name.unwrap_or_default()),
            input: input_of(function.arguments),
        });
    }
    let usage = completion.usage.map_or(
        Usage {
            input_tokens: prompt_estimate,
            output_tokens: 0,
        },
        |u| Usage {
            input_tokens: u.prompt_tokens,
            output_tokens: u.completion_tokens,
        },
    );
    let message = Message::new(
        id,
        completion.model.unwrap_or_else(|| model.to_owned()),
        content,
        Some(StopReason::of(finish.as_deref(), called)),
        usage,
    );
    serde_json::to_vec(&message).map_err(|e| format!("the message could not be written: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn translated(completion: Value) -> Value {
        let bytes = message(completion.to_string().as_bytes(), "auto", 50).unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn a_text_answer_becomes_a_message() {
        let out = translated(
            json!({"id": "chatcmpl-abc", "object": "chat.completion", "model": "llama",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}}),
        );
        assert_eq!(
            out,
            json!({"id": "msg_abc", "type": "message", "role": "assistant", "model": "llama",
                "content": [{"type": "text", "text": "Hello"}], "stop_reason": "end_turn", "stop_sequence": null,
                "usage": {"input_tokens": 11, "output_tokens": 7}})
        );
    }

    #[test]
    fn reasoning_text_and_calls_become_blocks_in_order() {
        let out = translated(json!({"id": "x", "model": "m", "choices": [{"message": {
            "content": "Checking.", "reasoning_content": "Need the weather.",
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"type": "function", "function": {"name": "time", "arguments": "not json"}}
            ]}, "finish_reason": "tool_calls"}]}));
        assert_eq!(
            out["content"],
            json!([
                {"type": "thinking", "thinking": "Need the weather.", "signature": ""},
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "call_1", "name": "weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "toolu_x_1", "name": "time", "input": {}}
            ])
        );
        assert_eq!(out["stop_reason"], "tool_use");
        assert_eq!(
            out["usage"],
            json!({"input_tokens": 50, "output_tokens": 0}),
            "the estimate stands in for usage the upstream did not report"
        );
    }

    #[test]
    fn finish_reasons_map_and_odd_answers_do_not_fail() {
        let finish = |reason: &str| {
            translated(
                json!({"choices": [{"message": {"content": null}, "finish_reason": reason}]}),
            )
        };
        assert_eq!(finish("length")["stop_reason"], "max_tokens");
        assert_eq!(finish("content_filter")["stop_reason"], "refusal");
        let empty = finish("stop");
        assert_eq!(empty["content"], json!([]));
        assert_eq!(empty["model"], "auto");
        assert!(empty["id"].as_str().unwrap().starts_with("msg_"));
        let parts = translated(
            json!({"choices": [{"message": {"content": [{"type": "text", "text": "a"},
            {"type": "text", "text": "b"}]}}]}),
        );
        assert_eq!(parts["content"], json!([{"type": "text", "text": "ab"}]));
        assert!(message(b"not json", "auto", 1).is_err());
        assert_eq!(
            input_of(Some(json!({"a": 1}))),
            json!({"a": 1}),
            "arguments already an object are kept"
        );
        assert_eq!(input_of(Some(json!("[1]"))), json!({}));
    }
}
