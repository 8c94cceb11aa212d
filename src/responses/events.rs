//! The Responses stream's events and their SSE framing (`event: <type>` then `data: <json>`), each with the
//! next `sequence_number`. Only writes events; what to write when is `answer.rs`'s.

use serde::Serialize;

use super::output::{OutputItem, OutputText, ResponseObject};

/// What one event carries besides its type and sequence number.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Body<'a> {
    /// `response.created`, `response.in_progress`, `response.completed`, `response.incomplete`,
    /// `response.failed`.
    Response {
        /// The response as it stands.
        response: &'a ResponseObject,
    },
    /// `response.output_item.added` and `response.output_item.done`.
    Item {
        /// The item's place in `output`.
        output_index: usize,
        /// The item as it stands.
        item: &'a OutputItem,
    },
    /// `response.content_part.added` and `response.content_part.done`.
    Part {
        /// The message's id.
        item_id: &'a str,
        /// The message's place in `output`.
        output_index: usize,
        /// The part's place in the message.
        content_index: usize,
        /// The part as it stands.
        part: &'a OutputText,
    },
    /// `response.output_text.delta` (with `logprobs`), `response.reasoning_text.delta`.
    TextDelta {
        /// The item's id.
        item_id: &'a str,
        /// The item's place in `output`.
        output_index: usize,
        /// The part's place in the item.
        content_index: usize,
        /// The new text.
        delta: &'a str,
        /// Empty for output text; absent for reasoning.
        #[serde(skip_serializing_if = "Option::is_none")]
        logprobs: Option<[(); 0]>,
    },
    /// `response.output_text.done` (with `logprobs`), `response.reasoning_text.done`.
    TextDone {
        /// The item's id.
        item_id: &'a str,
        /// The item's place in `output`.
        output_index: usize,
        /// The part's place in the item.
        content_index: usize,
        /// The whole text.
        text: &'a str,
        /// Empty for output text; absent for reasoning.
        #[serde(skip_serializing_if = "Option::is_none")]
        logprobs: Option<[(); 0]>,
    },
    /// `response.function_call_arguments.delta`, `response.custom_tool_call_input.delta`.
    ArgumentsDelta {
        /// The call item's id.
        item_id: &'a str,
        /// The call's place in `output`.
        output_index: usize,
        /// The next piece of the arguments.
        delta: &'a str,
    },
    /// `response.function_call_arguments.done`.
    ArgumentsDone {
        /// The call item's id.
        item_id: &'a str,
        /// The call's place in `output`.
        output_index: usize,
        /// The whole arguments.
        arguments: &'a str,
    },
    /// `response.custom_tool_call_input.done`.
    InputDone {
        /// The call item's id.
        item_id: &'a str,
        /// The call's place in `output`.
        output_index: usize,
        /// The whole input.
        input: &'a str,
    },
}

#[derive(Serialize)]
struct Frame<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    sequence_number: u64,
    #[serde(flatten)]
    body: Body<'a>,
}

/// The framed events of one stream so far, numbered in order.
#[derive(Debug, Default)]
pub struct Events {
    next: u64,
    out: Vec<u8>,
}

impl Events {
    /// Frames event `kind` with `body` as the stream's next event.
    pub fn emit(&mut self, kind: &'static str, body: Body<'_>) {
        let frame = Frame {
            kind,
            sequence_number: self.next,
            body,
        };
        // Strings, numbers and JSON values only: serialising cannot fail.
        let Ok(data) = serde_json::to_vec(&frame) else {
            return;
        };
        self.next += 1;
        self.out.extend_from_slice(b"event: ");
        self.out.extend_from_slice(kind.as_bytes());
        self.out.extend_from_slice(b"\ndata: ");
        self.out.extend_from_slice(&data);
        self.out.extend_from_slice(b"\n\n");
    }

    /// The frames written since the last take.
    pub fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_name_the_event_and_number_it() {
        let mut events = Events::default();
        events.emit(
            "response.output_text.delta",
            Body::TextDelta {
                item_id: "msg_1",
                output_index: 0,
                content_index: 0,
                delta: "Hi",
                logprobs: Some([]),
            },
        );
        events.emit(
            "response.function_call_arguments.done",
            Body::ArgumentsDone {
                item_id: "fc_1",
                output_index: 1,
                arguments: "{}",
            },
        );
        assert_eq!(
            String::from_utf8(events.take()).unwrap(),
            concat!(
                "event: response.output_text.delta\n",
                r#"data: {"type":"response.output_text.delta","sequence_number":0,"item_id":"msg_1","output_index":0,"content_index":0,"delta":"Hi","logprobs":[]}"#,
                "\n\n",
                "event: response.function_call_arguments.done\n",
                r#"data: {"type":"response.function_call_arguments.done","sequence_number":1,"item_id":"fc_1","output_index":1,"arguments":"{}"}"#,
                "\n\n"
            )
        );
        assert!(events.take().is_empty());
    }
}
