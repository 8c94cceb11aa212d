//! The OpenAI chat-completions request as the gateway reads it, and the token counts of answers (written out by
//! `answer.rs`).
//!
//! Only the fields routing needs are typed; everything else is kept verbatim in `extra` maps and passed through,
//! so clients can use any field a provider understands.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A `POST /v1/chat/completions` body.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ChatRequest {
    /// `auto`, a model id, or `platform/model`.
    #[serde(default = "auto_model")]
    pub model: String,
    /// The conversation.
    pub messages: Vec<Message>,
    /// Whether the client wants SSE.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stream: bool,
    /// Tool definitions, counted in the token estimate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Value>>,
    /// Output cap (legacy name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Output cap (current name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u32>,
    /// Number of choices; the gateway serves exactly one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<u32>,
    /// Conversation id for stickiness; never forwarded upstream.
    #[serde(default, skip_serializing)]
    pub session_id: Option<String>,
    /// Every other field, passed through untouched.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn auto_model() -> String {
    "auto".to_owned()
}

/// One message of the conversation.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Message {
    /// `system`, `developer`, `user`, `assistant`, `tool` or `function`.
    pub role: String,
    /// String, array of parts, or null (assistant turns with tool calls).
    #[serde(default)]
    pub content: Value,
    /// Every other field (`tool_calls`, `tool_call_id`, `name`, ...), passed through.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

const ROLES: [&str; 6] = [
    "system",
    "developer",
    "user",
    "assistant",
    "tool",
    "function",
];

/// Reads a request body of any front door as `T`; the error is the message for a 400, naming the offending
/// field's path when the body is JSON but not a valid `T`.
pub fn from_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| {
        if e.is_syntax() || e.is_eof() {
            format!("The request body is not valid JSON: {e}")
        } else {
            format!("Invalid request body: {}", located::<T>(body, e))
        }
    })
}

/// The error of a body that is JSON but not a valid `T`, prefixed with the path of the offending field (found by
/// parsing again with path tracking, so the common path pays nothing for it).
fn located<T: DeserializeOwned>(body: &[u8], plain: serde_json::Error) -> String {
    let mut de = serde_json::Deserializer::from_slice(body);
    match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Err(e) if e.path().iter().next().is_some() => format!("{}: {}", e.path(), e.inner()),
        _ => plain.to_string(),
    }
}

impl ChatRequest {
    /// Parses and validates a request body; the error is the message for a 400.
    pub fn parse(body: &[u8]) -> Result<ChatRequest, String> {
        let req: ChatRequest = from_body(body)?;
        req.validate()?;
        Ok(req)
    }

    fn validate(&self) -> Result<(), String> {
        if self.model.trim().is_empty() {
            return Err(
                "'model' must not be empty; use \"auto\" to let the gateway choose".to_owned(),
            );
        }
        if self.messages.is_empty() {
            return Err("'messages' must contain at least one message".to_owned());
        }
        for (i, m) in self.messages.iter().enumerate() {
            if !ROLES.contains(&m.role.as_str()) {
                return Err(format!(
                    "messages[{i}].role '{}' is not one of {}",
                    m.role,
                    ROLES.join(", ")
                ));
            }
        }
        if let Some(n) = self.n {
            if n != 1 {
                return Err(format!(
                    "'n' must be 1 (the gateway returns one choice), got {n}"
                ));
            }
        }
        if let Some(Value::Object(opts)) = self.extra.get("stream_options") {
            if !self.stream && !opts.is_empty() {
                return Err("'stream_options' is only allowed when 'stream' is true".to_owned());
            }
        }
        Ok(())
    }

    /// The output cap the client asked for, whichever name it used.
    pub fn output_cap(&self) -> Option<u32> {
        self.max_completion_tokens.or(self.max_tokens)
    }

    /// This request with its output cap lowered to `max`, when it asks for more (clients such as Claude Code ask
    /// for more than many models write); `None` when it fits as it is.
    pub fn capped_at(&self, max: u32) -> Option<ChatRequest> {
        if self.output_cap().is_none_or(|cap| cap <= max) {
            return None;
        }
        let mut capped = self.clone();
        capped.max_tokens = capped.max_tokens.map(|cap| cap.min(max));
        capped.max_completion_tokens = capped.max_completion_tokens.map(|cap| cap.min(max));
        Some(capped)
    }

    /// Whether the client asked for a usage chunk at the end of the stream.
    pub fn wants_stream_usage(&self) -> bool {
        self.extra
            .get("stream_options")
            .and_then(|o| o.get("include_usage"))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }
}

/// Token counts of one answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct Usage {
    /// Tokens in the prompt.
    #[serde(default)]
    pub prompt_tokens: u32,
    /// Tokens generated.
    #[serde(default)]
    pub completion_tokens: u32,
}

impl Usage {
    /// Both counts together.
    pub fn total(&self) -> u32 {
        self.prompt_tokens.saturating_add(self.completion_tokens)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_errors_name_the_field() {
        let err = ChatRequest::parse(
            br#"{"model":"a","messages":[{"role":"user","content":"x"}],"n":-2}"#,
        )
        .unwrap_err();
        assert!(
            err.starts_with("Invalid request body: n: invalid value"),
            "{err}"
        );
        let err = ChatRequest::parse(br#"{"model":"a","messages":[{"role":7}]}"#).unwrap_err();
        assert!(err.contains("messages[0].role: invalid type"), "{err}");
    }

    #[test]
    fn unknown_fields_pass_through() {
        let body = br#"{"model":"auto","messages":[{"role":"user","content":"hi","name":"x"}],"temperature":0.2,"session_id":"s"}"#;
        let req = ChatRequest::parse(body).unwrap();
        assert_eq!(req.extra["temperature"], 0.2);
        assert_eq!(req.messages[0].extra["name"], "x");
        assert_eq!(req.session_id.as_deref(), Some("s"));
        let out = serde_json::to_value(&req).unwrap();
        assert!(out.get("session_id").is_none());
        assert_eq!(out["temperature"], 0.2);
    }

    #[test]
    fn rejects_bad_requests_with_reasons() {
        let cases: [(&[u8], &str); 6] = [
            (b"{", "not valid JSON"),
            (br#"{"model":"auto"}"#, "messages"),
            (br#"{"messages":[]}"#, "at least one"),
            (br#"{"messages":[{"role":"robot","content":"x"}]}"#, "role"),
            (
                br#"{"messages":[{"role":"user","content":"x"}],"n":2}"#,
                "'n' must be 1",
            ),
            (br#"{"messages":"hi"}"#, "Invalid request body"),
        ];
        for (body, expected) in cases {
            let err = ChatRequest::parse(body).unwrap_err();
            assert!(err.contains(expected), "{err} should contain {expected}");
        }
    }

    #[test]
    fn an_output_cap_over_a_models_maximum_is_lowered_to_it() {
        let req = ChatRequest::parse(
            br#"{"messages":[{"role":"user","content":"x"}],"max_tokens":128000}"#,
        )
        .unwrap();
        assert_eq!(req.capped_at(8192).unwrap().output_cap(), Some(8192));
        assert!(req.capped_at(200_000).is_none(), "fits as it is");
        let uncapped =
            ChatRequest::parse(br#"{"messages":[{"role":"user","content":"x"}]}"#).unwrap();
        assert!(uncapped.capped_at(10).is_none(), "no cap asked, none added");
    }

    #[test]
    fn model_defaults_to_auto_and_caps_prefer_completion_name() {
        let req = ChatRequest::parse(
            br#"{"messages":[{"role":"user","content":"x"}],"max_tokens":5,"max_completion_tokens":7}"#,
        )
        .unwrap();
        assert_eq!(req.model, "auto");
        assert_eq!(req.output_cap(), Some(7));
    }
}
