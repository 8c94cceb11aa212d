//! Gemini answers as OpenAI chat completions: the candidate's text, thoughts (`reasoning_content`), function
//! calls, finish reason and usage. Pure.

use super::*;

/// A translated non-streamed answer.
pub struct Answer {
    /// The OpenAI chat.completion body.
    pub body: Value,
    /// Token counts.
    pub usage: Option<Usage>,
    /// Tool calls (id, name, arguments, thought signature).
    pub(super) calls: Vec<(String, String, String, Option<String>)>,
}

/// What one Gemini response (or stream event) holds, in OpenAI terms.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Parts {
    pub(super) text: Option<String>,
    pub(super) reasoning: Option<String>,
    pub(super) calls: Vec<CallPart>,
    pub(super) finish: Option<&'static str>,
}

pub(super) fn read_candidate(response: &Value) -> Result<Parts, Failure> {
    let mut parts = Parts::default();
    let Some(candidate) = response.pointer("/candidates/0") else {
        if response.pointer("/promptFeedback/blockReason").is_some() {
            parts.finish = Some("content_filter");
        }
        return Ok(parts);
    };
    for part in candidate
        .pointer("/content/parts")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        if let Some(call) = part.get("functionCall") {
            parts.calls.push(CallPart::read(part, call));
        } else if let Some(text) = part.get("text").and_then(Value::as_str) {
            let slot = if part.get("thought").and_then(Value::as_bool) == Some(true) {
                &mut parts.reasoning
            } else {
                &mut parts.text
            };
            slot.get_or_insert_with(String::new).push_str(text);
        }
    }
    parts.finish = match candidate.get("finishReason").and_then(Value::as_str) {
        None | Some("FINISH_REASON_UNSPECIFIED") => None,
        Some("MAX_TOKENS") => Some("length"),
        Some(
            "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY"
            | "LANGUAGE",
        ) => Some("content_filter"),
        Some("MALFORMED_FUNCTION_CALL") => {
            return Err(Failure::transport(
                FailureKind::Undecodable,
                "Gemini produced a malformed function call",
            ));
        }
        Some(_) => Some("stop"),
    };
    Ok(parts)
}

pub(super) fn read_usage(response: &Value) -> Option<Usage> {
    let meta = response.get("usageMetadata")?;
    let count = |k: &str| {
        meta.get(k)
            .and_then(Value::as_u64)
            .and_then(|v| u32::try_from(v).ok())
            .unwrap_or(0)
    };
    Some(Usage {
        prompt_tokens: count("promptTokenCount"),
        completion_tokens: count("candidatesTokenCount")
            .saturating_add(count("thoughtsTokenCount")),
    })
}

pub(super) fn response_id(response: &Value) -> String {
    response
        .get("responseId")
        .and_then(Value::as_str)
        .map_or_else(
            || format!("chatcmpl-{}", now_unix_secs()),
            |id| format!("chatcmpl-{id}"),
        )
}

pub(super) fn model_of(response: &Value, asked: &str) -> Value {
    response
        .get("modelVersion")
        .cloned()
        .unwrap_or_else(|| json!(asked))
}

pub(super) fn tool_calls_json(
    calls: &[(String, String, String, Option<String>)],
    first_index: usize,
) -> Value {
    Value::Array(
        calls
            .iter()
            .enumerate()
            .map(|(i, (id, name, arguments, _))| {
                json!({"index": first_index + i, "id": id, "type": "function", "function": {"name": name, "arguments": arguments}})
            })
            .collect(),
    )
}

/// Turns a `generateContent` answer into an OpenAI chat.completion.
pub fn translate_response(response: &Value, model: &str) -> Result<Answer, Failure> {
    let mut parts = read_candidate(response)?;
    let mut assembler = Calls::default();
    let mut calls = assembler.take(std::mem::take(&mut parts.calls));
    calls.extend(assembler.finish());
    let usage = read_usage(response);
    let mut message = Map::new();
    message.insert("role".into(), json!("assistant"));
    message.insert(
        "content".into(),
        parts.text.clone().map_or(Value::Null, Value::String),
    );
    if let Some(reasoning) = &parts.reasoning {
        message.insert("reasoning_content".into(), json!(reasoning));
    }
    let finish = if calls.is_empty() {
        parts.finish.unwrap_or("stop")
    } else {
        "tool_calls"
    };
    if !calls.is_empty() {
        let listed = tool_calls_json(&calls, 0);
        let listed: Vec<Value> = listed
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|c| {
                        let mut c = c.clone();
                        if let Some(o) = c.as_object_mut() {
                            o.remove("index");
                        }
                        c
                    })
                    .collect()
            })
            .unwrap_or_default();
        message.insert("tool_calls".into(), Value::Array(listed));
    }
    let body = json!({
        "id": response_id(response),
        "object": "chat.completion",
        "created": now_unix_secs(),
        "model": model_of(response, model),
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": usage.unwrap_or_default().to_json(),
    });
    Ok(Answer { body, usage, calls })
}
