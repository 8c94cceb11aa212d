//! The adapter for every OpenAI-compatible platform, parameterised by a small table of per-platform quirks.
//!
//! Quirks are data (fields to strip or rename, which output-cap name to send, extra headers) so a platform's
//! oddities stay in one row instead of scattered conditionals.

use awc::http::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION};
use bytes::Bytes;
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::{Map, Value};

use super::classify::{classify, ErrorTable, Signal, OPENAI_ERRORS};
use super::compat_answer;
use super::quota::{
    self, HeaderSpec, CEREBRAS_HEADERS, GROQ_HEADERS, MISTRAL_HEADERS, SAMBANOVA_HEADERS,
};
use super::{secret_header, Prefill, Provider, StreamDecoder, Target, UpstreamRequest};
use crate::failure::{Failure, FailureKind};
use crate::openai::chat::{ChatRequest, Message, Usage};
use crate::openai::embeddings::{EmbeddingsRequest, Vectors, MAX_INPUTS};
use crate::platform::Platform;
use crate::quota_news::QuotaNews;

/// Which name the platform wants for the output cap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CapField {
    /// Send whatever the client sent.
    AsSent,
    /// Send `max_tokens` only.
    MaxTokens,
    /// Send `max_completion_tokens` only.
    MaxCompletionTokens,
}

/// One platform's deviations from the OpenAI baseline.
#[derive(Debug)]
struct Quirks {
    /// Top-level fields the platform rejects.
    strip: &'static [&'static str],
    /// Top-level fields it knows under another name.
    rename: &'static [(&'static str, &'static str)],
    /// Output-cap field name.
    cap: CapField,
    /// Whether `stream_options.include_usage` may be sent (so streamed usage can be reconciled).
    stream_usage: bool,
    /// Whether `parallel_tool_calls:false` must accompany tools.
    serial_tools: bool,
    /// Headers every request carries.
    headers: &'static [(&'static str, &'static str)],
    /// Error codes and statuses that mean something other than the OpenAI baseline.
    errors: &'static ErrorTable,
    /// Path of the chat endpoint under the base URL; `{account}` is the key's account part.
    chat_path: &'static str,
    /// Path of the cheapest request that proves a key works.
    probe_path: &'static str,
    /// Path of the embeddings endpoint under the base URL; `{account}` is the key's account part.
    embeddings_path: &'static str,
    /// Fields every embeddings request carries unless the client set them (required extensions).
    embeddings_defaults: &'static [(&'static str, &'static str)],
    /// Most texts one embeddings call may carry.
    embeddings_max_inputs: usize,
    /// Whether keys are `ACCOUNT_ID:API_TOKEN` (the token is the bearer).
    account_in_key: bool,
    /// Output cap sent when the client sets none (some platforms default to tiny caps).
    default_cap: Option<u32>,
    /// Whether message content must be a string (text arrays flattened, null becomes "").
    string_content: bool,
    /// Whether tool-call ids must be exactly 9 letters or digits (rewritten consistently where not).
    short_tool_ids: bool,
    /// The temperatures the platform accepts; values outside are moved to the nearest accepted one.
    temperature: Option<(f64, f64)>,
    /// The rate-limit headers it sends, by window.
    quota_headers: &'static [HeaderSpec],
    /// Whether it continues a trailing assistant message (a broken stream is continued only where it does).
    prefill: Prefill,
}

const BASELINE: Quirks = Quirks {
    strip: &[],
    rename: &[],
    cap: CapField::AsSent,
    stream_usage: true,
    serial_tools: false,
    headers: &[],
    errors: &OPENAI_ERRORS,
    chat_path: "/chat/completions",
    probe_path: "/models",
    embeddings_path: "/embeddings",
    embeddings_defaults: &[],
    embeddings_max_inputs: MAX_INPUTS,
    account_in_key: false,
    default_cap: None,
    string_content: false,
    short_tool_ids: false,
    prefill: Prefill::Unknown,
    temperature: None,
    quota_headers: &[],
};

/// Cloudflare's v4 error codes (`errors[0].code`).
const CLOUDFLARE_ERRORS: ErrorTable = ErrorTable {
    codes: &[
        ("10000", Signal::InvalidKey),
        ("3036", Signal::DailyQuota),
        ("4006", Signal::DailyQuota),
        ("3040", Signal::Transient),
        ("3007", Signal::Transient),
        ("3008", Signal::Transient),
        ("5007", Signal::ModelUnavailable),
        ("3042", Signal::ModelUnavailable),
        ("5016", Signal::ModelUnavailable),
        ("3006", Signal::BadRequest),
    ],
    statuses: &[],
};

/// OpenRouter: 403 is moderation, not a bad key; its 408 is an upstream timeout.
const OPENROUTER_ERRORS: ErrorTable = ErrorTable {
    codes: &[],
    statuses: &[(403, Signal::BadRequest)],
};

/// GitHub Models: per-request token caps answer 413 `tokens_limit_reached`.
const GITHUB_ERRORS: ErrorTable = ErrorTable {
    codes: &[
        ("tokens_limit_reached", Signal::BadRequest),
        ("RateLimitReached", Signal::RateLimited),
    ],
    statuses: &[],
};

/// Zhipu business codes (open.bigmodel.cn error-code table).
const ZHIPU_ERRORS: ErrorTable = ErrorTable {
    codes: &[
        ("1000", Signal::InvalidKey),
        ("1001", Signal::InvalidKey),
        ("1002", Signal::InvalidKey),
        ("1003", Signal::InvalidKey),
        ("1004", Signal::InvalidKey),
        ("1113", Signal::QuotaExhausted),
        ("1211", Signal::ModelUnavailable),
        ("1261", Signal::BadRequest),
        ("1301", Signal::BadRequest),
        ("1302", Signal::RateLimited),
        ("1303", Signal::RateLimited),
        ("1304", Signal::DailyQuota),
        ("1305", Signal::Transient),
        ("1308", Signal::QuotaExhausted),
        ("1310", Signal::QuotaExhausted),
    ],
    statuses: &[],
};

/// Moonshot error types; its 403 means balance or permission, not a bad key.
const MOONSHOT_ERRORS: ErrorTable = ErrorTable {
    codes: &[
        ("rate_limit_reached_error", Signal::RateLimited),
        ("engine_overloaded_error", Signal::Transient),
        ("exceeded_current_quota_error", Signal::QuotaExhausted),
        ("content_filter", Signal::BadRequest),
        ("invalid_authentication_error", Signal::InvalidKey),
        ("incorrect_api_key_error", Signal::InvalidKey),
    ],
    statuses: &[(403, Signal::QuotaExhausted)],
};

/// MiniMax `base_resp.status_code` values, which may arrive with HTTP 200.
const MINIMAX_ERRORS: ErrorTable = ErrorTable {
    codes: &[
        ("1000", Signal::Transient),
        ("1001", Signal::Transient),
        ("1002", Signal::RateLimited),
        ("1004", Signal::InvalidKey),
        ("1008", Signal::QuotaExhausted),
        ("1039", Signal::BadRequest),
        ("2013", Signal::BadRequest),
    ],
    statuses: &[],
};

fn quirks(platform: Platform) -> Option<Quirks> {
    Some(match platform {
        Platform::Groq => Quirks {
            strip: &["logprobs", "top_logprobs", "logit_bias"],
            // console.groq.com/docs/prompting, "Assistant Message Prefilling".
            prefill: Prefill::Continues,
            quota_headers: GROQ_HEADERS,
            ..BASELINE
        },
        Platform::Cerebras => Quirks {
            strip: &[
                "frequency_penalty",
                "presence_penalty",
                "logit_bias",
                "parallel_tool_calls",
                "service_tier",
            ],
            cap: CapField::MaxCompletionTokens,
            quota_headers: CEREBRAS_HEADERS,
            ..BASELINE
        },
        Platform::Mistral => Quirks {
            strip: &[
                "stream_options",
                "top_k",
                "min_p",
                "logit_bias",
                "logprobs",
                "top_logprobs",
                "reasoning_effort",
            ],
            rename: &[("seed", "random_seed")],
            // mistral-embed's per-request input cap is not published; batches stay well inside what is reported.
            embeddings_max_inputs: 128,
            // Mistral's API reference: an assistant message with `prefix: true` conditions the answer's start.
            prefill: Prefill::Flagged,
            short_tool_ids: true,
            cap: CapField::MaxTokens,
            stream_usage: false,
            quota_headers: MISTRAL_HEADERS,
            ..BASELINE
        },
        Platform::Nvidia => Quirks {
            serial_tools: true,
            // Its retrieval models refuse a request without `input_type` (docs.nvidia.com, NeMo Retriever text
            // embedding API); documents are what an index is built from.
            embeddings_defaults: &[("input_type", "passage")],
            ..BASELINE
        },
        Platform::Openrouter => Quirks {
            errors: &OPENROUTER_ERRORS,
            probe_path: "/key",
            // openrouter.ai/docs, "Assistant Prefill": a trailing assistant message is completed.
            prefill: Prefill::Continues,
            headers: &[
                ("http-referer", "https://github.com/freellmapi/freellmapi"),
                ("x-title", "freellmapi"),
            ],
            ..BASELINE
        },
        Platform::Github => Quirks {
            errors: &GITHUB_ERRORS,
            strip: &["top_k", "min_p", "repetition_penalty"],
            ..BASELINE
        },
        Platform::Minimax => Quirks {
            errors: &MINIMAX_ERRORS,
            temperature: Some((0.01, 1.0)),
            strip: &["frequency_penalty", "presence_penalty"],
            cap: CapField::MaxCompletionTokens,
            stream_usage: false,
            ..BASELINE
        },
        Platform::Zhipu => Quirks {
            stream_usage: false,
            // embedding-3 takes at most 64 texts per call (open.bigmodel.cn API reference).
            embeddings_max_inputs: 64,
            errors: &ZHIPU_ERRORS,
            ..BASELINE
        },
        Platform::Moonshot => Quirks {
            stream_usage: false,
            errors: &MOONSHOT_ERRORS,
            ..BASELINE
        },
        Platform::Sambanova => Quirks {
            quota_headers: SAMBANOVA_HEADERS,
            ..BASELINE
        },
        Platform::Huggingface => BASELINE,
        Platform::Custom => Quirks {
            stream_usage: false,
            // llama.cpp's server and Ollama continue a trailing assistant message; a server that starts over
            // instead is caught by the splice and not used.
            prefill: Prefill::Continues,
            ..BASELINE
        },
        Platform::Cloudflare => Quirks {
            strip: &[
                "min_p",
                "logit_bias",
                "logprobs",
                "top_logprobs",
                "reasoning_effort",
                "stream_options",
            ],
            stream_usage: false,
            errors: &CLOUDFLARE_ERRORS,
            chat_path: "/accounts/{account}/ai/v1/chat/completions",
            probe_path: "/accounts/{account}/ai/models/search?per_page=1",
            embeddings_path: "/accounts/{account}/ai/v1/embeddings",
            // The bge models take at most 100 texts per call (their model schemas, developers.cloudflare.com).
            embeddings_max_inputs: 100,
            account_in_key: true,
            default_cap: Some(8192),
            string_content: true,
            ..BASELINE
        },
        Platform::Google | Platform::Cohere => return None,
    })
}

/// The OpenAI-compatible adapter for one platform.
#[derive(Debug)]
pub struct OpenAiCompat {
    quirks: Quirks,
}

impl OpenAiCompat {
    /// The adapter for `platform`, or `None` when that platform needs a native adapter.
    pub fn for_platform(platform: Platform) -> Option<OpenAiCompat> {
        quirks(platform).map(|quirks| OpenAiCompat { quirks })
    }

    /// The bearer token and the URL for `path`, splitting `ACCOUNT_ID:API_TOKEN` keys where the platform uses them.
    fn endpoint<'k>(&self, target: &Target<'k>, path: &str) -> Result<(&'k str, String), String> {
        if !self.quirks.account_in_key {
            return Ok((target.secret, [target.base_url, path].concat()));
        }
        let (account, token) = target
            .secret
            .split_once(':')
            .ok_or("this key must be ACCOUNT_ID:API_TOKEN")?;
        Ok((
            token,
            format!("{}{}", target.base_url, path.replace("{account}", account)),
        ))
    }

    fn headers(&self, token: &str) -> Result<Vec<(HeaderName, HeaderValue)>, String> {
        let mut headers = vec![secret_header(AUTHORIZATION, "Bearer ", token)?];
        for (name, value) in self.quirks.headers {
            headers.push((
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            ));
        }
        Ok(headers)
    }
}

impl Provider for OpenAiCompat {
    fn chat_request(
        &self,
        target: &Target<'_>,
        request: &ChatRequest,
    ) -> Result<UpstreamRequest, String> {
        let (token, url) = self.endpoint(target, self.quirks.chat_path)?;
        let body = CompatBody {
            request,
            model: target.model,
            quirks: &self.quirks,
        };
        UpstreamRequest::post_json(url, self.headers(token)?, &body)
    }

    fn prefill(&self) -> Prefill {
        self.quirks.prefill
    }

    fn probe_request(&self, target: &Target<'_>) -> UpstreamRequest {
        let (token, url) = self
            .endpoint(target, self.quirks.probe_path)
            .unwrap_or_else(|_| ("", format!("{}{}", target.base_url, self.quirks.probe_path)));
        UpstreamRequest::get(url, self.headers(token).unwrap_or_default())
    }

    fn decode_body(&self, _model: &str, body: Bytes) -> Result<(Bytes, Option<Usage>), Failure> {
        compat_answer::decode_body(body, self.quirks.errors)
    }

    fn stream_decoder(&self, _model: &str, client_wants_usage: bool) -> Box<dyn StreamDecoder> {
        compat_answer::stream_decoder(client_wants_usage, self.quirks.errors)
    }

    fn classify(&self, status: u16, headers: &HeaderMap, body: &[u8]) -> Failure {
        classify(status, headers, body, self.quirks.errors)
    }

    fn quota_news(&self, status: u16, headers: &HeaderMap, body: &[u8]) -> QuotaNews {
        let mut news = QuotaNews::default();
        if status == 429 {
            quota::from_refusal(headers, body, &mut news);
        }
        quota::from_headers(headers, self.quirks.quota_headers, &mut news);
        news
    }

    fn check_probe(&self, body: &[u8]) -> Result<(), Failure> {
        compat_answer::check_probe(body, self.quirks.errors)
    }

    fn max_embedding_inputs(&self) -> usize {
        self.quirks.embeddings_max_inputs
    }

    fn embeddings_request(
        &self,
        target: &Target<'_>,
        request: &EmbeddingsRequest,
    ) -> Result<UpstreamRequest, String> {
        let (token, url) = self.endpoint(target, self.quirks.embeddings_path)?;
        let mut body = Map::new();
        body.insert("model".into(), Value::from(target.model));
        body.insert("input".into(), Value::from(request.texts().to_vec()));
        body.insert("encoding_format".into(), Value::from("float"));
        if let Some(dimensions) = request.dimensions {
            body.insert("dimensions".into(), Value::from(dimensions));
        }
        if let Some(user) = &request.user {
            body.insert("user".into(), Value::from(user.as_str()));
        }
        for (field, value) in &request.extra {
            body.entry(field.as_str()).or_insert_with(|| value.clone());
        }
        for (field, value) in self.quirks.embeddings_defaults {
            body.entry(*field).or_insert_with(|| Value::from(*value));
        }
        UpstreamRequest::post_json(url, self.headers(token)?, &body)
    }

    fn decode_embeddings(&self, body: &[u8]) -> Result<Vectors, Failure> {
        compat_answer::check_probe(body, self.quirks.errors)?;
        Vectors::from_openai(body).map_err(|e| Failure::transport(FailureKind::Undecodable, e))
    }
}

/// Serialises the upstream body straight from the client's request, applying quirks without copying it.
struct CompatBody<'a> {
    request: &'a ChatRequest,
    model: &'a str,
    quirks: &'a Quirks,
}

impl Serialize for CompatBody<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let r = self.request;
        let q = self.quirks;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("model", self.model)?;
        if q.string_content || q.short_tool_ids {
            let messages: Vec<Message> = r.messages.iter().map(|m| adapt_message(m, q)).collect();
            map.serialize_entry("messages", &messages)?;
        } else {
            map.serialize_entry("messages", &r.messages)?;
        }
        if r.stream {
            map.serialize_entry("stream", &true)?;
            if q.stream_usage {
                map.serialize_entry(
                    "stream_options",
                    &serde_json::json!({"include_usage": true}),
                )?;
            }
        }
        if let Some(tools) = &r.tools {
            map.serialize_entry("tools", tools)?;
            if q.serial_tools && !r.extra.contains_key("parallel_tool_calls") {
                map.serialize_entry("parallel_tool_calls", &false)?;
            }
        }
        match (q.cap, r.max_tokens, r.max_completion_tokens) {
            (CapField::AsSent, None, None) => {
                if let Some(cap) = q.default_cap {
                    map.serialize_entry("max_tokens", &cap)?;
                }
            }
            (CapField::AsSent, a, b) => {
                if let Some(a) = a {
                    map.serialize_entry("max_tokens", &a)?;
                }
                if let Some(b) = b {
                    map.serialize_entry("max_completion_tokens", &b)?;
                }
            }
            (CapField::MaxTokens, _, _) => {
                if let Some(cap) = r.output_cap() {
                    map.serialize_entry("max_tokens", &cap)?;
                }
            }
            (CapField::MaxCompletionTokens, _, _) => {
                if let Some(cap) = r.output_cap() {
                    map.serialize_entry("max_completion_tokens", &cap)?;
                }
            }
        }
        for (key, value) in &r.extra {
            let key = key.as_str();
            if q.strip.contains(&key) || (key == "stream_options" && (q.stream_usage || !r.stream))
            {
                continue;
            }
            if let (Some((low, high)), "temperature", Some(t)) =
                (q.temperature, key, value.as_f64())
            {
                map.serialize_entry(key, &t.clamp(low, high))?;
                continue;
            }
            let name = q
                .rename
                .iter()
                .find(|(from, _)| *from == key)
                .map_or(key, |(_, to)| to);
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

/// A copy of `message` fitted to a strict platform: content as a string (text parts joined, null tool-call
/// turns as ""), and tool-call ids shortened to 9 letters or digits, the same way wherever they appear.
fn adapt_message(message: &Message, quirks: &Quirks) -> Message {
    let mut out = message.clone();
    if quirks.string_content {
        out.content = match &message.content {
            Value::Null => Value::String(String::new()),
            Value::Array(parts)
                if parts
                    .iter()
                    .all(|p| p.get("type").and_then(Value::as_str) == Some("text")) =>
            {
                Value::String(
                    parts
                        .iter()
                        .filter_map(|p| p.get("text").and_then(Value::as_str))
                        .collect(),
                )
            }
            other => other.clone(),
        };
    }
    if quirks.short_tool_ids {
        if let Some(Value::String(id)) = out.extra.get_mut("tool_call_id") {
            *id = short_tool_id(id);
        }
        if let Some(Value::Array(calls)) = out.extra.get_mut("tool_calls") {
            for call in calls {
                if let Some(Value::String(id)) = call.get_mut("id") {
                    *id = short_tool_id(id);
                }
            }
        }
    }
    out
}

/// A 9-character alphanumeric id for `id` (unchanged if it already is one); deterministic, so a call and its
/// result still match after the rewrite.
pub fn short_tool_id(id: &str) -> String {
    if id.len() == 9 && id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return id.to_owned();
    }
    const ALPHABET: &[u8; 62] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    (0..9)
        .map(|_| {
            let c = ALPHABET[(h % 62) as usize] as char;
            h /= 62;
            c
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::FailureKind;

    fn request(json: &str) -> ChatRequest {
        ChatRequest::parse(json.as_bytes()).unwrap()
    }

    fn body_for(platform: Platform, json: &str) -> Value {
        let adapter = OpenAiCompat::for_platform(platform).unwrap();
        let target = Target {
            base_url: "http://x/v1",
            model: "m",
            secret: "k",
        };
        let up = adapter.chat_request(&target, &request(json)).unwrap();
        assert_eq!(up.url, "http://x/v1/chat/completions");
        serde_json::from_slice(&up.body).unwrap()
    }

    #[test]
    fn passes_unknown_fields_and_replaces_model() {
        let b = body_for(
            Platform::Groq,
            r#"{"model":"auto","messages":[{"role":"user","content":"hi"}],"temperature":0.5,"logit_bias":{},"session_id":"s"}"#,
        );
        assert_eq!(b["model"], "m");
        assert_eq!(b["temperature"], 0.5);
        assert!(b.get("logit_bias").is_none());
        assert!(b.get("session_id").is_none());
    }

    #[test]
    fn mistral_renames_seed_and_uses_max_tokens() {
        let b = body_for(
            Platform::Mistral,
            r#"{"messages":[{"role":"user","content":"hi"}],"seed":7,"max_completion_tokens":9,"stream":true,"stream_options":{"include_usage":true}}"#,
        );
        assert_eq!(b["random_seed"], 7);
        assert_eq!(b["max_tokens"], 9);
        assert!(b.get("max_completion_tokens").is_none());
        assert!(b.get("stream_options").is_none());
    }

    #[test]
    fn streaming_asks_for_usage_where_supported_and_keeps_client_choice_elsewhere() {
        let b = body_for(
            Platform::Groq,
            r#"{"messages":[{"role":"user","content":"hi"}],"stream":true}"#,
        );
        assert_eq!(b["stream_options"]["include_usage"], true);
        let b = body_for(
            Platform::Custom,
            r#"{"messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true}}"#,
        );
        assert_eq!(b["stream_options"]["include_usage"], true);
        let b = body_for(
            Platform::Custom,
            r#"{"messages":[{"role":"user","content":"hi"}],"stream":true}"#,
        );
        assert!(b.get("stream_options").is_none());
    }

    #[test]
    fn nvidia_serialises_tool_calls() {
        let b = body_for(
            Platform::Nvidia,
            r#"{"messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f"}}]}"#,
        );
        assert_eq!(b["parallel_tool_calls"], false);
    }

    #[test]
    fn platform_error_vocabularies() {
        let none = HeaderMap::new();
        let adapter = |p| OpenAiCompat::for_platform(p).unwrap();
        let minimax = adapter(Platform::Minimax)
            .decode_body(
                "m",
                Bytes::from_static(
                    br#"{"base_resp":{"status_code":1004,"status_msg":"login fail"}}"#,
                ),
            )
            .unwrap_err();
        assert_eq!(
            minimax.kind,
            FailureKind::InvalidKey,
            "MiniMax signals a bad key inside an HTTP 200"
        );
        let zhipu = adapter(Platform::Zhipu).classify(
            429,
            &none,
            br#"{"error":{"code":"1305","message":"busy"}}"#,
        );
        assert_eq!(zhipu.kind, FailureKind::Transient);
        let openrouter = adapter(Platform::Openrouter).classify(
            403,
            &none,
            br#"{"error":{"code":403,"message":"flagged"}}"#,
        );
        assert_eq!(openrouter.kind, FailureKind::BadRequest);
        let moonshot = adapter(Platform::Moonshot).classify(
            429,
            &none,
            br#"{"error":{"type":"engine_overloaded_error","message":"busy"}}"#,
        );
        assert_eq!(moonshot.kind, FailureKind::Transient);
        let github = adapter(Platform::Github).classify(
            413,
            &none,
            br#"{"error":{"code":"tokens_limit_reached","message":"Request body too large"}}"#,
        );
        assert_eq!(github.kind, FailureKind::BadRequest);
        assert_eq!(
            adapter(Platform::Groq).classify(403, &none, b"{}").kind,
            FailureKind::InvalidKey
        );
    }

    #[test]
    fn cloudflare_splits_account_and_token_and_wants_string_content() {
        let adapter = OpenAiCompat::for_platform(Platform::Cloudflare).unwrap();
        let target = Target {
            base_url: "http://cf/client/v4",
            model: "@cf/openai/gpt-oss-120b",
            secret: "acc123:tok456",
        };
        let req = request(
            r#"{"messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]},
            {"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]}],
            "logit_bias":{}}"#,
        );
        let up = adapter.chat_request(&target, &req).unwrap();
        assert_eq!(
            up.url,
            "http://cf/client/v4/accounts/acc123/ai/v1/chat/completions"
        );
        assert!(up
            .headers
            .iter()
            .any(|(k, v)| k == AUTHORIZATION && v == "Bearer tok456"));
        let body: Value = serde_json::from_slice(&up.body).unwrap();
        assert_eq!(body["model"], "@cf/openai/gpt-oss-120b");
        assert_eq!(body["messages"][0]["content"], "ab");
        assert_eq!(body["messages"][1]["content"], "");
        assert_eq!(body["messages"][1]["tool_calls"][0]["id"], "c1");
        assert_eq!(
            body["max_tokens"], 8192,
            "an explicit cap instead of Cloudflare's tiny default"
        );
        assert!(body.get("logit_bias").is_none());
        assert_eq!(
            adapter.probe_request(&target).url,
            "http://cf/client/v4/accounts/acc123/ai/models/search?per_page=1"
        );
        let none = HeaderMap::new();
        let daily = adapter.classify(429, &none, br#"{"success":false,"errors":[{"code":3036,"message":"You have used up your daily free allocation of 10,000 neurons."}],"result":null}"#);
        assert!(
            matches!(
                daily.kind,
                FailureKind::QuotaExhausted {
                    retry_after: Some(_)
                }
            ),
            "{daily:?}"
        );
        assert!(daily.message.contains("10,000 neurons"));
        let capacity = adapter.classify(
            429,
            &none,
            br#"{"success":false,"errors":[{"code":3040,"message":"Out of capacity"}]}"#,
        );
        assert_eq!(capacity.kind, FailureKind::Transient);
        let auth = adapter.classify(
            403,
            &none,
            br#"{"success":false,"errors":[{"code":10000,"message":"Authentication error"}]}"#,
        );
        assert_eq!(auth.kind, FailureKind::InvalidKey);
    }

    #[test]
    fn mistral_tool_ids_are_rewritten_consistently() {
        let b = body_for(
            Platform::Mistral,
            r#"{"messages":[{"role":"user","content":"x"},
            {"role":"assistant","content":null,"tool_calls":[{"id":"call_0fypS1hVX","type":"function","function":{"name":"f","arguments":"{}"}},{"id":"abcDEF123","type":"function","function":{"name":"g","arguments":"{}"}}]},
            {"role":"tool","tool_call_id":"call_0fypS1hVX","content":"1"},{"role":"tool","tool_call_id":"abcDEF123","content":"2"}]}"#,
        );
        let first = b["messages"][1]["tool_calls"][0]["id"].as_str().unwrap();
        assert_eq!(first.len(), 9);
        assert!(first.bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_eq!(
            b["messages"][2]["tool_call_id"], first,
            "the result still answers its call"
        );
        assert_eq!(
            b["messages"][1]["tool_calls"][1]["id"], "abcDEF123",
            "valid ids are kept"
        );
        assert_eq!(b["messages"][3]["tool_call_id"], "abcDEF123");
        let groq = body_for(
            Platform::Groq,
            r#"{"messages":[{"role":"tool","tool_call_id":"call_0fypS1hVX","content":"1"}]}"#,
        );
        assert_eq!(groq["messages"][0]["tool_call_id"], "call_0fypS1hVX");
    }

    #[test]
    fn minimax_temperature_is_moved_into_its_range() {
        let b = body_for(
            Platform::Minimax,
            r#"{"messages":[{"role":"user","content":"x"}],"temperature":0}"#,
        );
        assert_eq!(b["temperature"], 0.01);
        let b = body_for(
            Platform::Minimax,
            r#"{"messages":[{"role":"user","content":"x"}],"temperature":1.7}"#,
        );
        assert_eq!(b["temperature"], 1.0);
        let b = body_for(
            Platform::Groq,
            r#"{"messages":[{"role":"user","content":"x"}],"temperature":0}"#,
        );
        assert_eq!(b["temperature"], 0);
    }

    #[test]
    fn moonshot_usage_inside_the_final_choice_is_read() {
        let mut d = OpenAiCompat::for_platform(Platform::Moonshot)
            .unwrap()
            .stream_decoder("m", false);
        let last = r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop","usage":{"prompt_tokens":8,"completion_tokens":2,"total_tokens":10}}]}"#;
        let event = crate::openai::sse::SseEvent {
            event: None,
            data: last.as_bytes().to_vec(),
        };
        d.event(event, &mut Vec::new()).unwrap();
        assert_eq!(
            d.usage(),
            Some(Usage {
                prompt_tokens: 8,
                completion_tokens: 2
            })
        );
    }

    #[test]
    fn openrouter_probes_the_key_endpoint() {
        let adapter = OpenAiCompat::for_platform(Platform::Openrouter).unwrap();
        let target = Target {
            base_url: "http://or/api/v1",
            model: "",
            secret: "sk-or",
        };
        assert_eq!(adapter.probe_request(&target).url, "http://or/api/v1/key");
    }

    #[test]
    fn non_stream_body_is_relayed_unchanged() {
        let adapter = OpenAiCompat::for_platform(Platform::Groq).unwrap();
        let body = Bytes::from_static(br#"{"id":"x","choices":[{"message":{"content":"hi"}}],"usage":{"prompt_tokens":1,"completion_tokens":2}}"#);
        let (out, usage) = adapter.decode_body("m", body.clone()).unwrap();
        assert_eq!(out, body);
        assert_eq!(usage.map(|u| u.total()), Some(3));
        assert!(adapter
            .decode_body("m", Bytes::from_static(b"<html>"))
            .is_err());
    }
}
