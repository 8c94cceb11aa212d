//! An OpenAI chunk stream (the pipeline's streamed answer) as Anthropic's event stream, in the order the
//! official SDKs expect: `message_start`; per block `content_block_start`, its deltas (`thinking_delta` then a
//! `signature_delta`, `text_delta`, `input_json_delta`), `content_block_stop`; then `message_delta` with the
//! stop reason and usage, and `message_stop`. A switch between reasoning, text and tool calls closes the block
//! before; each tool call (by OpenAI `index`) is a block of its own. It holds only the state that order needs
//! and borrows each chunk's text rather than copying it; it never reads anything but the chunks it is given.
//!
//! An upstream that interleaves the arguments of several calls (none known does) has a later piece of an
//! earlier call sent as a delta of that call's block, after its `content_block_stop`: the SDKs accumulate by
//! index, and the alternative, holding calls back, would stop streaming them.

use std::borrow::Cow;

use serde::Serialize;

use super::error::ErrorBody;
use super::wire::{fallback_call_id, message_id, Block, Message, StopReason, Usage};
use crate::openai::chat::Usage as ChatUsage;
use crate::openai::chunk::{CallDelta, Chunk, Delta};

/// The keep-alive event.
pub const PING: &[u8] = b"event: ping\ndata: {\"type\": \"ping\"}\n\n";

/// One event of Anthropic's stream.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Event<'a> {
    MessageStart {
        message: Message<'a>,
    },
    ContentBlockStart {
        index: usize,
        content_block: Block<'a>,
    },
    ContentBlockDelta {
        index: usize,
        delta: BlockDelta<'a>,
    },
    ContentBlockStop {
        index: usize,
    },
    MessageDelta {
        delta: Stop,
        usage: Usage,
    },
    MessageStop,
}

impl Event<'_> {
    /// The `event:` name, which is the data's `type`.
    fn name(&self) -> &'static str {
        match self {
            Event::MessageStart { .. } => "message_start",
            Event::ContentBlockStart { .. } => "content_block_start",
            Event::ContentBlockDelta { .. } => "content_block_delta",
            Event::ContentBlockStop { .. } => "content_block_stop",
            Event::MessageDelta { .. } => "message_delta",
            Event::MessageStop => "message_stop",
        }
    }
}

/// What a `content_block_delta` adds; its `type` is the variant's name with `_delta` (`text_delta`, ...).
#[derive(Serialize)]
#[serde(tag = "type")]
enum BlockDelta<'a> {
    #[serde(rename = "text_delta")]
    Text { text: &'a str },
    #[serde(rename = "thinking_delta")]
    Thinking { thinking: &'a str },
    #[serde(rename = "signature_delta")]
    Signature { signature: &'a str },
    #[serde(rename = "input_json_delta")]
    InputJson { partial_json: &'a str },
}

#[derive(Serialize)]
struct Stop {
    stop_reason: StopReason,
    stop_sequence: Option<&'static str>,
}

/// What the open block holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Thinking,
    Text,
    /// The tool call at this OpenAI `index`.
    Call(usize),
}

/// The block being written.
#[derive(Debug, Clone, Copy)]
struct Open {
    index: usize,
    kind: Kind,
}

/// Appends one framed event to `out`.
fn emit(out: &mut Vec<u8>, name: &str, data: &impl Serialize) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    // Writing strings, numbers and JSON values into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, data);
    out.extend_from_slice(b"\n\n");
}

fn event(out: &mut Vec<u8>, event: &Event<'_>) {
    emit(out, event.name(), event);
}

/// The state of one answer's event stream.
pub struct Events {
    /// The model named until the first chunk names the one that answers.
    model: String,
    /// The prompt's estimated tokens, reported in `message_start`.
    input_tokens: u32,
    /// The message id, once `message_start` is sent.
    id: Option<String>,
    open: Option<Open>,
    /// Blocks opened so far.
    blocks: usize,
    /// Each call's OpenAI index and its block's index, in order.
    calls: Vec<(usize, usize)>,
    /// The upstream's finish reason, once it gave one.
    finish: Option<String>,
}

impl Events {
    /// A stream of an answer to a request for `model` whose prompt is estimated at `input_tokens`.
    pub fn new(model: &str, input_tokens: u32) -> Events {
        Events {
            model: model.to_owned(),
            input_tokens,
            id: None,
            open: None,
            blocks: 0,
            calls: Vec::new(),
            finish: None,
        }
    }

    /// The events for one OpenAI chunk's JSON, if it adds any. A payload that is not a chunk adds none.
    pub fn chunk(&mut self, payload: &[u8]) -> Option<Vec<u8>> {
        let chunk: Chunk<'_> = serde_json::from_slice(payload).ok()?;
        let mut out = Vec::new();
        if self.id.is_none() {
            let model = chunk.model.as_ref().map(|m| m.0.as_ref());
            self.start(chunk.id.as_ref().map(|i| i.0.as_ref()), model, &mut out);
        }
        if let Some(choice) = chunk.choices.into_iter().next() {
            if let Some(delta) = choice.delta {
                self.delta(delta, &mut out);
            }
            if let Some(finish) = choice.finish_reason {
                self.finish = Some(finish.0.into_owned());
                self.close(&mut out);
            }
        }
        (!out.is_empty()).then_some(out)
    }

    /// The end of a completed stream: the open block closed, the stop reason and `usage`, `message_stop`.
    pub fn done(&mut self, usage: ChatUsage) -> Vec<u8> {
        let mut out = Vec::new();
        if self.id.is_none() {
            self.start(None, None, &mut out);
        }
        self.close(&mut out);
        let stop_reason = StopReason::of(self.finish.as_deref(), !self.calls.is_empty());
        let delta = Event::MessageDelta {
            delta: Stop {
                stop_reason,
                stop_sequence: None,
            },
            usage: Usage {
                input_tokens: usage.prompt_tokens,
                output_tokens: usage.completion_tokens,
            },
        };
        event(&mut out, &delta);
        event(&mut out, &Event::MessageStop);
        out
    }

    /// The end of a stream that failed after its first byte: one `error` event, of the type HTTP `status` has.
    pub fn failed(&mut self, status: u16, message: &str) -> Vec<u8> {
        let mut out = Vec::new();
        emit(&mut out, "error", &ErrorBody::new(status, message));
        out
    }

    fn start(&mut self, upstream_id: Option<&str>, model: Option<&str>, out: &mut Vec<u8>) {
        let id = message_id(upstream_id);
        let usage = Usage {
            input_tokens: self.input_tokens,
            output_tokens: 0,
        };
        let model = model.unwrap_or(&self.model);
        let message = Message::new(id.as_str(), model, Vec::new(), None, usage);
        event(out, &Event::MessageStart { message });
        self.id = Some(id);
    }

    fn delta(&mut self, delta: Delta<'_>, out: &mut Vec<u8>) {
        if let Some(thinking) = delta.reasoning_content.filter(|t| !t.0.is_empty()) {
            let index = self.open(Kind::Thinking, out);
            let delta = BlockDelta::Thinking {
                thinking: &thinking.0,
            };
            event(out, &Event::ContentBlockDelta { index, delta });
        }
        if let Some(text) = delta.content.filter(|t| !t.0.is_empty()) {
            let index = self.open(Kind::Text, out);
            let delta = BlockDelta::Text { text: &text.0 };
            event(out, &Event::ContentBlockDelta { index, delta });
        }
        for call in delta.tool_calls.unwrap_or_default() {
            self.call(call, out);
        }
    }

    /// One entry of a chunk's `tool_calls`: opens the call's block the first time its index is seen, then sends
    /// its arguments' piece.
    fn call(&mut self, call: CallDelta<'_>, out: &mut Vec<u8>) {
        let openai = call
            .index
            .unwrap_or_else(|| match (&call.id, self.calls.last()) {
                (None, Some(&(last, _))) => last,
                _ => self.calls.len(),
            });
        let function = call.function;
        let known = self.calls.iter().find(|(i, _)| *i == openai).map(|c| c.1);
        let index = match known {
            Some(index) => index,
            None => {
                self.close(out);
                let index = self.next_block();
                let id = match &call.id {
                    Some(id) => id.0.clone(),
                    None => Cow::Owned(fallback_call_id(self.id.as_deref().unwrap_or(""), openai)),
                };
                let name = function
                    .as_ref()
                    .and_then(|f| f.name.as_ref())
                    .map_or(Cow::Borrowed(""), |n| n.0.clone());
                let content_block = Block::tool_use(id, name);
                event(
                    out,
                    &Event::ContentBlockStart {
                        index,
                        content_block,
                    },
                );
                self.open = Some(Open {
                    index,
                    kind: Kind::Call(openai),
                });
                self.calls.push((openai, index));
                index
            }
        };
        if let Some(piece) = function
            .and_then(|f| f.arguments)
            .filter(|a| !a.0.is_empty())
        {
            let delta = BlockDelta::InputJson {
                partial_json: &piece.0,
            };
            event(out, &Event::ContentBlockDelta { index, delta });
        }
    }

    /// The index of a block of `kind`, opening one (and closing the block before) unless it is the open one.
    fn open(&mut self, kind: Kind, out: &mut Vec<u8>) -> usize {
        if let Some(open) = self.open.filter(|o| o.kind == kind) {
            return open.index;
        }
        self.close(out);
        let index = self.next_block();
        let content_block = match kind {
            Kind::Thinking => Block::thinking(""),
            _ => Block::Text { text: "".into() },
        };
        event(
            out,
            &Event::ContentBlockStart {
                index,
                content_block,
            },
        );
        self.open = Some(Open { index, kind });
        index
    }

    fn next_block(&mut self) -> usize {
        self.blocks += 1;
        self.blocks - 1
    }

    /// Closes the open block, if any; a thinking block gets its (empty) signature first, as Anthropic sends one.
    fn close(&mut self, out: &mut Vec<u8>) {
        let Some(open) = self.open.take() else {
            return;
        };
        if open.kind == Kind::Thinking {
            let delta = BlockDelta::Signature { signature: "" };
            let index = open.index;
            event(out, &Event::ContentBlockDelta { index, delta });
        }
        event(out, &Event::ContentBlockStop { index: open.index });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn chunk(delta: Value, finish: Value) -> Value {
        json!({"id": "chatcmpl-s1", "object": "chat.completion.chunk", "model": "llama",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    }

    fn usage_chunk() -> Value {
        json!({"id": "chatcmpl-s1", "object": "chat.completion.chunk", "model": "llama", "choices": [],
            "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}})
    }

    fn call(index: usize, id: Option<&str>, name: Option<&str>, arguments: &str) -> Value {
        let mut function = json!({"arguments": arguments});
        if let Some(name) = name {
            function["name"] = json!(name);
        }
        let mut entry = json!({"index": index, "function": function});
        if let Some(id) = id {
            entry["id"] = json!(id);
            entry["type"] = json!("function");
        }
        chunk(json!({"tool_calls": [entry]}), Value::Null)
    }

    /// The events a stream of `chunks` becomes once completed, as (name, data) pairs; checks each frame's
    /// `event:` name is its data's `type`.
    fn events(chunks: &[Value]) -> Vec<(String, Value)> {
        let mut events = Events::new("auto", 40);
        let mut out = Vec::new();
        for c in chunks {
            out.extend(events.chunk(c.to_string().as_bytes()).unwrap_or_default());
        }
        out.extend(events.done(ChatUsage {
            prompt_tokens: 12,
            completion_tokens: 5,
        }));
        parse(&out)
    }

    fn parse(out: &[u8]) -> Vec<(String, Value)> {
        let text = String::from_utf8(out.to_vec()).unwrap();
        assert!(text.ends_with("\n\n"), "{text}");
        text.trim_end()
            .split("\n\n")
            .map(|frame| {
                let (name, data) = frame.split_once('\n').unwrap();
                let name = name.strip_prefix("event: ").unwrap().to_owned();
                let data: Value =
                    serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
                assert_eq!(data["type"], name.as_str(), "{frame}");
                (name, data)
            })
            .collect()
    }

    fn names(events: &[(String, Value)]) -> Vec<&str> {
        events.iter().map(|(n, _)| n.as_str()).collect()
    }

    #[test]
    fn a_text_stream_has_the_order_the_sdks_expect() {
        let events = events(&[
            chunk(json!({"role": "assistant", "content": ""}), Value::Null),
            chunk(json!({"content": "Hel"}), Value::Null),
            chunk(json!({"content": "lo"}), Value::Null),
            chunk(json!({}), json!("stop")),
            usage_chunk(),
        ]);
        assert_eq!(
            names(&events),
            [
                "message_start",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
        assert_eq!(
            events[0].1,
            json!({"type": "message_start", "message": {"id": "msg_s1", "type": "message", "role": "assistant",
                "content": [], "model": "llama", "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": 40, "output_tokens": 0}}})
        );
        assert_eq!(
            events[1].1,
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
        );
        assert_eq!(
            events[2].1,
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hel"}})
        );
        assert_eq!(
            events[4].1,
            json!({"type": "content_block_stop", "index": 0})
        );
        assert_eq!(
            events[5].1,
            json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null},
                "usage": {"input_tokens": 12, "output_tokens": 5}})
        );
    }

    #[test]
    fn reasoning_then_text_are_two_blocks_and_thinking_is_signed() {
        let events = events(&[
            chunk(
                json!({"role": "assistant", "reasoning_content": "Two and "}),
                Value::Null,
            ),
            chunk(json!({"reasoning_content": "two."}), Value::Null),
            chunk(json!({"content": "4"}), Value::Null),
            chunk(json!({}), json!("stop")),
        ]);
        assert_eq!(
            names(&events),
            [
                "message_start",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
        assert_eq!(
            events[1].1["content_block"],
            json!({"type": "thinking", "thinking": "", "signature": ""})
        );
        assert_eq!(
            events[2].1["delta"],
            json!({"type": "thinking_delta", "thinking": "Two and "})
        );
        assert_eq!(
            events[4].1["delta"],
            json!({"type": "signature_delta", "signature": ""})
        );
        assert_eq!(events[6].1["index"], 1);
        assert_eq!(
            events[7].1["delta"],
            json!({"type": "text_delta", "text": "4"})
        );
    }

    #[test]
    fn text_then_two_tool_calls_are_three_blocks() {
        let events = events(&[
            chunk(
                json!({"role": "assistant", "content": "Looking."}),
                Value::Null,
            ),
            call(0, Some("call_a"), Some("read"), ""),
            call(0, None, None, "{\"path\":"),
            call(0, None, None, "\"a.txt\"}"),
            call(1, Some("call_b"), Some("list"), "{}"),
            chunk(json!({}), json!("tool_calls")),
            usage_chunk(),
        ]);
        assert_eq!(
            names(&events),
            [
                "message_start",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
        assert_eq!(
            events[4].1,
            json!({"type": "content_block_start", "index": 1,
                "content_block": {"type": "tool_use", "id": "call_a", "name": "read", "input": {}}})
        );
        let args: String = events[5..7]
            .iter()
            .map(|(_, d)| {
                assert_eq!(d["delta"]["type"], "input_json_delta");
                d["delta"]["partial_json"].as_str().unwrap().to_owned()
            })
            .collect();
        assert_eq!(args, "{\"path\":\"a.txt\"}");
        assert_eq!(events[8].1["index"], 2);
        assert_eq!(events[8].1["content_block"]["id"], "call_b");
        assert_eq!(
            events[9].1["delta"],
            json!({"type": "input_json_delta", "partial_json": "{}"})
        );
        assert_eq!(events[11].1["delta"]["stop_reason"], "tool_use");
    }

    #[test]
    fn a_call_without_an_id_or_index_gets_them() {
        let mut entry = chunk(
            json!({"tool_calls": [{"function": {"name": "f", "arguments": "{}"}}]}),
            Value::Null,
        );
        entry["id"] = json!("chatcmpl-x");
        let events = events(&[entry, chunk(json!({}), json!("stop"))]);
        assert_eq!(events[1].1["content_block"]["id"], "toolu_x_0");
        assert_eq!(events.last().map(|e| e.0.as_str()), Some("message_stop"));
        assert_eq!(
            events[events.len() - 2].1["delta"]["stop_reason"],
            "tool_use"
        );
    }

    #[test]
    fn a_usage_only_final_chunk_opens_no_block() {
        let mut events = Events::new("auto", 3);
        assert!(events
            .chunk(
                chunk(json!({"content": "x"}), json!("length"))
                    .to_string()
                    .as_bytes()
            )
            .is_some());
        assert_eq!(events.chunk(usage_chunk().to_string().as_bytes()), None);
        let end = parse(&events.done(ChatUsage::default()));
        assert_eq!(names(&end), ["message_delta", "message_stop"]);
        assert_eq!(end[0].1["delta"]["stop_reason"], "max_tokens");
    }

    #[test]
    fn a_first_chunk_with_nothing_in_it_still_starts_the_message() {
        let mut events = Events::new("gemini-2.5-flash", 3);
        let first = parse(
            &events
                .chunk(br#"{"choices":[{"delta":{"role":"assistant"}}]}"#)
                .unwrap(),
        );
        assert_eq!(names(&first), ["message_start"]);
        assert_eq!(first[0].1["message"]["model"], "gemini-2.5-flash");
        assert_eq!(events.chunk(b"not a chunk"), None);
    }

    #[test]
    fn a_failure_after_the_first_byte_is_one_error_event() {
        let mut events = Events::new("auto", 3);
        events.chunk(
            chunk(json!({"content": "par"}), Value::Null)
                .to_string()
                .as_bytes(),
        );
        let failed = parse(&events.failed(502, "The upstream failed mid-answer: reset"));
        assert_eq!(
            failed,
            [(
                "error".to_owned(),
                json!({"type": "error", "error": {"type": "overloaded_error",
                    "message": "The upstream failed mid-answer: reset"}})
            )]
        );
        assert_eq!(
            PING, b"event: ping\ndata: {\"type\": \"ping\"}\n\n",
            "the keep-alive is Anthropic's ping"
        );
    }
}
