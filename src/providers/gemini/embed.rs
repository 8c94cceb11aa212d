//! Gemini embeddings: OpenAI embeddings requests become one `batchEmbedContents` call, and its answer becomes
//! vectors in input order. Gemini counts no tokens in this answer, so usage is left to the gateway's estimate.

use serde_json::{json, Value};

use crate::failure::{Failure, FailureKind};
use crate::openai::embeddings::{numbers, EmbeddingsRequest, Vectors};

/// Most texts one `batchEmbedContents` call takes (ai.google.dev, embeddings guide).
pub(super) const MAX_INPUTS: usize = 100;

/// The `batchEmbedContents` body for `model` (without its `models/` prefix).
pub(super) fn batch_body(model: &str, request: &EmbeddingsRequest) -> Value {
    let requests: Vec<Value> = request
        .texts()
        .iter()
        .map(|text| {
            let mut one =
                json!({"model": format!("models/{model}"), "content": {"parts": [{"text": text}]}});
            if let Some(dimensions) = request.dimensions {
                one["outputDimensionality"] = json!(dimensions);
            }
            if let Some(task) = request.extra.get("task_type").and_then(Value::as_str) {
                one["taskType"] = json!(task);
            }
            one
        })
        .collect();
    json!({ "requests": requests })
}

/// Reads `{"embeddings":[{"values":[...]}, ...]}`.
pub(super) fn vectors(body: &[u8]) -> Result<Vectors, Failure> {
    let undecodable = |why: String| Failure::transport(FailureKind::Undecodable, why);
    let answer: Value = serde_json::from_slice(body)
        .map_err(|e| undecodable(format!("Gemini answered with malformed JSON: {e}")))?;
    let embeddings = answer["embeddings"]
        .as_array()
        .ok_or_else(|| undecodable("Gemini's answer has no 'embeddings' list".to_owned()))?;
    let vectors = embeddings
        .iter()
        .map(|e| {
            numbers(&e["values"])
                .ok_or_else(|| undecodable("a Gemini embedding has no numeric 'values'".to_owned()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Vectors {
        vectors,
        prompt_tokens: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_request_per_text_with_dimensions_and_values_in_order() {
        let request = EmbeddingsRequest::parse(
            br#"{"model":"gemini-embedding-001","input":["a","b"],"dimensions":768}"#,
        )
        .unwrap();
        let body = batch_body("gemini-embedding-001", &request);
        assert_eq!(body["requests"].as_array().unwrap().len(), 2);
        assert_eq!(body["requests"][1]["model"], "models/gemini-embedding-001");
        assert_eq!(body["requests"][1]["content"]["parts"][0]["text"], "b");
        assert_eq!(body["requests"][0]["outputDimensionality"], 768);
        let read = vectors(br#"{"embeddings":[{"values":[0.1,0.2]},{"values":[0.3]}]}"#).unwrap();
        assert_eq!(read.vectors, vec![vec![0.1, 0.2], vec![0.3]]);
        assert!(vectors(br#"{"embeddings":[{"values":["x"]}]}"#).is_err());
    }
}
