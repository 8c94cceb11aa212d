//! Gemini answers as OpenAI chat completions: the candidate's text, thoughts (`reasoning_content`), function
//! calls, finish reason and usage. Pure.

use super::*;

/// A translated non-streamed answer.
pub struct Answer<'a> {
    /// The OpenAI chat.completion body.
    pub body: ChatCompletion<'a>,
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
    pub(super) finish: Option<FinishReason>,
}

pub(super) fn read_candidate(response: &Value) -> Result<Parts, Failure> {
    let mut parts = Parts::default();
    let Some(candidate) = response.pointer("/candidates/0") else {
        if response.pointer("/promptFeedback/blockReason").is_some() {
            parts.finish = Some(FinishReason::ContentFilter);
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
        Some("MAX_TOKENS") => Some(FinishReason::Length),
        Some(
            "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY"
            | "LANGUAGE",
        ) => Some(FinishReason::ContentFilter),
        Some("MALFORMED_FUNCTION_CALL") => {
            return Err(Failure::transport(
                FailureKind::Undecodable,
                "Gemini produced a malformed function call",
            ));
        }
        Some(_) => Some(FinishReason::Stop),
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

/// The model Gemini says answered, or the one asked for.
pub(super) fn model_of<'a>(response: &'a Value, asked: &'a str) -> &'a str {
    response
        .get("modelVersion")
        .and_then(Value::as_str)
        .unwrap_or(asked)
}

/// Turns a `generateContent` answer into an OpenAI chat.completion.
pub fn translate_response<'a>(response: &'a Value, model: &'a str) -> Result<Answer<'a>, Failure> {
    let mut parts = read_candidate(response)?;
    let mut assembler = Calls::default();
    let mut calls = assembler.take(std::mem::take(&mut parts.calls));
    calls.extend(assembler.finish());
    let usage = read_usage(response);
    let finish = if calls.is_empty() {
        parts.finish.unwrap_or(FinishReason::Stop)
    } else {
        FinishReason::ToolCalls
    };
    let made = calls
        .iter()
        .map(|(id, name, arguments, _)| {
            ToolCall::function(id.clone(), name.clone(), arguments.clone())
        })
        .collect();
    let message = AssistantMessage {
        content: parts.text.map(Cow::Owned),
        reasoning_content: parts.reasoning.map(Cow::Owned),
        tool_calls: (!calls.is_empty()).then_some(ToolCalls::Made(made)),
        ..AssistantMessage::default()
    };
    let body = ChatCompletion::new(
        response_id(response),
        model_of(response, model),
        now_unix_secs(),
        message,
        finish,
        usage.unwrap_or_default(),
    );
    Ok(Answer { body, usage, calls })
}
