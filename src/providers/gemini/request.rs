//! OpenAI chat requests as Gemini `generateContent` bodies: roles, parts, images, tool declarations (schemas
//! cleaned to Gemini's OpenAPI subset), tool choice and generation settings, with thought signatures replayed.
//! Pure: JSON in, JSON out.

use super::*;

/// JSON-Schema keywords Gemini's `parameters` (an OpenAPI subset) rejects.
pub(super) const UNSUPPORTED_SCHEMA_KEYS: &[&str] = &[
    "$schema",
    "$id",
    "$ref",
    "$defs",
    "definitions",
    "additionalProperties",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "patternProperties",
    "const",
    "examples",
    "oneOf",
    "allOf",
    "not",
    "if",
    "then",
    "else",
    "uniqueItems",
    "multipleOf",
    "strict",
    "title",
    "default",
];

/// Builds a `generateContent` body from an OpenAI chat request.
pub fn translate_request(
    request: &ChatRequest,
    model: &str,
    signature_for: impl Fn(&str) -> Option<String>,
) -> Result<Value, String> {
    let mut system = Vec::new();
    let mut contents: Vec<(String, Vec<Value>)> = Vec::new();
    let mut call_names: HashMap<String, String> = HashMap::new();
    for message in &request.messages {
        let (role, parts) = match message.role.as_str() {
            "system" | "developer" => {
                system.extend(text_parts(&message.content)?);
                continue;
            }
            "assistant" => (
                "model",
                assistant_parts(message, &mut call_names, &signature_for)?,
            ),
            "tool" | "function" => ("user", vec![function_response(message, &call_names)?]),
            _ => ("user", user_parts(&message.content)?),
        };
        match contents.last_mut() {
            Some((last, existing)) if last == role => existing.extend(parts),
            _ => contents.push((role.to_owned(), parts)),
        }
    }
    let folds_system = model.starts_with("gemma");
    if folds_system && !system.is_empty() {
        match contents.iter_mut().find(|(role, _)| role == "user") {
            Some((_, parts)) => {
                let mut merged = std::mem::take(&mut system);
                merged.append(parts);
                *parts = merged;
            }
            None => contents.insert(0, ("user".to_owned(), std::mem::take(&mut system))),
        }
    }
    let contents: Vec<Value> = contents
        .into_iter()
        .map(|(role, mut parts)| {
            if parts.is_empty() {
                parts.push(json!({"text": ""}));
            }
            json!({"role": role, "parts": parts})
        })
        .collect();
    let mut body = Map::new();
    body.insert("contents".into(), Value::Array(contents));
    if !system.is_empty() {
        body.insert("systemInstruction".into(), json!({"parts": system}));
    }
    let has_tools = request.tools.as_ref().is_some_and(|t| !t.is_empty());
    if let Some(tools) = &request.tools {
        let declarations: Vec<Value> = tools.iter().filter_map(function_declaration).collect();
        if !declarations.is_empty() {
            body.insert(
                "tools".into(),
                json!([{"functionDeclarations": declarations}]),
            );
        }
    }
    if let Some(choice) = request.extra.get("tool_choice") {
        if let Some(config) = tool_config(choice) {
            body.insert("toolConfig".into(), config);
        }
    }
    let config = generation_config(request, has_tools);
    if !config.is_empty() {
        body.insert("generationConfig".into(), Value::Object(config));
    }
    Ok(Value::Object(body))
}

pub(super) fn text_parts(content: &Value) -> Result<Vec<Value>, String> {
    Ok(user_parts(content)?
        .into_iter()
        .filter(|p| p.get("text").is_some())
        .collect())
}

pub(super) fn user_parts(content: &Value) -> Result<Vec<Value>, String> {
    match content {
        Value::Null => Ok(Vec::new()),
        Value::String(text) => Ok(vec![json!({"text": text})]),
        Value::Array(items) => items.iter().map(content_part).collect(),
        other => Err(format!("unsupported message content: {other}")),
    }
}

pub(super) fn content_part(item: &Value) -> Result<Value, String> {
    match item.get("type").and_then(Value::as_str) {
        Some("text") => {
            Ok(json!({"text": item.get("text").and_then(Value::as_str).unwrap_or_default()}))
        }
        Some("image_url") => {
            let url = item
                .pointer("/image_url/url")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let (mime, data) = url
                .strip_prefix("data:")
                .and_then(|rest| rest.split_once(";base64,"))
                .ok_or("Gemini needs images inline: send image_url as a data: URL (base64)")?;
            Ok(json!({"inlineData": {"mimeType": mime, "data": data}}))
        }
        other => Err(format!(
            "unsupported content part type {other:?} for Gemini"
        )),
    }
}

pub(super) fn assistant_parts(
    message: &Message,
    call_names: &mut HashMap<String, String>,
    signature_for: &impl Fn(&str) -> Option<String>,
) -> Result<Vec<Value>, String> {
    let mut parts = text_parts(&message.content)?;
    parts.retain(|p| {
        p.get("text")
            .and_then(Value::as_str)
            .is_some_and(|t| !t.is_empty())
    });
    let calls = message
        .extra
        .get("tool_calls")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for call in calls {
        let id = call.get("id").and_then(Value::as_str).unwrap_or_default();
        let name = call
            .pointer("/function/name")
            .and_then(Value::as_str)
            .ok_or("a tool call has no function name")?;
        let arguments = call
            .pointer("/function/arguments")
            .and_then(Value::as_str)
            .unwrap_or("{}");
        let args: Value = serde_json::from_str(if arguments.trim().is_empty() {
            "{}"
        } else {
            arguments
        })
        .map_err(|e| format!("tool call '{name}' has arguments that are not JSON: {e}"))?;
        call_names.insert(id.to_owned(), name.to_owned());
        let signature = signature_for(id).unwrap_or_else(|| SIGNATURE_SENTINEL.to_owned());
        parts.push(
            json!({"functionCall": {"name": name, "args": args}, "thoughtSignature": signature}),
        );
    }
    Ok(parts)
}

pub(super) fn function_response(
    message: &Message,
    call_names: &HashMap<String, String>,
) -> Result<Value, String> {
    let id = message
        .extra
        .get("tool_call_id")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let name = call_names
        .get(id)
        .cloned()
        .or_else(|| {
            message
                .extra
                .get("name")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .ok_or_else(|| format!("tool result '{id}' answers no earlier tool call"))?;
    let text = match &message.content {
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .filter_map(|i| i.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(""),
        other => other.to_string(),
    };
    let response = match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(object)) => Value::Object(object),
        Ok(other) => json!({"result": other}),
        Err(_) => json!({"content": text}),
    };
    Ok(json!({"functionResponse": {"name": name, "response": response}}))
}

pub(super) fn function_declaration(tool: &Value) -> Option<Value> {
    let function = tool.get("function")?;
    let mut declaration = Map::new();
    declaration.insert("name".into(), function.get("name")?.clone());
    if let Some(description) = function.get("description") {
        declaration.insert("description".into(), description.clone());
    }
    if let Some(parameters) = function.get("parameters") {
        let defs = parameters
            .get("$defs")
            .or_else(|| parameters.get("definitions"))
            .cloned()
            .unwrap_or(Value::Null);
        declaration.insert("parameters".into(), clean_schema(parameters, &defs, 0));
    }
    Some(Value::Object(declaration))
}

/// Rewrites a JSON Schema into the OpenAPI subset Gemini accepts: `$ref`s inlined, nullable unions folded,
/// unsupported keywords dropped.
pub fn clean_schema(schema: &Value, defs: &Value, depth: usize) -> Value {
    let Value::Object(map) = schema else {
        return schema.clone();
    };
    if depth > 32 {
        return json!({"type": "object"});
    }
    if let Some(target) = map
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.rsplit('/').next())
        .and_then(|n| defs.get(n))
    {
        return clean_schema(target, defs, depth + 1);
    }
    let mut out = Map::new();
    for (key, value) in map {
        if UNSUPPORTED_SCHEMA_KEYS.contains(&key.as_str()) {
            continue;
        }
        let cleaned = match key.as_str() {
            "type" => match value {
                Value::Array(types) => {
                    let concrete: Vec<&Value> = types
                        .iter()
                        .filter(|t| t.as_str() != Some("null"))
                        .collect();
                    if concrete.len() < types.len() {
                        out.insert("nullable".into(), Value::Bool(true));
                    }
                    concrete.first().map_or(json!("string"), |t| (*t).clone())
                }
                other => other.clone(),
            },
            "properties" => match value {
                Value::Object(props) => Value::Object(
                    props
                        .iter()
                        .map(|(k, v)| (k.clone(), clean_schema(v, defs, depth + 1)))
                        .collect(),
                ),
                other => other.clone(),
            },
            "items" => clean_schema(value, defs, depth + 1),
            "anyOf" => match value {
                Value::Array(options) => {
                    let concrete: Vec<Value> = options
                        .iter()
                        .filter(|o| o.get("type") != Some(&json!("null")))
                        .map(|o| clean_schema(o, defs, depth + 1))
                        .collect();
                    if concrete.len() < options.len() {
                        out.insert("nullable".into(), Value::Bool(true));
                    }
                    if concrete.len() == 1 {
                        if let Some(Value::Object(only)) = concrete.into_iter().next() {
                            out.extend(only);
                        }
                        continue;
                    }
                    Value::Array(concrete)
                }
                other => other.clone(),
            },
            _ => value.clone(),
        };
        out.insert(key.clone(), cleaned);
    }
    Value::Object(out)
}

pub(super) fn tool_config(choice: &Value) -> Option<Value> {
    let mode = match choice {
        Value::String(s) => match s.as_str() {
            "none" => "NONE",
            "required" => "ANY",
            _ => "AUTO",
        },
        Value::Object(_) => {
            let name = choice.pointer("/function/name")?;
            return Some(
                json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [name]}}),
            );
        }
        _ => return None,
    };
    Some(json!({"functionCallingConfig": {"mode": mode}}))
}

pub(super) fn generation_config(request: &ChatRequest, has_tools: bool) -> Map<String, Value> {
    let mut config = Map::new();
    let extra = &request.extra;
    for (from, to) in [
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("top_k", "topK"),
        ("seed", "seed"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
    ] {
        if let Some(v) = extra.get(from).filter(|v| !v.is_null()) {
            config.insert(to.into(), v.clone());
        }
    }
    if let Some(cap) = request.output_cap() {
        config.insert("maxOutputTokens".into(), json!(cap));
    }
    match extra.get("stop") {
        Some(Value::String(s)) => {
            config.insert("stopSequences".into(), json!([s]));
        }
        Some(Value::Array(list)) => {
            config.insert(
                "stopSequences".into(),
                Value::Array(list.iter().take(5).cloned().collect()),
            );
        }
        _ => {}
    }
    let format = extra.get("response_format");
    match format.and_then(|f| f.get("type")).and_then(Value::as_str) {
        Some("json_object") if !has_tools => {
            config.insert("responseMimeType".into(), json!("application/json"));
        }
        Some("json_schema") if !has_tools => {
            config.insert("responseMimeType".into(), json!("application/json"));
            if let Some(schema) = format.and_then(|f| f.pointer("/json_schema/schema")) {
                config.insert("responseJsonSchema".into(), schema.clone());
            }
        }
        _ => {}
    }
    let budget = match extra.get("reasoning_effort").and_then(Value::as_str) {
        Some("none") => Some(0),
        Some("minimal" | "low") => Some(1024),
        Some("medium") => Some(8192),
        Some("high") => Some(24576),
        _ => None,
    };
    if let Some(budget) = budget {
        config.insert("thinkingConfig".into(), json!({"thinkingBudget": budget}));
    }
    config
}
