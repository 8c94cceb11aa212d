//! Cohere, natively (`/v2/chat`): its request is close to OpenAI's, its answer and its named stream events are
//! not, and tool calling is reliable only here (the compatibility endpoint is not).

use std::borrow::Cow;

use awc::http::header::{HeaderMap, AUTHORIZATION};
use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::classify::{classify, ErrorTable, Signal};
use super::cohere_embed;
use super::{secret_header, Flow, Provider, StreamDecoder, Target, UpstreamRequest};
use crate::failure::{Failure, FailureKind};
use crate::openai::answer::{
    AssistantMessage, ChatChunk, ChatCompletion, Delta, FinishReason, StreamIds, ToolCallDelta,
    ToolCalls,
};
use crate::openai::chat::{ChatRequest, Usage};
use crate::openai::embeddings::{EmbeddingsRequest, Vectors};
use crate::openai::sse::SseEvent;
use crate::timefmt::now_unix_secs;

/// Cohere statuses beyond the OpenAI baseline: 498 is an invalid token, 499 a cancelled request.
const COHERE_ERRORS: ErrorTable = ErrorTable {
    codes: &[],
    statuses: &[(498, Signal::InvalidKey), (499, Signal::Transient)],
};

/// The Cohere adapter.
#[derive(Debug, Default)]
pub struct Cohere;

impl Provider for Cohere {
    fn chat_request(
        &self,
        target: &Target<'_>,
        request: &ChatRequest,
    ) -> Result<UpstreamRequest, String> {
        let headers = vec![secret_header(AUTHORIZATION, "Bearer ", target.secret)?];
        let url = format!("{}/v2/chat", target.base_url);
        UpstreamRequest::post_json(url, headers, &translate_request(request, target.model))
    }

    fn probe_request(&self, target: &Target<'_>) -> UpstreamRequest {
        let headers = secret_header(AUTHORIZATION, "Bearer ", target.secret)
            .into_iter()
            .collect();
        UpstreamRequest::get(
            format!("{}/v1/models?page_size=1", target.base_url),
            headers,
        )
    }

    fn decode_body(&self, model: &str, body: Bytes) -> Result<(Bytes, Option<Usage>), Failure> {
        let response: Value = serde_json::from_slice(&body).map_err(|e| {
            Failure::transport(
                FailureKind::Undecodable,
                format!("Cohere answered with malformed JSON: {e}"),
            )
        })?;
        let (answer, usage) = translate_response(&response, model)?;
        let out = serde_json::to_vec(&answer)
            .map_err(|e| Failure::transport(FailureKind::Undecodable, e.to_string()))?;
        Ok((Bytes::from(out), usage))
    }

    fn stream_decoder(&self, model: &str, client_wants_usage: bool) -> Box<dyn StreamDecoder> {
        Box::new(CohereStream {
            client_wants_usage,
            model: model.to_owned(),
            ..CohereStream::default()
        })
    }

    fn classify(&self, status: u16, headers: &HeaderMap, body: &[u8]) -> Failure {
        classify(status, headers, body, &COHERE_ERRORS)
    }

    fn embeddings_request(
        &self,
        target: &Target<'_>,
        request: &EmbeddingsRequest,
    ) -> Result<UpstreamRequest, String> {
        let headers = vec![secret_header(AUTHORIZATION, "Bearer ", target.secret)?];
        let url = format!("{}/v2/embed", target.base_url);
        UpstreamRequest::post_json(
            url,
            headers,
            &cohere_embed::embed_body(target.model, request),
        )
    }

    fn max_embedding_inputs(&self) -> usize {
        cohere_embed::MAX_TEXTS
    }

    fn decode_embeddings(&self, body: &[u8]) -> Result<Vectors, Failure> {
        cohere_embed::vectors(body)
    }
}

/// Builds a `/v2/chat` body: system turns first (Cohere requires it), OpenAI-only fields renamed or dropped.
pub fn translate_request(request: &ChatRequest, model: &str) -> Value {
    let mut system = Vec::new();
    let mut messages = Vec::new();
    for m in &request.messages {
        match m.role.as_str() {
            "system" | "developer" => match &m.content {
                Value::String(s) => system.push(s.clone()),
                Value::Array(parts) => system.extend(
                    parts
                        .iter()
                        .filter_map(|p| p.get("text")?.as_str().map(str::to_owned)),
                ),
                _ => {}
            },
            role => {
                let mut out = Map::new();
                out.insert(
                    "role".into(),
                    json!(if role == "function" { "tool" } else { role }),
                );
                if !m.content.is_null() {
                    out.insert("content".into(), m.content.clone());
                }
                for key in ["tool_calls", "tool_call_id"] {
                    if let Some(v) = m.extra.get(key) {
                        out.insert(key.into(), v.clone());
                    }
                }
                messages.push(Value::Object(out));
            }
        }
    }
    if !system.is_empty() {
        messages.insert(0, json!({"role": "system", "content": system.join("\n\n")}));
    }
    let mut body = Map::new();
    body.insert("model".into(), json!(model));
    body.insert("messages".into(), Value::Array(messages));
    if request.stream {
        body.insert("stream".into(), json!(true));
    }
    if let Some(tools) = request.tools.as_ref().filter(|t| !t.is_empty()) {
        body.insert("tools".into(), json!(tools));
    }
    let extra = &request.extra;
    match extra.get("tool_choice").and_then(Value::as_str) {
        Some("required") => {
            body.insert("tool_choice".into(), json!("REQUIRED"));
        }
        Some("none") => {
            body.insert("tool_choice".into(), json!("NONE"));
        }
        _ if extra.get("tool_choice").is_some_and(Value::is_object) => {
            body.insert("tool_choice".into(), json!("REQUIRED"));
        }
        _ => {}
    }
    if let Some(cap) = request.output_cap() {
        body.insert("max_tokens".into(), json!(cap));
    }
    for (from, to) in [
        ("temperature", "temperature"),
        ("seed", "seed"),
        ("frequency_penalty", "frequency_penalty"),
        ("presence_penalty", "presence_penalty"),
        ("top_p", "p"),
        ("top_k", "k"),
    ] {
        if let Some(v) = extra.get(from).filter(|v| !v.is_null()) {
            body.insert(to.into(), v.clone());
        }
    }
    match extra.get("stop") {
        Some(Value::String(s)) => {
            body.insert("stop_sequences".into(), json!([s]));
        }
        Some(Value::Array(list)) => {
            body.insert(
                "stop_sequences".into(),
                Value::Array(list.iter().take(5).cloned().collect()),
            );
        }
        _ => {}
    }
    let format = extra.get("response_format");
    match format.and_then(|f| f.get("type")).and_then(Value::as_str) {
        Some("json_object") => {
            body.insert("response_format".into(), json!({"type": "json_object"}));
        }
        Some("json_schema") => {
            let schema = format
                .and_then(|f| f.pointer("/json_schema/schema"))
                .cloned()
                .unwrap_or_else(|| json!({}));
            body.insert(
                "response_format".into(),
                json!({"type": "json_object", "json_schema": schema}),
            );
        }
        _ => {}
    }
    Value::Object(body)
}

fn finish_reason(reason: Option<&str>, has_calls: bool) -> Result<FinishReason, Failure> {
    if has_calls {
        return Ok(FinishReason::ToolCalls);
    }
    match reason {
        Some("MAX_TOKENS") => Ok(FinishReason::Length),
        Some("TOOL_CALL") => Ok(FinishReason::ToolCalls),
        Some("ERROR" | "TIMEOUT") => Err(Failure::transport(
            FailureKind::Transient,
            "Cohere ended the answer with an error",
        )),
        _ => Ok(FinishReason::Stop),
    }
}

fn read_usage(usage: Option<&Value>) -> Option<Usage> {
    let usage = usage?;
    let tokens = usage.get("tokens").or_else(|| usage.get("billed_units"))?;
    let count = |k: &str| {
        tokens
            .get(k)
            .and_then(Value::as_u64)
            .and_then(|v| u32::try_from(v).ok())
            .unwrap_or(0)
    };
    Some(Usage {
        prompt_tokens: count("input_tokens"),
        completion_tokens: count("output_tokens"),
    })
}

/// Turns a `/v2/chat` answer into an OpenAI chat.completion and its usage.
pub fn translate_response<'a>(
    response: &'a Value,
    model: &'a str,
) -> Result<(ChatCompletion<'a>, Option<Usage>), Failure> {
    let items = response
        .pointer("/message/content")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let collect = |kind: &str, field: &str| -> Option<String> {
        let text: String = items
            .iter()
            .filter(|i| i.get("type").and_then(Value::as_str) == Some(kind))
            .filter_map(|i| i.get(field).and_then(Value::as_str))
            .collect();
        (!text.is_empty()).then_some(text)
    };
    let calls = response
        .pointer("/message/tool_calls")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .filter(|c| !c.is_empty());
    // The plan Cohere states before calling tools is reasoning: it goes to `reasoning_content` after any
    // thinking, and stays in its own `tool_plan` field for clients that read it.
    let plan = response
        .pointer("/message/tool_plan")
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty());
    let reasoning: String = collect("thinking", "thinking")
        .into_iter()
        .chain(plan.map(str::to_owned))
        .collect::<Vec<_>>()
        .join("\n\n");
    let message = AssistantMessage {
        content: collect("text", "text").map(Cow::Owned),
        reasoning_content: (!reasoning.is_empty()).then_some(Cow::Owned(reasoning)),
        tool_calls: calls.map(ToolCalls::Relayed),
        tool_plan: plan.map(Cow::Borrowed),
        ..AssistantMessage::default()
    };
    let finish = finish_reason(
        response.get("finish_reason").and_then(Value::as_str),
        calls.is_some(),
    )?;
    let usage = read_usage(response.get("usage"));
    let id = response
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or("cohere");
    let answer = ChatCompletion::new(
        format!("chatcmpl-{id}"),
        model,
        now_unix_secs(),
        message,
        finish,
        usage.unwrap_or_default(),
    );
    Ok((answer, usage))
}

/// The string at `key` of `object`, borrowed; none when either is missing or the value is no string.
fn text_at<'a>(object: Option<&'a Value>, key: &str) -> Option<Cow<'a, str>> {
    object?.get(key)?.as_str().map(Cow::Borrowed)
}

/// Translates Cohere's named stream events into OpenAI chunks.
#[derive(Default)]
struct CohereStream {
    client_wants_usage: bool,
    model: String,
    id: String,
    created: i64,
    calls: usize,
    usage: Option<Usage>,
}

impl CohereStream {
    /// The chunk of this stream that adds `delta`.
    fn chunk(&self, delta: Delta<'_>) -> Bytes {
        Bytes::from(ChatChunk::delta(self.ids(), delta).to_vec())
    }

    /// What every chunk of this stream repeats.
    fn ids(&self) -> StreamIds<'_> {
        StreamIds {
            id: &self.id,
            model: &self.model,
            created: self.created,
        }
    }
}

impl StreamDecoder for CohereStream {
    fn event(&mut self, event: SseEvent, out: &mut Vec<Bytes>) -> Result<Flow, Failure> {
        if event.data.trim_ascii() == b"[DONE]" {
            return Ok(Flow::Done);
        }
        let data: Value = serde_json::from_slice(&event.data).map_err(|e| {
            Failure::transport(
                FailureKind::Undecodable,
                format!("Cohere sent a malformed stream event: {e}"),
            )
        })?;
        let kind = data
            .get("type")
            .and_then(Value::as_str)
            .or(event.event.as_deref())
            .unwrap_or_default()
            .to_owned();
        let message = data.pointer("/delta/message");
        match kind.as_str() {
            "message-start" => {
                self.id = format!(
                    "chatcmpl-{}",
                    data.get("id").and_then(Value::as_str).unwrap_or("cohere")
                );
                self.created = now_unix_secs();
                out.push(self.chunk(Delta::opening()));
            }
            "content-delta" => {
                let content = message.and_then(|m| m.get("content"));
                if let Some(text) = content.and_then(|c| c.get("text")).and_then(Value::as_str) {
                    out.push(self.chunk(Delta::text(text)));
                } else if let Some(thinking) = content
                    .and_then(|c| c.get("thinking"))
                    .and_then(Value::as_str)
                {
                    out.push(self.chunk(Delta::reasoning(thinking)));
                }
            }
            "tool-plan-delta" => {
                let plan = message
                    .and_then(|m| m.get("tool_plan"))
                    .and_then(Value::as_str);
                if let Some(plan) = plan.filter(|p| !p.is_empty()) {
                    out.push(self.chunk(Delta {
                        tool_plan: Some(plan.into()),
                        ..Delta::reasoning(plan)
                    }));
                }
            }
            "tool-call-start" => {
                let call = message.and_then(|m| m.get("tool_calls"));
                let function = call.and_then(|c| c.get("function"));
                let start = ToolCallDelta::start(
                    self.calls,
                    text_at(call, "id"),
                    text_at(function, "name"),
                    text_at(function, "arguments").unwrap_or_default(),
                );
                self.calls += 1;
                out.push(self.chunk(Delta::tool_calls(vec![start])));
            }
            "tool-call-delta" => {
                let fragment = message
                    .and_then(|m| m.pointer("/tool_calls/function/arguments"))
                    .and_then(Value::as_str);
                if let Some(fragment) = fragment {
                    let index = self.calls.saturating_sub(1);
                    let piece = ToolCallDelta::arguments(index, fragment);
                    out.push(self.chunk(Delta::tool_calls(vec![piece])));
                }
            }
            "message-end" => {
                let delta = data.get("delta");
                if let Some(error) = delta.and_then(|d| d.get("error")).and_then(Value::as_str) {
                    return Err(Failure::transport(
                        FailureKind::Transient,
                        format!("Cohere: {error}"),
                    ));
                }
                self.usage = read_usage(delta.and_then(|d| d.get("usage")));
                let reason = delta
                    .and_then(|d| d.get("finish_reason"))
                    .and_then(Value::as_str);
                let finish = finish_reason(reason, self.calls > 0)?;
                out.push(Bytes::from(ChatChunk::finish(self.ids(), finish).to_vec()));
                if self.client_wants_usage {
                    let usage = ChatChunk::usage(self.ids(), self.usage.unwrap_or_default());
                    out.push(Bytes::from(usage.to_vec()));
                }
                return Ok(Flow::Done);
            }
            _ => {}
        }
        Ok(Flow::Continue)
    }

    fn finish(&mut self, _out: &mut Vec<Bytes>) -> Result<(), Failure> {
        Err(Failure::transport(
            FailureKind::Transient,
            "Cohere closed the stream before message-end",
        ))
    }

    fn usage(&self) -> Option<Usage> {
        self.usage
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn translate_response_for_test(response: &Value) -> Result<(Value, Option<Usage>), Failure> {
        let (answer, usage) = translate_response(response, "command-a-03-2025")?;
        Ok((serde_json::to_value(&answer).unwrap(), usage))
    }

    fn request(body: Value) -> ChatRequest {
        ChatRequest::parse(body.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn request_moves_system_first_and_renames_fields() {
        let body = translate_request(
            &request(json!({"messages": [
                {"role": "user", "content": "hi"},
                {"role": "system", "content": "late system"},
                {"role": "assistant", "content": null, "reasoning_content": "x", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "42"}
            ], "top_p": 0.5, "stop": ["END"], "max_completion_tokens": 10, "tool_choice": "required", "logit_bias": {},
               "response_format": {"type": "json_schema", "json_schema": {"name": "n", "strict": true, "schema": {"type": "object"}}}})),
            "command-a-03-2025",
        );
        assert_eq!(
            body["messages"][0],
            json!({"role": "system", "content": "late system"})
        );
        assert_eq!(
            body["messages"][1],
            json!({"role": "user", "content": "hi"})
        );
        assert_eq!(
            body["messages"][2],
            json!({"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]})
        );
        assert_eq!(
            body["messages"][3],
            json!({"role": "tool", "content": "42", "tool_call_id": "c1"})
        );
        assert_eq!(body["p"], 0.5);
        assert_eq!(body["stop_sequences"], json!(["END"]));
        assert_eq!(body["max_tokens"], 10);
        assert_eq!(body["tool_choice"], "REQUIRED");
        assert_eq!(
            body["response_format"],
            json!({"type": "json_object", "json_schema": {"type": "object"}})
        );
        assert!(body.get("logit_bias").is_none());
    }

    #[test]
    fn response_translates_text_thinking_tools_and_usage() {
        let (answer, usage) = translate_response_for_test(&json!({
            "id": "r1", "finish_reason": "COMPLETE",
            "message": {"role": "assistant", "content": [{"type": "thinking", "thinking": "hmm"}, {"type": "text", "text": "Hi"}]},
            "usage": {"billed_units": {"input_tokens": 1, "output_tokens": 2}, "tokens": {"input_tokens": 9, "output_tokens": 2}}
        }))
        .unwrap();
        assert_eq!(
            answer["choices"][0]["message"],
            json!({"role": "assistant", "content": "Hi", "reasoning_content": "hmm"})
        );
        assert_eq!(answer["choices"][0]["finish_reason"], "stop");
        assert_eq!(
            usage,
            Some(Usage {
                prompt_tokens: 9,
                completion_tokens: 2
            })
        );
        let (calls, _) = translate_response_for_test(&json!({"finish_reason": "TOOL_CALL", "message": {"role": "assistant", "tool_plan": "p",
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}}]}}))
        .unwrap();
        assert_eq!(calls["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(
            calls["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
            "{\"a\":1}"
        );
        assert_eq!(
            (
                &calls["choices"][0]["message"]["reasoning_content"],
                &calls["choices"][0]["message"]["tool_plan"]
            ),
            (&json!("p"), &json!("p")),
            "the tool plan is reasoning, and keeps its own field"
        );
        assert!(
            translate_response_for_test(&json!({"finish_reason": "ERROR", "message": {}})).is_err()
        );
        assert_eq!(
            translate_response_for_test(
                &json!({"finish_reason": "MAX_TOKENS", "message": {"content": []}})
            )
            .unwrap()
            .0["choices"][0]["finish_reason"],
            "length"
        );
    }

    #[test]
    fn stream_events_become_openai_chunks() {
        let events = [
            (
                "message-start",
                json!({"type": "message-start", "id": "m1", "delta": {"message": {"role": "assistant"}}}),
            ),
            (
                "content-start",
                json!({"type": "content-start", "index": 0, "delta": {"message": {"content": {"type": "text", "text": ""}}}}),
            ),
            (
                "content-delta",
                json!({"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": "Hel"}}}}),
            ),
            (
                "content-delta",
                json!({"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": "lo"}}}}),
            ),
            (
                "tool-call-start",
                json!({"type": "tool-call-start", "index": 1, "delta": {"message": {"tool_calls": {"id": "c1", "type": "function", "function": {"name": "f", "arguments": ""}}}}}),
            ),
            (
                "tool-call-delta",
                json!({"type": "tool-call-delta", "index": 1, "delta": {"message": {"tool_calls": {"function": {"arguments": "{\"a\":"}}}}}),
            ),
            (
                "tool-call-delta",
                json!({"type": "tool-call-delta", "index": 1, "delta": {"message": {"tool_calls": {"function": {"arguments": "1}"}}}}}),
            ),
            (
                "message-end",
                json!({"type": "message-end", "delta": {"finish_reason": "TOOL_CALL", "usage": {"tokens": {"input_tokens": 5, "output_tokens": 3}}}}),
            ),
        ];
        let mut d = CohereStream {
            client_wants_usage: true,
            ..CohereStream::default()
        };
        let mut out = Vec::new();
        let mut flows = Vec::new();
        for (name, data) in events {
            flows.push(
                d.event(
                    SseEvent {
                        event: Some(name.into()),
                        data: data.to_string().into_bytes(),
                    },
                    &mut out,
                )
                .unwrap(),
            );
        }
        assert_eq!(flows.last(), Some(&Flow::Done));
        let chunks: Vec<Value> = out
            .iter()
            .map(|b| serde_json::from_slice(b).unwrap())
            .collect();
        let deltas: Vec<&Value> = chunks.iter().map(|c| &c["choices"][0]["delta"]).collect();
        assert_eq!(chunks[0]["id"], "chatcmpl-m1");
        assert_eq!(*deltas[0], json!({"role": "assistant", "content": ""}));
        assert_eq!(*deltas[1], json!({"content": "Hel"}));
        assert_eq!(
            deltas[3]["tool_calls"][0],
            json!({"index": 0, "id": "c1", "type": "function", "function": {"name": "f", "arguments": ""}})
        );
        assert_eq!(
            deltas[5]["tool_calls"][0],
            json!({"index": 0, "function": {"arguments": "1}"}})
        );
        assert_eq!(chunks[6]["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(chunks[7]["usage"]["total_tokens"], 8);
        assert_eq!(
            d.usage(),
            Some(Usage {
                prompt_tokens: 5,
                completion_tokens: 3
            })
        );
    }

    #[test]
    fn errors_and_cut_streams() {
        let none = HeaderMap::new();
        assert_eq!(
            Cohere
                .classify(498, &none, br#"{"id":"x","message":"invalid api token"}"#)
                .kind,
            FailureKind::InvalidKey
        );
        let limited = Cohere.classify(429, &none, br#"{"id":"x","message":"You are using a Trial key, which is limited to 20 API calls / minute."}"#);
        assert!(matches!(limited.kind, FailureKind::RateLimited { .. }));
        assert!(limited.message.contains("Trial key"));
        let mut d = CohereStream::default();
        assert!(d.finish(&mut Vec::new()).is_err());
        let end = json!({"type": "message-end", "delta": {"error": "internal"}})
            .to_string()
            .into_bytes();
        assert!(d
            .event(
                SseEvent {
                    event: None,
                    data: end
                },
                &mut Vec::new()
            )
            .is_err());
    }
}
