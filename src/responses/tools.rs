//! Tools of a Responses request as chat tools: function tools as they are, the function tools of `namespace`
//! tools under one flat name each (`namespace__name`, the name Codex itself uses where a namespace cannot be
//! kept), and the way back from an upstream's call to the form the client declared. Hosted built-in tools
//! (`web_search`, `file_search`, ...) run on OpenAI's servers, which the gateway cannot stand in for, so they are
//! refused by name rather than silently dropped. Pure: no I/O.

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use super::Refusal;

/// What separates a namespace from a function's name in the flat name offered upstream.
const SEPARATOR: &str = "__";

/// The chat tools offered upstream, and how to turn the names the upstream calls back into the client's.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Offered {
    /// Chat-shaped function tools (`{"type":"function","function":{...}}`).
    pub tools: Vec<Value>,
    /// The client's namespace and name of each flat name offered for a namespace tool.
    pub names: ToolNames,
}

/// The flat names offered for namespace tools, each with the namespace and name the client declared.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolNames(HashMap<String, (String, String)>);

impl ToolNames {
    /// The namespace (if the client declared the function inside one) and the name of a function the upstream
    /// called by `upstream`; names the gateway did not make are the client's own.
    pub fn client_form<'a>(&'a self, upstream: &'a str) -> (Option<&'a str>, &'a str) {
        match self.0.get(upstream) {
            Some((namespace, name)) => (Some(namespace), name),
            None => (None, upstream),
        }
    }
}

/// The one name a namespaced function goes upstream by: the namespace and the name joined by `__` (stray
/// underscores around the join trimmed, as Codex does), with characters function names may not hold made `_`.
pub fn flat_name(namespace: Option<&str>, name: &str) -> String {
    let joined = match namespace {
        Some(namespace) => format!(
            "{}{SEPARATOR}{}",
            namespace.trim_end_matches('_'),
            name.trim_start_matches('_')
        ),
        None => return name.to_owned(),
    };
    joined
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Translates the request's `tools`; hosted built-in tools, and anything that is not a function, are refused
/// with their names.
pub fn offer(tools: &[Value]) -> Result<Offered, Refusal> {
    let mut offered = Offered::default();
    let mut refused = Vec::new();
    for (i, tool) in tools.iter().enumerate() {
        match tool.get("type").and_then(Value::as_str) {
            Some("function") => offered
                .tools
                .push(function(tool, None, &format!("tools[{i}]"))?),
            Some("namespace") => {
                let namespace = text_field(tool, "name", &format!("tools[{i}]"))?;
                let members = tool.get("tools").and_then(Value::as_array);
                for (j, member) in members.into_iter().flatten().enumerate() {
                    let at = format!("tools[{i}].tools[{j}]");
                    match member.get("type").and_then(Value::as_str) {
                        Some("function") => {
                            let chat = function(member, Some(namespace), &at)?;
                            let name = text_field(member, "name", &at)?;
                            offered.names.0.insert(
                                flat_name(Some(namespace), name),
                                (namespace.to_owned(), name.to_owned()),
                            );
                            offered.tools.push(chat);
                        }
                        other => refused.push(format!(
                            "{} (in namespace '{namespace}')",
                            other.unwrap_or("untyped")
                        )),
                    }
                }
            }
            other => refused.push(other.unwrap_or("untyped").to_owned()),
        }
    }
    if refused.is_empty() {
        Ok(offered)
    } else {
        Err(Refusal {
            code: "unsupported_tool",
            message: format!(
                "These tools are not supported: {}. Hosted built-in tools run on OpenAI's servers and custom \
                 tools have no chat equivalent; only function tools (and namespace tools of function tools) are \
                 served. With Codex CLI, set web_search = \"disabled\" in config.toml.",
                refused.join(", ")
            ),
        })
    }
}

/// One function tool as a chat tool, under its flat name when it belongs to `namespace`.
fn function(tool: &Value, namespace: Option<&str>, at: &str) -> Result<Value, Refusal> {
    let name = text_field(tool, "name", at)?;
    let mut function = Map::new();
    function.insert("name".into(), json!(flat_name(namespace, name)));
    for field in ["description", "parameters", "strict"] {
        if let Some(value) = tool.get(field).filter(|v| !v.is_null()) {
            function.insert(field.into(), value.clone());
        }
    }
    Ok(json!({"type": "function", "function": function}))
}

/// The non-empty string `field` of `object`, or a refusal naming where it is missing.
fn text_field<'a>(object: &'a Value, field: &str, at: &str) -> Result<&'a str, Refusal> {
    object
        .get(field)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Refusal::invalid(format!("{at}.{field} must be a non-empty string")))
}

/// The chat `tool_choice` for the request's: `auto`, `none` and `required` as they are, a named function (its
/// flat name when it is namespaced), and `allowed_tools` as its mode; choices of hosted tools are refused.
pub fn choice(choice: &Value) -> Result<Value, Refusal> {
    match choice {
        Value::String(mode) if matches!(mode.as_str(), "auto" | "none" | "required") => {
            Ok(choice.clone())
        }
        Value::Object(object) => match object.get("type").and_then(Value::as_str) {
            Some("function") => {
                let name = text_field(choice, "name", "tool_choice")?;
                let namespace = object.get("namespace").and_then(Value::as_str);
                Ok(json!({"type": "function", "function": {"name": flat_name(namespace, name)}}))
            }
            Some("allowed_tools") => match object.get("mode").and_then(Value::as_str) {
                Some(mode @ ("auto" | "required")) => Ok(json!(mode)),
                _ => Err(Refusal::invalid(
                    "tool_choice.mode must be \"auto\" or \"required\"",
                )),
            },
            other => Err(Refusal {
                code: "unsupported_tool",
                message: format!(
                    "tool_choice of type '{}' is not supported: only function tools are served",
                    other.unwrap_or("untyped")
                ),
            }),
        },
        other => Err(Refusal::invalid(format!(
            "tool_choice must be \"auto\", \"none\", \"required\" or a function choice, got {other}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_tools_become_chat_tools() {
        let offered = offer(&[
            json!({"type": "function", "name": "get_weather", "description": "d",
            "parameters": {"type": "object"}, "strict": true, "defer_loading": false}),
        ])
        .unwrap();
        assert_eq!(
            offered.tools,
            [
                json!({"type": "function", "function": {"name": "get_weather", "description": "d",
                "parameters": {"type": "object"}, "strict": true}})
            ]
        );
        assert_eq!(offered.names, ToolNames::default());
    }

    #[test]
    fn namespace_tools_go_up_flat_and_come_back_as_declared() {
        let offered = offer(&[
            json!({"type": "namespace", "name": "mcp__docs__", "description": "Docs server", "tools": [
                {"type": "function", "name": "search", "parameters": {"type": "object"}},
                {"type": "function", "name": "fetch"}]}),
            json!({"type": "namespace", "name": "crm", "description": "CRM", "tools": [
                {"type": "function", "name": "lookup.v2"}]}),
        ])
        .unwrap();
        let names: Vec<&Value> = offered
            .tools
            .iter()
            .map(|t| &t["function"]["name"])
            .collect();
        assert_eq!(
            names,
            ["mcp__docs__search", "mcp__docs__fetch", "crm__lookup_v2"]
        );
        assert_eq!(
            offered.names.client_form("mcp__docs__search"),
            (Some("mcp__docs__"), "search")
        );
        assert_eq!(
            offered.names.client_form("crm__lookup_v2"),
            (Some("crm"), "lookup.v2")
        );
        assert_eq!(offered.names.client_form("shell"), (None, "shell"));
        assert_eq!(flat_name(Some("crm"), "lookup.v2"), "crm__lookup_v2");
        assert_eq!(flat_name(None, "shell"), "shell");
    }

    #[test]
    fn hosted_tools_are_refused_by_name() {
        let err = offer(&[
            json!({"type": "function", "name": "ok"}),
            json!({"type": "web_search"}),
            json!({"type": "file_search", "vector_store_ids": []}),
            json!({"type": "namespace", "name": "n", "tools": [{"type": "custom", "name": "c"}]}),
        ])
        .unwrap_err();
        assert_eq!(err.code, "unsupported_tool");
        assert!(
            err.message
                .contains("web_search, file_search, custom (in namespace 'n')"),
            "{}",
            err.message
        );
        for hosted in [
            "web_search_preview",
            "code_interpreter",
            "computer_use_preview",
            "image_generation",
            "mcp",
            "local_shell",
        ] {
            let err = offer(&[json!({"type": hosted})]).unwrap_err();
            assert!(err.message.contains(hosted), "{}", err.message);
        }
        let nameless = offer(&[json!({"type": "function"})]).unwrap_err();
        assert_eq!(nameless.message, "tools[0].name must be a non-empty string");
    }

    #[test]
    fn tool_choices_translate() {
        assert_eq!(choice(&json!("required")).unwrap(), json!("required"));
        assert_eq!(
            choice(&json!({"type": "function", "name": "f"})).unwrap(),
            json!({"type": "function", "function": {"name": "f"}})
        );
        assert_eq!(
            choice(&json!({"type": "allowed_tools", "mode": "auto", "tools": []})).unwrap(),
            json!("auto")
        );
        assert_eq!(
            choice(&json!({"type": "web_search"})).unwrap_err().code,
            "unsupported_tool"
        );
        assert!(choice(&json!("sometimes")).is_err());
    }
}
