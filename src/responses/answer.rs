//! One answer as a `response`: the chat answer's reasoning, text and tool calls become output items
//! (`reasoning`, `message`, `function_call`, `custom_tool_call`), opened and closed in the order they arrive, with
//! the stream's events written as it goes. A whole answer runs through the same [`Assembler`] without events, so a streamed response ends as
//! exactly the object a non-streamed call would have returned. Pure: no I/O, no storage.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::Value;

use super::events::{Body, Events};
use super::output::{
    output_text, reasoning_text, Echo, IncompleteDetails, OutputItem, ResponseError,
    ResponseObject, Role, Status,
};
use super::tools::{custom_input, ToolNames};
use crate::openai::chat::Usage;

/// What a response knows before its answer: its id, when it was asked, the model asked for (until the answer
/// names the one that served) and what it repeats of its request.
#[derive(Debug, Clone)]
pub struct Head {
    /// `resp_…`.
    pub id: String,
    /// Unix seconds.
    pub created_at: i64,
    /// The model; the answer's own name for it replaces this.
    pub model: String,
    /// What the response repeats of its request.
    pub echo: Echo,
}

/// Why the answer ended, as far as the response's status cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Finish {
    Complete,
    Length,
    ContentFilter,
}

impl Finish {
    fn of(reason: &str) -> Finish {
        match reason {
            "length" => Finish::Length,
            "content_filter" => Finish::ContentFilter,
            _ => Finish::Complete,
        }
    }
}

/// Which text an answer's piece adds to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Writing {
    /// The message's text.
    Text,
    /// The model's reasoning.
    Reasoning,
}

/// The message of a whole answer or the delta of a chunk, as far as a response uses it.
#[derive(Debug, Default, Deserialize)]
struct MessageIn {
    #[serde(default)]
    content: Option<Value>,
    #[serde(default)]
    reasoning_content: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<CallIn>>,
}

#[derive(Debug, Deserialize)]
struct CallIn {
    #[serde(default)]
    index: Option<usize>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<FunctionIn>,
}

#[derive(Debug, Deserialize)]
struct FunctionIn {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct ChoiceIn {
    #[serde(default)]
    delta: Option<MessageIn>,
    #[serde(default)]
    message: Option<MessageIn>,
    #[serde(default)]
    finish_reason: Option<String>,
}

/// A chat chunk or a whole chat completion.
#[derive(Debug, Deserialize)]
struct ChatIn {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    choices: Vec<ChoiceIn>,
    #[serde(default)]
    usage: Option<Usage>,
}

/// Builds one response from a chat answer.
#[derive(Debug)]
pub struct Assembler {
    head: Head,
    /// The part of the response id after `resp_`, which item ids share.
    suffix: String,
    names: ToolNames,
    output: Vec<OutputItem>,
    /// The item being written, if any.
    open: Option<usize>,
    /// Each chat tool call index's place in `output`.
    calls: HashMap<usize, usize>,
    /// The chat arguments so far of each custom tool call, by place in `output`.
    custom_arguments: HashMap<usize, String>,
    finish: Option<Finish>,
    /// The stream's events; `None` for a whole answer.
    events: Option<Events>,
    started: bool,
    model_named: bool,
}

impl Assembler {
    /// An assembler for the answer to the request `head` describes; `names` turns the upstream's tool names
    /// back into the client's.
    pub fn new(head: Head, names: ToolNames) -> Assembler {
        Assembler {
            suffix: head.id.trim_start_matches("resp_").to_owned(),
            head,
            names,
            output: Vec::new(),
            open: None,
            calls: HashMap::new(),
            custom_arguments: HashMap::new(),
            finish: None,
            events: Some(Events::default()),
            started: false,
            model_named: false,
        }
    }

    /// The response of a whole chat completion (no events are written); the error says why the completion
    /// could not be read.
    pub fn whole(&mut self, completion: &[u8]) -> Result<ResponseObject, String> {
        let answer: ChatIn = serde_json::from_slice(completion)
            .map_err(|e| format!("the upstream's answer could not be read: {e}"))?;
        self.events = None;
        self.take_answer(&answer);
        Ok(self.done(answer.usage.unwrap_or_default()).1)
    }

    /// The events one chunk's JSON payload adds (none for a chunk that adds nothing, such as a usage chunk).
    pub fn chunk(&mut self, payload: &[u8]) -> Vec<u8> {
        if let Ok(chunk) = serde_json::from_slice::<ChatIn>(payload) {
            self.take_answer(&chunk);
        }
        self.take()
    }

    /// Ends the answer: closes the item being written and answers the final events and the response.
    pub fn done(&mut self, usage: Usage) -> (Vec<u8>, ResponseObject) {
        self.start();
        if self.output.is_empty() {
            self.open_message();
        }
        let (status, reason) = match self.finish {
            Some(Finish::Length) => (Status::Incomplete, Some("max_output_tokens")),
            Some(Finish::ContentFilter) => (Status::Incomplete, Some("content_filter")),
            _ => (Status::Completed, None),
        };
        self.close(status);
        let mut response = self.snapshot(status, self.output.clone());
        response.incomplete_details = reason.map(|reason| IncompleteDetails { reason });
        response.usage = Some(usage.into());
        let kind = match status {
            Status::Incomplete => "response.incomplete",
            _ => "response.completed",
        };
        self.emit(
            kind,
            Body::Response {
                response: &response,
            },
        );
        (self.take(), response)
    }

    /// Ends a stream that broke after its first byte with `response.failed`, the items so far marked incomplete.
    pub fn failed(&mut self, message: &str) -> Vec<u8> {
        self.start();
        let mut output = self.output.clone();
        if let Some(item) = self.open.and_then(|i| output.get_mut(i)) {
            item.set_status(Status::Incomplete);
        }
        let mut response = self.snapshot(Status::Failed, output);
        response.error = Some(ResponseError {
            code: "server_error",
            message: message.to_owned(),
        });
        self.emit(
            "response.failed",
            Body::Response {
                response: &response,
            },
        );
        self.take()
    }

    fn take(&mut self) -> Vec<u8> {
        self.events.as_mut().map(Events::take).unwrap_or_default()
    }

    fn emit(&mut self, kind: &'static str, body: Body<'_>) {
        if let Some(events) = &mut self.events {
            events.emit(kind, body);
        }
    }

    fn snapshot(&self, status: Status, output: Vec<OutputItem>) -> ResponseObject {
        let head = &self.head;
        ResponseObject::new(
            &head.id,
            head.created_at,
            &head.model,
            status,
            output,
            &head.echo,
        )
    }

    /// Opens the stream with `response.created` and `response.in_progress`, once.
    fn start(&mut self) {
        if std::mem::replace(&mut self.started, true) {
            return;
        }
        let response = self.snapshot(Status::InProgress, Vec::new());
        self.emit(
            "response.created",
            Body::Response {
                response: &response,
            },
        );
        self.emit(
            "response.in_progress",
            Body::Response {
                response: &response,
            },
        );
    }

    /// Takes in a chunk or a whole completion: its model (the first one named), then its one choice.
    fn take_answer(&mut self, answer: &ChatIn) {
        if let Some(model) = answer.model.as_deref().filter(|m| !m.is_empty()) {
            if !std::mem::replace(&mut self.model_named, true) {
                self.head.model = model.to_owned();
            }
        }
        self.start();
        let Some(choice) = answer.choices.first() else {
            return;
        };
        if let Some(message) = choice.delta.as_ref().or(choice.message.as_ref()) {
            if let Some(reasoning) = &message.reasoning_content {
                self.write(Writing::Reasoning, reasoning);
            }
            if let Some(text) = message.content.as_ref().and_then(text_of) {
                self.write(Writing::Text, &text);
            }
            for (position, call) in message.tool_calls.iter().flatten().enumerate() {
                self.call(call, position);
            }
        }
        if let Some(reason) = &choice.finish_reason {
            self.finish = Some(Finish::of(reason));
        }
    }

    fn item_id(&self, prefix: &str) -> String {
        format!("{prefix}_{}_{}", self.suffix, self.output.len())
    }

    /// Makes `item` the item being written, after closing the one before it.
    fn open(&mut self, item: OutputItem) -> usize {
        self.close(Status::Completed);
        let index = self.output.len();
        self.output.push(item);
        self.open = Some(index);
        if let (Some(events), Some(item)) = (&mut self.events, self.output.get(index)) {
            events.emit(
                "response.output_item.added",
                Body::Item {
                    output_index: index,
                    item,
                },
            );
        }
        index
    }

    fn open_message(&mut self) -> usize {
        let message = OutputItem::Message {
            id: self.item_id("msg"),
            role: Role::Assistant,
            status: Status::InProgress,
            content: Vec::new(),
        };
        let index = self.open(message);
        if let Some(OutputItem::Message { id, content, .. }) = self.output.get_mut(index) {
            content.push(output_text(""));
            if let (Some(events), Some(part)) = (&mut self.events, content.first()) {
                events.emit(
                    "response.content_part.added",
                    Body::Part {
                        item_id: id,
                        output_index: index,
                        content_index: 0,
                        part,
                    },
                );
            }
        }
        index
    }

    /// The item being written, when it is of the kind `is` accepts.
    fn open_if(&self, is: fn(&OutputItem) -> bool) -> Option<usize> {
        self.open.filter(|&i| self.output.get(i).is_some_and(is))
    }

    /// Adds `piece` to the open item of its kind (a message's text or reasoning), opening one first if needed.
    fn write(&mut self, kind: Writing, piece: &str) {
        if piece.is_empty() {
            return;
        }
        let open = match kind {
            Writing::Text => self.open_if(|i| matches!(i, OutputItem::Message { .. })),
            Writing::Reasoning => self.open_if(|i| matches!(i, OutputItem::Reasoning { .. })),
        };
        let index = match (open, kind) {
            (Some(index), _) => index,
            (None, Writing::Text) => self.open_message(),
            (None, Writing::Reasoning) => {
                let id = self.item_id("rs");
                self.open(OutputItem::Reasoning {
                    id,
                    summary: [],
                    content: vec![reasoning_text("")],
                    status: Status::InProgress,
                })
            }
        };
        let (event, logprobs) = match kind {
            Writing::Text => ("response.output_text.delta", Some([])),
            Writing::Reasoning => ("response.reasoning_text.delta", None),
        };
        if let Some((id, text)) = self.output.get_mut(index).and_then(OutputItem::text_mut) {
            text.push_str(piece);
            if let Some(events) = &mut self.events {
                events.emit(
                    event,
                    Body::TextDelta {
                        item_id: id,
                        output_index: index,
                        content_index: 0,
                        delta: piece,
                        logprobs,
                    },
                );
            }
        }
    }

    /// Opens or continues a tool call. A piece for a call closed earlier (an upstream that interleaves calls)
    /// still reaches its item, so the final response holds every call whole. A custom tool's call is written
    /// whole when it closes: its input is an argument inside the JSON the upstream streams.
    fn call(&mut self, call: &CallIn, position: usize) {
        let chat_index = call.index.unwrap_or(position);
        let function = call.function.as_ref();
        let index = match self.calls.get(&chat_index) {
            Some(&index) => index,
            None => {
                let upstream_name = function.and_then(|f| f.name.as_deref()).unwrap_or("");
                let declared = self.names.client_form(upstream_name);
                let call_id = call
                    .id
                    .clone()
                    .filter(|id| !id.is_empty())
                    .unwrap_or_else(|| self.item_id("call"));
                let (name, namespace) = (
                    declared.name.to_owned(),
                    declared.namespace.map(str::to_owned),
                );
                let item = if declared.custom {
                    OutputItem::CustomToolCall {
                        id: self.item_id("ctc"),
                        call_id,
                        name,
                        namespace,
                        input: String::new(),
                        status: Status::InProgress,
                    }
                } else {
                    OutputItem::FunctionCall {
                        id: self.item_id("fc"),
                        call_id,
                        name,
                        namespace,
                        arguments: String::new(),
                        status: Status::InProgress,
                    }
                };
                let index = self.open(item);
                self.calls.insert(chat_index, index);
                index
            }
        };
        let piece = match function.and_then(|f| f.arguments.as_ref()) {
            Some(Value::String(piece)) => piece.clone(),
            Some(Value::Null) | None => return,
            Some(other) => other.to_string(),
        };
        if piece.is_empty() {
            return;
        }
        match self.output.get_mut(index) {
            Some(OutputItem::FunctionCall { id, arguments, .. }) => {
                arguments.push_str(&piece);
                if let Some(events) = &mut self.events {
                    events.emit(
                        "response.function_call_arguments.delta",
                        Body::ArgumentsDelta {
                            item_id: id,
                            output_index: index,
                            delta: &piece,
                        },
                    );
                }
            }
            Some(OutputItem::CustomToolCall { input, .. }) => {
                let raw = self.custom_arguments.entry(index).or_default();
                raw.push_str(&piece);
                if self.open != Some(index) {
                    *input = custom_input(raw);
                }
            }
            _ => {}
        }
    }

    /// Closes the item being written as `status`, with its `.done` events.
    fn close(&mut self, status: Status) {
        let Some(index) = self.open.take() else {
            return;
        };
        let Some(item) = self.output.get_mut(index) else {
            return;
        };
        item.set_status(status);
        if let OutputItem::CustomToolCall { input, .. } = item {
            let raw = self.custom_arguments.get(&index);
            *input = custom_input(raw.map_or("", String::as_str));
        }
        let Some(events) = &mut self.events else {
            return;
        };
        match &*item {
            OutputItem::Message { id, content, .. } => {
                if let Some(part) = content.first() {
                    events.emit(
                        "response.output_text.done",
                        Body::TextDone {
                            item_id: id,
                            output_index: index,
                            content_index: 0,
                            text: &part.text,
                            logprobs: Some([]),
                        },
                    );
                    events.emit(
                        "response.content_part.done",
                        Body::Part {
                            item_id: id,
                            output_index: index,
                            content_index: 0,
                            part,
                        },
                    );
                }
            }
            OutputItem::Reasoning { id, content, .. } => {
                if let Some(part) = content.first() {
                    events.emit(
                        "response.reasoning_text.done",
                        Body::TextDone {
                            item_id: id,
                            output_index: index,
                            content_index: 0,
                            text: &part.text,
                            logprobs: None,
                        },
                    );
                }
            }
            OutputItem::CustomToolCall { id, input, .. } => {
                if !input.is_empty() {
                    events.emit(
                        "response.custom_tool_call_input.delta",
                        Body::ArgumentsDelta {
                            item_id: id,
                            output_index: index,
                            delta: input,
                        },
                    );
                }
                events.emit(
                    "response.custom_tool_call_input.done",
                    Body::InputDone {
                        item_id: id,
                        output_index: index,
                        input,
                    },
                );
            }
            OutputItem::FunctionCall { id, arguments, .. } => {
                events.emit(
                    "response.function_call_arguments.done",
                    Body::ArgumentsDone {
                        item_id: id,
                        output_index: index,
                        arguments,
                    },
                );
            }
        }
        events.emit(
            "response.output_item.done",
            Body::Item {
                output_index: index,
                item,
            },
        );
    }
}

/// The text of a message's content: a string, or the text of its parts.
fn text_of(content: &Value) -> Option<String> {
    match content {
        Value::String(text) => Some(text.clone()),
        Value::Array(parts) => Some(
            parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect(),
        ),
        _ => None,
    }
}

#[cfg(test)]
#[path = "answer_tests.rs"]
mod tests;
