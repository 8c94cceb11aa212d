//! Input items as chat messages: `message` items (user, assistant, and `system` / `developer` as system
//! messages) with their text, image and file parts; `function_call` and `custom_tool_call` items joined to the
//! assistant turn they belong to; `function_call_output` and `custom_tool_call_output` items as tool messages. Item types the gateway has no use for
//! (`reasoning`, `item_reference`, ...) are skipped, never refused, because clients such as Codex replay
//! them; content they carry that cannot be forwarded (an image by file id) is refused rather than lost. Pure.

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::tools::{custom_arguments, flat_name};
use super::Refusal;
use crate::openai::chat::Message;

/// Appends the chat messages of `items` to `messages`; `at` names the list in refusals (`input`).
pub fn append(messages: &mut Vec<Message>, items: &[Value], at: &str) -> Result<(), Refusal> {
    for (i, item) in items.iter().enumerate() {
        let at = format!("{at}[{i}]");
        if !item.is_object() {
            return Err(Refusal::invalid(format!("{at} must be an item object")));
        }
        match item.get("type").and_then(Value::as_str) {
            Some("message") => messages.push(message(item, &at)?),
            None if item.get("role").is_some() => messages.push(message(item, &at)?),
            Some("function_call") => {
                let CallItem {
                    call_id,
                    name,
                    namespace,
                    arguments,
                } = parse(item, &at)?;
                let arguments = match arguments {
                    Value::String(text) => text,
                    Value::Null => "{}".to_owned(),
                    other => other.to_string(),
                };
                call(
                    messages,
                    call_id,
                    flat_name(namespace.as_deref(), &name),
                    arguments,
                );
            }
            Some("custom_tool_call") => {
                let CustomCallItem {
                    call_id,
                    name,
                    namespace,
                    input,
                } = parse(item, &at)?;
                let name = flat_name(namespace.as_deref(), &name);
                call(messages, call_id, name, custom_arguments(&input));
            }
            Some("function_call_output" | "custom_tool_call_output") => {
                let output: CallOutput = parse(item, &at)?;
                messages.push(tool_result(output, &at)?);
            }
            _ => {}
        }
    }
    Ok(())
}

#[derive(Deserialize)]
struct MessageItem {
    role: String,
    #[serde(default)]
    content: Value,
}

#[derive(Deserialize)]
struct CallItem {
    call_id: String,
    name: String,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    arguments: Value,
}

#[derive(Deserialize)]
struct CustomCallItem {
    call_id: String,
    name: String,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    input: String,
}

#[derive(Deserialize)]
struct CallOutput {
    call_id: String,
    #[serde(default)]
    output: Value,
}

fn parse<T: for<'de> Deserialize<'de>>(item: &Value, at: &str) -> Result<T, Refusal> {
    T::deserialize(item).map_err(|e| Refusal::invalid(format!("{at}: {e}")))
}

/// A chat message with `role` and `content` and nothing else.
fn plain(role: &str, content: Value) -> Message {
    Message {
        role: role.to_owned(),
        content,
        extra: Map::new(),
    }
}

/// One piece of content as the chat API takes it.
enum Part {
    Text(String),
    /// An image or file part, already in chat shape.
    Media(Value),
}

fn message(item: &Value, at: &str) -> Result<Message, Refusal> {
    let MessageItem { role, content } = parse(item, at)?;
    let parts = parts(&content, &format!("{at}.content"))?;
    match role.as_str() {
        "user" => Ok(plain("user", user_content(parts))),
        "assistant" => Ok(plain("assistant", json!(text_only(parts, &role, at)?))),
        "system" | "developer" => Ok(plain("system", json!(text_only(parts, &role, at)?))),
        other => Err(Refusal::invalid(format!(
            "{at}.role '{other}' is not one of user, assistant, system, developer"
        ))),
    }
}

/// The parts of a message's (or a tool output's) content: a string is one text part.
fn parts(content: &Value, at: &str) -> Result<Vec<Part>, Refusal> {
    match content {
        Value::Null => Ok(Vec::new()),
        Value::String(text) => Ok(vec![Part::Text(text.clone())]),
        Value::Array(list) => list
            .iter()
            .enumerate()
            .map(|(j, p)| part(p, &format!("{at}[{j}]")))
            .collect(),
        other => Err(Refusal::invalid(format!(
            "{at} must be a string or a list of parts, got {other}"
        ))),
    }
}

fn part(part: &Value, at: &str) -> Result<Part, Refusal> {
    let text = |field: &str| {
        part.get(field)
            .and_then(Value::as_str)
            .map(|t| Part::Text(t.to_owned()))
            .ok_or_else(|| Refusal::invalid(format!("{at}.{field} must be a string")))
    };
    match part.get("type").and_then(Value::as_str) {
        Some("input_text" | "output_text" | "text" | "summary_text" | "reasoning_text") => {
            text("text")
        }
        Some("refusal") => text("refusal"),
        Some("input_image") => {
            let url = match part.get("image_url") {
                Some(Value::String(url)) => Some(url.as_str()),
                Some(Value::Object(object)) => object.get("url").and_then(Value::as_str),
                _ => None,
            };
            let url = url.ok_or_else(|| {
                Refusal::invalid(format!(
                    "{at}: images are taken by image_url (an https: or data: URL); images by file_id are not \
                     supported"
                ))
            })?;
            let mut image = json!({"url": url});
            if let Some(detail) = part.get("detail").filter(|d| d.is_string()) {
                image["detail"] = detail.clone();
            }
            Ok(Part::Media(
                json!({"type": "image_url", "image_url": image}),
            ))
        }
        Some("input_file") => {
            let data = part.get("file_data").and_then(Value::as_str).ok_or_else(|| {
                Refusal::invalid(format!(
                    "{at}: files are taken inline as file_data; files by file_id or file_url are not supported"
                ))
            })?;
            let mut file = json!({"file_data": data});
            if let Some(name) = part.get("filename").filter(|n| n.is_string()) {
                file["filename"] = name.clone();
            }
            Ok(Part::Media(json!({"type": "file", "file": file})))
        }
        other => Err(Refusal::invalid(format!(
            "{at}: content part type '{}' is not supported",
            other.unwrap_or("untyped")
        ))),
    }
}

/// User content as the chat API takes it: one text part as a string, anything else as a list of parts.
fn user_content(parts: Vec<Part>) -> Value {
    match parts.as_slice() {
        [Part::Text(text)] => json!(text),
        _ => Value::Array(
            parts
                .into_iter()
                .map(|p| match p {
                    Part::Text(text) => json!({"type": "text", "text": text}),
                    Part::Media(media) => media,
                })
                .collect(),
        ),
    }
}

/// The text of content that may only hold text (assistant and system turns), its parts one per line.
fn text_only(parts: Vec<Part>, role: &str, at: &str) -> Result<String, Refusal> {
    let texts: Result<Vec<String>, Refusal> = parts
        .into_iter()
        .map(|p| match p {
            Part::Text(text) => Ok(text),
            Part::Media(_) => Err(Refusal::invalid(format!(
                "{at}: {role} messages may only hold text"
            ))),
        })
        .collect();
    Ok(texts?.join("\n"))
}

/// Adds a call (of a function, or of a custom tool as its function) to the assistant turn that ends the
/// conversation so far, or opens one.
fn call(messages: &mut Vec<Message>, id: String, name: String, arguments: String) {
    let call =
        json!({"id": id, "type": "function", "function": {"name": name, "arguments": arguments}});
    if messages.last().is_none_or(|m| m.role != "assistant") {
        messages.push(plain("assistant", Value::Null));
    }
    let Some(turn) = messages.last_mut() else {
        return;
    };
    match turn.extra.get_mut("tool_calls") {
        Some(Value::Array(calls)) => calls.push(call),
        _ => {
            turn.extra.insert("tool_calls".into(), json!([call]));
        }
    }
}

/// A tool message with a call's output: text as a string, with images as a list of parts.
fn tool_result(output: CallOutput, at: &str) -> Result<Message, Refusal> {
    let content = match &output.output {
        Value::String(_) | Value::Null | Value::Array(_) => {
            let parts = parts(&output.output, &format!("{at}.output"))?;
            if parts.iter().all(|p| matches!(p, Part::Text(_))) {
                json!(text_only(parts, "tool", at)?)
            } else {
                user_content(parts)
            }
        }
        other => json!(other.to_string()),
    };
    let mut message = plain("tool", content);
    message
        .extra
        .insert("tool_call_id".into(), json!(output.call_id));
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat(items: Value) -> Value {
        let mut messages = Vec::new();
        append(&mut messages, items.as_array().unwrap(), "input").unwrap();
        serde_json::to_value(messages).unwrap()
    }

    fn refusal(items: Value) -> String {
        let mut messages = Vec::new();
        append(&mut messages, items.as_array().unwrap(), "input")
            .unwrap_err()
            .message
    }

    #[test]
    fn messages_of_every_role_and_form() {
        let messages = chat(json!([
            {"role": "developer", "content": "Be brief."},
            {"type": "message", "role": "system", "content": [{"type": "input_text", "text": "a"}, {"type": "input_text", "text": "b"}]},
            {"role": "user", "content": "hi"},
            {"type": "message", "role": "assistant", "id": "msg_1", "status": "completed",
             "content": [{"type": "output_text", "text": "Hello", "annotations": []}]},
            {"role": "user", "content": [{"type": "input_text", "text": "What is this?"},
                {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "low"},
                {"type": "input_image", "image_url": "https://example.com/cat.png"}]},
        ]));
        assert_eq!(
            messages,
            json!([
                {"role": "system", "content": "Be brief."},
                {"role": "system", "content": "a\nb"},
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "Hello"},
                {"role": "user", "content": [{"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]},
            ])
        );
    }

    #[test]
    fn calls_join_their_assistant_turn_and_outputs_become_tool_messages() {
        let messages = chat(json!([
            {"role": "user", "content": "weather?"},
            {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "x"},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Checking."}]},
            {"type": "function_call", "id": "fc_1", "call_id": "call_a", "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"},
            {"type": "function_call", "call_id": "call_b", "name": "search", "namespace": "mcp__docs__", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "call_a", "output": "21C"},
            {"type": "function_call_output", "call_id": "call_b", "output": [{"type": "input_text", "text": "found"}]},
            {"type": "item_reference", "id": "msg_0"},
            {"type": "function_call", "call_id": "call_c", "name": "shell", "arguments": {"cmd": "ls"}},
            {"type": "function_call_output", "call_id": "call_c", "output": [{"type": "input_image", "image_url": "data:image/png;base64,AA"}]},
        ]));
        assert_eq!(
            messages,
            json!([
                {"role": "user", "content": "weather?"},
                {"role": "assistant", "content": "Checking.", "tool_calls": [
                    {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                    {"id": "call_b", "type": "function", "function": {"name": "mcp__docs__search", "arguments": "{}"}}]},
                {"role": "tool", "content": "21C", "tool_call_id": "call_a"},
                {"role": "tool", "content": "found", "tool_call_id": "call_b"},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_c", "type": "function", "function": {"name": "shell", "arguments": "{\"cmd\":\"ls\"}"}}]},
                {"role": "tool", "tool_call_id": "call_c",
                 "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}}]},
            ])
        );
    }

    #[test]
    fn custom_tool_calls_go_up_as_calls_of_their_function() {
        let messages = chat(json!([
            {"role": "user", "content": "fix it"},
            {"type": "custom_tool_call", "call_id": "c1", "name": "apply_patch", "input": "*** Begin Patch"},
            {"type": "custom_tool_call_output", "call_id": "c1", "output": "Done"},
        ]));
        assert_eq!(
            messages[1]["tool_calls"],
            json!([{"id": "c1", "type": "function",
                "function": {"name": "apply_patch", "arguments": "{\"input\":\"*** Begin Patch\"}"}}])
        );
        assert_eq!(
            messages[2],
            json!({"role": "tool", "content": "Done", "tool_call_id": "c1"})
        );
    }

    #[test]
    fn content_that_cannot_be_forwarded_is_refused_with_its_place() {
        assert_eq!(
            refusal(json!([{"role": "tool", "content": "x"}])),
            "input[0].role 'tool' is not one of user, assistant, system, developer"
        );
        assert!(refusal(
            json!([{"role": "user", "content": [{"type": "input_image", "file_id": "file-1"}]}])
        )
        .starts_with("input[0].content[0]: images are taken by image_url"));
        assert_eq!(
            refusal(json!([{"role": "user", "content": [{"type": "input_audio"}]}])),
            "input[0].content[0]: content part type 'input_audio' is not supported"
        );
        assert!(refusal(json!([{"type": "function_call", "name": "f"}])).contains("call_id"));
        assert_eq!(refusal(json!(["hi"])), "input[0] must be an item object");
        assert_eq!(
            refusal(
                json!([{"role": "assistant", "content": [{"type": "input_image", "image_url": "u"}]}])
            ),
            "input[0]: assistant messages may only hold text"
        );
    }

    #[test]
    fn files_go_inline() {
        let messages = chat(json!([{"role": "user", "content": [
            {"type": "input_file", "filename": "a.pdf", "file_data": "data:application/pdf;base64,AA"}]}]));
        assert_eq!(
            messages[0]["content"],
            json!([{"type": "file", "file": {"file_data": "data:application/pdf;base64,AA", "filename": "a.pdf"}}])
        );
    }
}
