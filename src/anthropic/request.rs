//! The `/v1/messages` request as the gateway reads it, and its translation into the gateway's chat request: the
//! model, system prompt, tools, tool choice and sampling fields (messages are `content.rs`'s). Every field it
//! does not use (`thinking`, `context_management`, `output_config`, `cache_control`, `service_tier`, `top_k`,
//! `metadata`, ...) is ignored, never an error. It must not decide routing beyond naming the model.

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::content::{self, Content, InMessage};
use crate::openai::chat::{from_body, ChatRequest, Message};

/// A `POST /v1/messages` (or `/v1/messages/count_tokens`) body.
#[derive(Debug, Clone, Deserialize)]
pub struct MessagesRequest {
    /// A `claude-…` name (an alias of that name, else `auto`), `auto`, a model id or `platform/model`.
    pub model: Option<String>,
    /// The conversation.
    pub messages: Vec<InMessage>,
    /// The system prompt: a string or text blocks.
    pub system: Option<Content>,
    /// Output cap.
    pub max_tokens: Option<u32>,
    /// Texts that end the answer.
    pub stop_sequences: Option<Vec<String>>,
    /// Whether the client wants Anthropic's event stream.
    pub stream: Option<bool>,
    /// Sampling temperature.
    pub temperature: Option<f64>,
    /// Nucleus sampling.
    pub top_p: Option<f64>,
    /// Tool definitions.
    pub tools: Option<Vec<Tool>>,
    /// How the model may use the tools.
    pub tool_choice: Option<ToolChoice>,
}

/// One entry of `tools`: a custom tool (no `type`, or `custom`), or one of Anthropic's own tools (`type`
/// `web_search_20250305`, `bash_20250124`, `tool_search_tool_regex_20251119`, ...), which no upstream runs.
#[derive(Debug, Clone, Deserialize)]
pub struct Tool {
    /// Absent or `custom` for a custom tool; Anthropic's own tools name their version here.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// The tool's name.
    pub name: Option<String>,
    /// What it does, for the model.
    pub description: Option<String>,
    /// A JSON Schema of its input.
    pub input_schema: Option<Value>,
}

/// `tool_choice`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToolChoice {
    /// The model decides.
    Auto {
        /// At most one call per answer.
        disable_parallel_tool_use: Option<bool>,
    },
    /// The model must call some tool.
    Any {
        /// At most one call per answer.
        disable_parallel_tool_use: Option<bool>,
    },
    /// The model must call this tool.
    Tool {
        /// The tool.
        name: String,
        /// At most one call per answer.
        disable_parallel_tool_use: Option<bool>,
    },
    /// The model must not call tools.
    None,
}

impl ToolChoice {
    /// The OpenAI `tool_choice`, and whether parallel calls are off.
    fn openai(&self) -> (Value, bool) {
        match self {
            ToolChoice::Auto {
                disable_parallel_tool_use: serial,
            } => (json!("auto"), serial.unwrap_or(false)),
            ToolChoice::Any {
                disable_parallel_tool_use: serial,
            } => (json!("required"), serial.unwrap_or(false)),
            ToolChoice::Tool {
                name,
                disable_parallel_tool_use: serial,
            } => (
                json!({"type": "function", "function": {"name": name}}),
                serial.unwrap_or(false),
            ),
            ToolChoice::None => (json!("none"), false),
        }
    }
}

/// Whether a tool is one of Anthropic's tool-search tools, whose deferred tools are all offered directly, so
/// leaving the search tool out loses nothing.
fn is_tool_search(kind: &str) -> bool {
    kind.starts_with("tool_search_tool")
}

/// The OpenAI function tools of `tools`. Anthropic's own tools (server tools such as web search, and the
/// client tools Anthropic defines such as `bash_…`) cannot be offered to another model: beside custom tools they
/// are left out (logged), but a request whose every tool is one of them exists to use them, and answering it
/// without would silently break it, so it is refused naming them.
fn function_tools(tools: Vec<Tool>) -> Result<Vec<Value>, String> {
    let mut out = Vec::with_capacity(tools.len());
    let mut foreign = Vec::new();
    for (i, tool) in tools.into_iter().enumerate() {
        match tool.kind.as_deref() {
            None | Some("custom") => {}
            Some(kind) => {
                if !is_tool_search(kind) {
                    foreign.push(format!("{} ({kind})", tool.name.as_deref().unwrap_or("?")));
                }
                continue;
            }
        }
        let name = tool
            .name
            .ok_or_else(|| format!("tools[{i}]: a custom tool needs a 'name'"))?;
        let mut parameters = match tool.input_schema {
            Some(Value::Object(schema)) => schema,
            _ => Map::from_iter([("type".to_owned(), json!("object"))]),
        };
        parameters.remove("$schema");
        let mut function = Map::new();
        function.insert("name".into(), Value::String(name));
        if let Some(description) = tool.description {
            function.insert("description".into(), Value::String(description));
        }
        function.insert("parameters".into(), Value::Object(parameters));
        out.push(json!({"type": "function", "function": function}));
    }
    if !foreign.is_empty() {
        let named = foreign.join(", ");
        if out.is_empty() {
            return Err(format!(
                "tools: {named} run at Anthropic, not at the models this gateway routes to; only custom tools \
                 (name, description, input_schema) are supported"
            ));
        }
        log::warn!("/v1/messages: left out Anthropic's own tools, which no upstream runs: {named}");
    }
    Ok(out)
}

/// The gateway's model for a requested one: `auto` when none is named. Claude's names (which Claude Code sends)
/// stay as they are: an alias of that name is used where there is one, else they route as `auto` (the door says
/// so to the pipeline).
pub fn routed_model(model: Option<&str>) -> String {
    match model.map(str::trim) {
        None | Some("") => "auto".to_owned(),
        Some(name) => name.to_owned(),
    }
}

impl MessagesRequest {
    /// Parses a request body; the error is the message for a 400.
    pub fn parse(body: &[u8]) -> Result<MessagesRequest, String> {
        from_body(body)
    }

    /// The gateway's chat request for this one; the error is the message for a 400.
    pub fn into_chat(self) -> Result<ChatRequest, String> {
        let mut system = String::new();
        if let Some(prompt) = &self.system {
            prompt.append_text(&mut system);
        }
        let mut messages = content::translate(self.messages, &mut system)?;
        if messages.is_empty() {
            return Err("'messages' must contain at least one message with content".to_owned());
        }
        if !system.is_empty() {
            let prompt = Message {
                role: "system".to_owned(),
                content: Value::String(system),
                extra: Map::new(),
            };
            messages.insert(0, prompt);
        }
        let stream = self.stream.unwrap_or(false);
        let mut extra = Map::new();
        if stream {
            extra.insert("stream_options".into(), json!({"include_usage": true}));
        }
        if let Some(t) = self.temperature {
            extra.insert("temperature".into(), json!(t));
        }
        if let Some(p) = self.top_p {
            extra.insert("top_p".into(), json!(p));
        }
        if let Some(stop) = self.stop_sequences.filter(|s| !s.is_empty()) {
            extra.insert("stop".into(), json!(stop));
        }
        let tools = function_tools(self.tools.unwrap_or_default())?;
        if let (false, Some(choice)) = (tools.is_empty(), &self.tool_choice) {
            let (choice, serial) = choice.openai();
            extra.insert("tool_choice".into(), choice);
            if serial {
                extra.insert("parallel_tool_calls".into(), Value::Bool(false));
            }
        }
        Ok(ChatRequest {
            model: routed_model(self.model.as_deref()),
            messages,
            stream,
            tools: (!tools.is_empty()).then_some(tools),
            max_tokens: self.max_tokens,
            max_completion_tokens: None,
            n: None,
            session_id: None,
            extra,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat(body: Value) -> Result<Value, String> {
        let request = MessagesRequest::parse(body.to_string().as_bytes())?;
        request
            .into_chat()
            .map(|c| serde_json::to_value(c).unwrap())
    }

    #[test]
    fn a_claude_code_request_translates_and_its_extras_are_ignored() {
        let out = chat(json!({
            "model": "claude-sonnet-4-5-20250929", "max_tokens": 32000, "stream": true, "temperature": 1,
            "system": [{"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}},
                {"type": "text", "text": "Be careful."}],
            "messages": [{"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}]}],
            "tools": [{"name": "Read", "description": "Reads a file", "defer_loading": false,
                "input_schema": {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
                    "properties": {"path": {"type": "string"}}, "required": ["path"]}},
                {"type": "tool_search_tool_regex_20251119", "name": "tool_search_tool_regex"}],
            "metadata": {"user_id": "user_abc_account_x_session_y"},
            "thinking": {"type": "enabled", "budget_tokens": 1024},
            "context_management": {"edits": []}, "output_config": {"effort": "high"},
            "service_tier": "auto", "top_k": 5, "anything": [1, 2]
        }))
        .unwrap();
        assert_eq!(
            out,
            json!({"model": "claude-sonnet-4-5-20250929", "stream": true, "max_tokens": 32000, "temperature": 1.0,
                "stream_options": {"include_usage": true},
                "messages": [{"role": "system", "content": "You are Claude Code.\n\nBe careful."},
                    {"role": "user", "content": "hi"}],
                "tools": [{"type": "function", "function": {"name": "Read", "description": "Reads a file",
                    "parameters": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}}}]})
        );
    }

    #[test]
    fn model_names_pass_through_and_none_means_auto() {
        assert_eq!(
            routed_model(Some("claude-3-5-haiku-20241022")),
            "claude-3-5-haiku-20241022"
        );
        assert_eq!(routed_model(None), "auto");
        assert_eq!(
            routed_model(Some("groq/llama-3.3-70b")),
            "groq/llama-3.3-70b"
        );
        assert_eq!(routed_model(Some("gemini-2.5-flash")), "gemini-2.5-flash");
    }

    #[test]
    fn tool_choice_forms_map_to_openai() {
        let tools = json!([{"name": "f", "input_schema": {"type": "object"}}]);
        let cases = [
            (json!({"type": "auto"}), json!("auto"), None),
            (json!({"type": "any"}), json!("required"), None),
            (
                json!({"type": "tool", "name": "f", "disable_parallel_tool_use": true}),
                json!({"type": "function", "function": {"name": "f"}}),
                Some(false),
            ),
            (json!({"type": "none"}), json!("none"), None),
            (
                json!({"type": "auto", "disable_parallel_tool_use": true}),
                json!("auto"),
                Some(false),
            ),
        ];
        for (choice, expected, parallel) in cases {
            let out = chat(
                json!({"model": "auto", "max_tokens": 5, "tools": tools, "tool_choice": choice,
                "messages": [{"role": "user", "content": "x"}]}),
            )
            .unwrap();
            assert_eq!(out["tool_choice"], expected, "{choice}");
            assert_eq!(
                out.get("parallel_tool_calls").and_then(Value::as_bool),
                parallel,
                "{choice}"
            );
        }
        let without_tools = chat(json!({"tool_choice": {"type": "any"},
            "messages": [{"role": "user", "content": "x"}]}))
        .unwrap();
        assert!(without_tools.get("tool_choice").is_none());
        assert!(without_tools.get("tools").is_none());
    }

    #[test]
    fn sampling_fields_and_stops_pass_and_top_k_does_not() {
        let out = chat(
            json!({"model": "m", "max_tokens": 9, "top_p": 0.5, "top_k": 3,
            "stop_sequences": ["END", "STOP"], "messages": [{"role": "user", "content": "x"}]}),
        )
        .unwrap();
        assert_eq!(out["top_p"], 0.5);
        assert_eq!(out["stop"], json!(["END", "STOP"]));
        assert_eq!(out["max_tokens"], 9);
        assert!(out.get("top_k").is_none());
        assert!(out.get("stream").is_none() && out.get("stream_options").is_none());
    }

    #[test]
    fn anthropics_own_tools_are_left_out_beside_custom_ones_and_refused_alone() {
        let custom = json!({"name": "f", "input_schema": {"type": "object"}});
        let search = json!({"type": "web_search_20250305", "name": "web_search", "max_uses": 5});
        let out = chat(
            json!({"tools": [custom, search, {"type": "custom", "name": "g"}],
            "messages": [{"role": "user", "content": "x"}]}),
        )
        .unwrap();
        let names: Vec<&Value> = out["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| &t["function"]["name"])
            .collect();
        assert_eq!(names, [&json!("f"), &json!("g")]);
        assert_eq!(
            out["tools"][1]["function"]["parameters"],
            json!({"type": "object"})
        );
        let err = chat(json!({"tools": [search], "messages": [{"role": "user", "content": "x"}]}))
            .unwrap_err();
        assert!(err.contains("web_search (web_search_20250305)"), "{err}");
    }

    #[test]
    fn bad_bodies_get_reasons() {
        let cases = [
            (json!({"model": "m"}), "messages"),
            (json!({"messages": "hi"}), "Invalid request body: messages"),
            (json!({"messages": []}), "at least one message"),
            (
                json!({"messages": [{"role": "user", "content": [{"type": "thinking", "thinking": "x"}]}]}),
                "at least one message",
            ),
            (
                json!({"messages": [{"role": "user", "content": "x"}], "max_tokens": "many"}),
                "max_tokens",
            ),
            (
                json!({"messages": [{"role": "user", "content": "x"}], "tools": [{"input_schema": {}}]}),
                "tools[0]: a custom tool needs a 'name'",
            ),
        ];
        for (body, expected) in cases {
            let err = chat(body.clone()).unwrap_err();
            assert!(err.contains(expected), "{body}: {err}");
        }
        let err = MessagesRequest::parse(b"{").unwrap_err();
        assert!(err.contains("not valid JSON"), "{err}");
    }
}
