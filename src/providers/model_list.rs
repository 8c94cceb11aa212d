//! Reading a server's model list (`GET {base_url}/models`), for custom keys added without `models`. It accepts
//! OpenAI's `{"data":[{"id"}]}`, a bare array of ids or objects, and Ollama's `{"models":[{"name"}]}`. It only
//! translates shapes; it never calls the server and never sees the key's value beyond the request it builds.

use awc::http::header::AUTHORIZATION;
use serde_json::Value;

use super::{secret_header, UpstreamRequest};

/// The request that lists a server's models, the key sent as a Bearer token (marked sensitive).
pub fn request(base_url: &str, key: &str) -> Result<UpstreamRequest, String> {
    let url = format!("{}/models", base_url.trim_end_matches('/'));
    Ok(UpstreamRequest::get(
        url,
        vec![secret_header(AUTHORIZATION, "Bearer ", key)?],
    ))
}

/// The model ids of a list answer, in the server's order, without blanks or repeats; an error says what was wrong.
pub fn parse(body: &[u8]) -> Result<Vec<String>, String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("the answer is not JSON ({e})"))?;
    let items = match &value {
        Value::Array(items) => items,
        Value::Object(map) => match (map.get("data"), map.get("models")) {
            (Some(Value::Array(items)), _) | (None, Some(Value::Array(items))) => items,
            _ => return Err("the answer has no 'data' (or 'models') list".to_owned()),
        },
        _ => return Err("the answer is not a model list".to_owned()),
    };
    let mut ids: Vec<String> = Vec::new();
    for item in items {
        let id = match item {
            Value::String(id) => Some(id.as_str()),
            Value::Object(fields) => fields
                .get("id")
                .or_else(|| fields.get("name"))
                .and_then(Value::as_str),
            _ => None,
        };
        if let Some(id) = id.map(str::trim).filter(|id| !id.is_empty()) {
            if !ids.iter().any(|known| known == id) {
                ids.push(id.to_owned());
            }
        }
    }
    if ids.is_empty() {
        return Err("the server lists no models".to_owned());
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_bare_and_ollama_lists_are_read() {
        let openai =
            br#"{"object":"list","data":[{"id":"a","object":"model"},{"id":"b"},{"id":"a"}]}"#;
        assert_eq!(parse(openai).unwrap(), ["a", "b"]);
        assert_eq!(parse(br#"["x", {"id":"y"}]"#).unwrap(), ["x", "y"]);
        let ollama = br#"{"models":[{"name":"llama3:8b","model":"llama3:8b"}]}"#;
        assert_eq!(parse(ollama).unwrap(), ["llama3:8b"]);
    }

    #[test]
    fn empty_or_foreign_answers_are_refused_with_a_reason() {
        assert!(parse(br#"{"data":[]}"#).unwrap_err().contains("no models"));
        assert!(parse(b"<html>").unwrap_err().contains("not JSON"));
        assert!(parse(br#"{"error":"nope"}"#)
            .unwrap_err()
            .contains("'data'"));
    }

    #[test]
    fn the_key_goes_as_a_sensitive_bearer() {
        let req = request("http://h/v1/", "sk-1").unwrap();
        assert_eq!(req.url, "http://h/v1/models");
        assert_eq!(req.secrets(), ["sk-1"]);
    }
}
