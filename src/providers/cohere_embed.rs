//! Cohere embeddings, natively (`/v2/embed`): OpenAI embeddings requests become one embed call asking for float
//! vectors, and its answer becomes vectors with the tokens Cohere billed. Only translation; no IO.

use serde_json::{json, Value};

use crate::failure::{Failure, FailureKind};
use crate::openai::embeddings::{numbers, EmbeddingsRequest, Vectors};

/// Most texts Cohere embeds in one call.
pub const MAX_TEXTS: usize = 96;

/// The `/v2/embed` body for `model` (one batch of at most [`MAX_TEXTS`]). Cohere requires an `input_type`: the
/// client's (Cohere's names, or `query` / `passage`) where it sent one, else `search_document`, the right one for
/// building an index.
pub fn embed_body(model: &str, request: &EmbeddingsRequest) -> Value {
    let texts = request.texts();
    let input_type = match request.extra.get("input_type").and_then(Value::as_str) {
        Some("query") => "search_query",
        Some("passage" | "document") | None => "search_document",
        Some(named) => named,
    };
    let mut body = json!({
        "model": model,
        "texts": texts,
        "input_type": input_type,
        "embedding_types": ["float"],
    });
    if let Some(dimensions) = request.dimensions {
        body["output_dimension"] = json!(dimensions);
    }
    if let Some(truncate) = request.extra.get("truncate") {
        body["truncate"] = truncate.clone();
    }
    body
}

/// Reads `{"embeddings":{"float":[[...], ...]},"meta":{"billed_units":{"input_tokens":n}}}`.
pub fn vectors(body: &[u8]) -> Result<Vectors, Failure> {
    let undecodable = |why: String| Failure::transport(FailureKind::Undecodable, why);
    let answer: Value = serde_json::from_slice(body)
        .map_err(|e| undecodable(format!("Cohere answered with malformed JSON: {e}")))?;
    let floats = answer["embeddings"]["float"]
        .as_array()
        .ok_or_else(|| undecodable("Cohere's answer has no float embeddings".to_owned()))?;
    let vectors = floats
        .iter()
        .map(|vector| {
            numbers(vector).ok_or_else(|| {
                undecodable("a Cohere embedding is not a list of numbers".to_owned())
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let billed = answer["meta"]["billed_units"]["input_tokens"].as_u64();
    Ok(Vectors {
        vectors,
        prompt_tokens: billed.and_then(|n| u32::try_from(n).ok()).unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_types_default_to_documents_and_map_query_and_passage() {
        let body = |extra: &str| {
            let raw = format!(r#"{{"model":"embed-v4.0","input":["a"]{extra}}}"#);
            embed_body(
                "embed-v4.0",
                &EmbeddingsRequest::parse(raw.as_bytes()).unwrap(),
            )
        };
        assert_eq!(body("")["input_type"], "search_document");
        assert_eq!(
            body(r#","input_type":"query""#)["input_type"],
            "search_query"
        );
        assert_eq!(
            body(r#","input_type":"classification""#)["input_type"],
            "classification"
        );
        assert_eq!(body(r#","dimensions":256"#)["output_dimension"], 256);
        assert_eq!(body("")["embedding_types"], json!(["float"]));
    }

    #[test]
    fn float_vectors_and_billed_tokens_are_read() {
        let read = vectors(
            br#"{"id":"x","embeddings":{"float":[[0.5,0.25],[1]]},"texts":["a","b"],"meta":{"billed_units":{"input_tokens":3}}}"#,
        )
        .unwrap();
        assert_eq!(read.vectors, vec![vec![0.5, 0.25], vec![1.0]]);
        assert_eq!(read.prompt_tokens, 3);
        assert!(vectors(br#"{"embeddings":{"int8":[[1]]}}"#).is_err());
    }
}
