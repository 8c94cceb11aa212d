//! The messages of a `/v1/messages` request and their translation into OpenAI chat messages: text and image
//! blocks become content parts, an assistant's `tool_use` blocks its `tool_calls`, a user's `tool_result` blocks
//! `tool` messages (before the rest of that user turn, in order), and a `system` message joins the system
//! prompt. Thinking and block types it does not know are dropped, never an error. It must not look at anything
//! but the messages (tools, sampling and the model are `request.rs`'s).

use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::openai::chat::Message;

/// One message as a client sends it.
#[derive(Debug, Clone, Deserialize)]
pub struct InMessage {
    /// `user` or `assistant` (or `system`, which joins the system prompt).
    pub role: String,
    /// A string, or content blocks.
    pub content: Content,
}

/// A message's content (also the system prompt's, and a tool result's): a string or blocks.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Content {
    /// Plain text.
    Text(String),
    /// Content blocks.
    Blocks(Vec<Block>),
}

/// One content block; types the gateway does not use (`thinking`, `redacted_thinking`, `document`, server tool
/// blocks, ...) are read as [`Block::Other`] and dropped.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Block {
    /// Text.
    Text {
        /// The text.
        text: String,
    },
    /// An image, inline or by URL.
    Image {
        /// Where the image is.
        source: ImageSource,
    },
    /// A tool call the assistant made.
    ToolUse {
        /// The call's id.
        id: String,
        /// The tool's name.
        name: String,
        /// The arguments.
        #[serde(default)]
        input: Value,
    },
    /// The result of a tool call, sent by the user.
    ToolResult {
        /// The call it answers.
        tool_use_id: String,
        /// The result: a string, or text and image blocks.
        content: Option<Content>,
        /// Whether the tool failed.
        is_error: Option<bool>,
    },
    /// Any other block type.
    #[serde(other)]
    Other,
}

/// Where an image block's bytes are.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ImageSource {
    /// Inline, base64-encoded.
    Base64 {
        /// `image/png`, `image/jpeg`, ...
        media_type: String,
        /// The encoded bytes.
        data: String,
    },
    /// At a URL the upstream fetches.
    Url {
        /// The URL.
        url: String,
    },
    /// A source no upstream can read (an uploaded file id): the image is dropped.
    #[serde(other)]
    Other,
}

impl ImageSource {
    /// The OpenAI `image_url` part of this image, if an upstream can read it.
    fn part(self) -> Option<Value> {
        let url = match self {
            ImageSource::Base64 { media_type, data } => format!("data:{media_type};base64,{data}"),
            ImageSource::Url { url } => url,
            ImageSource::Other => return None,
        };
        Some(json!({"type": "image_url", "image_url": {"url": url}}))
    }
}

/// Joins text to `out`, a blank line between pieces.
fn join(out: &mut String, text: &str) {
    if text.is_empty() {
        return;
    }
    if !out.is_empty() {
        out.push_str("\n\n");
    }
    out.push_str(text);
}

impl Content {
    /// Appends this content's text (string, or its text blocks) to `out`, a blank line between pieces.
    pub fn append_text(&self, out: &mut String) {
        match self {
            Content::Text(text) => join(out, text),
            Content::Blocks(blocks) => {
                for block in blocks {
                    if let Block::Text { text } = block {
                        join(out, text);
                    }
                }
            }
        }
    }

    fn into_blocks(self) -> Vec<Block> {
        match self {
            Content::Text(text) => vec![Block::Text { text }],
            Content::Blocks(blocks) => blocks,
        }
    }
}

/// Translates `messages` into OpenAI messages; `system` messages among them are appended to `system`.
pub fn translate(messages: Vec<InMessage>, system: &mut String) -> Result<Vec<Message>, String> {
    let mut out = Vec::with_capacity(messages.len());
    for (i, message) in messages.into_iter().enumerate() {
        match message.role.as_str() {
            "system" => message.content.append_text(system),
            "user" => user_turn(message.content, &mut out),
            "assistant" => out.extend(assistant_turn(message.content)),
            other => {
                return Err(format!(
                    "messages[{i}].role '{other}' is not one of user, assistant"
                ))
            }
        }
    }
    Ok(out)
}

fn message(role: &str, content: Value, extra: Map<String, Value>) -> Message {
    Message {
        role: role.to_owned(),
        content,
        extra,
    }
}

/// A user turn: its tool results first, as `tool` messages in order, then the rest as one user message (the
/// tool results' images lead it, since OpenAI's tool messages carry only text).
fn user_turn(content: Content, out: &mut Vec<Message>) {
    let mut parts = Vec::new();
    let mut result_images = Vec::new();
    for block in content.into_blocks() {
        match block {
            Block::Text { text } => parts.push(json!({"type": "text", "text": text})),
            Block::Image { source } => parts.extend(source.part()),
            Block::ToolResult {
                tool_use_id,
                content,
                is_error,
            } => {
                let text = tool_result(content, is_error.unwrap_or(false), &mut result_images);
                let mut extra = Map::new();
                extra.insert("tool_call_id".into(), Value::String(tool_use_id));
                out.push(message("tool", Value::String(text), extra));
            }
            Block::ToolUse { .. } | Block::Other => {}
        }
    }
    result_images.append(&mut parts);
    if let Some(content) = user_content(result_images) {
        out.push(message("user", content, Map::new()));
    }
}

/// A user message's content: one string when it is all text (what every upstream reads), parts otherwise.
fn user_content(parts: Vec<Value>) -> Option<Value> {
    if parts.is_empty() {
        return None;
    }
    if parts.iter().any(|p| p["type"] != "text") {
        return Some(Value::Array(parts));
    }
    let mut text = String::new();
    for part in &parts {
        join(&mut text, part["text"].as_str().unwrap_or_default());
    }
    Some(Value::String(text))
}

/// A tool result's text; its images are added to `images`. A failed tool's result says so.
fn tool_result(content: Option<Content>, is_error: bool, images: &mut Vec<Value>) -> String {
    let mut text = String::new();
    let mut had_images = false;
    for block in content.map(Content::into_blocks).unwrap_or_default() {
        match block {
            Block::Text { text: piece } => join(&mut text, &piece),
            Block::Image { source } => {
                had_images |= source.part().map(|p| images.push(p)).is_some();
            }
            _ => {}
        }
    }
    if text.is_empty() && had_images {
        text.push_str("(the result is the image in the next message)");
    }
    if is_error {
        text.insert_str(0, "Error: ");
    }
    text
}

/// An assistant turn: its text as content, its tool uses as `tool_calls`; thinking is dropped. A turn left
/// with neither is no message at all.
fn assistant_turn(content: Content) -> Option<Message> {
    let mut text = String::new();
    let mut calls = Vec::new();
    for block in content.into_blocks() {
        match block {
            Block::Text { text: piece } => join(&mut text, &piece),
            Block::ToolUse { id, name, input } => {
                let arguments = match input {
                    Value::Null => "{}".to_owned(),
                    input => input.to_string(),
                };
                calls.push(json!({"id": id, "type": "function",
                    "function": {"name": name, "arguments": arguments}}));
            }
            _ => {}
        }
    }
    if text.is_empty() && calls.is_empty() {
        return None;
    }
    let mut extra = Map::new();
    let content = if text.is_empty() {
        Value::Null
    } else {
        Value::String(text)
    };
    if !calls.is_empty() {
        extra.insert("tool_calls".into(), Value::Array(calls));
    }
    Some(message("assistant", content, extra))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn translated(messages: Value) -> (Value, String) {
        let messages: Vec<InMessage> = serde_json::from_value(messages).unwrap();
        let mut system = String::new();
        let out = translate(messages, &mut system).unwrap();
        (serde_json::to_value(out).unwrap(), system)
    }

    #[test]
    fn text_in_strings_and_blocks_becomes_plain_content() {
        let (out, system) = translated(json!([
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": [{"type": "text", "text": "Hello"}]},
            {"role": "user", "content": [{"type": "text", "text": "a", "cache_control": {"type": "ephemeral"}},
                {"type": "text", "text": "b"}]}
        ]));
        assert_eq!(
            out,
            json!([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"},
                {"role": "user", "content": "a\n\nb"}])
        );
        assert_eq!(system, "");
    }

    #[test]
    fn system_messages_join_the_system_prompt() {
        let mut system = "Be brief.".to_owned();
        let messages: Vec<InMessage> = serde_json::from_value(json!([
            {"role": "system", "content": [{"type": "text", "text": "Use tools."}]},
            {"role": "user", "content": "Hi"}
        ]))
        .unwrap();
        let out = translate(messages, &mut system).unwrap();
        assert_eq!(system, "Be brief.\n\nUse tools.");
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn images_become_image_url_parts() {
        let (out, _) = translated(json!([{"role": "user", "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
            {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
            {"type": "image", "source": {"type": "file", "file_id": "file_1"}}
        ]}]));
        assert_eq!(
            out,
            json!([{"role": "user", "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}}
            ]}])
        );
    }

    #[test]
    fn tool_uses_become_calls_and_thinking_is_dropped() {
        let (out, _) = translated(json!([{"role": "assistant", "content": [
            {"type": "thinking", "thinking": "hm", "signature": "s"},
            {"type": "redacted_thinking", "data": "x"},
            {"type": "text", "text": "Let me look."},
            {"type": "tool_use", "id": "toolu_1", "name": "read", "input": {"path": "a"}},
            {"type": "tool_use", "id": "toolu_2", "name": "list", "input": {}}
        ]}, {"role": "assistant", "content": [{"type": "thinking", "thinking": "only", "signature": ""}]},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t3", "name": "f"}]}]));
        assert_eq!(
            out,
            json!([{"role": "assistant", "content": "Let me look.", "tool_calls": [
                {"id": "toolu_1", "type": "function", "function": {"name": "read", "arguments": "{\"path\":\"a\"}"}},
                {"id": "toolu_2", "type": "function", "function": {"name": "list", "arguments": "{}"}}
            ]}, {"role": "assistant", "content": null, "tool_calls": [
                {"id": "t3", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}])
        );
    }

    #[test]
    fn tool_results_come_first_in_order_then_the_rest_of_the_turn() {
        let (out, _) = translated(json!([{"role": "user", "content": [
            {"type": "text", "text": "Here you go."},
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "42"},
            {"type": "tool_result", "tool_use_id": "toolu_2", "is_error": true,
                "content": [{"type": "text", "text": "not found"}]},
            {"type": "tool_result", "tool_use_id": "toolu_3"}
        ]}]));
        assert_eq!(
            out,
            json!([
                {"role": "tool", "tool_call_id": "toolu_1", "content": "42"},
                {"role": "tool", "tool_call_id": "toolu_2", "content": "Error: not found"},
                {"role": "tool", "tool_call_id": "toolu_3", "content": ""},
                {"role": "user", "content": "Here you go."}
            ])
        );
    }

    #[test]
    fn a_tool_results_images_lead_the_next_user_message() {
        let (out, _) = translated(json!([{"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "t", "content": [
                {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "AAAA"}}]}
        ]}]));
        assert_eq!(
            out,
            json!([
                {"role": "tool", "tool_call_id": "t", "content": "(the result is the image in the next message)"},
                {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,AAAA"}}]}
            ])
        );
    }

    #[test]
    fn unknown_blocks_are_ignored_and_unknown_roles_refused() {
        let (out, _) = translated(json!([{"role": "user", "content": [
            {"type": "document", "source": {"type": "text", "data": "x"}},
            {"type": "server_tool_use", "id": "s", "name": "web_search", "input": {}},
            {"type": "text", "text": "ok"}
        ]}, {"role": "user", "content": [{"type": "search_result"}]}]));
        assert_eq!(out, json!([{"role": "user", "content": "ok"}]));
        let messages: Vec<InMessage> =
            serde_json::from_value(json!([{"role": "tool", "content": "x"}])).unwrap();
        let err = translate(messages, &mut String::new()).unwrap_err();
        assert!(err.contains("messages[0].role 'tool'"), "{err}");
    }
}
