//! The OpenAI chat-completion answer as the gateway writes it when it translates a native answer (Gemini,
//! Cohere): whole ([`ChatCompletion`]) or streamed ([`ChatChunk`]). One typed shape, so every translating adapter
//! writes the same fields and omits the same absent ones. Answers of OpenAI-compatible upstreams never come here:
//! they are relayed as they came. Layer 0: imports nothing above `openai`.
//!
//! Fields are declared in alphabetical order on purpose: these answers used to be built as `serde_json::Value`,
//! whose maps sort their keys, so declaring them so keeps the bytes clients receive what they were.

use std::borrow::Cow;

use serde::Serialize;
use serde_json::Value;

use super::chat::Usage;

/// The `object` of a whole answer.
const COMPLETION: &str = "chat.completion";
/// The `object` of a stream chunk.
const CHUNK: &str = "chat.completion.chunk";

/// Why an answer ended, as OpenAI names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// The model finished (or met a stop sequence).
    Stop,
    /// The output cap cut the answer.
    Length,
    /// The answer is tool calls for the client to run.
    ToolCalls,
    /// A safety filter withheld or cut the answer.
    ContentFilter,
}

/// Who speaks in an answer: always the assistant, a type so it cannot be misspelt.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The model.
    #[default]
    Assistant,
}

/// The `type` of a tool call: OpenAI has only functions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CallKind {
    /// A function call.
    #[default]
    Function,
}

/// The `usage` object answers carry: the counts and their total.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct UsageOut {
    /// Tokens generated.
    pub completion_tokens: u32,
    /// Tokens in the prompt.
    pub prompt_tokens: u32,
    /// Both together.
    pub total_tokens: u32,
}

impl From<Usage> for UsageOut {
    fn from(usage: Usage) -> UsageOut {
        UsageOut {
            completion_tokens: usage.completion_tokens,
            prompt_tokens: usage.prompt_tokens,
            total_tokens: usage.total(),
        }
    }
}

/// The function a tool call names and its arguments (JSON text).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FunctionCall<'a> {
    /// The arguments as JSON text; in a stream's opening of a call, only their first piece.
    pub arguments: Cow<'a, str>,
    /// The function's name; null when the upstream gave none.
    pub name: Option<Cow<'a, str>>,
}

/// One complete tool call of a whole answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ToolCall<'a> {
    /// What to call.
    pub function: FunctionCall<'a>,
    /// The call's id, which the client's tool result refers to; null when the upstream gave none.
    pub id: Option<Cow<'a, str>>,
    /// Always `function`.
    #[serde(rename = "type")]
    pub kind: CallKind,
}

impl<'a> ToolCall<'a> {
    /// A call of function `name` with `arguments` (JSON text), known by `id`.
    pub fn function(
        id: impl Into<Cow<'a, str>>,
        name: impl Into<Cow<'a, str>>,
        arguments: impl Into<Cow<'a, str>>,
    ) -> ToolCall<'a> {
        ToolCall {
            function: FunctionCall {
                arguments: arguments.into(),
                name: Some(name.into()),
            },
            id: Some(id.into()),
            kind: CallKind::Function,
        }
    }
}

/// The tool calls of a whole answer: made by the adapter, or an upstream's own list, already in OpenAI's shape,
/// relayed as it came (extra fields and all).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ToolCalls<'a> {
    /// Calls the adapter assembled.
    Made(Vec<ToolCall<'a>>),
    /// An upstream's OpenAI-shaped calls, untouched.
    Relayed(&'a [Value]),
}

/// The message of a whole answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AssistantMessage<'a> {
    /// The text; null when there is none (an answer of only tool calls, or a blocked one).
    pub content: Option<Cow<'a, str>>,
    /// The model's reasoning, where the gateway carries it for every provider.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<Cow<'a, str>>,
    /// Always the assistant.
    pub role: Role,
    /// The calls the client should run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<ToolCalls<'a>>,
    /// Cohere's plan before calling tools, in its own field for clients that read it (it is reasoning too).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_plan: Option<Cow<'a, str>>,
}

/// The one choice of a whole answer (the gateway serves exactly one).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Choice<'a> {
    /// Why the answer ended.
    pub finish_reason: FinishReason,
    /// Always 0.
    pub index: u32,
    /// The answer itself.
    pub message: AssistantMessage<'a>,
}

/// A whole answer, `object: "chat.completion"`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChatCompletion<'a> {
    /// The one choice.
    pub choices: [Choice<'a>; 1],
    /// Unix seconds.
    pub created: i64,
    /// `chatcmpl-...`.
    pub id: Cow<'a, str>,
    /// The model that answered.
    pub model: Cow<'a, str>,
    object: &'static str,
    /// Token counts (zeros when the upstream reported none).
    pub usage: UsageOut,
}

impl<'a> ChatCompletion<'a> {
    /// An answer of `message`, ended for `finish`.
    pub fn new(
        id: impl Into<Cow<'a, str>>,
        model: impl Into<Cow<'a, str>>,
        created: i64,
        message: AssistantMessage<'a>,
        finish: FinishReason,
        usage: Usage,
    ) -> ChatCompletion<'a> {
        ChatCompletion {
            choices: [Choice {
                finish_reason: finish,
                index: 0,
                message,
            }],
            created,
            id: id.into(),
            model: model.into(),
            object: COMPLETION,
            usage: usage.into(),
        }
    }
}

/// The function of a call's later stream entries: only the next piece of its arguments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArgumentsPiece<'a> {
    /// The next piece of the arguments' JSON text.
    pub arguments: Cow<'a, str>,
}

/// One entry of a chunk's `delta.tool_calls`: the opening of a call, or a later piece of its arguments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum ToolCallDelta<'a> {
    /// A call's first entry: its id, name and first arguments (all of them when the call comes whole).
    Start {
        /// The name and first arguments.
        function: FunctionCall<'a>,
        /// The call's id; null when the upstream gave none.
        id: Option<Cow<'a, str>>,
        /// The call's place in the answer.
        index: usize,
        /// Always `function`.
        #[serde(rename = "type")]
        kind: CallKind,
    },
    /// A later piece of the arguments of the call at `index`.
    Arguments {
        /// The piece.
        function: ArgumentsPiece<'a>,
        /// The call's place in the answer.
        index: usize,
    },
}

impl<'a> ToolCallDelta<'a> {
    /// The opening of the call at `index`.
    pub fn start(
        index: usize,
        id: Option<Cow<'a, str>>,
        name: Option<Cow<'a, str>>,
        arguments: impl Into<Cow<'a, str>>,
    ) -> ToolCallDelta<'a> {
        ToolCallDelta::Start {
            function: FunctionCall {
                arguments: arguments.into(),
                name,
            },
            id,
            index,
            kind: CallKind::Function,
        }
    }

    /// The next piece of the arguments of the call at `index`.
    pub fn arguments(index: usize, piece: impl Into<Cow<'a, str>>) -> ToolCallDelta<'a> {
        ToolCallDelta::Arguments {
            function: ArgumentsPiece {
                arguments: piece.into(),
            },
            index,
        }
    }
}

/// What one chunk adds to the answer; absent fields are omitted, and the finishing chunk's delta is `{}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Delta<'a> {
    /// More text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<Cow<'a, str>>,
    /// More reasoning.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<Cow<'a, str>>,
    /// Only in the first chunk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// Calls opened or continued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCallDelta<'a>>>,
    /// More of Cohere's plan before calling tools (sent as `reasoning_content` too).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_plan: Option<Cow<'a, str>>,
}

impl<'a> Delta<'a> {
    /// The opening of a stream with nothing else to say yet: the role and empty content.
    pub fn opening() -> Delta<'a> {
        Delta {
            role: Some(Role::Assistant),
            content: Some(Cow::Borrowed("")),
            ..Delta::default()
        }
    }

    /// More text.
    pub fn text(text: impl Into<Cow<'a, str>>) -> Delta<'a> {
        Delta {
            content: Some(text.into()),
            ..Delta::default()
        }
    }

    /// More reasoning.
    pub fn reasoning(reasoning: impl Into<Cow<'a, str>>) -> Delta<'a> {
        Delta {
            reasoning_content: Some(reasoning.into()),
            ..Delta::default()
        }
    }

    /// Calls opened or continued.
    pub fn tool_calls(calls: Vec<ToolCallDelta<'a>>) -> Delta<'a> {
        Delta {
            tool_calls: Some(calls),
            ..Delta::default()
        }
    }

    /// Whether the delta adds nothing (and so is not worth a chunk, unless it finishes the answer).
    pub fn is_empty(&self) -> bool {
        *self == Delta::default()
    }
}

/// The one choice of a chunk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChunkChoice<'a> {
    /// What this chunk adds.
    pub delta: Delta<'a>,
    /// Null until the chunk that ends the answer.
    pub finish_reason: Option<FinishReason>,
    /// Always 0.
    pub index: u32,
}

/// What every chunk of one stream repeats: the answer's id, model and creation time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamIds<'a> {
    /// `chatcmpl-...`.
    pub id: &'a str,
    /// The model that answers.
    pub model: &'a str,
    /// Unix seconds.
    pub created: i64,
}

/// One stream chunk, `object: "chat.completion.chunk"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatChunk<'a> {
    /// One choice, or none in the usage chunk.
    pub choices: Vec<ChunkChoice<'a>>,
    /// Unix seconds, the same in every chunk.
    pub created: i64,
    /// The same in every chunk.
    pub id: &'a str,
    /// The same in every chunk.
    pub model: &'a str,
    object: &'static str,
    /// Only in the usage chunk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<UsageOut>,
}

impl<'a> ChatChunk<'a> {
    /// A chunk of `ids`' stream with no choice yet.
    fn bare(ids: StreamIds<'a>) -> ChatChunk<'a> {
        ChatChunk {
            choices: Vec::new(),
            created: ids.created,
            id: ids.id,
            model: ids.model,
            object: CHUNK,
            usage: None,
        }
    }

    /// A chunk that adds `delta` to the answer.
    pub fn delta(ids: StreamIds<'a>, delta: Delta<'a>) -> ChatChunk<'a> {
        ChatChunk {
            choices: vec![ChunkChoice {
                delta,
                finish_reason: None,
                index: 0,
            }],
            ..ChatChunk::bare(ids)
        }
    }

    /// The chunk that ends the answer: an empty delta and why it ended.
    pub fn finish(ids: StreamIds<'a>, reason: FinishReason) -> ChatChunk<'a> {
        ChatChunk {
            choices: vec![ChunkChoice {
                delta: Delta::default(),
                finish_reason: Some(reason),
                index: 0,
            }],
            ..ChatChunk::bare(ids)
        }
    }

    /// The usage chunk after the finish, with no choices (for clients that asked with `include_usage`).
    pub fn usage(ids: StreamIds<'a>, usage: Usage) -> ChatChunk<'a> {
        ChatChunk {
            usage: Some(usage.into()),
            ..ChatChunk::bare(ids)
        }
    }

    /// The chunk as JSON, ready to frame. Serialising it cannot fail (strings, numbers and JSON values only), so
    /// there is no error to hand on.
    pub fn to_vec(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const IDS: StreamIds<'static> = StreamIds {
        id: "chatcmpl-1",
        model: "m",
        created: 7,
    };

    fn text(chunk: &ChatChunk<'_>) -> String {
        String::from_utf8(chunk.to_vec()).unwrap()
    }

    #[test]
    fn chunks_serialise_to_the_exact_bytes_clients_have_always_had() {
        let head = r#""created":7,"id":"chatcmpl-1","model":"m","object":"chat.completion.chunk""#;
        let opening = ChatChunk::delta(IDS, Delta::opening());
        assert_eq!(
            text(&opening),
            format!(
                r#"{{"choices":[{{"delta":{{"content":"","role":"assistant"}},"finish_reason":null,"index":0}}],{head}}}"#
            )
        );
        assert_eq!(
            text(&ChatChunk::finish(IDS, FinishReason::ToolCalls)),
            format!(
                r#"{{"choices":[{{"delta":{{}},"finish_reason":"tool_calls","index":0}}],{head}}}"#
            )
        );
        let usage = Usage {
            prompt_tokens: 3,
            completion_tokens: 2,
        };
        assert_eq!(
            text(&ChatChunk::usage(IDS, usage)),
            format!(
                r#"{{"choices":[],{head},"usage":{{"completion_tokens":2,"prompt_tokens":3,"total_tokens":5}}}}"#
            )
        );
    }

    #[test]
    fn deltas_omit_what_they_do_not_add() {
        let delta = |d: Delta<'static>| serde_json::to_value(d).unwrap();
        assert_eq!(delta(Delta::default()), json!({}));
        assert!(Delta::default().is_empty());
        assert!(!Delta::text("").is_empty());
        assert_eq!(delta(Delta::text("hi")), json!({"content": "hi"}));
        assert_eq!(
            delta(Delta::reasoning("hm")),
            json!({"reasoning_content": "hm"})
        );
        let plan = Delta {
            reasoning_content: Some("p".into()),
            tool_plan: Some("p".into()),
            ..Delta::default()
        };
        assert_eq!(
            serde_json::to_string(&plan).unwrap(),
            r#"{"reasoning_content":"p","tool_plan":"p"}"#
        );
    }

    #[test]
    fn tool_call_entries_open_with_everything_and_continue_with_arguments() {
        let calls = Delta::tool_calls(vec![
            ToolCallDelta::start(0, Some("c1".into()), Some("f".into()), "{\"a\""),
            ToolCallDelta::arguments(0, ":1}"),
            ToolCallDelta::start(1, None, None, ""),
        ]);
        assert_eq!(
            serde_json::to_string(&calls).unwrap(),
            concat!(
                r#"{"tool_calls":[{"function":{"arguments":"{\"a\"","name":"f"},"id":"c1","index":0,"type":"function"},"#,
                r#"{"function":{"arguments":":1}"},"index":0},"#,
                r#"{"function":{"arguments":"","name":null},"id":null,"index":1,"type":"function"}]}"#
            ),
            "an opening the upstream gave no id or name keeps them, as null"
        );
    }

    #[test]
    fn a_whole_answer_has_null_content_and_omits_absent_extras() {
        let usage = Usage {
            prompt_tokens: 1,
            completion_tokens: 1,
        };
        let calls = AssistantMessage {
            tool_calls: Some(ToolCalls::Made(vec![ToolCall::function("c", "f", "{}")])),
            ..AssistantMessage::default()
        };
        let answer =
            ChatCompletion::new("chatcmpl-x", "m", 9, calls, FinishReason::ToolCalls, usage);
        assert_eq!(
            serde_json::to_string(&answer).unwrap(),
            concat!(
                r#"{"choices":[{"finish_reason":"tool_calls","index":0,"message":{"content":null,"role":"assistant","#,
                r#""tool_calls":[{"function":{"arguments":"{}","name":"f"},"id":"c","type":"function"}]}}],"#,
                r#""created":9,"id":"chatcmpl-x","model":"m","object":"chat.completion","#,
                r#""usage":{"completion_tokens":1,"prompt_tokens":1,"total_tokens":2}}"#
            )
        );
        let relayed = [
            json!({"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}, "x": 1}),
        ];
        let message = AssistantMessage {
            content: Some("Hi".into()),
            reasoning_content: Some("p".into()),
            tool_calls: Some(ToolCalls::Relayed(&relayed)),
            tool_plan: Some("p".into()),
            ..AssistantMessage::default()
        };
        assert_eq!(
            serde_json::to_value(&message).unwrap(),
            json!({"content": "Hi", "reasoning_content": "p", "role": "assistant", "tool_plan": "p",
                "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}, "x": 1}]}),
            "an upstream's own calls are relayed with every field they had"
        );
    }

    #[test]
    fn finish_reasons_are_openai_names() {
        let names: Vec<Value> = [
            FinishReason::Stop,
            FinishReason::Length,
            FinishReason::ToolCalls,
            FinishReason::ContentFilter,
        ]
        .iter()
        .map(|r| serde_json::to_value(r).unwrap())
        .collect();
        assert_eq!(
            names,
            [
                json!("stop"),
                json!("length"),
                json!("tool_calls"),
                json!("content_filter")
            ]
        );
    }
}
