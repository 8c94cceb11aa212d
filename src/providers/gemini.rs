//! Google Gemini, natively: OpenAI chat requests become `generateContent` / `streamGenerateContent?alt=sse`
//! calls and Gemini's answers, stream events and errors become OpenAI shapes.
//!
//! Translation is pure (functions of JSON values) except for one bounded cache: the thought signatures Gemini
//! attaches to function calls, which OpenAI clients drop and Gemini 3 requires back on the next turn.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use awc::http::header::{HeaderMap, HeaderName};
use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::classify::{error_message, parse_go_duration, retry_after};
use super::gemini_calls::{CallPart, Calls};
use super::{secret_header, Flow, Prefill, Provider, StreamDecoder, Target, UpstreamRequest};
use crate::catalog::Window;
use crate::day_window::DayWindow;
use crate::failure::{Failure, FailureKind};
use crate::openai::chat::{ChatRequest, Message, Usage};
use crate::openai::sse::SseEvent;
use crate::quota_news::{QuotaNews, WindowReport};
use crate::timefmt::now_unix_secs;

/// The header Gemini reads the key from.
const GOOG_API_KEY: HeaderName = HeaderName::from_static("x-goog-api-key");
/// Sent in place of a thought signature we never saw, which Gemini documents as accepted.
const SIGNATURE_SENTINEL: &str = "skip_thought_signature_validator";
/// Thought signatures remembered for replays.
const SIGNATURE_CAPACITY: usize = 4096;
/// JSON-Schema keywords Gemini's `parameters` (an OpenAPI subset) rejects.
const UNSUPPORTED_SCHEMA_KEYS: &[&str] = &[
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

/// The Gemini adapter.
#[derive(Default)]
pub struct Gemini {
    signatures: SignatureCache,
}

/// Thought signatures by tool-call id, bounded, shared by the adapter and its streams.
#[derive(Clone, Default)]
struct SignatureCache(Arc<Mutex<Signatures>>);

#[derive(Default)]
struct Signatures {
    by_call: HashMap<String, String>,
    order: VecDeque<String>,
}

impl SignatureCache {
    fn remember(&self, calls: &[(String, String, String, Option<String>)]) {
        if calls.iter().all(|c| c.3.is_none()) {
            return;
        }
        let Ok(mut cache) = self.0.lock() else { return };
        for (id, _, _, signature) in calls {
            let Some(signature) = signature else { continue };
            if cache
                .by_call
                .insert(id.clone(), signature.clone())
                .is_none()
            {
                cache.order.push_back(id.clone());
            }
        }
        while cache.order.len() > SIGNATURE_CAPACITY {
            if let Some(old) = cache.order.pop_front() {
                cache.by_call.remove(&old);
            }
        }
    }

    fn get(&self, call_id: &str) -> Option<String> {
        self.0.lock().ok()?.by_call.get(call_id).cloned()
    }
}

impl Provider for Gemini {
    fn chat_request(
        &self,
        target: &Target<'_>,
        request: &ChatRequest,
    ) -> Result<UpstreamRequest, String> {
        let model = target.model.strip_prefix("models/").unwrap_or(target.model);
        let body = translate_request(request, model, |id| self.signatures.get(id))?;
        let url = if request.stream {
            format!(
                "{}/models/{model}:streamGenerateContent?alt=sse",
                target.base_url
            )
        } else {
            format!("{}/models/{model}:generateContent", target.base_url)
        };
        UpstreamRequest::post_json(
            url,
            vec![secret_header(GOOG_API_KEY, "", target.secret)?],
            &body,
        )
    }

    fn probe_request(&self, target: &Target<'_>) -> UpstreamRequest {
        let headers = secret_header(GOOG_API_KEY, "", target.secret)
            .into_iter()
            .collect();
        UpstreamRequest::get(format!("{}/models?pageSize=1", target.base_url), headers)
    }

    fn decode_body(&self, model: &str, body: Bytes) -> Result<(Bytes, Option<Usage>), Failure> {
        let response: Value = serde_json::from_slice(&body).map_err(|e| {
            Failure::transport(
                FailureKind::Undecodable,
                format!("Gemini answered with malformed JSON: {e}"),
            )
        })?;
        let answer = translate_response(&response, model)?;
        self.signatures.remember(&answer.calls);
        let out = serde_json::to_vec(&answer.body)
            .map_err(|e| Failure::transport(FailureKind::Undecodable, e.to_string()))?;
        Ok((Bytes::from(out), answer.usage))
    }

    fn stream_decoder(&self, model: &str, client_wants_usage: bool) -> Box<dyn StreamDecoder> {
        Box::new(GeminiStream::new(
            model,
            client_wants_usage,
            self.signatures.clone(),
        ))
    }

    fn prefill(&self) -> Prefill {
        // A trailing `model` turn in `contents` is continued, not answered anew.
        Prefill::Continues
    }

    fn classify(&self, status: u16, headers: &HeaderMap, body: &[u8]) -> Failure {
        classify_gemini(status, headers, body)
    }

    fn quota_news(&self, status: u16, _headers: &HeaderMap, body: &[u8]) -> QuotaNews {
        if status == 429 {
            quota_failure(body)
        } else {
            QuotaNews::default()
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Request: OpenAI → Gemini

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

fn text_parts(content: &Value) -> Result<Vec<Value>, String> {
    Ok(user_parts(content)?
        .into_iter()
        .filter(|p| p.get("text").is_some())
        .collect())
}

fn user_parts(content: &Value) -> Result<Vec<Value>, String> {
    match content {
        Value::Null => Ok(Vec::new()),
        Value::String(text) => Ok(vec![json!({"text": text})]),
        Value::Array(items) => items.iter().map(content_part).collect(),
        other => Err(format!("unsupported message content: {other}")),
    }
}

fn content_part(item: &Value) -> Result<Value, String> {
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

fn assistant_parts(
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

fn function_response(
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

fn function_declaration(tool: &Value) -> Option<Value> {
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

fn tool_config(choice: &Value) -> Option<Value> {
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

fn generation_config(request: &ChatRequest, has_tools: bool) -> Map<String, Value> {
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

// ---------------------------------------------------------------------------------------------------------
// Response: Gemini → OpenAI

/// A translated non-streamed answer.
pub struct Answer {
    /// The OpenAI chat.completion body.
    pub body: Value,
    /// Token counts.
    pub usage: Option<Usage>,
    /// Tool calls (id, name, arguments, thought signature).
    calls: Vec<(String, String, String, Option<String>)>,
}

/// What one Gemini response (or stream event) holds, in OpenAI terms.
#[derive(Debug, Default, PartialEq)]
struct Parts {
    text: Option<String>,
    reasoning: Option<String>,
    calls: Vec<CallPart>,
    finish: Option<&'static str>,
}

fn read_candidate(response: &Value) -> Result<Parts, Failure> {
    let mut parts = Parts::default();
    let Some(candidate) = response.pointer("/candidates/0") else {
        if response.pointer("/promptFeedback/blockReason").is_some() {
            parts.finish = Some("content_filter");
        }
        return Ok(parts);
    };
    for part in candidate
        .pointer("/content/parts")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        if let Some(call) = part.get("functionCall") {
            parts.calls.push(CallPart::read(part, call));
        } else if let Some(text) = part.get("text").and_then(Value::as_str) {
            let slot = if part.get("thought").and_then(Value::as_bool) == Some(true) {
                &mut parts.reasoning
            } else {
                &mut parts.text
            };
            slot.get_or_insert_with(String::new).push_str(text);
        }
    }
    parts.finish = match candidate.get("finishReason").and_then(Value::as_str) {
        None | Some("FINISH_REASON_UNSPECIFIED") => None,
        Some("MAX_TOKENS") => Some("length"),
        Some(
            "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY"
            | "LANGUAGE",
        ) => Some("content_filter"),
        Some("MALFORMED_FUNCTION_CALL") => {
            return Err(Failure::transport(
                FailureKind::Undecodable,
                "Gemini produced a malformed function call",
            ));
        }
        Some(_) => Some("stop"),
    };
    Ok(parts)
}

fn read_usage(response: &Value) -> Option<Usage> {
    let meta = response.get("usageMetadata")?;
    let count = |k: &str| {
        meta.get(k)
            .and_then(Value::as_u64)
            .and_then(|v| u32::try_from(v).ok())
            .unwrap_or(0)
    };
    Some(Usage {
        prompt_tokens: count("promptTokenCount"),
        completion_tokens: count("candidatesTokenCount")
            .saturating_add(count("thoughtsTokenCount")),
    })
}

fn response_id(response: &Value) -> String {
    response
        .get("responseId")
        .and_then(Value::as_str)
        .map_or_else(
            || format!("chatcmpl-{}", now_unix_secs()),
            |id| format!("chatcmpl-{id}"),
        )
}

fn model_of(response: &Value, asked: &str) -> Value {
    response
        .get("modelVersion")
        .cloned()
        .unwrap_or_else(|| json!(asked))
}

fn tool_calls_json(
    calls: &[(String, String, String, Option<String>)],
    first_index: usize,
) -> Value {
    Value::Array(
        calls
            .iter()
            .enumerate()
            .map(|(i, (id, name, arguments, _))| {
                json!({"index": first_index + i, "id": id, "type": "function", "function": {"name": name, "arguments": arguments}})
            })
            .collect(),
    )
}

/// Turns a `generateContent` answer into an OpenAI chat.completion.
pub fn translate_response(response: &Value, model: &str) -> Result<Answer, Failure> {
    let mut parts = read_candidate(response)?;
    let mut assembler = Calls::default();
    let mut calls = assembler.take(std::mem::take(&mut parts.calls));
    calls.extend(assembler.finish());
    let usage = read_usage(response);
    let mut message = Map::new();
    message.insert("role".into(), json!("assistant"));
    message.insert(
        "content".into(),
        parts.text.clone().map_or(Value::Null, Value::String),
    );
    if let Some(reasoning) = &parts.reasoning {
        message.insert("reasoning_content".into(), json!(reasoning));
    }
    let finish = if calls.is_empty() {
        parts.finish.unwrap_or("stop")
    } else {
        "tool_calls"
    };
    if !calls.is_empty() {
        let listed = tool_calls_json(&calls, 0);
        let listed: Vec<Value> = listed
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|c| {
                        let mut c = c.clone();
                        if let Some(o) = c.as_object_mut() {
                            o.remove("index");
                        }
                        c
                    })
                    .collect()
            })
            .unwrap_or_default();
        message.insert("tool_calls".into(), Value::Array(listed));
    }
    let body = json!({
        "id": response_id(response),
        "object": "chat.completion",
        "created": now_unix_secs(),
        "model": model_of(response, model),
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": usage.unwrap_or_default().to_json(),
    });
    Ok(Answer { body, usage, calls })
}

fn hash_of(bytes: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

/// Translates a Gemini SSE stream into OpenAI chunks.
struct GeminiStream {
    client_wants_usage: bool,
    signatures: SignatureCache,
    id: Option<String>,
    model: Value,
    created: i64,
    started: bool,
    /// The answer's calls, assembled across events.
    calls: Calls,
    /// The last event that held calls (a hash of its bytes): an event Gemini repeats is taken once.
    last_call_event: Option<u64>,
    finish: Option<&'static str>,
    usage: Option<Usage>,
}

impl GeminiStream {
    fn new(model: &str, client_wants_usage: bool, signatures: SignatureCache) -> Self {
        GeminiStream {
            client_wants_usage,
            signatures,
            id: None,
            model: json!(model),
            created: now_unix_secs(),
            started: false,
            calls: Calls::default(),
            last_call_event: None,
            finish: None,
            usage: None,
        }
    }

    fn chunk(&self, delta: Value, finish: Option<&str>) -> Bytes {
        let chunk = json!({
            "id": self.id.as_deref().unwrap_or("chatcmpl-gemini"),
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        });
        Bytes::from(chunk.to_string())
    }
}

impl StreamDecoder for GeminiStream {
    fn event(&mut self, event: SseEvent, out: &mut Vec<Bytes>) -> Result<Flow, Failure> {
        let response: Value = serde_json::from_slice(&event.data).map_err(|e| {
            Failure::transport(
                FailureKind::Undecodable,
                format!("Gemini sent a malformed stream event: {e}"),
            )
        })?;
        if response.get("error").is_some() {
            return Err(classify_gemini(200, &HeaderMap::new(), &event.data));
        }
        if self.id.is_none() {
            self.id = Some(response_id(&response));
            self.model = model_of(&response, self.model.as_str().unwrap_or_default());
        }
        if let Some(usage) = read_usage(&response) {
            self.usage = Some(usage);
        }
        let mut parts = read_candidate(&response)?;
        if !parts.calls.is_empty() {
            let repeat = Some(hash_of(&event.data));
            if self.last_call_event == repeat {
                return Ok(Flow::Continue);
            }
            self.last_call_event = repeat;
        }
        let mut delta = Map::new();
        if !self.started {
            delta.insert("role".into(), json!("assistant"));
        }
        if let Some(text) = parts.text {
            delta.insert("content".into(), json!(text));
        }
        if let Some(reasoning) = parts.reasoning {
            delta.insert("reasoning_content".into(), json!(reasoning));
        }
        let fresh = self.calls.take(std::mem::take(&mut parts.calls));
        if !fresh.is_empty() {
            self.signatures.remember(&fresh);
            let first = self.calls.count() - fresh.len();
            delta.insert("tool_calls".into(), tool_calls_json(&fresh, first));
        }
        if parts.finish.is_some() {
            self.finish = parts.finish;
        }
        if !self.started && !delta.contains_key("content") && !delta.contains_key("tool_calls") {
            delta.insert("content".into(), json!(""));
        }
        if !delta.is_empty() {
            self.started = true;
            out.push(self.chunk(Value::Object(delta), None));
        }
        Ok(Flow::Continue)
    }

    fn finish(&mut self, out: &mut Vec<Bytes>) -> Result<(), Failure> {
        let Some(finish) = self.finish else {
            return Err(Failure::transport(
                FailureKind::Transient,
                "Gemini closed the stream before the answer was complete",
            ));
        };
        let rest = self.calls.finish();
        if !rest.is_empty() {
            self.signatures.remember(&rest);
            let first = self.calls.count() - rest.len();
            out.push(self.chunk(json!({"tool_calls": tool_calls_json(&rest, first)}), None));
        }
        let finish = if self.calls.count() > 0 {
            "tool_calls"
        } else {
            finish
        };
        out.push(self.chunk(json!({}), Some(finish)));
        if self.client_wants_usage {
            let usage = json!({
                "id": self.id.as_deref().unwrap_or("chatcmpl-gemini"),
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "choices": [],
                "usage": self.usage.unwrap_or_default().to_json(),
            });
            out.push(Bytes::from(usage.to_string()));
        }
        Ok(())
    }

    fn usage(&self) -> Option<Usage> {
        self.usage
    }
}

// ---------------------------------------------------------------------------------------------------------
// Errors

/// Classifies a Gemini error from its status and `google.rpc` details (`ErrorInfo.reason`, `QuotaFailure`
/// quota ids, `RetryInfo.retryDelay`); array-wrapped bodies are accepted.
pub fn classify_gemini(status: u16, headers: &HeaderMap, body: &[u8]) -> Failure {
    let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let json = match json {
        Value::Array(mut items) if !items.is_empty() => items.swap_remove(0),
        other => other,
    };
    let message =
        error_message(&json).unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    let details = json
        .pointer("/error/details")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let reason = details
        .iter()
        .find_map(|d| d.get("reason").and_then(Value::as_str));
    let rpc_status = json.pointer("/error/status").and_then(Value::as_str);
    let status = json
        .pointer("/error/code")
        .and_then(Value::as_u64)
        .and_then(|c| u16::try_from(c).ok())
        .filter(|_| status == 200)
        .unwrap_or(status);
    let retry = retry_after(headers).or_else(|| {
        details
            .iter()
            .find_map(|d| d.get("retryDelay").and_then(Value::as_str))
            .and_then(parse_go_duration)
    });
    let per_day = details
        .iter()
        .filter_map(|d| d.get("violations").and_then(Value::as_array))
        .flatten()
        .any(|v| {
            v.get("quotaId")
                .and_then(Value::as_str)
                .is_some_and(|q| q.contains("PerDay"))
        });
    let kind = match (status, reason, rpc_status) {
        (_, Some("API_KEY_INVALID"), _) | (401, _, _) => FailureKind::InvalidKey,
        (429, _, _) if per_day => FailureKind::QuotaExhausted {
            retry_after: Some(DayWindow::MidnightPacific.until_reset()),
        },
        (429, _, _) => FailureKind::RateLimited { retry_after: retry },
        (400, _, Some("FAILED_PRECONDITION")) | (403, _, _) | (404, _, _) => {
            FailureKind::ModelUnavailable
        }
        (400 | 413, _, _) => FailureKind::BadRequest,
        _ => FailureKind::Transient,
    };
    Failure {
        kind,
        status: Some(status),
        message,
    }
}

/// The windows a 429's `QuotaFailure` violations name (by `quotaId`) with their `quotaValue` limits.
fn quota_failure(body: &[u8]) -> QuotaNews {
    let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let json = match json {
        Value::Array(mut items) if !items.is_empty() => items.swap_remove(0),
        other => other,
    };
    let mut news = QuotaNews::default();
    let violations = json
        .pointer("/error/details")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|d| d.get("violations").and_then(Value::as_array))
        .flatten();
    for violation in violations {
        let Some(id) = violation.get("quotaId").and_then(Value::as_str) else {
            continue;
        };
        let window = match (id.contains("Token"), id.contains("PerDay")) {
            (false, false) => Window::Rpm,
            (false, true) => Window::Rpd,
            (true, false) => Window::Tpm,
            (true, true) => Window::Tpd,
        };
        let limit = violation.get("quotaValue").and_then(|v| {
            v.as_str()
                .and_then(|s| s.parse().ok())
                .or_else(|| v.as_u64())
        });
        news.exceeded.push(window);
        news.add(
            window,
            WindowReport {
                limit,
                remaining: Some(0),
                reset: None,
            },
        );
    }
    news
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn translate_response_in_test(response: &Value) -> Result<Answer, Failure> {
        translate_response(response, "gemini-2.5-flash")
    }

    fn request(body: Value) -> ChatRequest {
        ChatRequest::parse(body.to_string().as_bytes()).unwrap()
    }

    fn translate(body: Value) -> Value {
        translate_request(&request(body), "gemini-2.5-flash", |_| None).unwrap()
    }

    #[test]
    fn system_roles_and_consecutive_turns() {
        let out = translate(json!({"messages": [
            {"role": "system", "content": "be brief"},
            {"role": "developer", "content": "and kind"},
            {"role": "user", "content": "hi"},
            {"role": "user", "content": [{"type": "text", "text": "there"}]},
            {"role": "assistant", "content": "hello"},
        ]}));
        assert_eq!(
            out["systemInstruction"],
            json!({"parts": [{"text": "be brief"}, {"text": "and kind"}]})
        );
        assert_eq!(
            out["contents"],
            json!([
                {"role": "user", "parts": [{"text": "hi"}, {"text": "there"}]},
                {"role": "model", "parts": [{"text": "hello"}]},
            ])
        );
    }

    #[test]
    fn gemma_folds_the_system_prompt_into_the_first_user_turn() {
        let req = request(
            json!({"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]}),
        );
        let out = translate_request(&req, "gemma-4-31b-it", |_| None).unwrap();
        assert!(out.get("systemInstruction").is_none());
        assert_eq!(
            out["contents"][0]["parts"],
            json!([{"text": "s"}, {"text": "u"}])
        );
    }

    #[test]
    fn generation_config_fields() {
        let out = translate(json!({"messages": [{"role": "user", "content": "x"}],
            "temperature": 0.3, "top_p": 0.9, "max_tokens": 50, "max_completion_tokens": 70, "stop": "END", "seed": 5,
            "response_format": {"type": "json_schema", "json_schema": {"name": "n", "schema": {"type": "object"}}},
            "reasoning_effort": "low"}));
        assert_eq!(
            out["generationConfig"],
            json!({
                "temperature": 0.3, "topP": 0.9, "seed": 5, "maxOutputTokens": 70, "stopSequences": ["END"],
                "responseMimeType": "application/json", "responseJsonSchema": {"type": "object"},
                "thinkingConfig": {"thinkingBudget": 1024},
            })
        );
        let json_mode = translate(
            json!({"messages": [{"role": "user", "content": "x"}], "response_format": {"type": "json_object"}}),
        );
        assert_eq!(
            json_mode["generationConfig"]["responseMimeType"],
            "application/json"
        );
    }

    #[test]
    fn tools_choice_and_schema_cleaning() {
        let out = translate(json!({
            "messages": [{"role": "user", "content": "weather?"}],
            "tools": [{"type": "function", "function": {"name": "get_weather", "description": "d", "parameters": {
                "$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "additionalProperties": false,
                "properties": {
                    "city": {"type": ["string", "null"], "const": "x"},
                    "unit": {"$ref": "#/$defs/Unit"},
                    "days": {"anyOf": [{"type": "integer"}, {"type": "null"}]}
                },
                "required": ["city"], "$defs": {"Unit": {"type": "string", "enum": ["c", "f"]}}
            }}}],
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
            "response_format": {"type": "json_object"}
        }));
        assert_eq!(
            out["tools"][0]["functionDeclarations"][0]["parameters"],
            json!({
                "type": "object", "required": ["city"],
                "properties": {
                    "city": {"type": "string", "nullable": true},
                    "unit": {"type": "string", "enum": ["c", "f"]},
                    "days": {"type": "integer", "nullable": true}
                }
            })
        );
        assert_eq!(
            out["toolConfig"],
            json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}})
        );
        assert!(
            out["generationConfig"].get("responseMimeType").is_none(),
            "JSON mode and tools cannot be combined"
        );
        for (choice, mode) in [("none", "NONE"), ("auto", "AUTO"), ("required", "ANY")] {
            let out = translate(
                json!({"messages": [{"role": "user", "content": "x"}], "tool_choice": choice}),
            );
            assert_eq!(out["toolConfig"]["functionCallingConfig"]["mode"], mode);
        }
    }

    #[test]
    fn tool_calls_and_results_round_trip_with_signatures() {
        let req = request(json!({"messages": [
            {"role": "user", "content": "weather in Paris and Rome?"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Rome\"}"}}
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "{\"temp\":21}"},
            {"role": "tool", "tool_call_id": "call_2", "content": "sunny"}
        ]}));
        let out = translate_request(&req, "gemini-3-flash-preview", |id| {
            (id == "call_1").then(|| "sig-1".to_owned())
        })
        .unwrap();
        assert_eq!(
            out["contents"][1],
            json!({"role": "model", "parts": [
                {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "sig-1"},
                {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}}, "thoughtSignature": SIGNATURE_SENTINEL}
            ]})
        );
        assert_eq!(
            out["contents"][2],
            json!({"role": "user", "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"temp": 21}}},
                {"functionResponse": {"name": "get_weather", "response": {"content": "sunny"}}}
            ]}),
            "parallel results merge into one turn, names recovered from call ids"
        );
    }

    #[test]
    fn images_must_be_inline() {
        let inline = translate(json!({"messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}]}));
        assert_eq!(
            inline["contents"][0]["parts"][0],
            json!({"inlineData": {"mimeType": "image/png", "data": "AAAA"}})
        );
        let remote = request(json!({"messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]}));
        assert!(translate_request(&remote, "gemini-2.5-flash", |_| None).is_err());
    }

    #[test]
    fn responses_translate_text_calls_finish_and_usage() {
        let text = translate_response_in_test(&json!({
            "candidates": [{"content": {"role": "model", "parts": [{"text": "thinking…", "thought": true}, {"text": "Hi"}, {"text": "!"}]}, "finishReason": "STOP"}],
            "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 2, "thoughtsTokenCount": 3, "totalTokenCount": 9},
            "modelVersion": "gemini-2.5-flash", "responseId": "abc"
        }))
        .unwrap();
        assert_eq!(text.body["id"], "chatcmpl-abc");
        assert_eq!(text.body["choices"][0]["message"]["content"], "Hi!");
        assert_eq!(
            text.body["choices"][0]["message"]["reasoning_content"],
            "thinking…"
        );
        assert_eq!(text.body["choices"][0]["finish_reason"], "stop");
        assert_eq!(
            text.body["usage"],
            json!({"prompt_tokens": 4, "completion_tokens": 5, "total_tokens": 9})
        );

        let call = translate_response_in_test(&json!({"candidates": [{"content": {"parts": [
            {"functionCall": {"name": "f", "args": {"a": 1}}, "thoughtSignature": "s"}]}, "finishReason": "STOP"}]}))
        .unwrap();
        let message = &call.body["choices"][0]["message"];
        assert_eq!(call.body["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(message["content"], Value::Null);
        assert_eq!(
            message["tool_calls"][0]["function"],
            json!({"name": "f", "arguments": "{\"a\":1}"})
        );
        assert_eq!(
            message["tool_calls"][0]["id"],
            super::super::gemini_calls::synthesized_id("f", "{\"a\":1}", 0)
        );
        assert_eq!(call.calls[0].3.as_deref(), Some("s"));

        for (reason, finish) in [
            ("MAX_TOKENS", "length"),
            ("SAFETY", "content_filter"),
            ("RECITATION", "content_filter"),
            ("OTHER", "stop"),
        ] {
            let r = translate_response_in_test(&json!({"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": reason}]})).unwrap();
            assert_eq!(r.body["choices"][0]["finish_reason"], finish, "{reason}");
        }
        let blocked =
            translate_response_in_test(&json!({"promptFeedback": {"blockReason": "SAFETY"}}))
                .unwrap();
        assert_eq!(
            blocked.body["choices"][0]["finish_reason"],
            "content_filter"
        );
        assert_eq!(
            blocked.body["choices"][0]["message"]["content"],
            Value::Null
        );
        let malformed = translate_response_in_test(
            &json!({"candidates": [{"finishReason": "MALFORMED_FUNCTION_CALL"}]}),
        );
        assert!(
            malformed.is_err(),
            "a malformed call is an error, not an empty success"
        );
    }

    fn event(v: Value) -> SseEvent {
        SseEvent {
            event: None,
            data: v.to_string().into_bytes(),
        }
    }

    #[test]
    fn stream_becomes_openai_chunks_with_tool_calls_and_usage() {
        let mut d = GeminiStream::new("gemini-2.5-flash", true, SignatureCache::default());
        let mut out = Vec::new();
        d.event(event(json!({"candidates": [{"content": {"parts": [{"text": "Let me"}]}}], "responseId": "r1"})), &mut out).unwrap();
        d.event(
            event(json!({"candidates": [{"content": {"parts": [{"text": " check."}]}}]})),
            &mut out,
        )
        .unwrap();
        let call = json!({"candidates": [{"content": {"parts": [{"functionCall": {"name": "f", "args": {"x": 1}}}]}, "finishReason": "STOP"}],
                          "usageMetadata": {"promptTokenCount": 7, "candidatesTokenCount": 3}});
        d.event(event(call.clone()), &mut out).unwrap();
        d.event(event(call), &mut out).unwrap();
        d.finish(&mut out).unwrap();
        let chunks: Vec<Value> = out
            .iter()
            .map(|b| serde_json::from_slice(b).unwrap())
            .collect();
        assert_eq!(
            chunks[0]["choices"][0]["delta"],
            json!({"role": "assistant", "content": "Let me"})
        );
        assert_eq!(chunks[0]["id"], "chatcmpl-r1");
        assert_eq!(
            chunks[1]["choices"][0]["delta"],
            json!({"content": " check."})
        );
        assert_eq!(
            chunks[2]["choices"][0]["delta"]["tool_calls"],
            json!([
                {"index": 0, "id": super::super::gemini_calls::synthesized_id("f", "{\"x\":1}", 0), "type": "function", "function": {"name": "f", "arguments": "{\"x\":1}"}}
            ])
        );
        assert_eq!(
            chunks.len(),
            5,
            "the repeated call is deduplicated: {chunks:?}"
        );
        assert_eq!(chunks[3]["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(chunks[4]["choices"], json!([]));
        assert_eq!(
            chunks[4]["usage"],
            json!({"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10})
        );
    }

    #[test]
    fn stream_cut_before_a_finish_reason_is_an_error() {
        let mut d = GeminiStream::new("gemini-2.5-flash", false, SignatureCache::default());
        let mut out = Vec::new();
        d.event(
            event(json!({"candidates": [{"content": {"parts": [{"text": "par"}]}}]})),
            &mut out,
        )
        .unwrap();
        assert!(d.finish(&mut out).is_err());
    }

    #[test]
    fn refusals_name_the_violated_window_and_its_limit() {
        let body = br#"{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaMetric":"generativelanguage.googleapis.com/generate_content_free_tier_requests","quotaId":"GenerateRequestsPerDayPerProjectPerModel-FreeTier","quotaValue":"20"}]},{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"35s"}]}}"#;
        let news = Gemini::default().quota_news(429, &HeaderMap::new(), body);
        assert_eq!(news.exceeded, [Window::Rpd]);
        assert_eq!(news.report(Window::Rpd).unwrap().limit, Some(20));
        let tokens = br#"{"error":{"code":429,"details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaId":"GenerateContentInputTokensPerModelPerMinute-FreeTier","quotaValue":"250000"}]}]}}"#;
        let news = Gemini::default().quota_news(429, &HeaderMap::new(), tokens);
        assert_eq!(news.exceeded, [Window::Tpm]);
        assert!(Gemini::default()
            .quota_news(200, &HeaderMap::new(), b"")
            .is_empty());
    }

    #[test]
    fn errors_are_classified_from_rpc_details() {
        let none = HeaderMap::new();
        let invalid = br#"{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com"}]}}"#;
        assert_eq!(
            classify_gemini(400, &none, invalid).kind,
            FailureKind::InvalidKey
        );
        let per_minute = br#"{"error":{"code":429,"message":"quota","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaId":"GenerateRequestsPerMinutePerProjectPerModel-FreeTier"}]},{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"17s"}]}}"#;
        assert_eq!(
            classify_gemini(429, &none, per_minute).kind,
            FailureKind::RateLimited {
                retry_after: Some(Duration::from_secs(17))
            }
        );
        let per_day = br#"[{"error":{"code":429,"message":"quota","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaId":"GenerateRequestsPerDayPerProjectPerModel-FreeTier"}]}]}}]"#;
        let FailureKind::QuotaExhausted {
            retry_after: Some(wait),
        } = classify_gemini(429, &none, per_day).kind
        else {
            panic!()
        };
        assert!(wait <= Duration::from_secs(86_400));
        let region = br#"{"error":{"code":400,"message":"User location is not supported for the API use.","status":"FAILED_PRECONDITION"}}"#;
        assert_eq!(
            classify_gemini(400, &none, region).kind,
            FailureKind::ModelUnavailable,
            "a region block never invalidates a key"
        );
        let too_long = br#"{"error":{"code":400,"message":"The input token count exceeds the maximum","status":"INVALID_ARGUMENT"}}"#;
        assert_eq!(
            classify_gemini(400, &none, too_long).kind,
            FailureKind::BadRequest
        );
        let overloaded = br#"{"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}"#;
        assert_eq!(
            classify_gemini(503, &none, overloaded).kind,
            FailureKind::Transient
        );
    }

    #[test]
    fn requests_go_to_the_native_paths_with_the_key_header() {
        let g = Gemini::default();
        let target = Target {
            base_url: "http://x/v1beta",
            model: "models/gemini-2.5-flash",
            secret: "AIza-key",
        };
        let mut req = request(json!({"messages": [{"role": "user", "content": "x"}]}));
        let up = g.chat_request(&target, &req).unwrap();
        assert_eq!(
            up.url,
            "http://x/v1beta/models/gemini-2.5-flash:generateContent"
        );
        assert!(up
            .headers
            .iter()
            .any(|(k, v)| k == "x-goog-api-key" && v == "AIza-key"));
        req.stream = true;
        assert_eq!(
            g.chat_request(&target, &req).unwrap().url,
            "http://x/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
        );
        assert_eq!(
            g.probe_request(&target).url,
            "http://x/v1beta/models?pageSize=1"
        );
    }
}
