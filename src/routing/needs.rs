//! What a chat request needs of the model that serves it (tools, image input, structured output, room for its
//! prompt) and whether a model offers it. Pure: the router filters candidates with it, and the words of the 400
//! when nothing fits come from it too. It never decides the order of candidates.

use serde_json::Value;

use crate::catalog::Capabilities;
use crate::openai::chat::ChatRequest;
use crate::routing::estimate;

/// What a request needs; each field is one capability a model may lack.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Needs {
    /// It offers tools the model may call (non-empty `tools`, `tool_choice` other than `none`).
    pub tools: bool,
    /// It carries an image.
    pub vision: bool,
    /// It asks for JSON (`response_format` `json_object` or `json_schema`).
    pub json: bool,
    /// Its prompt's tokens, without images (their size in the body says nothing of their tokens).
    pub prompt_tokens: u32,
}

impl Needs {
    /// What `request` needs.
    pub fn of(request: &ChatRequest) -> Needs {
        let tools = request.tools.as_ref().is_some_and(|t| !t.is_empty())
            && request.extra.get("tool_choice").and_then(Value::as_str) != Some("none");
        let json = matches!(
            request
                .extra
                .get("response_format")
                .and_then(|f| f.get("type"))
                .and_then(Value::as_str),
            Some("json_object" | "json_schema")
        );
        let mut vision = false;
        let mut prompt_tokens = 0u32;
        for message in &request.messages {
            match &message.content {
                Value::String(text) => {
                    prompt_tokens =
                        prompt_tokens.saturating_add(estimate::text_tokens(text.as_bytes()));
                }
                Value::Array(parts) => {
                    for part in parts {
                        if part.get("type").and_then(Value::as_str) == Some("image_url") {
                            vision = true;
                        } else if let Some(text) = part.get("text").and_then(Value::as_str) {
                            prompt_tokens = prompt_tokens
                                .saturating_add(estimate::text_tokens(text.as_bytes()));
                        }
                    }
                }
                _ => {}
            }
        }
        if let Some(tools) = &request.tools {
            let schema_bytes: usize = tools.iter().map(|t| t.to_string().len()).sum();
            prompt_tokens =
                prompt_tokens.saturating_add(u32::try_from(schema_bytes / 4).unwrap_or(u32::MAX));
        }
        Needs {
            tools,
            vision,
            json,
            prompt_tokens,
        }
    }

    /// What of this request a model with `offered` capabilities and `context` window (when known) lacks; empty when
    /// it can serve it.
    pub fn unmet(&self, offered: Capabilities, context: Option<u32>) -> Vec<&'static str> {
        let mut missing = Vec::new();
        if self.tools && !offered.tools {
            missing.push("tools");
        }
        if self.vision && !offered.vision {
            missing.push("image input");
        }
        if self.json && !offered.json {
            missing.push("structured output (JSON)");
        }
        if context.is_some_and(|window| window < self.prompt_tokens) {
            missing.push("a larger context window");
        }
        missing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn needs(body: serde_json::Value) -> Needs {
        Needs::of(&ChatRequest::parse(body.to_string().as_bytes()).unwrap())
    }

    const ALL: Capabilities = Capabilities {
        tools: true,
        vision: true,
        json: true,
        reasoning: true,
    };

    #[test]
    fn tools_count_unless_the_client_turns_them_off() {
        let tool =
            serde_json::json!([{"type": "function", "function": {"name": "f", "parameters": {}}}]);
        let with = needs(
            serde_json::json!({"messages": [{"role": "user", "content": "x"}], "tools": tool}),
        );
        assert!(with.tools);
        let off = needs(
            serde_json::json!({"messages": [{"role": "user", "content": "x"}], "tools": tool, "tool_choice": "none"}),
        );
        assert!(!off.tools);
        let empty =
            needs(serde_json::json!({"messages": [{"role": "user", "content": "x"}], "tools": []}));
        assert!(!empty.tools);
    }

    #[test]
    fn images_and_json_formats_are_needs_and_image_bytes_are_not_tokens() {
        let image = format!("data:image/png;base64,{}", "A".repeat(400_000));
        let n = needs(
            serde_json::json!({"messages": [{"role": "user", "content": [
            {"type": "text", "text": "what is this?"},
            {"type": "image_url", "image_url": {"url": image}}]}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}}),
        );
        assert!(n.vision && n.json && !n.tools);
        assert!(n.prompt_tokens < 100, "{}", n.prompt_tokens);
        let text = needs(
            serde_json::json!({"messages": [{"role": "user", "content": "hi"}], "response_format": {"type": "text"}}),
        );
        assert!(!text.json && !text.vision);
    }

    #[test]
    fn unmet_names_what_a_model_lacks() {
        let n = Needs {
            tools: true,
            vision: true,
            json: false,
            prompt_tokens: 9000,
        };
        assert!(n.unmet(ALL, Some(128_000)).is_empty());
        assert!(
            n.unmet(ALL, None).is_empty(),
            "an unknown window is no reason to refuse"
        );
        let text_only = Capabilities {
            vision: false,
            ..ALL
        };
        assert_eq!(
            n.unmet(text_only, Some(8192)),
            ["image input", "a larger context window"]
        );
    }
}
