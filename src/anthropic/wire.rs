//! What a whole Anthropic message and its stream share: the message object, its content blocks, stop reasons,
//! usage and ids. Written only (the gateway never reads Anthropic answers), so the types serialise and borrow;
//! the one decision here is which stop reason an OpenAI finish reason stands for.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use serde_json::{Map, Value};

/// Why an answer ended, as Anthropic names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The model finished its turn.
    EndTurn,
    /// The output cap cut the answer.
    MaxTokens,
    /// The answer is tool calls for the client to run.
    ToolUse,
    /// A safety filter withheld or cut the answer.
    Refusal,
}

impl StopReason {
    /// The stop reason of an OpenAI `finish_reason`. An answer holding tool calls stops for `tool_use` whatever
    /// the upstream said (some say `stop`), unless it was cut or filtered; `tool_calls` without any call is a
    /// plain end of turn, since clients look for the calls a `tool_use` stop promises.
    pub fn of(finish: Option<&str>, called_tools: bool) -> StopReason {
        match finish {
            Some("length") => StopReason::MaxTokens,
            Some("content_filter") => StopReason::Refusal,
            _ if called_tools => StopReason::ToolUse,
            _ => StopReason::EndTurn,
        }
    }
}

/// Token counts as Anthropic reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// Tokens in the prompt.
    pub input_tokens: u32,
    /// Tokens generated.
    pub output_tokens: u32,
}

/// One content block of an answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Block<'a> {
    /// Text.
    Text {
        /// The text (empty when a stream opens the block).
        text: Cow<'a, str>,
    },
    /// The model's reasoning. Upstreams sign nothing the Anthropic way, so the signature is always empty.
    Thinking {
        /// The reasoning (empty when a stream opens the block).
        thinking: Cow<'a, str>,
        /// Always empty.
        signature: &'static str,
    },
    /// A tool call for the client to run.
    ToolUse {
        /// The call's id, which the client's `tool_result` refers to (the upstream's own call id).
        id: Cow<'a, str>,
        /// The tool's name.
        name: Cow<'a, str>,
        /// The arguments, an object (empty when a stream opens the block).
        input: Value,
    },
}

impl<'a> Block<'a> {
    /// A thinking block of `thinking`.
    pub fn thinking(thinking: impl Into<Cow<'a, str>>) -> Block<'a> {
        Block::Thinking {
            thinking: thinking.into(),
            signature: "",
        }
    }

    /// A tool call block whose input is still empty (a stream's opening of the call).
    pub fn tool_use(id: impl Into<Cow<'a, str>>, name: impl Into<Cow<'a, str>>) -> Block<'a> {
        Block::ToolUse {
            id: id.into(),
            name: name.into(),
            input: Value::Object(Map::new()),
        }
    }
}

/// An assistant message: a whole answer, or (with no content and no stop reason yet) a stream's opening.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message<'a> {
    /// `msg_...`.
    pub id: Cow<'a, str>,
    #[serde(rename = "type")]
    kind: &'static str,
    role: &'static str,
    /// The blocks, in order.
    pub content: Vec<Block<'a>>,
    /// The model that answered.
    pub model: Cow<'a, str>,
    /// Why it ended; null while a stream is open.
    pub stop_reason: Option<StopReason>,
    /// The stop sequence that ended it: upstreams do not say which one did, so always null.
    pub stop_sequence: Option<&'static str>,
    /// Token counts.
    pub usage: Usage,
}

impl<'a> Message<'a> {
    /// A message of `content` by `model`, ended for `stop_reason` (none yet for a stream's opening).
    pub fn new(
        id: impl Into<Cow<'a, str>>,
        model: impl Into<Cow<'a, str>>,
        content: Vec<Block<'a>>,
        stop_reason: Option<StopReason>,
        usage: Usage,
    ) -> Message<'a> {
        Message {
            id: id.into(),
            kind: "message",
            role: "assistant",
            content,
            model: model.into(),
            stop_reason,
            stop_sequence: None,
            usage,
        }
    }
}

/// The message id for an upstream answer id (`chatcmpl-abc` → `msg_abc`); a fresh one when the upstream gave
/// none that is usable.
pub fn message_id(upstream: Option<&str>) -> String {
    let kept: String = upstream
        .unwrap_or_default()
        .trim_start_matches("chatcmpl-")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .take(64)
        .collect();
    if kept.is_empty() {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        return format!("msg_{:x}{n:x}", crate::timefmt::now_unix_ms());
    }
    format!("msg_{kept}")
}

/// The id of the tool call at `index` of message `message_id` whose upstream gave it none.
pub fn fallback_call_id(message_id: &str, index: usize) -> String {
    format!("toolu_{}_{index}", message_id.trim_start_matches("msg_"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stop_reasons_follow_the_finish_and_the_calls() {
        let cases = [
            (Some("stop"), false, StopReason::EndTurn),
            (None, false, StopReason::EndTurn),
            (Some("length"), false, StopReason::MaxTokens),
            (Some("length"), true, StopReason::MaxTokens),
            (Some("tool_calls"), true, StopReason::ToolUse),
            (Some("stop"), true, StopReason::ToolUse),
            (Some("tool_calls"), false, StopReason::EndTurn),
            (Some("content_filter"), false, StopReason::Refusal),
        ];
        for (finish, called, expected) in cases {
            assert_eq!(
                StopReason::of(finish, called),
                expected,
                "{finish:?} {called}"
            );
        }
        assert_eq!(
            serde_json::to_value(StopReason::ToolUse).unwrap(),
            "tool_use"
        );
    }

    #[test]
    fn blocks_and_messages_have_anthropic_fields() {
        let message = Message::new(
            "msg_1",
            "m",
            vec![
                Block::thinking("hm"),
                Block::Text { text: "Hi".into() },
                Block::tool_use("call_1", "f"),
            ],
            Some(StopReason::ToolUse),
            Usage {
                input_tokens: 3,
                output_tokens: 2,
            },
        );
        assert_eq!(
            serde_json::to_value(&message).unwrap(),
            json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "m",
                "content": [{"type": "thinking", "thinking": "hm", "signature": ""},
                    {"type": "text", "text": "Hi"},
                    {"type": "tool_use", "id": "call_1", "name": "f", "input": {}}],
                "stop_reason": "tool_use", "stop_sequence": null,
                "usage": {"input_tokens": 3, "output_tokens": 2}})
        );
    }

    #[test]
    fn ids_come_from_the_upstream_or_are_made() {
        assert_eq!(message_id(Some("chatcmpl-abc123")), "msg_abc123");
        assert_eq!(message_id(Some("resp 1/2")), "msg_resp12");
        let made = [message_id(None), message_id(Some("///"))];
        assert!(made.iter().all(|id| id.starts_with("msg_") && id.len() > 4));
        assert_ne!(made[0], made[1]);
        assert_eq!(fallback_call_id("msg_abc", 2), "toolu_abc_2");
    }
}
