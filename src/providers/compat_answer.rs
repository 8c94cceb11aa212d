//! Reading OpenAI-compatible answers: the few fields the gateway needs (usage, completion, errors inside an HTTP
//! 200), and reasoning in every shape brought into `reasoning_content` (`reasoning.rs`). An answer or chunk that
//! needs no such change is relayed byte for byte, unparsed beyond a borrowed peek; only one that does is rewritten.

use std::borrow::Cow;
use std::fmt;

use awc::http::header::HeaderMap;
use bytes::Bytes;
use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;

use super::classify::{classify, ErrorTable};
use super::reasoning::{carry_reasoning, Think};
use super::{Flow, StreamDecoder};
use crate::failure::{Failure, FailureKind};
use crate::openai::chat::Usage;
use crate::openai::sse::SseEvent;

/// Reads a non-streamed answer: its usage, an error it may carry inside an HTTP 200, and its reasoning.
pub fn decode_body(body: Bytes, errors: &ErrorTable) -> Result<(Bytes, Option<Usage>), Failure> {
    let peek: CompletionPeek<'_> = serde_json::from_slice(&body).map_err(|e| {
        Failure::transport(
            FailureKind::Undecodable,
            format!("upstream answered with malformed JSON: {e}"),
        )
    })?;
    if let Some(failure) = peek.embedded_error(&body, errors) {
        return Err(failure);
    }
    let Some(choices) = &peek.choices else {
        return Err(Failure::transport(
            FailureKind::Undecodable,
            "upstream answer has no choices",
        ));
    };
    let usage = peek.usage;
    let rewrite = choices.iter().any(|c| {
        c.message
            .as_ref()
            .is_some_and(|m| m.needs_fitting(&mut Think::default()))
    });
    if !rewrite {
        return Ok((body, usage));
    }
    let body = rewritten(&body, "message", &mut Think::default(), true)?;
    Ok((body, usage))
}

/// The error a successful probe answer carries inside its HTTP 200, if any.
pub fn check_probe(body: &[u8], errors: &ErrorTable) -> Result<(), Failure> {
    match serde_json::from_slice::<CompletionPeek<'_>>(body) {
        Ok(peek) => peek.embedded_error(body, errors).map_or(Ok(()), Err),
        Err(_) => Ok(()),
    }
}

/// A decoder for one streamed answer.
pub fn stream_decoder(
    client_wants_usage: bool,
    errors: &'static ErrorTable,
) -> Box<dyn StreamDecoder> {
    Box::new(CompatStream {
        client_wants_usage,
        usage: None,
        finished: false,
        errors,
        think: Think::default(),
    })
}

/// `body` with the `field` (`message` or `delta`) of its choices fitted by [`carry_reasoning`] (the gateway serves
/// one choice, so one `think` follows them); `whole` for a complete message rather than a delta.
fn rewritten(body: &[u8], field: &str, think: &mut Think, whole: bool) -> Result<Bytes, Failure> {
    let mut value: Value = serde_json::from_slice(body).map_err(|e| {
        Failure::transport(FailureKind::Undecodable, format!("upstream answer: {e}"))
    })?;
    if let Some(choices) = value.get_mut("choices").and_then(Value::as_array_mut) {
        for choice in choices {
            if let Some(turn) = choice.get_mut(field).and_then(Value::as_object_mut) {
                carry_reasoning(turn, think, whole);
            }
        }
    }
    serde_json::to_vec(&value)
        .map(Bytes::from)
        .map_err(|e| Failure::transport(FailureKind::Undecodable, e.to_string()))
}

/// The few fields of an answer or chunk the gateway reads; everything else is relayed unread.
#[derive(Deserialize)]
struct CompletionPeek<'a> {
    #[serde(default, borrow)]
    choices: Option<Vec<ChoicePeek<'a>>>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    error: Option<Value>,
    #[serde(default)]
    base_resp: Option<BaseResp>,
}

/// MiniMax's status envelope, which can carry an error inside an HTTP 200.
#[derive(Deserialize)]
struct BaseResp {
    #[serde(default)]
    status_code: i64,
}

impl CompletionPeek<'_> {
    /// The error an HTTP-200 body carries, if any: an `error` object or a failing `base_resp`.
    fn embedded_error(&self, body: &[u8], errors: &ErrorTable) -> Option<Failure> {
        if let Some(error) = &self.error {
            return Some(in_band_error(error));
        }
        let failed = self.base_resp.as_ref().is_some_and(|b| b.status_code != 0);
        failed.then(|| classify(200, &HeaderMap::new(), body, errors))
    }
}

#[derive(Deserialize)]
struct ChoicePeek<'a> {
    /// Only whether it is set matters (a JSON null reads as `None`), so its value is skipped, not copied.
    #[serde(default)]
    finish_reason: Option<IgnoredAny>,
    /// Moonshot puts stream usage inside the final choice.
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default, borrow)]
    message: Option<TurnPeek<'a>>,
    #[serde(default, borrow)]
    delta: Option<TurnPeek<'a>>,
}

/// What decides whether a message or delta needs fitting: its content's shape and its reasoning fields.
#[derive(Deserialize)]
struct TurnPeek<'a> {
    #[serde(default, borrow)]
    content: Option<ContentPeek<'a>>,
    #[serde(default)]
    reasoning: Option<Value>,
    #[serde(default)]
    reasoning_content: Option<IgnoredAny>,
}

impl TurnPeek<'_> {
    /// Whether this turn carries reasoning outside `reasoning_content`, or content that is not text.
    fn needs_fitting(&self, think: &mut Think) -> bool {
        let field = self.reasoning.as_ref().is_some_and(Value::is_string)
            && self.reasoning_content.is_none();
        match &self.content {
            Some(ContentPeek::Parts) => true,
            Some(ContentPeek::Text(text)) => think.needs(text) || field,
            _ => field,
        }
    }
}

/// A content value as far as fitting cares: text (borrowed where it can be), parts, or anything else.
enum ContentPeek<'a> {
    Text(Cow<'a, str>),
    Parts,
    Other,
}

impl<'de: 'a, 'a> Deserialize<'de> for ContentPeek<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Shape;
        impl<'de> Visitor<'de> for Shape {
            type Value = ContentPeek<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("message content")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(ContentPeek::Text(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(ContentPeek::Text(Cow::Owned(v.to_owned())))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(ContentPeek::Parts)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(ContentPeek::Other)
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(ContentPeek::Other)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(ContentPeek::Other)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(ContentPeek::Other)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(ContentPeek::Other)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(ContentPeek::Other)
            }
        }
        deserializer.deserialize_any(Shape)
    }
}

/// The failure an `error` object inside an HTTP-200 answer stands for.
fn in_band_error(error: &Value) -> Failure {
    let message = error
        .get("message")
        .and_then(Value::as_str)
        .or_else(|| error.as_str())
        .unwrap_or("upstream reported an error inside its answer");
    let status = error
        .get("code")
        .and_then(Value::as_u64)
        .and_then(|c| u16::try_from(c).ok());
    let kind = match status {
        Some(429) => FailureKind::RateLimited { retry_after: None },
        Some(401 | 403) => FailureKind::InvalidKey,
        Some(402) => FailureKind::QuotaExhausted { retry_after: None },
        _ => FailureKind::Transient,
    };
    Failure {
        kind,
        status,
        message: message.to_owned(),
    }
}

/// Relays OpenAI chunks byte for byte, reading usage, completion and in-band errors on the way; a chunk with
/// reasoning outside `reasoning_content` is fitted.
struct CompatStream {
    client_wants_usage: bool,
    usage: Option<Usage>,
    finished: bool,
    errors: &'static ErrorTable,
    /// `<think>` tags across the answer's deltas.
    think: Think,
}

impl StreamDecoder for CompatStream {
    fn event(&mut self, event: SseEvent, out: &mut Vec<Bytes>) -> Result<Flow, Failure> {
        let data = event.data;
        if data.trim_ascii() == b"[DONE]" {
            return Ok(Flow::Done);
        }
        let peek: CompletionPeek<'_> = serde_json::from_slice(&data).map_err(|e| {
            Failure::transport(
                FailureKind::Undecodable,
                format!("upstream sent a malformed stream event: {e}"),
            )
        })?;
        if let Some(failure) = peek.embedded_error(&data, self.errors) {
            return Err(failure);
        }
        let choices = peek.choices.unwrap_or_default();
        if let Some(usage) = peek.usage.or_else(|| choices.iter().find_map(|c| c.usage)) {
            self.usage = Some(usage);
        }
        if choices.iter().any(|c| c.finish_reason.is_some()) {
            self.finished = true;
        }
        let usage_only = choices.is_empty() && peek.usage.is_some();
        let fit = choices.iter().any(|c| {
            c.delta
                .as_ref()
                .is_some_and(|d| d.needs_fitting(&mut self.think))
        });
        if fit {
            out.push(rewritten(&data, "delta", &mut self.think, false)?);
        } else if !usage_only || self.client_wants_usage {
            out.push(Bytes::from(data));
        }
        Ok(Flow::Continue)
    }

    fn finish(&mut self, _out: &mut Vec<Bytes>) -> Result<(), Failure> {
        if self.finished {
            Ok(())
        } else {
            Err(Failure::transport(
                FailureKind::Transient,
                "upstream closed the stream before the answer was complete",
            ))
        }
    }

    fn usage(&self) -> Option<Usage> {
        self.usage
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::classify::OPENAI_ERRORS;
    use serde_json::json;

    fn event(data: &str) -> SseEvent {
        SseEvent {
            event: None,
            data: data.as_bytes().to_vec(),
        }
    }

    /// What a stream of `data` payloads relays, as JSON.
    fn relayed(chunks: &[Value]) -> Vec<Value> {
        let mut d = stream_decoder(true, &OPENAI_ERRORS);
        let mut out = Vec::new();
        for chunk in chunks {
            d.event(event(&chunk.to_string()), &mut out).unwrap();
        }
        out.iter()
            .map(|b| serde_json::from_slice(b).unwrap_or_default())
            .collect()
    }

    fn delta(delta: Value) -> Value {
        json!({"id": "c", "choices": [{"index": 0, "delta": delta, "finish_reason": null}]})
    }

    #[test]
    fn stream_relays_bytes_and_hides_unrequested_usage() {
        let mut d = stream_decoder(false, &OPENAI_ERRORS);
        let mut out = Vec::new();
        let chunk = r#"{"choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}"#;
        assert_eq!(d.event(event(chunk), &mut out), Ok(Flow::Continue));
        assert_eq!(out[0], chunk.as_bytes());
        let usage =
            r#"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}"#;
        d.event(event(usage), &mut out).unwrap();
        assert_eq!(
            out.len(),
            1,
            "usage-only chunk must not reach a client that did not ask"
        );
        assert_eq!(
            d.usage(),
            Some(Usage {
                prompt_tokens: 3,
                completion_tokens: 2
            })
        );
        assert!(
            d.finish(&mut out).is_err(),
            "no finish_reason seen: incomplete"
        );
        assert_eq!(d.event(event("[DONE]"), &mut out), Ok(Flow::Done));
    }

    #[test]
    fn in_band_error_fails_the_stream() {
        let mut d = stream_decoder(true, &OPENAI_ERRORS);
        let err = d
            .event(event(r#"{"error":{"code":429,"message":"Provider returned error"},"choices":[{"finish_reason":"error"}]}"#), &mut Vec::new())
            .unwrap_err();
        assert_eq!(err.kind, FailureKind::RateLimited { retry_after: None });
    }

    #[test]
    fn answers_without_reasoning_elsewhere_pass_byte_for_byte() {
        for body in [
            r#"{"id":"x","choices":[{"message":{"role":"assistant","content":"hi"}}],"usage":{"prompt_tokens":1,"completion_tokens":2}}"#,
            r#"{"choices": [{"message": {"content": "a", "reasoning_content": "b", "reasoning": "b"}}]}"#,
            r#"{"choices":[{"message":{"content":null,"tool_calls":[{"id":"1"}]}}]}"#,
        ] {
            let (out, _) = decode_body(Bytes::from(body), &OPENAI_ERRORS).unwrap();
            assert_eq!(out, body.as_bytes());
        }
    }

    #[test]
    fn mistral_content_parts_become_text_and_reasoning() {
        let body = json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": [
            {"type": "thinking", "thinking": [{"type": "text", "text": "4, since 2+2."}]},
            {"type": "text", "text": "Four."}]}, "finish_reason": "stop"}]});
        let (out, _) = decode_body(Bytes::from(body.to_string()), &OPENAI_ERRORS).unwrap();
        let out: Value = serde_json::from_slice(&out).unwrap_or_default();
        assert_eq!(
            out["choices"][0]["message"],
            json!({"role": "assistant", "content": "Four.", "reasoning_content": "4, since 2+2."})
        );
        let streamed = relayed(&[
            delta(
                json!({"role": "assistant", "content": [{"type": "thinking", "thinking": [{"type": "text", "text": "Hm"}]}]}),
            ),
            delta(json!({"content": [{"type": "text", "text": "Four."}]})),
        ]);
        assert_eq!(
            streamed[0]["choices"][0]["delta"],
            json!({"role": "assistant", "content": "", "reasoning_content": "Hm"})
        );
        assert_eq!(
            streamed[1]["choices"][0]["delta"],
            json!({"content": "Four."})
        );
    }

    #[test]
    fn groq_reasoning_and_think_tags_reach_reasoning_content() {
        let streamed = relayed(&[
            delta(json!({"role": "assistant", "reasoning": "Let me add."})),
            delta(json!({"content": "4"})),
        ]);
        assert_eq!(
            streamed[0]["choices"][0]["delta"],
            json!({"role": "assistant", "reasoning": "Let me add.", "reasoning_content": "Let me add."})
        );
        let tagged = relayed(&[
            delta(json!({"content": "<think>"})),
            delta(json!({"content": "two and two"})),
            delta(json!({"content": "</think>\n\n"})),
            delta(json!({"content": "Four."})),
        ]);
        let text: String = tagged
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
            .collect();
        let thought: String = tagged
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["reasoning_content"].as_str())
            .collect();
        assert_eq!((text.as_str(), thought.as_str()), ("Four.", "two and two"));
    }
}
