//! What makes two requests the same request for the response cache: the front door, whose entries they may
//! share, and the body with the fields that do not change the answer set aside (`stream`, `stream_options`,
//! `session_id`, `user`, and Anthropic's `metadata.user_id`), compared key order and whitespace aside. Also
//! what a request's `Cache-Control` asks of the cache. Pure; it never sees the store.

use ring::digest::{digest, SHA256};
use serde_json::Value;

/// Top-level body fields that never change an answer: how it is delivered and who asked.
const SET_ASIDE: [&str; 4] = ["stream", "stream_options", "session_id", "user"];

/// The digest of one request as the cache compares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CacheKey([u8; 32]);

/// Whose entries a request may read and fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Entries every caller shares: the owner's requests, or everyone's when the owner shares the cache.
    Shared,
    /// Entries of one client key only.
    Client(i64),
}

impl CacheKey {
    /// The key of a request to `door` (its route path) from `scope`; `None` when the body is not a JSON object.
    pub fn of(door: &str, scope: Scope, body: &[u8]) -> Option<CacheKey> {
        let value: Value = serde_json::from_slice(body).ok()?;
        if !value.is_object() {
            return None;
        }
        let mut canonical = Vec::with_capacity(door.len() + body.len() + 32);
        canonical.extend_from_slice(door.as_bytes());
        match scope {
            Scope::Shared => canonical.extend_from_slice(b"\0shared\0"),
            Scope::Client(id) => canonical.extend_from_slice(format!("\0client {id}\0").as_bytes()),
        }
        write_canonical(&mut canonical, &value, &SET_ASIDE);
        let mut key = [0; 32];
        key.copy_from_slice(digest(&SHA256, &canonical).as_ref());
        Some(CacheKey(key))
    }
}

/// Writes `value` as JSON with every object's keys sorted and no whitespace, leaving out the object's fields
/// named in `skip` (the body's own; Anthropic's `metadata.user_id` names who asked, as `user` does elsewhere).
fn write_canonical(out: &mut Vec<u8>, value: &Value, skip: &[&str]) {
    match value {
        Value::Object(fields) => {
            let mut sorted: Vec<(&String, &Value)> = fields
                .iter()
                .filter(|(name, _)| !skip.contains(&name.as_str()))
                .collect();
            sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (name, value) in sorted {
                write_string(out, name);
                out.push(b':');
                let inner: &[&str] = if skip == SET_ASIDE && name == "metadata" {
                    &["user_id"]
                } else {
                    &[]
                };
                write_canonical(out, value, inner);
                out.push(b',');
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for item in items {
                write_canonical(out, item, &[]);
                out.push(b',');
            }
            out.push(b']');
        }
        Value::String(text) => write_string(out, text),
        scalar => out.extend_from_slice(scalar.to_string().as_bytes()),
    }
}

fn write_string(out: &mut Vec<u8>, text: &str) {
    // Writing JSON into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, text);
}

/// What a request's `Cache-Control` lets the cache do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowed {
    /// Whether a kept answer may serve it (`no-cache` and `max-age=0` say no).
    pub read: bool,
    /// Whether its answer may be kept (`no-store` says no).
    pub write: bool,
}

impl Allowed {
    /// What `cache_control` (the header's value, if sent) allows.
    pub fn of(cache_control: Option<&str>) -> Allowed {
        let mut allowed = Allowed {
            read: true,
            write: true,
        };
        for directive in cache_control.unwrap_or("").split(',') {
            let directive = directive.trim().to_ascii_lowercase();
            match directive.replace(' ', "").as_str() {
                "no-cache" | "max-age=0" => allowed.read = false,
                "no-store" => {
                    allowed.read = false;
                    allowed.write = false;
                }
                _ => {}
            }
        }
        allowed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(body: &str) -> CacheKey {
        CacheKey::of("/v1/chat/completions", Scope::Shared, body.as_bytes()).unwrap()
    }

    #[test]
    fn delivery_and_caller_fields_and_key_order_are_set_aside() {
        let plain = key(r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#);
        let same = [
            r#"{"messages":[{"content":"hi","role":"user"}],"model":"m"}"#,
            r#"{ "model" : "m", "messages":[{"role":"user","content":"hi"}], "stream": true,
                "stream_options": {"include_usage": true}, "session_id": "s1", "user": "alice" }"#,
        ];
        for body in same {
            assert_eq!(key(body), plain, "{body}");
        }
        let anthropic = |user: &str| {
            key(&format!(
                r#"{{"model":"m","max_tokens":5,"metadata":{{"user_id":"{user}"}}}}"#
            ))
        };
        assert_eq!(anthropic("a"), anthropic("b"));
    }

    #[test]
    fn anything_that_changes_the_answer_changes_the_key() {
        let plain = key(r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#);
        let different = [
            r#"{"model":"n","messages":[{"role":"user","content":"hi"}]}"#,
            r#"{"model":"m","messages":[{"role":"user","content":"hi "}]}"#,
            r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0}"#,
            r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"nested":{"user":"x"}}"#,
            r#"{"model":"m","messages":[{"role":"system","content":"hi"}]}"#,
        ];
        for body in different {
            assert_ne!(key(body), plain, "{body}");
        }
        let body = br#"{"model":"m"}"#;
        let chat = CacheKey::of("/v1/chat/completions", Scope::Shared, body);
        assert_ne!(chat, CacheKey::of("/v1/responses", Scope::Shared, body));
        assert_ne!(
            chat,
            CacheKey::of("/v1/chat/completions", Scope::Client(1), body)
        );
        assert_ne!(
            CacheKey::of("/v1/chat/completions", Scope::Client(1), body),
            CacheKey::of("/v1/chat/completions", Scope::Client(2), body)
        );
        assert!(CacheKey::of("/v1/chat/completions", Scope::Shared, b"[1]").is_none());
    }

    #[test]
    fn cache_control_directives() {
        let of = |v: Option<&str>| {
            let a = Allowed::of(v);
            (a.read, a.write)
        };
        assert_eq!(of(None), (true, true));
        assert_eq!(of(Some("no-cache")), (false, true));
        assert_eq!(of(Some("No-Cache")), (false, true));
        assert_eq!(of(Some("max-age = 0")), (false, true));
        assert_eq!(of(Some("max-age=60")), (true, true));
        assert_eq!(of(Some("private, no-store")), (false, false));
    }
}
