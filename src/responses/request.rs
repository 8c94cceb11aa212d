//! A `POST /v1/responses` body: what the gateway reads of it, and the chat request it becomes. Fields it has
//! no use for (`reasoning`, `include`, `prompt_cache_key`, `client_metadata`, `truncation`, `user`,
//! `service_tier`, ...) are ignored, never refused: Codex CLI sends all of them. Nothing of the body is
//! forwarded that was not translated, so no Responses-only field reaches a chat upstream. Pure.

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::input;
use super::output::Echo;
use super::tools::{self, ToolNames};
use super::Refusal;
use crate::openai::chat::{ChatRequest, Message};

/// The fields of a Responses request the gateway uses.
#[derive(Debug, Clone, Deserialize)]
pub struct ResponsesRequest {
    /// `auto`, a model id, or `platform/model`; `auto` when absent.
    #[serde(default)]
    pub model: Option<String>,
    /// A string, or a list of items.
    #[serde(default)]
    pub input: Value,
    /// A system message put first.
    #[serde(default)]
    pub instructions: Option<String>,
    /// Function and namespace tools.
    #[serde(default)]
    pub tools: Option<Vec<Value>>,
    /// `auto`, `none`, `required`, or a function choice.
    #[serde(default)]
    pub tool_choice: Option<Value>,
    /// `{"format": {...}}`: plain text, a JSON object, or JSON matching a schema.
    #[serde(default)]
    pub text: Option<Value>,
    /// The output cap.
    #[serde(default)]
    pub max_output_tokens: Option<u32>,
    /// Sampling temperature.
    #[serde(default)]
    pub temperature: Option<f64>,
    /// Nucleus sampling.
    #[serde(default)]
    pub top_p: Option<f64>,
    /// Whether calls may come in parallel.
    #[serde(default)]
    pub parallel_tool_calls: Option<bool>,
    /// The stored response this one continues.
    #[serde(default)]
    pub previous_response_id: Option<String>,
    /// Whether to keep the response (default true).
    #[serde(default)]
    pub store: Option<bool>,
    /// Whether to answer with events.
    #[serde(default)]
    pub stream: Option<bool>,
    /// Repeated in the response, otherwise unused.
    #[serde(default)]
    pub metadata: Option<Value>,
}

/// A Responses request as the pipeline takes it.
#[derive(Debug, Clone)]
pub struct Translated {
    /// The chat request.
    pub chat: ChatRequest,
    /// How the upstream's tool names turn back into the client's.
    pub names: ToolNames,
}

impl ResponsesRequest {
    /// Parses a body; a refusal says what is wrong with it.
    pub fn parse(body: &[u8]) -> Result<ResponsesRequest, Refusal> {
        let request: ResponsesRequest = serde_json::from_slice(body).map_err(|e| {
            Refusal::invalid(if e.is_syntax() || e.is_eof() {
                format!("The request body is not valid JSON: {e}")
            } else {
                format!("Invalid request body: {e}")
            })
        })?;
        if request
            .model
            .as_deref()
            .is_some_and(|m| m.trim().is_empty())
        {
            return Err(Refusal::invalid(
                "'model' must not be empty; use \"auto\" to let the gateway choose",
            ));
        }
        if request.previous_response_id.as_deref() == Some("") {
            return Err(Refusal::invalid("'previous_response_id' must not be empty"));
        }
        request.items()?;
        Ok(request)
    }

    /// This request's own input as items (a string is one user message), as it is kept with its response.
    pub fn items(&self) -> Result<Vec<Value>, Refusal> {
        match &self.input {
            Value::Null => Ok(Vec::new()),
            Value::String(text) => Ok(vec![json!({"type": "message", "role": "user",
                "content": [{"type": "input_text", "text": text}]})]),
            Value::Array(items) => Ok(items.clone()),
            other => Err(Refusal::invalid(format!(
                "'input' must be a string or a list of items, got {other}"
            ))),
        }
    }

    /// Whether the client wants events.
    pub fn streams(&self) -> bool {
        self.stream.unwrap_or(false)
    }

    /// Whether the response is to be kept.
    pub fn stores(&self) -> bool {
        self.store.unwrap_or(true)
    }

    /// The chat request for this request continuing `earlier` items (a stored conversation's input and output).
    pub fn to_chat(&self, earlier: &[Value]) -> Result<Translated, Refusal> {
        let mut messages = Vec::new();
        if let Some(instructions) = self.instructions.as_deref().filter(|i| !i.is_empty()) {
            messages.push(Message {
                role: "system".into(),
                content: json!(instructions),
                extra: Map::new(),
            });
        }
        input::append(
            &mut messages,
            earlier,
            "previous_response_id's conversation",
        )?;
        input::append(&mut messages, &self.items()?, "input")?;
        if messages.iter().all(|m| m.role == "system") {
            return Err(Refusal::invalid(
                "'input' must hold at least one message or function call output",
            ));
        }
        let offered = tools::offer(self.tools.as_deref().unwrap_or_default())?;
        let mut extra = Map::new();
        if let Some(t) = self.temperature {
            extra.insert("temperature".into(), json!(t));
        }
        if let Some(p) = self.top_p {
            extra.insert("top_p".into(), json!(p));
        }
        if !offered.tools.is_empty() {
            if let Some(choice) = self.tool_choice.as_ref().filter(|c| !c.is_null()) {
                extra.insert("tool_choice".into(), tools::choice(choice)?);
            }
            if let Some(parallel) = self.parallel_tool_calls {
                extra.insert("parallel_tool_calls".into(), json!(parallel));
            }
        }
        if let Some(format) = response_format(self.text.as_ref())? {
            extra.insert("response_format".into(), format);
        }
        if self.streams() {
            // Usage arrives in a chunk of its own; asking for it keeps the response's usage the upstream's.
            extra.insert("stream_options".into(), json!({"include_usage": true}));
        }
        let chat = ChatRequest {
            model: self.model.clone().unwrap_or_else(|| "auto".to_owned()),
            messages,
            stream: self.streams(),
            tools: (!offered.tools.is_empty()).then_some(offered.tools),
            max_tokens: self.max_output_tokens,
            max_completion_tokens: None,
            n: None,
            session_id: None,
            extra,
        };
        Ok(Translated {
            chat,
            names: offered.names,
        })
    }

    /// What the response repeats of this request.
    pub fn echo(&self) -> Echo {
        let unset = Echo::default();
        Echo {
            instructions: self.instructions.clone(),
            max_output_tokens: self.max_output_tokens,
            metadata: self
                .metadata
                .clone()
                .filter(Value::is_object)
                .unwrap_or(unset.metadata),
            parallel_tool_calls: self
                .parallel_tool_calls
                .unwrap_or(unset.parallel_tool_calls),
            previous_response_id: self.previous_response_id.clone(),
            store: self.stores(),
            temperature: self.temperature,
            text: self
                .text
                .clone()
                .filter(|t| t.get("format").is_some())
                .unwrap_or(unset.text),
            tool_choice: self
                .tool_choice
                .clone()
                .filter(|c| !c.is_null())
                .unwrap_or(unset.tool_choice),
            tools: self.tools.clone().unwrap_or_default(),
            top_p: self.top_p,
        }
    }
}

/// The chat `response_format` for `text.format`: none for plain text.
fn response_format(text: Option<&Value>) -> Result<Option<Value>, Refusal> {
    let Some(format) = text.and_then(|t| t.get("format")).filter(|f| !f.is_null()) else {
        return Ok(None);
    };
    match format.get("type").and_then(Value::as_str) {
        Some("text") => Ok(None),
        Some("json_object") => Ok(Some(json!({"type": "json_object"}))),
        Some("json_schema") => {
            let name = format
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("response");
            let schema = format
                .get("schema")
                .filter(|s| s.is_object())
                .ok_or_else(|| {
                    Refusal::invalid("text.format.schema must be a JSON schema object")
                })?;
            let mut spec = json!({"name": name, "schema": schema});
            for field in ["strict", "description"] {
                if let Some(value) = format.get(field).filter(|v| !v.is_null()) {
                    spec[field] = value.clone();
                }
            }
            Ok(Some(json!({"type": "json_schema", "json_schema": spec})))
        }
        other => Err(Refusal::invalid(format!(
            "text.format.type must be text, json_object or json_schema, got {}",
            other.unwrap_or("nothing")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat(body: Value) -> Value {
        let request = ResponsesRequest::parse(body.to_string().as_bytes()).unwrap();
        serde_json::to_value(request.to_chat(&[]).unwrap().chat).unwrap()
    }

    #[test]
    fn a_string_input_with_instructions_and_settings() {
        let out = chat(
            json!({"model": "groq/llama", "input": "Hi", "instructions": "Be terse.",
            "max_output_tokens": 50, "temperature": 0.3, "top_p": 0.9, "stream": true,
            "reasoning": {"effort": "high"}, "include": ["reasoning.encrypted_content"], "prompt_cache_key": "k",
            "client_metadata": {"x": 1}, "truncation": "auto", "user": "u", "service_tier": "auto", "store": false}),
        );
        assert_eq!(
            out,
            json!({"model": "groq/llama", "stream": true, "max_tokens": 50, "temperature": 0.3, "top_p": 0.9,
                "stream_options": {"include_usage": true},
                "messages": [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Hi"}]})
        );
    }

    #[test]
    fn tools_choice_and_formats_translate() {
        let out = chat(
            json!({"input": "x", "tool_choice": {"type": "function", "name": "f"},
            "parallel_tool_calls": false,
            "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}}],
            "text": {"format": {"type": "json_schema", "name": "answer", "strict": true,
                "schema": {"type": "object"}}, "verbosity": "low"}}),
        );
        assert_eq!(out["model"], "auto");
        assert_eq!(
            out["tools"],
            json!([{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}])
        );
        assert_eq!(
            out["tool_choice"],
            json!({"type": "function", "function": {"name": "f"}})
        );
        assert_eq!(out["parallel_tool_calls"], false);
        assert_eq!(
            out["response_format"],
            json!({"type": "json_schema", "json_schema": {"name": "answer", "schema": {"type": "object"}, "strict": true}})
        );
        let json_object = chat(json!({"input": "x", "text": {"format": {"type": "json_object"}}}));
        assert_eq!(
            json_object["response_format"],
            json!({"type": "json_object"})
        );
        let plain = chat(
            json!({"input": "x", "text": {"format": {"type": "text"}}, "tool_choice": "auto"}),
        );
        assert!(plain.get("response_format").is_none());
        assert!(
            plain.get("tool_choice").is_none(),
            "no tools, no tool_choice upstream"
        );
    }

    #[test]
    fn earlier_items_come_between_instructions_and_the_new_input() {
        let request = ResponsesRequest::parse(
            br#"{"input": [{"type": "function_call_output", "call_id": "c1", "output": "42"}], "instructions": "S"}"#,
        )
        .unwrap();
        let earlier = [
            json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": "ask"}]}),
            json!({"type": "function_call", "id": "fc_1", "call_id": "c1", "name": "f", "arguments": "{}", "status": "completed"}),
        ];
        let out = serde_json::to_value(request.to_chat(&earlier).unwrap().chat).unwrap();
        assert_eq!(
            out["messages"],
            json!([{"role": "system", "content": "S"}, {"role": "user", "content": "ask"},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
                {"role": "tool", "content": "42", "tool_call_id": "c1"}])
        );
    }

    #[test]
    fn bad_requests_are_refused_with_reasons() {
        let cases: [(&[u8], &str); 7] = [
            (b"{", "not valid JSON"),
            (br#"{"input": 7}"#, "'input' must be a string or a list"),
            (
                br#"{"input": "x", "model": ""}"#,
                "'model' must not be empty",
            ),
            (
                br#"{"input": "x", "max_output_tokens": -1}"#,
                "Invalid request body",
            ),
            (
                br#"{"input": "x", "text": {"format": {"type": "yaml"}}}"#,
                "text.format.type",
            ),
            (
                br#"{"input": "x", "text": {"format": {"type": "json_schema"}}}"#,
                "text.format.schema",
            ),
            (
                br#"{"input": "x", "tools": [{"type": "web_search_preview"}]}"#,
                "web_search_preview",
            ),
        ];
        for (body, expected) in cases {
            let err = ResponsesRequest::parse(body).and_then(|r| r.to_chat(&[]).map(|_| r));
            let message = err.unwrap_err().message;
            assert!(
                message.contains(expected),
                "{message} should contain {expected}"
            );
        }
        let empty = ResponsesRequest::parse(br#"{"instructions": "only this"}"#).unwrap();
        assert!(empty
            .to_chat(&[])
            .unwrap_err()
            .message
            .contains("at least one"));
    }

    #[test]
    fn the_echo_has_the_defaults_sdks_need() {
        let request =
            ResponsesRequest::parse(br#"{"input": "x", "metadata": {"k": "v"}}"#).unwrap();
        let echo = request.echo();
        assert_eq!(echo.tool_choice, json!("auto"));
        assert_eq!(echo.text, json!({"format": {"type": "text"}}));
        assert!(echo.parallel_tool_calls && echo.store);
        assert_eq!(echo.metadata, json!({"k": "v"}));
        assert!(request.stores() && !request.streams());
    }
}
