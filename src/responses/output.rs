//! The `response` object and its output items, typed once so the whole answer, every stream event and the
//! stored copy are written by the same code. Carries the defaults the official SDK's `Response` model needs
//! (`tools`, `tool_choice`, `parallel_tool_calls`, `text`, ...). No translation happens here; `answer.rs` fills it.

use serde::Serialize;
use serde_json::{json, Value};

use crate::openai::chat::Usage;

/// Where a response or an item stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Still being written (stream events before the end).
    InProgress,
    /// Finished.
    Completed,
    /// Cut short (the output cap, a content filter).
    Incomplete,
    /// Broken off by a failure after the first byte.
    Failed,
}

/// Why a response is incomplete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct IncompleteDetails {
    /// `max_output_tokens` or `content_filter`.
    pub reason: &'static str,
}

/// The error of a failed response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResponseError {
    /// Always `server_error`: the gateway's own codes are not among the ones the SDK knows.
    pub code: &'static str,
    /// What broke.
    pub message: String,
}

/// A piece of output text.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OutputText {
    #[serde(rename = "type")]
    kind: TextKind,
    /// The text.
    pub text: String,
    annotations: [(); 0],
    logprobs: [(); 0],
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum TextKind {
    #[default]
    OutputText,
}

/// A piece of the model's reasoning, as the Responses API gives open models' raw reasoning.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReasoningText {
    #[serde(rename = "type")]
    kind: ReasoningKind,
    /// The reasoning.
    pub text: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum ReasoningKind {
    #[default]
    ReasoningText,
}

/// Who speaks in a message item: always the assistant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The model.
    #[default]
    Assistant,
}

/// One output item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutputItem {
    /// The model's reasoning (`rs_…`): empty `summary`, the text in `content`.
    Reasoning {
        /// `rs_…`.
        id: String,
        /// Always empty: upstreams give raw reasoning, not summaries.
        summary: [(); 0],
        /// One reasoning text.
        content: Vec<ReasoningText>,
        /// Where it stands.
        status: Status,
    },
    /// A message (`msg_…`) of output text.
    Message {
        /// `msg_…`.
        id: String,
        /// Always the assistant.
        role: Role,
        /// Where it stands.
        status: Status,
        /// One output text (none yet in the event that opens it).
        content: Vec<OutputText>,
    },
    /// A function call (`fc_…`) for the client to run.
    FunctionCall {
        /// `fc_…`.
        id: String,
        /// The id the client's `function_call_output` refers to.
        call_id: String,
        /// The function's name as the client declared it.
        name: String,
        /// The namespace the client declared the function in, if any.
        #[serde(skip_serializing_if = "Option::is_none")]
        namespace: Option<String>,
        /// The arguments as JSON text.
        arguments: String,
        /// Where it stands.
        status: Status,
    },
    /// A call (`ctc_…`) of a custom (free-form) tool for the client to run.
    CustomToolCall {
        /// `ctc_…`.
        id: String,
        /// The id the client's `custom_tool_call_output` refers to.
        call_id: String,
        /// The tool's name as the client declared it.
        name: String,
        /// The namespace the client declared the tool in, if any.
        #[serde(skip_serializing_if = "Option::is_none")]
        namespace: Option<String>,
        /// The free-form input (empty until the call is complete).
        input: String,
        /// Where it stands.
        status: Status,
    },
}

impl OutputItem {
    /// The item's id.
    pub fn id(&self) -> &str {
        match self {
            OutputItem::Reasoning { id, .. }
            | OutputItem::Message { id, .. }
            | OutputItem::FunctionCall { id, .. }
            | OutputItem::CustomToolCall { id, .. } => id,
        }
    }

    /// The id and the text being written of a message or reasoning item (its one part), if it has one.
    pub fn text_mut(&mut self) -> Option<(&str, &mut String)> {
        match self {
            OutputItem::Message { id, content, .. } => content
                .first_mut()
                .map(|part| (id.as_str(), &mut part.text)),
            OutputItem::Reasoning { id, content, .. } => content
                .first_mut()
                .map(|part| (id.as_str(), &mut part.text)),
            OutputItem::FunctionCall { .. } | OutputItem::CustomToolCall { .. } => None,
        }
    }

    /// Sets where the item stands.
    pub fn set_status(&mut self, to: Status) {
        match self {
            OutputItem::Reasoning { status, .. }
            | OutputItem::Message { status, .. }
            | OutputItem::FunctionCall { status, .. }
            | OutputItem::CustomToolCall { status, .. } => *status = to,
        }
    }
}

/// Token counts, with the detail objects SDKs expect (the gateway knows no cached or reasoning split).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ResponseUsage {
    /// Tokens in the prompt.
    pub input_tokens: u32,
    input_tokens_details: CachedTokens,
    /// Tokens generated.
    pub output_tokens: u32,
    output_tokens_details: ReasoningTokens,
    /// Both together.
    pub total_tokens: u32,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
struct CachedTokens {
    cache_write_tokens: u32,
    cached_tokens: u32,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
struct ReasoningTokens {
    reasoning_tokens: u32,
}

impl From<Usage> for ResponseUsage {
    fn from(usage: Usage) -> ResponseUsage {
        ResponseUsage {
            input_tokens: usage.prompt_tokens,
            input_tokens_details: CachedTokens::default(),
            output_tokens: usage.completion_tokens,
            output_tokens_details: ReasoningTokens::default(),
            total_tokens: usage.total(),
        }
    }
}

/// What a response repeats of its request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Echo {
    /// The system instructions given with `instructions`.
    pub instructions: Option<String>,
    /// The output cap asked for.
    pub max_output_tokens: Option<u32>,
    /// The request's `metadata` (an empty object when none).
    pub metadata: Value,
    /// Whether calls may come in parallel.
    pub parallel_tool_calls: bool,
    /// The response this one continues.
    pub previous_response_id: Option<String>,
    /// Whether the response is kept for `GET` and `previous_response_id`.
    pub store: bool,
    /// Sampling temperature asked for.
    pub temperature: Option<f64>,
    /// The text configuration (`{"format":{"type":"text"}}` by default).
    pub text: Value,
    /// The tool choice (`auto` by default).
    pub tool_choice: Value,
    /// The tools as the client declared them.
    pub tools: Vec<Value>,
    /// Nucleus sampling asked for.
    pub top_p: Option<f64>,
}

impl Default for Echo {
    /// What a response repeats of a request that set none of these fields.
    fn default() -> Echo {
        Echo {
            instructions: None,
            max_output_tokens: None,
            metadata: json!({}),
            parallel_tool_calls: true,
            previous_response_id: None,
            store: true,
            temperature: None,
            text: json!({"format": {"type": "text"}}),
            tool_choice: json!("auto"),
            tools: Vec::new(),
            top_p: None,
        }
    }
}

/// `{"effort": null, "summary": null}`: the gateway configures no reasoning.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
struct NoReasoning {
    effort: Option<()>,
    summary: Option<()>,
}

/// A `response` object.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResponseObject {
    /// `resp_…`.
    pub id: String,
    object: &'static str,
    /// Unix seconds.
    pub created_at: i64,
    /// Where it stands.
    pub status: Status,
    background: bool,
    /// Why it failed, when it did.
    pub error: Option<ResponseError>,
    /// Why it is incomplete, when it is.
    pub incomplete_details: Option<IncompleteDetails>,
    /// The model that answered.
    pub model: String,
    /// The output items.
    pub output: Vec<OutputItem>,
    /// The text of every message item, joined (a convenience the SDKs also compute).
    pub output_text: String,
    reasoning: NoReasoning,
    truncation: &'static str,
    /// Token counts; null until the end.
    pub usage: Option<ResponseUsage>,
    user: Option<()>,
    /// What it repeats of its request.
    #[serde(flatten)]
    pub echo: Echo,
}

impl ResponseObject {
    /// A response with these parts; `output_text` is computed from `output`.
    pub fn new(
        id: &str,
        created_at: i64,
        model: &str,
        status: Status,
        output: Vec<OutputItem>,
        echo: &Echo,
    ) -> ResponseObject {
        let output_text = output
            .iter()
            .filter_map(|item| match item {
                OutputItem::Message { content, .. } => Some(content),
                _ => None,
            })
            .flatten()
            .map(|part| part.text.as_str())
            .collect();
        ResponseObject {
            id: id.to_owned(),
            object: "response",
            created_at,
            status,
            background: false,
            error: None,
            incomplete_details: None,
            model: model.to_owned(),
            output,
            output_text,
            reasoning: NoReasoning::default(),
            truncation: "disabled",
            usage: None,
            user: None,
            echo: echo.clone(),
        }
    }
}

/// A new output text part holding `text`.
pub fn output_text(text: &str) -> OutputText {
    OutputText {
        text: text.to_owned(),
        ..OutputText::default()
    }
}

/// A new reasoning text part holding `text`.
pub fn reasoning_text(text: &str) -> ReasoningText {
    ReasoningText {
        text: text.to_owned(),
        ..ReasoningText::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_and_the_object_serialise_as_the_api_writes_them() {
        let echo = Echo::default();
        let output = vec![
            OutputItem::Message {
                id: "msg_1".into(),
                role: Role::Assistant,
                status: Status::Completed,
                content: vec![output_text("Hi")],
            },
            OutputItem::FunctionCall {
                id: "fc_1".into(),
                call_id: "call_1".into(),
                name: "search".into(),
                namespace: Some("docs".into()),
                arguments: "{}".into(),
                status: Status::Completed,
            },
        ];
        let mut response = ResponseObject::new("resp_1", 7, "m", Status::Completed, output, &echo);
        response.usage = Some(
            Usage {
                prompt_tokens: 3,
                completion_tokens: 2,
            }
            .into(),
        );
        assert_eq!(
            serde_json::to_value(&response).unwrap(),
            json!({"id": "resp_1", "object": "response", "created_at": 7, "status": "completed",
                "background": false, "error": null, "incomplete_details": null, "model": "m",
                "output": [
                    {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
                     "content": [{"type": "output_text", "text": "Hi", "annotations": [], "logprobs": []}]},
                    {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "search",
                     "namespace": "docs", "arguments": "{}", "status": "completed"}],
                "output_text": "Hi", "reasoning": {"effort": null, "summary": null}, "truncation": "disabled",
                "usage": {"input_tokens": 3, "input_tokens_details": {"cache_write_tokens": 0, "cached_tokens": 0}, "output_tokens": 2,
                          "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 5},
                "user": null, "instructions": null, "max_output_tokens": null, "metadata": {},
                "parallel_tool_calls": true, "previous_response_id": null, "store": true, "temperature": null,
                "text": {"format": {"type": "text"}}, "tool_choice": "auto", "tools": [], "top_p": null})
        );
        let reasoning = OutputItem::Reasoning {
            id: "rs_1".into(),
            summary: [],
            content: vec![reasoning_text("hm")],
            status: Status::InProgress,
        };
        assert_eq!(
            serde_json::to_value(&reasoning).unwrap(),
            json!({"type": "reasoning", "id": "rs_1", "summary": [],
                "content": [{"type": "reasoning_text", "text": "hm"}], "status": "in_progress"})
        );
    }
}
