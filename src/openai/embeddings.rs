//! The OpenAI embeddings request as the gateway reads it, and the list answer every platform's vectors become.
//!
//! Upstreams are always asked for floats; a client that wants `base64` gets the same vectors as little-endian
//! float32 bytes, as OpenAI encodes them, so the format never depends on which platform served. Nothing here
//! knows any platform's wire format.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Most texts in one request (OpenAI's own limit).
pub const MAX_INPUTS: usize = 2048;

/// How the client wants vectors written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EncodingFormat {
    /// JSON numbers.
    #[default]
    Float,
    /// Base64 of little-endian float32 values.
    Base64,
}

/// A `POST /v1/embeddings` body.
#[derive(Debug, Clone, Deserialize)]
pub struct EmbeddingsRequest {
    /// An embedding model id or `platform/model`; never `auto`.
    pub model: String,
    /// The texts, one or many.
    pub input: Input,
    /// How the answer's vectors are written.
    #[serde(default)]
    pub encoding_format: EncodingFormat,
    /// Vector length, where the model can shorten its vectors.
    #[serde(default)]
    pub dimensions: Option<u32>,
    /// The client's end-user id, passed on where a platform takes it.
    #[serde(default)]
    pub user: Option<String>,
    /// Every other field, passed on to OpenAI-compatible platforms (e.g. `input_type`).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The texts to embed: one string or an array of strings.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Input {
    /// One text.
    One(String),
    /// Several texts, answered in order.
    Many(Vec<String>),
}

impl EmbeddingsRequest {
    /// Parses and validates a request body; the error is the message for a 400.
    pub fn parse(body: &[u8]) -> Result<EmbeddingsRequest, String> {
        let request: EmbeddingsRequest = serde_json::from_slice(body).map_err(|e| {
            if e.is_syntax() || e.is_eof() {
                format!("The request body is not valid JSON: {e}")
            } else if e.to_string().contains("untagged enum Input") {
                "'input' must be a string or an array of strings: token arrays are not supported, since no \
                 platform shares OpenAI's tokenizer (LangChain: set check_embedding_ctx_length=False)"
                    .to_owned()
            } else {
                format!("Invalid request body: {e}")
            }
        })?;
        if request.model.trim().is_empty() {
            return Err("'model' must name an embedding model".to_owned());
        }
        if request.model == "auto" {
            return Err(
                "'model' must name an embedding model: 'auto' is not allowed for embeddings, \
                        since vectors of different models cannot be compared"
                    .to_owned(),
            );
        }
        let texts = request.texts();
        if texts.is_empty() {
            return Err("'input' must contain at least one text".to_owned());
        }
        if texts.len() > MAX_INPUTS {
            return Err(format!(
                "'input' has {} texts; at most {MAX_INPUTS} are allowed",
                texts.len()
            ));
        }
        if texts.iter().any(|t| t.is_empty()) {
            return Err("'input' must not contain empty strings".to_owned());
        }
        if request.dimensions == Some(0) {
            return Err("'dimensions' must be at least 1".to_owned());
        }
        Ok(request)
    }

    /// The request split into requests of at most `max` texts each, in order (one when it fits).
    pub fn batches(&self, max: usize) -> Vec<EmbeddingsRequest> {
        let texts = self.texts();
        if texts.len() <= max {
            return vec![self.clone()];
        }
        texts
            .chunks(max.max(1))
            .map(|chunk| EmbeddingsRequest {
                input: Input::Many(chunk.to_vec()),
                ..self.clone()
            })
            .collect()
    }

    /// The texts, in order.
    pub fn texts(&self) -> &[String] {
        match &self.input {
            Input::One(text) => std::slice::from_ref(text),
            Input::Many(texts) => texts,
        }
    }
}

/// Vectors some platform answered, in input order, with the tokens it counted.
#[derive(Debug, Clone, PartialEq)]
pub struct Vectors {
    /// One vector per input.
    pub vectors: Vec<Vec<f64>>,
    /// Input tokens, as the platform counted them (or as estimated where it does not say).
    pub prompt_tokens: u32,
}

/// OpenAI's list answer as an OpenAI-compatible platform sends it.
#[derive(Deserialize)]
struct ListAnswer {
    data: Vec<ListItem>,
    #[serde(default)]
    usage: Option<ListUsage>,
}

#[derive(Deserialize)]
struct ListItem {
    #[serde(default)]
    index: Option<usize>,
    embedding: Vec<f64>,
}

#[derive(Deserialize)]
struct ListUsage {
    #[serde(default)]
    prompt_tokens: u32,
}

impl Vectors {
    /// Reads OpenAI's list answer (float vectors), in input order; the error says what was wrong.
    pub fn from_openai(body: &[u8]) -> Result<Vectors, String> {
        let answer: ListAnswer = serde_json::from_slice(body).map_err(|e| {
            format!("the embeddings answer is not OpenAI's list of float vectors: {e}")
        })?;
        let mut items = answer.data;
        items.sort_by_key(|item| item.index);
        Ok(Vectors {
            vectors: items.into_iter().map(|item| item.embedding).collect(),
            prompt_tokens: answer.usage.map_or(0, |u| u.prompt_tokens),
        })
    }

    /// The OpenAI list answer naming `model`, with vectors written as `format` asks.
    pub fn to_openai(&self, model: &str, format: EncodingFormat) -> Vec<u8> {
        let data: Vec<Value> = self
            .vectors
            .iter()
            .enumerate()
            .map(|(index, vector)| {
                let embedding = match format {
                    EncodingFormat::Float => Value::from(vector.clone()),
                    EncodingFormat::Base64 => Value::from(base64_f32(vector)),
                };
                serde_json::json!({"object": "embedding", "index": index, "embedding": embedding})
            })
            .collect();
        let answer = serde_json::json!({
            "object": "list",
            "data": data,
            "model": model,
            "usage": {"prompt_tokens": self.prompt_tokens, "total_tokens": self.prompt_tokens},
        });
        answer.to_string().into_bytes()
    }
}

/// A JSON array of numbers as a vector; `None` for anything else (platform answers are read with it).
pub fn numbers(value: &Value) -> Option<Vec<f64>> {
    value.as_array()?.iter().map(Value::as_f64).collect()
}

/// Standard base64 (with padding) of the values as little-endian float32, OpenAI's `base64` encoding.
fn base64_f32(vector: &[f64]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    // Narrowing to float32 is the format's own precision.
    #[allow(clippy::cast_possible_truncation)]
    let bytes: Vec<u8> = vector
        .iter()
        .flat_map(|v| (*v as f32).to_le_bytes())
        .collect();
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for group in bytes.chunks(3) {
        let n = group
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= group.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_text_or_many_and_clear_refusals() {
        let one = EmbeddingsRequest::parse(br#"{"model":"m","input":"hi"}"#).unwrap();
        assert_eq!(one.texts(), ["hi"]);
        let many =
            EmbeddingsRequest::parse(br#"{"model":"m","input":["a","b"],"input_type":"query"}"#)
                .unwrap();
        assert_eq!(many.texts(), ["a", "b"]);
        assert_eq!(many.extra["input_type"], "query");
        let cases: [(&[u8], &str); 6] = [
            (br#"{"model":"auto","input":"x"}"#, "'auto' is not allowed"),
            (br#"{"model":"m","input":[]}"#, "at least one"),
            (br#"{"model":"m","input":[[1,2]]}"#, "token arrays"),
            (br#"{"model":"m","input":[""]}"#, "empty strings"),
            (
                br#"{"model":"m","input":"x","encoding_format":"hex"}"#,
                "Invalid request body",
            ),
            (b"{", "not valid JSON"),
        ];
        for (body, expected) in cases {
            let err = EmbeddingsRequest::parse(body).unwrap_err();
            assert!(err.contains(expected), "{err} should contain {expected}");
        }
    }

    #[test]
    fn openai_lists_are_read_in_index_order() {
        let body = br#"{"object":"list","data":[{"object":"embedding","index":1,"embedding":[2.0]},{"object":"embedding","index":0,"embedding":[1.5,-0.5]}],"model":"x","usage":{"prompt_tokens":4,"total_tokens":4}}"#;
        let vectors = Vectors::from_openai(body).unwrap();
        assert_eq!(vectors.vectors, vec![vec![1.5, -0.5], vec![2.0]]);
        assert_eq!(vectors.prompt_tokens, 4);
        assert!(Vectors::from_openai(br#"{"data":[{"embedding":"AAAA"}]}"#).is_err());
    }

    #[test]
    fn large_requests_split_into_ordered_batches() {
        let texts: Vec<String> = (0..7).map(|i| i.to_string()).collect();
        let raw = serde_json::json!({"model": "m", "input": texts, "dimensions": 8}).to_string();
        let request = EmbeddingsRequest::parse(raw.as_bytes()).unwrap();
        let batches = request.batches(3);
        let sizes: Vec<usize> = batches.iter().map(|b| b.texts().len()).collect();
        assert_eq!(sizes, [3, 3, 1]);
        assert_eq!(batches[2].texts(), ["6"]);
        assert_eq!(batches[1].dimensions, Some(8));
        assert_eq!(request.batches(7).len(), 1);
    }

    #[test]
    fn base64_is_little_endian_float32_as_openai_sends_it() {
        // 1.0f32 = 00 00 80 3f; -2.0f32 = 00 00 00 c0.
        assert_eq!(base64_f32(&[1.0]), "AACAPw==");
        assert_eq!(base64_f32(&[1.0, -2.0]), "AACAPwAAAMA=");
        assert_eq!(base64_f32(&[0.0, 0.0, 0.0]), "AAAAAAAAAAAAAAAA");
    }

    #[test]
    fn the_list_answer_is_openai_shaped_in_either_format() {
        let vectors = Vectors {
            vectors: vec![vec![0.5, -0.25], vec![1.0, 0.0]],
            prompt_tokens: 7,
        };
        let floats: Value =
            serde_json::from_slice(&vectors.to_openai("m", EncodingFormat::Float)).unwrap();
        assert_eq!(floats["object"], "list");
        assert_eq!(floats["model"], "m");
        assert_eq!(floats["data"][1]["index"], 1);
        assert_eq!(
            floats["data"][0]["embedding"],
            serde_json::json!([0.5, -0.25])
        );
        assert_eq!(
            floats["usage"],
            serde_json::json!({"prompt_tokens": 7, "total_tokens": 7})
        );
        let packed: Value =
            serde_json::from_slice(&vectors.to_openai("m", EncodingFormat::Base64)).unwrap();
        assert_eq!(packed["data"][1]["embedding"], "AACAPwAAAAA=");
    }
}
