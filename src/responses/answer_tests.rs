use serde_json::{json, Value};

use super::*;
use crate::responses::tools::offer;

fn head() -> Head {
    Head {
        id: "resp_abc".into(),
        created_at: 100,
        model: "auto".into(),
        echo: Echo::default(),
    }
}

fn names() -> ToolNames {
    offer(&[
        json!({"type": "namespace", "name": "crm", "description": "CRM",
        "tools": [{"type": "function", "name": "lookup"}]}),
        json!({"type": "custom", "name": "apply_patch"}),
    ])
    .unwrap()
    .names
}

/// The events that open every stream.
const OPEN: [&str; 2] = ["response.created", "response.in_progress"];
/// The events that open a message item and its text part.
const MESSAGE_OPEN: [&str; 2] = ["response.output_item.added", "response.content_part.added"];
const TEXT_DELTA: &str = "response.output_text.delta";
/// The events that close a message item.
const MESSAGE_CLOSE: [&str; 3] = [
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
];
/// The events of one function call whose arguments come in one piece.
const CALL: [&str; 4] = [
    "response.output_item.added",
    "response.function_call_arguments.delta",
    "response.function_call_arguments.done",
    "response.output_item.done",
];
const COMPLETED: &str = "response.completed";

const USAGE: Usage = Usage {
    prompt_tokens: 9,
    completion_tokens: 4,
};

fn chunk(delta: Value, finish: Option<&str>) -> Vec<u8> {
    json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "served-model",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    .to_string()
    .into_bytes()
}

/// A chunk with one tool call entry: its opening (`id`, `name`) with arguments, or more of its arguments.
fn call(index: usize, opening: Option<(&str, &str)>, arguments: &str) -> Vec<u8> {
    let mut entry = json!({"index": index, "function": {"arguments": arguments}});
    if let Some((id, name)) = opening {
        entry["id"] = json!(id);
        entry["type"] = json!("function");
        entry["function"]["name"] = json!(name);
    }
    chunk(json!({"tool_calls": [entry]}), None)
}

fn usage_chunk() -> Vec<u8> {
    json!({"id": "chatcmpl-1", "model": "served-model", "choices": [],
        "usage": {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}})
    .to_string()
    .into_bytes()
}

/// Every event of `frames`, checked to be framed with its type and numbered from `first` without gaps.
fn events(frames: &[u8], first: u64) -> Vec<Value> {
    let text = String::from_utf8(frames.to_vec()).unwrap();
    let events: Vec<Value> = text
        .split_terminator("\n\n")
        .map(|frame| {
            let (name, data) = frame.split_once('\n').unwrap();
            let event: Value = serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
            assert_eq!(name.strip_prefix("event: ").unwrap(), event["type"]);
            event
        })
        .collect();
    for (n, event) in events.iter().enumerate() {
        assert_eq!(event["sequence_number"], first + n as u64, "{event}");
    }
    events
}

fn kinds(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

/// Streams `chunks` and ends; the events (numbered from 0 throughout) and the final response.
fn stream(chunks: &[Vec<u8>]) -> (Vec<Value>, ResponseObject) {
    let mut assembler = Assembler::new(head(), names());
    let mut frames = Vec::new();
    for c in chunks {
        frames.extend(assembler.chunk(c));
    }
    let (end, response) = assembler.done(USAGE);
    frames.extend(end);
    (events(&frames, 0), response)
}

#[test]
fn a_text_stream_opens_writes_and_closes_one_message() {
    let (events, response) = stream(&[
        chunk(json!({"role": "assistant", "content": ""}), None),
        chunk(json!({"content": "Hel"}), None),
        chunk(json!({"content": "lo"}), None),
        chunk(json!({}), Some("stop")),
        usage_chunk(),
    ]);
    assert_eq!(
        kinds(&events),
        [
            &OPEN[..],
            &MESSAGE_OPEN,
            &[TEXT_DELTA, TEXT_DELTA],
            &MESSAGE_CLOSE,
            &[COMPLETED]
        ]
        .concat()
    );
    assert_eq!(events[0]["response"]["status"], "in_progress");
    assert_eq!(events[0]["response"]["model"], "served-model");
    assert_eq!(events[0]["response"]["output"], json!([]));
    assert_eq!(
        events[2]["item"],
        json!({"type": "message", "id": "msg_abc_0", "role": "assistant", "status": "in_progress", "content": []})
    );
    assert_eq!(
        events[4],
        json!({"type": "response.output_text.delta", "sequence_number": 4, "item_id": "msg_abc_0",
            "output_index": 0, "content_index": 0, "delta": "Hel", "logprobs": []})
    );
    assert_eq!(events[6]["text"], "Hello");
    assert_eq!(events[8]["item"]["status"], "completed");
    assert_eq!(response.status, Status::Completed);
    assert_eq!(response.output_text, "Hello");
    assert_eq!(
        serde_json::to_value(&events[9]["response"]).unwrap(),
        serde_json::to_value(&response).unwrap()
    );
    assert_eq!(events[9]["response"]["usage"]["total_tokens"], 13);
}

#[test]
fn a_streamed_response_ends_as_the_whole_answer_would_have() {
    let (_, streamed) = stream(&[
        chunk(json!({"role": "assistant", "content": ""}), None),
        chunk(json!({"reasoning_content": "Think"}), None),
        chunk(json!({"reasoning_content": "ing."}), None),
        chunk(json!({"content": "Let me look."}), None),
        call(0, Some(("call_1", "crm__lookup")), "{\"q\":"),
        call(0, None, "1}"),
        call(1, Some(("call_2", "get_weather")), "{}"),
        chunk(json!({}), Some("tool_calls")),
    ]);
    let completion = json!({"id": "chatcmpl-1", "object": "chat.completion", "model": "served-model",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant",
            "content": "Let me look.", "reasoning_content": "Thinking.", "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "crm__lookup", "arguments": "{\"q\":1}"}},
                {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]}}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}});
    let whole = Assembler::new(head(), names())
        .whole(completion.to_string().as_bytes())
        .unwrap();
    assert_eq!(streamed, whole);
    assert_eq!(
        serde_json::to_value(&whole.output).unwrap(),
        json!([
            {"type": "reasoning", "id": "rs_abc_0", "summary": [],
             "content": [{"type": "reasoning_text", "text": "Thinking."}], "status": "completed"},
            {"type": "message", "id": "msg_abc_1", "role": "assistant", "status": "completed",
             "content": [{"type": "output_text", "text": "Let me look.", "annotations": [], "logprobs": []}]},
            {"type": "function_call", "id": "fc_abc_2", "call_id": "call_1", "name": "lookup", "namespace": "crm",
             "arguments": "{\"q\":1}", "status": "completed"},
            {"type": "function_call", "id": "fc_abc_3", "call_id": "call_2", "name": "get_weather",
             "arguments": "{}", "status": "completed"}
        ])
    );
}

#[test]
fn two_calls_stream_their_arguments_one_item_after_the_other() {
    let (events, response) = stream(&[
        chunk(json!({"role": "assistant", "content": null}), None),
        call(0, Some(("call_1", "a")), ""),
        call(0, None, "{\"x\":1}"),
        call(1, Some(("call_2", "b")), "{}"),
        chunk(json!({}), Some("tool_calls")),
        usage_chunk(),
    ]);
    assert_eq!(
        kinds(&events),
        [&OPEN[..], &CALL, &CALL, &[COMPLETED]].concat()
    );
    assert_eq!(
        events[2]["item"],
        json!({"type": "function_call", "id": "fc_abc_0", "call_id": "call_1", "name": "a", "arguments": "",
            "status": "in_progress"})
    );
    assert_eq!(
        events[4],
        json!({"type": "response.function_call_arguments.done", "sequence_number": 4, "item_id": "fc_abc_0",
            "output_index": 0, "arguments": "{\"x\":1}"})
    );
    assert_eq!(events[6]["output_index"], 1);
    assert_eq!(events[9]["item"]["arguments"], "{}");
    assert_eq!(response.output.len(), 2);
    assert_eq!(response.output_text, "");
}

#[test]
fn the_output_cap_ends_the_response_incomplete() {
    let (events, response) = stream(&[
        chunk(json!({"content": "Once upon"}), None),
        chunk(json!({}), Some("length")),
    ]);
    let last = events.last().unwrap();
    assert_eq!(last["type"], "response.incomplete");
    assert_eq!(last["response"]["status"], "incomplete");
    assert_eq!(
        last["response"]["incomplete_details"],
        json!({"reason": "max_output_tokens"})
    );
    assert_eq!(events[events.len() - 2]["item"]["status"], "incomplete");
    assert_eq!(response.status, Status::Incomplete);
}

#[test]
fn a_failure_after_the_first_byte_ends_with_response_failed() {
    let mut assembler = Assembler::new(head(), names());
    let mut frames = assembler.chunk(&chunk(json!({"content": "Half"}), None));
    frames.extend(assembler.failed("The upstream failed mid-answer: reset"));
    let events = events(&frames, 0);
    assert_eq!(
        kinds(&events),
        [&OPEN[..], &MESSAGE_OPEN, &[TEXT_DELTA, "response.failed"]].concat()
    );
    let failed = &events[5]["response"];
    assert_eq!(failed["status"], "failed");
    assert_eq!(
        failed["error"],
        json!({"code": "server_error", "message": "The upstream failed mid-answer: reset"})
    );
    assert_eq!(failed["output"][0]["status"], "incomplete");
    assert_eq!(failed["output"][0]["content"][0]["text"], "Half");
}

#[test]
fn usage_only_chunks_open_nothing_and_an_empty_answer_is_one_empty_message() {
    let mut assembler = Assembler::new(head(), names());
    let first = events(&assembler.chunk(&chunk(json!({"content": ""}), None)), 0);
    assert_eq!(kinds(&first), OPEN);
    assert!(assembler.chunk(&usage_chunk()).is_empty());
    assert!(assembler.chunk(b"not json").is_empty());
    let (end, response) = assembler.done(USAGE);
    let end = events(&end, 2);
    assert_eq!(
        kinds(&end),
        [&MESSAGE_OPEN[..], &MESSAGE_CLOSE, &[COMPLETED]].concat()
    );
    assert_eq!(response.output.len(), 1);
    assert_eq!(response.output_text, "");
}

#[test]
fn sequence_numbers_keep_rising_across_every_chunk() {
    let mut assembler = Assembler::new(head(), names());
    let mut seen = Vec::new();
    for piece in ["a", "b", "c"] {
        let frames = assembler.chunk(&chunk(json!({"content": piece}), None));
        let first = seen.len() as u64;
        seen.extend(events(&frames, first));
    }
    let (end, _) = assembler.done(USAGE);
    let first = seen.len() as u64;
    seen.extend(events(&end, first));
    let numbers: Vec<u64> = seen
        .iter()
        .map(|e| e["sequence_number"].as_u64().unwrap())
        .collect();
    assert!(numbers.windows(2).all(|w| w[1] == w[0] + 1), "{numbers:?}");
}

#[test]
fn whole_answers_without_call_ids_get_their_own_and_object_arguments_become_text() {
    let completion = json!({"model": "m", "choices": [{"finish_reason": "tool_calls", "message": {
        "content": null, "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": {"a": 1}}}]}}]});
    let response = Assembler::new(head(), names())
        .whole(completion.to_string().as_bytes())
        .unwrap();
    assert_eq!(
        serde_json::to_value(&response.output).unwrap(),
        json!([{"type": "function_call", "id": "fc_abc_0", "call_id": "call_abc_0", "name": "f",
            "arguments": "{\"a\":1}", "status": "completed"}])
    );
    assert_eq!(
        response.usage.map(|u| u.total_tokens),
        Some(0),
        "no usage reported: zeros"
    );
    assert!(Assembler::new(head(), names()).whole(b"{").is_err());
}

#[test]
fn a_custom_tool_call_is_written_whole_with_its_input() {
    let (events, response) = stream(&[
        call(0, Some(("call_p", "apply_patch")), "{\"input\":\"*** Be"),
        call(0, None, "gin Patch\"}"),
        chunk(json!({}), Some("tool_calls")),
    ]);
    assert_eq!(
        kinds(&events),
        [
            &OPEN[..],
            &[
                "response.output_item.added",
                "response.custom_tool_call_input.delta",
                "response.custom_tool_call_input.done",
                "response.output_item.done",
                COMPLETED
            ]
        ]
        .concat()
    );
    assert_eq!(
        events[2]["item"],
        json!({"type": "custom_tool_call", "id": "ctc_abc_0", "call_id": "call_p", "name": "apply_patch",
            "input": "", "status": "in_progress"})
    );
    assert_eq!(events[3]["delta"], "*** Begin Patch");
    assert_eq!(events[4]["input"], "*** Begin Patch");
    assert_eq!(events[5]["item"]["input"], "*** Begin Patch");
    let completion = json!({"model": "served-model", "choices": [{"finish_reason": "tool_calls", "message": {
        "tool_calls": [{"id": "call_p", "type": "function",
            "function": {"name": "apply_patch", "arguments": "{\"input\":\"*** Begin Patch\"}"}}]}}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 4}});
    let whole = Assembler::new(head(), names())
        .whole(completion.to_string().as_bytes())
        .unwrap();
    assert_eq!(response, whole);
}
