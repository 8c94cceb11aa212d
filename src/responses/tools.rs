//! Tools of a Responses request as chat tools: function tools as they are; custom (free-form) tools as functions
//! of one string argument, `input`; the tools of `namespace` tools under one flat name each (`namespace__name`,
//! the name Codex itself uses where a namespace cannot be kept); and the way back from an upstream's call to the
//! form the client declared. Hosted built-in tools (`web_search`, `file_search`, ...) run on OpenAI's servers,
//! which the gateway cannot stand in for, so they are refused by name rather than silently dropped. Pure.

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use super::Refusal;

/// What separates a namespace from a function's name in the flat name offered upstream.
const SEPARATOR: &str = "__";
/// The one argument a custom tool takes as a chat function.
const INPUT: &str = "input";

/// The chat tools offered upstream, and how to turn the names the upstream calls back into the client's.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Offered {
    /// Chat-shaped function tools (`{"type":"function","function":{...}}`).
    pub tools: Vec<Value>,
    /// How the client declared each tool offered under a name of the gateway's or as a function it is not.
    pub names: ToolNames,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Declaration {
    namespace: Option<String>,
    name: String,
    custom: bool,
}

/// How the client declared a tool the upstream called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Declared<'a> {
    /// The namespace the client declared it in, if any.
    pub namespace: Option<&'a str>,
    /// Its name as the client declared it.
    pub name: &'a str,
    /// Whether it is a custom (free-form) tool, whose call is a `custom_tool_call` with an `input`.
    pub custom: bool,
}

/// The tools offered under flat names or as functions they are not (namespaced and custom tools).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolNames(HashMap<String, Declaration>);

impl ToolNames {
    /// How the client declared the tool the upstream called `upstream`; names the gateway did not make are the
    /// client's own function names.
    pub fn client_form<'a>(&'a self, upstream: &'a str) -> Declared<'a> {
        match self.0.get(upstream) {
            Some(d) => Declared {
                namespace: d.namespace.as_deref(),
                name: &d.name,
                custom: d.custom,
            },
            None => Declared {
                namespace: None,
                name: upstream,
                custom: false,
            },
        }
    }
}

/// The one name a namespaced tool goes upstream by: the namespace and the name joined by `__` (stray
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

/// The chat arguments of a custom tool call with `input`.
pub fn custom_arguments(input: &str) -> String {
    json!({INPUT: input}).to_string()
}

/// The `input` of a custom tool call from the chat arguments an upstream gave it (taken whole when they are
/// not the expected object).
pub fn custom_input(arguments: &str) -> String {
    match serde_json::from_str::<Value>(arguments) {
        Ok(Value::Object(object)) => match object.get(INPUT) {
            Some(Value::String(input)) => input.clone(),
            _ => arguments.to_owned(),
        },
        Ok(Value::String(input)) => input,
        _ => arguments.to_owned(),
    }
}

/// Translates the request's `tools`; hosted built-in tools are refused with their names.
pub fn offer(tools: &[Value]) -> Result<Offered, Refusal> {
    let mut offered = Offered::default();
    let mut refused = Vec::new();
    for (i, tool) in tools.iter().enumerate() {
        let at = format!("tools[{i}]");
        if tool.get("type").and_then(Value::as_str) != Some("namespace") {
            declare(&mut offered, &mut refused, tool, None, &at)?;
            continue;
        }
        let namespace = text_field(tool, "name", &at)?;
        let members = tool.get("tools").and_then(Value::as_array);
        for (j, member) in members.into_iter().flatten().enumerate() {
            let at = format!("{at}.tools[{j}]");
            declare(&mut offered, &mut refused, member, Some(namespace), &at)?;
        }
    }
    if refused.is_empty() {
        Ok(offered)
    } else {
        Err(Refusal {
            code: "unsupported_tool",
            message: format!(
                "These tools are not supported: {}. Hosted built-in tools run on OpenAI's servers; only function \
                 tools, custom tools and namespace tools of them are served. With Codex CLI, set \
                 web_search = \"disabled\" in config.toml.",
                refused.join(", ")
            ),
        })
    }
}

/// Offers one function or custom tool (of `namespace`, if in one), or notes it as refused.
fn declare(
    offered: &mut Offered,
    refused: &mut Vec<String>,
    tool: &Value,
    namespace: Option<&str>,
    at: &str,
) -> Result<(), Refusal> {
    let custom = match tool.get("type").and_then(Value::as_str) {
        Some("function") => false,
        Some("custom") => true,
        other => {
            let kind = other.unwrap_or("untyped");
            refused.push(match namespace {
                Some(namespace) => format!("{kind} (in namespace '{namespace}')"),
                None => kind.to_owned(),
            });
            return Ok(());
        }
    };
    let name = text_field(tool, "name", at)?;
    let flat = flat_name(namespace, name);
    let mut function = Map::new();
    function.insert("name".into(), json!(flat));
    if custom {
        function.insert("description".into(), json!(custom_description(tool)));
        function.insert(
            "parameters".into(),
            json!({"type": "object", "properties": {INPUT: {"type": "string",
                "description": "The tool's whole free-form input."}}, "required": [INPUT], "additionalProperties": false}),
        );
    } else {
        for field in ["description", "parameters", "strict"] {
            if let Some(value) = tool.get(field).filter(|v| !v.is_null()) {
                function.insert(field.into(), value.clone());
            }
        }
    }
    offered
        .tools
        .push(json!({"type": "function", "function": function}));
    if custom || namespace.is_some() {
        let declaration = Declaration {
            namespace: namespace.map(str::to_owned),
            name: name.to_owned(),
            custom,
        };
        offered.names.0.insert(flat, declaration);
    }
    Ok(())
}

/// A custom tool's description for a chat function, with the grammar its input must follow, when it has one.
fn custom_description(tool: &Value) -> String {
    let description = tool
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let format = tool.get("format");
    match (
        format.and_then(|f| f.get("syntax")).and_then(Value::as_str),
        format
            .and_then(|f| f.get("definition"))
            .and_then(Value::as_str),
    ) {
        (Some(syntax), Some(definition)) => {
            format!("{description}\n\nThe input must follow this {syntax} grammar:\n{definition}")
        }
        _ => description.to_owned(),
    }
}

/// The non-empty string `field` of `object`, or a refusal naming where it is missing.
fn text_field<'a>(object: &'a Value, field: &str, at: &str) -> Result<&'a str, Refusal> {
    object
        .get(field)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Refusal::invalid(format!("{at}.{field} must be a non-empty string")))
}

/// The chat `tool_choice` for the request's: `auto`, `none` and `required` as they are, a named function or
/// custom tool (its flat name when it is namespaced), and `allowed_tools` as its mode; choices of hosted tools are refused.
pub fn choice(choice: &Value) -> Result<Value, Refusal> {
    match choice {
        Value::String(mode) if matches!(mode.as_str(), "auto" | "none" | "required") => {
            Ok(choice.clone())
        }
        Value::Object(object) => match object.get("type").and_then(Value::as_str) {
            Some("function" | "custom") => {
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
                    "tool_choice of type '{}' is not supported: only function and custom tools are served",
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
        let form = |upstream| {
            let declared = offered.names.client_form(upstream);
            (declared.namespace, declared.name, declared.custom)
        };
        assert_eq!(
            form("mcp__docs__search"),
            (Some("mcp__docs__"), "search", false)
        );
        assert_eq!(form("crm__lookup_v2"), (Some("crm"), "lookup.v2", false));
        assert_eq!(form("shell"), (None, "shell", false));
        assert_eq!(flat_name(Some("crm"), "lookup.v2"), "crm__lookup_v2");
        assert_eq!(flat_name(None, "shell"), "shell");
    }

    #[test]
    fn hosted_tools_are_refused_by_name() {
        let err = offer(&[
            json!({"type": "function", "name": "ok"}),
            json!({"type": "web_search"}),
            json!({"type": "file_search", "vector_store_ids": []}),
            json!({"type": "namespace", "name": "n", "tools": [{"type": "mcp", "server_label": "c"}]}),
        ])
        .unwrap_err();
        assert_eq!(err.code, "unsupported_tool");
        assert!(
            err.message
                .contains("web_search, file_search, mcp (in namespace 'n')"),
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
    fn custom_tools_are_functions_of_one_input_string() {
        let offered = offer(&[
            json!({"type": "custom", "name": "apply_patch", "description": "Edit files.",
                "format": {"type": "grammar", "syntax": "lark", "definition": "start: patch"}}),
            json!({"type": "namespace", "name": "ed", "description": "Editor",
                "tools": [{"type": "custom", "name": "write"}]}),
        ])
        .unwrap();
        assert_eq!(
            offered.tools[0],
            json!({"type": "function", "function": {"name": "apply_patch",
                "description": "Edit files.\n\nThe input must follow this lark grammar:\nstart: patch",
                "parameters": {"type": "object", "properties": {"input": {"type": "string",
                    "description": "The tool's whole free-form input."}}, "required": ["input"],
                    "additionalProperties": false}}})
        );
        assert_eq!(offered.tools[1]["function"]["name"], "ed__write");
        let apply = offered.names.client_form("apply_patch");
        assert_eq!(
            (apply.namespace, apply.name, apply.custom),
            (None, "apply_patch", true)
        );
        let write = offered.names.client_form("ed__write");
        assert_eq!(
            (write.namespace, write.name, write.custom),
            (Some("ed"), "write", true)
        );
        let arguments = custom_arguments("*** Begin Patch\n\"x\"");
        assert_eq!(custom_input(&arguments), "*** Begin Patch\n\"x\"");
        assert_eq!(custom_input("\"raw\""), "raw");
        assert_eq!(custom_input("not json"), "not json");
        assert_eq!(custom_input("{\"other\":1}"), "{\"other\":1}");
    }

    #[test]
    fn tool_choices_translate() {
        assert_eq!(choice(&json!("required")).unwrap(), json!("required"));
        assert_eq!(
            choice(&json!({"type": "function", "name": "f"})).unwrap(),
            json!({"type": "function", "function": {"name": "f"}})
        );
        assert_eq!(
            choice(&json!({"type": "custom", "name": "apply_patch"})).unwrap(),
            json!({"type": "function", "function": {"name": "apply_patch"}})
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
